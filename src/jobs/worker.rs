//! The delivery worker: takes due jobs in order, a bounded number at a time, POSTs each to its
//! webhook's URL with the signature and idempotency headers, and records the outcome.

use super::config::JobsConfig;
use super::queue::{self, Job, Outcome};
use super::webhooks::{self, Webhook};
use crate::db::{Db, DbError, Mode};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How often the queue is looked at when nothing wakes the worker.
const POLL: Duration = Duration::from_millis(250);
/// Due jobs read at a time.
const DUE_BATCH: usize = 64;
/// How often finished jobs and old attempts are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Reload the webhook definitions into the writer's cache and the change capture.
pub async fn reload(db: &Db) -> Result<(), DbError> {
    let hooks = db
        .read(None, |c| webhooks::load(c).map_err(DbError::from))
        .await?;
    db.hooks.replace(hooks);
    db.capture.set_hooked(db.hooks.tables());
    Ok(())
}

/// Run the worker until the server stops.
pub async fn run(db: Db, config: JobsConfig, functions: Arc<crate::functions::FunctionsService>) {
    let http = match reqwest::Client::builder().build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the job worker cannot build its HTTP client");
            return;
        }
    };
    match db
        .writer
        .write(Mode::Commit, None, |c| {
            queue::recover(c).map_err(DbError::from)
        })
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            jobs = n,
            "attempts interrupted by the last stop are due again"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot recover interrupted jobs"),
    }
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.concurrency));
    let mut next_prune = Instant::now() + Duration::from_secs(5);
    loop {
        let mut due = db
            .read(None, |c| queue::due(c, DUE_BATCH).map_err(DbError::from))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the job queue");
                Vec::new()
            });
        // A full batch means more are due: read again at once instead of waiting.
        let more = due.len() == DUE_BATCH;
        while !due.is_empty() {
            // Wait for one free slot, then take every other free one: one claim per batch.
            let Ok(first) = slots.clone().acquire_owned().await else {
                return;
            };
            let mut permits = vec![first];
            while permits.len() < due.len() {
                match slots.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let batch: Vec<Job> = due.drain(..permits.len()).collect();
            let ids: Vec<i64> = batch.iter().map(|j| j.id).collect();
            let claimed = db
                .writer
                .write(Mode::Commit, None, move |c| {
                    queue::claim_many(c, &ids).map_err(DbError::from)
                })
                .await
                .unwrap_or_default();
            for (job, permit) in batch.into_iter().zip(permits) {
                if !claimed.contains(&job.id) {
                    continue;
                }
                let (db, http, config) = (db.clone(), http.clone(), config.clone());
                let functions = functions.clone();
                tokio::spawn(async move {
                    attempt(&db, &http, &config, &functions, job).await;
                    drop(permit);
                });
            }
        }
        if Instant::now() >= next_prune {
            next_prune = Instant::now() + PRUNE_EVERY;
            let keep = config.retention.as_millis() as i64;
            if let Err(e) = db
                .writer
                .write(Mode::Commit, None, move |c| {
                    queue::prune(c, keep).map_err(DbError::from)
                })
                .await
            {
                tracing::warn!(error = %e, "cannot prune the job queue");
            }
        }
        if more {
            continue;
        }
        tokio::select! {
            _ = db.jobs_wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn attempt(
    db: &Db,
    http: &reqwest::Client,
    config: &JobsConfig,
    functions: &crate::functions::FunctionsService,
    job: Job,
) {
    let started = Instant::now();
    let mut outcome = if job.kind == "function" {
        call_function(db, functions, &job.target, &job.payload, "cron").await
    } else {
        let hook = db
            .hooks
            .get()
            .iter()
            .find(|h| h.name == job.target)
            .cloned();
        match hook {
            Some(Webhook {
                function: Some(f), ..
            }) => call_function(db, functions, &f, &job.payload, "webhook").await,
            Some(h) => post(http, &h, &job).await,
            None => Outcome {
                status_code: None,
                duration_ms: 0,
                error: Some(format!("the webhook {} no longer exists", job.target)),
            },
        }
    };
    outcome.duration_ms = started.elapsed().as_millis() as i64;
    let id = job.id;
    let jitter = rand::random::<f64>();
    let cfg = config.clone();
    let logged = outcome.clone();
    match db
        .writer
        .write(Mode::Commit, None, move |c| {
            queue::finish(c, id, &logged, &cfg, jitter).map_err(DbError::from)
        })
        .await
    {
        Ok(state) if state == "dead" => tracing::warn!(
            job = id,
            webhook = %job.target,
            error = outcome.error.as_deref().unwrap_or(""),
            "delivery failed for the last time; the job is dead-lettered"
        ),
        Ok(_) => {}
        // The attempt stays `running`; the next start makes it due again.
        Err(e) => tracing::error!(job = id, error = %e, "cannot record a delivery"),
    }
}

/// Call a function with a job's payload (cron firings, webhooks that target a function).
async fn call_function(
    db: &Db,
    functions: &crate::functions::FunctionsService,
    name: &str,
    payload: &str,
    trigger: &str,
) -> Outcome {
    let body = serde_json::from_str(payload).unwrap_or(serde_json::Value::Null);
    match functions.call(db, name, &body, trigger).await {
        Ok(status) => Outcome {
            status_code: Some(status),
            duration_ms: 0,
            error: None,
        },
        Err(e) => Outcome {
            status_code: None,
            duration_ms: 0,
            error: Some(e),
        },
    }
}

async fn post(http: &reqwest::Client, hook: &Webhook, job: &Job) -> Outcome {
    let now = crate::replication::status::now_ms() / 1000;
    let mut req = http
        .post(&hook.url)
        .timeout(Duration::from_millis(hook.timeout_ms))
        .header("content-type", "application/json")
        .header("user-agent", concat!("Outpost/", env!("CARGO_PKG_VERSION")))
        .header(
            "x-outpost-signature",
            webhooks::signature(&hook.secret, now, job.payload.as_bytes()),
        )
        .header("x-outpost-delivery", &job.idempotency_key)
        .header("idempotency-key", &job.idempotency_key)
        .header("x-outpost-attempt", job.attempts + 1);
    for (k, v) in &hook.headers {
        if let Some(v) = v.as_str() {
            req = req.header(k.as_str(), v);
        }
    }
    match req.body(job.payload.clone()).send().await {
        Ok(res) => {
            let status = res.status();
            Outcome {
                status_code: Some(status.as_u16()),
                duration_ms: 0,
                error: (!status.is_success()).then(|| format!("the receiver answered {status}")),
            }
        }
        Err(e) => Outcome {
            status_code: None,
            duration_ms: 0,
            error: Some(if e.is_timeout() {
                format!("no answer within {} ms", hook.timeout_ms)
            } else {
                format!("cannot reach the receiver: {e}")
            }),
        },
    }
}
