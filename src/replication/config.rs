//! Replication settings: the destination URL from `--replica`, the schedule from the
//! environment (Litestream's defaults).

use std::time::Duration;

/// How often and how the replicator ships, compacts, checkpoints and prunes.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    pub url: String,
    /// Longest a commit waits before it is shipped (`OUTPOST_REPLICA_SYNC_INTERVAL`, 1s).
    pub sync_interval: Duration,
    /// WAL size, in pages, that triggers a checkpoint (`OUTPOST_REPLICA_CHECKPOINT_PAGES`, 1000).
    pub checkpoint_pages: u64,
    /// Longest time between checkpoints (`OUTPOST_REPLICA_CHECKPOINT_INTERVAL`, 1m).
    pub checkpoint_interval: Duration,
    /// Compaction period of levels 1, 2, 3 (`OUTPOST_REPLICA_COMPACTION`, `30s,5m,1h`).
    pub compaction: [Duration; 3],
    /// Time between full snapshots (`OUTPOST_REPLICA_SNAPSHOT_INTERVAL`, 24h).
    pub snapshot_interval: Duration,
    /// How long snapshots, and the files needed to restore from them, are kept
    /// (`OUTPOST_REPLICA_RETENTION`, 24h).
    pub retention: Duration,
    /// How long level-0 files stay once compacted (`OUTPOST_REPLICA_L0_RETENTION`, 5m).
    pub l0_retention: Duration,
}

use crate::config::env_duration as duration_env;

impl ReplicaConfig {
    /// The schedule from the environment, for the replica at `url`.
    pub fn from_env(url: &str) -> Result<ReplicaConfig, String> {
        let compaction = match std::env::var("OUTPOST_REPLICA_COMPACTION") {
            Ok(v) if !v.trim().is_empty() => {
                let parts: Vec<Duration> = v
                    .split(',')
                    .map(|p| {
                        crate::config::parse_go_duration(p.trim())
                            .filter(|s| *s > 0.0)
                            .map(Duration::from_secs_f64)
                    })
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        format!("OUTPOST_REPLICA_COMPACTION={v}: three durations like 30s,5m,1h")
                    })?;
                <[Duration; 3]>::try_from(parts).map_err(|_| {
                    format!("OUTPOST_REPLICA_COMPACTION={v}: three durations like 30s,5m,1h")
                })?
            }
            _ => [
                Duration::from_secs(30),
                Duration::from_secs(300),
                Duration::from_secs(3600),
            ],
        };
        let checkpoint_pages = match std::env::var("OUTPOST_REPLICA_CHECKPOINT_PAGES") {
            Ok(v) if !v.trim().is_empty() => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("OUTPOST_REPLICA_CHECKPOINT_PAGES={v} is not a count"))?,
            _ => 1000,
        };
        Ok(ReplicaConfig {
            url: url.to_string(),
            sync_interval: duration_env("OUTPOST_REPLICA_SYNC_INTERVAL", Duration::from_secs(1))?,
            checkpoint_pages,
            checkpoint_interval: duration_env(
                "OUTPOST_REPLICA_CHECKPOINT_INTERVAL",
                Duration::from_secs(60),
            )?,
            compaction,
            snapshot_interval: duration_env(
                "OUTPOST_REPLICA_SNAPSHOT_INTERVAL",
                Duration::from_secs(24 * 3600),
            )?,
            retention: duration_env("OUTPOST_REPLICA_RETENTION", Duration::from_secs(24 * 3600))?,
            l0_retention: duration_env("OUTPOST_REPLICA_L0_RETENTION", Duration::from_secs(300))?,
        })
    }
}

/// How a read replica polls (`OUTPOST_FOLLOW_INTERVAL`, 1s) and where writes should go
/// (`OUTPOST_PRIMARY_URL`, named in the error writes get).
#[derive(Debug, Clone)]
pub struct FollowConfig {
    pub url: String,
    pub interval: Duration,
    pub primary_url: Option<String>,
    /// Forward writes to the primary instead of refusing them (`OUTPOST_PROXY_WRITES`).
    pub proxy_writes: bool,
}

impl FollowConfig {
    /// The follower's settings from the environment, for the replica at `url`.
    pub fn from_env(url: &str) -> Result<FollowConfig, String> {
        let primary_url = std::env::var("OUTPOST_PRIMARY_URL")
            .ok()
            .filter(|v| !v.trim().is_empty());
        let proxy_writes = match std::env::var("OUTPOST_PROXY_WRITES").as_deref() {
            Ok("1" | "true" | "yes") => true,
            Ok("0" | "false" | "no" | "") | Err(_) => false,
            Ok(other) => return Err(format!("OUTPOST_PROXY_WRITES={other}: true or false")),
        };
        if proxy_writes && primary_url.is_none() {
            return Err(
                "OUTPOST_PROXY_WRITES needs OUTPOST_PRIMARY_URL: where to send writes".into(),
            );
        }
        Ok(FollowConfig {
            url: url.to_string(),
            interval: duration_env("OUTPOST_FOLLOW_INTERVAL", Duration::from_secs(1))?,
            primary_url,
            proxy_writes,
        })
    }
}
