//! Cron: functions with a `schedule` (5 or 6 cron fields, UTC) in their `outpost.json` are
//! queued as jobs when due. A firing is skipped while the previous one of the same function is
//! still queued or running (no overlap); the queue makes a firing survive a restart.

use super::queue;
use crate::db::{Db, DbError, Mode};
use crate::functions::FunctionsService;
use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Parse a 5- or 6-field expression.
pub fn parse(expr: &str) -> Result<croner::Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expr)
        .map_err(|e| format!("schedule {expr}: {e}"))
}

/// Run the scheduler until the server stops.
pub async fn run(db: Db, functions: Arc<FunctionsService>) {
    // name → (expression, next firing)
    let mut next: HashMap<String, (String, DateTime<Utc>)> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Utc::now();
        let schedules = functions.schedules(&db).await;
        next.retain(|name, _| schedules.iter().any(|(n, _)| n == name));
        for (name, expr) in schedules {
            let entry = next.get(&name).filter(|(e, _)| *e == expr).cloned();
            let due = match entry {
                Some((_, at)) => at,
                None => match parse(&expr).and_then(|c| {
                    c.find_next_occurrence(&now, false)
                        .map_err(|e| e.to_string())
                }) {
                    Ok(at) => {
                        next.insert(name.clone(), (expr.clone(), at));
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(function = %name, error = %e, "bad schedule; the function is not scheduled");
                        next.insert(name.clone(), (expr.clone(), DateTime::<Utc>::MAX_UTC));
                        continue;
                    }
                },
            };
            if now < due {
                continue;
            }
            let following = parse(&expr)
                .ok()
                .and_then(|c| c.find_next_occurrence(&now, false).ok())
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            next.insert(name.clone(), (expr.clone(), following));
            let payload = serde_json::json!({
                "schedule": expr,
                "scheduled_at": due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            })
            .to_string();
            let target = name.clone();
            let queued = db
                .writer
                .write(Mode::Commit, None, move |c| -> Result<bool, DbError> {
                    let busy: bool = c
                        .prepare_cached(
                            "SELECT 1 FROM _outpost_jobs WHERE kind = 'function' AND target = ?1
                             AND state IN ('pending', 'running')",
                        )?
                        .exists([&target])?;
                    if busy {
                        return Ok(false);
                    }
                    queue::enqueue(c, "function", &target, &payload, 1)?;
                    Ok(true)
                })
                .await;
            match queued {
                Ok(true) => db.jobs_wake.notify_one(),
                Ok(false) => {
                    tracing::info!(function = %name, "previous run still going; this firing is skipped")
                }
                Err(e) => {
                    tracing::warn!(function = %name, error = %e, "cannot queue a scheduled run")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_and_six_fields() {
        let start: DateTime<Utc> = "2026-11-24T10:00:30Z".parse().unwrap();
        let five = parse("*/5 * * * *").unwrap();
        assert_eq!(
            five.find_next_occurrence(&start, false)
                .unwrap()
                .to_rfc3339(),
            "2026-11-24T10:05:00+00:00"
        );
        let six = parse("*/10 * * * * *").unwrap();
        assert_eq!(
            six.find_next_occurrence(&start, false)
                .unwrap()
                .to_rfc3339(),
            "2026-11-24T10:00:40+00:00"
        );
        assert!(parse("nonsense").is_err());
        assert!(parse("61 * * * *").is_err());
    }
}
