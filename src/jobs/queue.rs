//! The job table: enqueue (inside the caller's transaction), claim, finish with retry or
//! dead-letter, recover after a crash, retry by hand, prune, and read for the admin API.

use super::config::JobsConfig;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

fn now_ms() -> i64 {
    crate::replication::status::now_ms()
}

/// A queued job.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub target: String,
    #[serde(skip)]
    pub payload: String,
    pub idempotency_key: String,
    pub state: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub attempt: u32,
    pub status_code: Option<u16>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub at: i64,
}

const COLUMNS: &str = "id, kind, target, payload, idempotency_key, state, attempts, max_attempts, \
                       run_at, last_error, created_at, updated_at";

fn job(r: &rusqlite::Row) -> rusqlite::Result<Job> {
    Ok(Job {
        id: r.get(0)?,
        kind: r.get(1)?,
        target: r.get(2)?,
        payload: r.get(3)?,
        idempotency_key: r.get(4)?,
        state: r.get(5)?,
        attempts: r.get(6)?,
        max_attempts: r.get(7)?,
        run_at: r.get(8)?,
        last_error: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

/// Queue a job, due now; its idempotency key goes with every delivery of it.
pub fn enqueue(
    conn: &Connection,
    kind: &str,
    target: &str,
    payload: &str,
    max_attempts: u32,
) -> rusqlite::Result<i64> {
    let now = now_ms();
    conn.prepare_cached(
        "INSERT INTO _outpost_jobs (kind, target, payload, idempotency_key, max_attempts, run_at,
                                    created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?6)",
    )?
    .execute(params![
        kind,
        target,
        payload,
        uuid::Uuid::new_v4().to_string(),
        max_attempts.max(1),
        now
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Jobs due now, oldest first.
pub fn due(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<Job>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM _outpost_jobs WHERE state = 'pending' AND run_at <= ?1
         ORDER BY run_at, id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![now_ms(), limit as i64], job)?;
    rows.collect()
}

/// Take a pending job for one attempt; false when someone else took it or it changed.
pub fn claim(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "UPDATE _outpost_jobs SET state = 'running', attempts = attempts + 1, updated_at = ?2
         WHERE id = ?1 AND state = 'pending'",
        params![id, now_ms()],
    )?;
    Ok(n == 1)
}

/// Claim each of `ids` that is still pending; the ids claimed.
pub fn claim_many(conn: &Connection, ids: &[i64]) -> rusqlite::Result<Vec<i64>> {
    let mut claimed = Vec::with_capacity(ids.len());
    for &id in ids {
        if claim(conn, id)? {
            claimed.push(id);
        }
    }
    Ok(claimed)
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status_code: Option<u16>,
    pub duration_ms: i64,
    /// `None`: delivered.
    pub error: Option<String>,
}

/// Record an attempt: done, due again after a backoff, or dead after the last attempt.
/// Returns the job's new state.
pub fn finish(
    conn: &Connection,
    id: i64,
    outcome: &Outcome,
    config: &JobsConfig,
    jitter: f64,
) -> rusqlite::Result<String> {
    let now = now_ms();
    let Some((attempts, max)) = conn
        .query_row(
            "SELECT attempts, max_attempts FROM _outpost_jobs WHERE id = ?1",
            [id],
            |r| Ok((r.get::<_, u32>(0)?, r.get::<_, u32>(1)?)),
        )
        .optional()?
    else {
        return Ok("gone".into());
    };
    conn.execute(
        "INSERT INTO _outpost_job_log (job_id, attempt, status_code, duration_ms, error, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            id,
            attempts,
            outcome.status_code,
            outcome.duration_ms,
            outcome.error,
            now
        ],
    )?;
    let (state, run_at) = match &outcome.error {
        None => ("done", now),
        Some(_) if attempts >= max => ("dead", now),
        Some(_) => (
            "pending",
            now + config.backoff(attempts, jitter).as_millis() as i64,
        ),
    };
    conn.execute(
        "UPDATE _outpost_jobs SET state = ?2, run_at = ?3, last_error = ?4, updated_at = ?5
         WHERE id = ?1",
        params![id, state, run_at, outcome.error, now],
    )?;
    Ok(state.to_string())
}

/// After a restart: attempts that were in flight when the process died are due again (their
/// receivers may see them twice: delivery is at least once, with the same idempotency key).
pub fn recover(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE _outpost_jobs SET state = 'pending', updated_at = ?1 WHERE state = 'running'",
        [now_ms()],
    )
}

/// Put a dead (or done) job back in the queue with fresh attempts.
pub fn retry(conn: &Connection, id: i64) -> rusqlite::Result<Option<Job>> {
    let n = conn.execute(
        "UPDATE _outpost_jobs SET state = 'pending', attempts = 0, run_at = ?2, updated_at = ?2
         WHERE id = ?1 AND state IN ('dead', 'done')",
        params![id, now_ms()],
    )?;
    if n == 0 {
        return Ok(None);
    }
    get(conn, id)
}

/// One job.
pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<Job>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM _outpost_jobs WHERE id = ?1"),
        [id],
        job,
    )
    .optional()
}

/// Jobs, newest first, optionally of one state and one target.
pub fn list(
    conn: &Connection,
    state: Option<&str>,
    target: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<Job>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM _outpost_jobs
         WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR target = ?2)
         ORDER BY id DESC LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![state, target, limit as i64], job)?;
    rows.collect()
}

/// A job's attempts, oldest first.
pub fn attempts(conn: &Connection, id: i64) -> rusqlite::Result<Vec<Attempt>> {
    let mut stmt = conn.prepare(
        "SELECT attempt, status_code, duration_ms, error, at FROM _outpost_job_log
         WHERE job_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(Attempt {
            attempt: r.get(0)?,
            status_code: r.get(1)?,
            duration_ms: r.get(2)?,
            error: r.get(3)?,
            at: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// Forget finished jobs and attempts older than `keep_ms`; dead jobs stay until retried or
/// deleted with their webhook.
pub fn prune(conn: &Connection, keep_ms: i64) -> rusqlite::Result<usize> {
    let before = now_ms() - keep_ms;
    let jobs = conn.execute(
        "DELETE FROM _outpost_jobs WHERE state = 'done' AND updated_at < ?1",
        [before],
    )?;
    let log = conn.execute(
        "DELETE FROM _outpost_job_log WHERE at < ?1
         AND job_id NOT IN (SELECT id FROM _outpost_jobs WHERE state = 'dead')",
        [before],
    )?;
    Ok(jobs + log)
}
