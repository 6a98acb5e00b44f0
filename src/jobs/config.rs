//! Job queue settings from the environment.

use std::time::Duration;

/// How the worker retries and how long it keeps what it did.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// First retry delay; doubles per attempt, with jitter (`OUTPOST_JOBS_BACKOFF_BASE`, 2s).
    pub backoff_base: Duration,
    /// Longest retry delay (`OUTPOST_JOBS_BACKOFF_MAX`, 1h).
    pub backoff_max: Duration,
    /// Deliveries in flight at once (`OUTPOST_JOBS_CONCURRENCY`, 8).
    pub concurrency: usize,
    /// How long finished jobs and the delivery log are kept (`OUTPOST_JOBS_RETENTION`, 7 days).
    pub retention: Duration,
}

use crate::config::env_duration as duration;

impl JobsConfig {
    /// Settings from `OUTPOST_JOBS_*`.
    pub fn from_env() -> Result<JobsConfig, String> {
        let concurrency = match std::env::var("OUTPOST_JOBS_CONCURRENCY") {
            Ok(v) if !v.trim().is_empty() => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=256).contains(n))
                .ok_or_else(|| format!("OUTPOST_JOBS_CONCURRENCY={v}: 1 to 256"))?,
            _ => 8,
        };
        Ok(JobsConfig {
            backoff_base: duration("OUTPOST_JOBS_BACKOFF_BASE", Duration::from_secs(2))?,
            backoff_max: duration("OUTPOST_JOBS_BACKOFF_MAX", Duration::from_secs(3600))?,
            concurrency,
            retention: duration("OUTPOST_JOBS_RETENTION", Duration::from_secs(7 * 24 * 3600))?,
        })
    }

    /// The delay before attempt `attempt + 1` after `attempt` failures: exponential, capped,
    /// with jitter (between half and all of it) so retries of many jobs spread out.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = self
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let capped = exp.min(self.backoff_max);
        capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let c = JobsConfig {
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(10),
            concurrency: 1,
            retention: Duration::from_secs(1),
        };
        assert_eq!(c.backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(c.backoff(2, 1.0), Duration::from_secs(2));
        assert_eq!(c.backoff(3, 1.0), Duration::from_secs(4));
        assert_eq!(c.backoff(9, 1.0), Duration::from_secs(10));
        assert_eq!(c.backoff(3, 0.0), Duration::from_secs(2));
        assert_eq!(c.backoff(40, 1.0), Duration::from_secs(10));
    }
}
