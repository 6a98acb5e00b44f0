//! Read replicas (`serve --follow URL`): restore the replica once, then poll it and apply each
//! new LTX file through SQLite's pager (`sqlite_dbpage`), one transaction per poll, so local
//! readers only ever see whole primary states. Row changes the primary logged for realtime are
//! published to this server's own subscribers after each apply.

use super::changelog;
use super::config::FollowConfig;
use super::error::{ReplicationError, Result};
use super::local;
use super::replica::{Entry, Replica};
use super::restore::{self, Merged, Target};
use super::status::{self, Status};
use crate::db::Db;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinHandle;

/// What a replica remembers between runs: which replica it follows and how far it got.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FollowState {
    url: String,
    txid: u64,
}

fn state_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("replication")
}

fn load_state(data_dir: &Path) -> Option<FollowState> {
    let bytes = std::fs::read(state_dir(data_dir).join("follow.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn save_state(data_dir: &Path, state: &FollowState) -> std::io::Result<()> {
    let dir = state_dir(data_dir);
    std::fs::create_dir_all(&dir)?;
    let bytes = serde_json::to_vec(state).map_err(std::io::Error::other)?;
    local::write_atomic(&dir, "follow.json", &bytes)
}

/// The error message writes get on this replica.
pub fn refusal(config: &FollowConfig) -> String {
    match &config.primary_url {
        Some(p) => format!(
            "this Outpost is a read replica of {}; send writes to the primary at {p}",
            config.url
        ),
        None => format!(
            "this Outpost is a read replica of {}; send writes to the primary",
            config.url
        ),
    }
}

/// Before the database opens: restore it from the replica when there is none, or check that
/// the one there follows this replica. Returns the TXID it holds.
pub async fn prepare(config: &FollowConfig, data_dir: &Path, db_path: &Path) -> Result<u64> {
    if db_path.exists() {
        return match load_state(data_dir) {
            Some(s) if s.url == config.url => Ok(s.txid),
            _ => Err(ReplicationError::Other(format!(
                "{} holds a database that does not follow {}; start a read replica with an empty data directory",
                db_path.display(),
                config.url
            ))),
        };
    }
    let replica = Replica::open(&config.url)?;
    std::fs::create_dir_all(data_dir)?;
    let txid = restore::restore(&replica, Target::Latest, db_path)
        .await
        .map_err(|e| ReplicationError::Other(format!("restoring from {}: {e}", config.url)))?;
    save_state(
        data_dir,
        &FollowState {
            url: config.url.clone(),
            txid,
        },
    )?;
    tracing::info!(url = %config.url, txid, "restored the replica");
    Ok(txid)
}

/// A running follower.
pub struct Follower {
    pub status: Status,
    task: JoinHandle<()>,
}

impl Follower {
    /// Start polling `config.url`, applying to `db`, from `txid`.
    pub fn start(config: FollowConfig, db: Db, data_dir: &Path, txid: u64) -> Result<Follower> {
        let replica = Arc::new(Replica::open(&config.url)?);
        let status = Status::new("replica", &config.url);
        status.update(|s| {
            s.txid = txid;
            s.primary_url = config.primary_url.clone();
        });
        let task = tokio::spawn(run(
            config,
            db,
            replica,
            data_dir.to_path_buf(),
            txid,
            status.clone(),
        ));
        Ok(Follower { status, task })
    }

    /// Stop polling.
    pub fn stop(&self) {
        self.task.abort();
    }
}

/// The files that take the state from `current` forward: level 0 first (one listing, the
/// usual case), the deeper levels when level 0 has a gap, and the whole replica again from a
/// snapshot when `current` was pruned away. `None`: nothing new.
async fn next_files(replica: &Replica, current: u64) -> Result<Option<(Vec<Entry>, u64)>> {
    let l0 = replica.list_levels([0]).await?;
    let newest = l0.iter().map(|e| e.max_txid).max().unwrap_or(0);
    if newest <= current {
        return Ok(None);
    }
    let files = restore::chain(&l0, current);
    if files.last().is_some_and(|f| f.max_txid == newest) {
        return Ok(Some((files, newest)));
    }
    let all = replica.list().await?;
    let newest = all.iter().map(|e| e.max_txid).max().unwrap_or(0);
    let files = restore::chain(&all, current);
    if !files.is_empty() {
        return Ok(Some((files, newest)));
    }
    // Too far behind: everything since `current` was compacted away. Start over from the
    // newest snapshot; applying a full state over ours is as good as a fresh restore.
    let plan = restore::plan(replica, Target::Latest).await?;
    Ok(Some((plan, newest)))
}

/// Write `m`'s pages and size into the database at `path` in one transaction. Called on the
/// writer thread (so nothing else writes), through a connection of its own: a connection that
/// rewrites the schema pages under itself keeps its old parsed schema, while every other
/// connection notices the new schema cookie and reloads.
fn apply(path: &Path, m: &Merged) -> Result<()> {
    use rusqlite::config::DbConfig;
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(crate::db::connection::BUSY_TIMEOUT)?;
    let conn = &conn;
    let page_size: u32 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    if page_size != m.page_size {
        return Err(ReplicationError::Other(format!(
            "the replica's pages are {} bytes, this database's {page_size}",
            m.page_size
        )));
    }
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, false)?;
    let at =
        |what: String| move |e: rusqlite::Error| ReplicationError::Other(format!("{what}: {e}"));
    let result = (|| {
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(at("begin".into()))?;
        let count: u32 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .map_err(at("page count".into()))?;
        // Shrink first and write page 1 (the header: size, freelist, schema cookie) last, so
        // no step sees a header that disagrees with the pages around it.
        if count > m.commit {
            // Writing NULL at page N cuts the database to N - 1 pages.
            conn.execute(
                "INSERT INTO sqlite_dbpage (pgno, data) VALUES (?1, NULL)",
                [m.commit + 1],
            )
            .map_err(at(format!("truncating from {count} to {} pages", m.commit)))?;
        }
        let mut put = conn
            .prepare("INSERT INTO sqlite_dbpage (pgno, data) VALUES (?1, ?2)")
            .map_err(at("prepare".into()))?;
        let first = m.pages.get(&1).map(|p| (&1u32, p));
        for (pgno, page) in m.pages.range(2..=m.commit).chain(first) {
            put.execute(rusqlite::params![pgno, page])
                .map_err(at(format!(
                    "writing page {pgno} of {} (database had {count} pages, {} pages in the files)",
                    m.commit,
                    m.pages.len()
                )))?;
        }
        drop(put);
        conn.execute_batch("COMMIT").map_err(at("commit".into()))
    })();
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

async fn run(
    config: FollowConfig,
    db: Db,
    replica: Arc<Replica>,
    data_dir: PathBuf,
    mut current: u64,
    status: Status,
) {
    // Publish only what arrives from now on.
    let mut logged = db
        .writer
        .barrier(|c| changelog::newest(c).unwrap_or(0))
        .await
        .unwrap_or(0);
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut applied_at = status::now_ms();
    loop {
        tick.tick().await;
        let started = Instant::now();
        let polled_ms = status::now_ms();
        let found = match next_files(&replica, current).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "cannot poll the replica");
                status.update(|s| {
                    s.last_error = Some(e.to_string());
                    s.lag_seconds = (status::now_ms() - applied_at).max(0) as f64 / 1000.0;
                });
                continue;
            }
        };
        let Some((files, newest)) = found else {
            applied_at = polled_ms;
            status.update(|s| {
                s.last_poll_at = Some(status::rfc3339_ms(polled_ms));
                s.remote_txid = s.remote_txid.max(current);
                s.lag_seconds = 0.0;
                s.last_error = None;
            });
            continue;
        };
        let merged = match restore::merge(&replica, &files).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the replica's files");
                status.update(|s| s.last_error = Some(e.to_string()));
                continue;
            }
        };
        let reached = files.last().map_or(current, |f| f.max_txid);
        let file_ts = merged.timestamp;
        let path = db.path.clone();
        let outcome = db
            .writer
            .barrier(move |conn| -> Result<(Vec<_>, i64)> {
                apply(&path, &merged)?;
                // A database without Outpost's change log (not written by Outpost) applies all
                // the same; it just has no events to publish.
                Ok(changelog::since(conn, logged).unwrap_or((Vec::new(), logged)))
            })
            .await;
        match outcome {
            Ok(Ok((events, last))) => {
                current = reached;
                logged = last;
                if let Err(e) = save_state(
                    &data_dir,
                    &FollowState {
                        url: config.url.clone(),
                        txid: current,
                    },
                ) {
                    tracing::warn!(error = %e, "cannot save the replica's position");
                }
                for e in events {
                    // The realtime service may be gone (shutting down).
                    let _ = db.publish.send(e);
                }
                applied_at = if reached >= newest {
                    polled_ms
                } else {
                    file_ts
                };
                status.update(|s| {
                    s.txid = current;
                    s.remote_txid = newest;
                    s.last_poll_at = Some(status::rfc3339_ms(polled_ms));
                    s.lag_seconds = (status::now_ms() - applied_at).max(0) as f64 / 1000.0;
                    s.last_error = None;
                });
                tracing::debug!(
                    txid = current,
                    files = files.len(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "applied"
                );
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot apply the replica's pages");
                status.update(|s| s.last_error = Some(format!("apply: {e}")));
            }
            Err(e) => {
                tracing::error!(error = %e, "the database writer is gone");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn pages(path: &Path) -> (BTreeMap<u32, Vec<u8>>, u32) {
        let c = Connection::open(path).unwrap();
        let mut m = BTreeMap::new();
        let mut stmt = c.prepare("SELECT pgno, data FROM sqlite_dbpage").unwrap();
        let mut rows = stmt.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            m.insert(r.get(0).unwrap(), r.get(1).unwrap());
        }
        let n = m.len() as u32;
        (m, n)
    }

    fn rows(c: &Connection) -> Vec<(i64, String)> {
        c.prepare("SELECT id, v FROM t ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn applies_growth_and_shrinking_through_the_pager() {
        let dir = std::env::temp_dir().join(format!("outpost-apply-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = dir.join("source.db");
        let target = dir.join("target.db");
        let src = Connection::open(&source).unwrap();
        src.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
             INSERT INTO t (v) SELECT printf('%.500c', 'a') FROM generate_series(1, 10);",
        )
        .unwrap_or_else(|_| {
            src.execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT);",
            )
            .unwrap();
        });
        for i in 0..10 {
            src.execute(
                "INSERT INTO t (v) VALUES (?1)",
                [format!("{i}{}", "a".repeat(500))],
            )
            .unwrap();
        }
        src.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        std::fs::copy(&source, &target).unwrap();
        // The server's own connection stays open beside the applier, as on a replica.
        let dst = crate::db::connection::open_writer(&target).unwrap();
        for (step, sql) in [
            "INSERT INTO t (v) SELECT printf('%.3000c', 'b') FROM t;",
            "CREATE TABLE u (x); INSERT INTO u VALUES (1); UPDATE t SET v = 'short';",
            "DELETE FROM t WHERE id > 3; VACUUM;",
        ]
        .iter()
        .enumerate()
        {
            src.execute_batch(sql).unwrap();
            let (p, commit) = pages(&source);
            let m = Merged {
                pages: p,
                commit,
                page_size: 4096,
                timestamp: 0,
            };
            apply(&target, &m).unwrap_or_else(|e| panic!("step {step}: {e}"));
            assert_eq!(rows(&dst), rows(&src), "step {step}");
            let check: String = dst
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(check, "ok", "step {step}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
