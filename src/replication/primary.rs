//! The replicator of a primary (`serve --replica URL`): one task that ships committed frames
//! soon after each commit (at most one level-0 file per sync interval), checkpoints in step
//! with the writer, compacts, snapshots and prunes on Litestream's schedule; and the uploader
//! beside it.

use super::compact;
use super::config::ReplicaConfig;
use super::error::{ReplicationError, Result};
use super::local::{Local, LocalFile};
use super::replica::Replica;
use super::shipper::{Shipper, Synced};
use super::status::{self, Status};
use super::upload::{self, Handoff, SharedProgress};
use crate::db::{Db, Mode};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How long the realtime change log keeps rows for replicas to read.
const CHANGELOG_KEEP_MS: i64 = 10 * 60 * 1000;

type Slot = Arc<Mutex<Option<Shipper>>>;

/// A running replicator.
pub struct Replicator {
    pub status: Status,
    progress: SharedProgress,
    task: JoinHandle<()>,
    uploader: JoinHandle<()>,
}

fn with_shipper<T>(slot: &Slot, f: impl FnOnce(&mut Shipper) -> Result<T>) -> Result<T> {
    let mut guard = match slot.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    match guard.as_mut() {
        Some(s) => f(s),
        None => Err(ReplicationError::Other(
            "the replicator is not running".into(),
        )),
    }
}

async fn blocking<T: Send + 'static>(
    slot: &Slot,
    f: impl FnOnce(&mut Shipper) -> Result<T> + Send + 'static,
) -> Result<T> {
    let slot = slot.clone();
    tokio::task::spawn_blocking(move || with_shipper(&slot, f))
        .await
        .map_err(|e| ReplicationError::Other(format!("replicator task: {e}")))?
}

impl Replicator {
    /// Start replicating `db` to `config.url`. Fails only on a URL that cannot work; an
    /// unreachable destination is waited for while writes go on.
    pub async fn start(config: ReplicaConfig, db: &Db, data_dir: &Path) -> Result<Replicator> {
        let replica = Arc::new(Replica::open(&config.url)?);
        let local = Local::open(data_dir)?;
        let status = Status::new("primary", &config.url);
        let handoff = Handoff::default();
        let progress = handoff.progress.clone();
        db.log_changes
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let slot: Slot = Arc::new(Mutex::new(None));
        let hook_slot = slot.clone();
        db.writer
            .on_close(Box::new(move |conn| {
                let mut g = match hook_slot.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                if let Some(s) = g.as_mut() {
                    s.close(conn);
                }
            }))
            .await?;
        let uploader = tokio::spawn(upload::run(
            replica.clone(),
            local.clone(),
            handoff.clone(),
            status.clone(),
        ));
        let task = tokio::spawn(run(
            config,
            db.clone(),
            replica,
            local,
            slot,
            handoff,
            status.clone(),
        ));
        Ok(Replicator {
            status,
            progress,
            task,
            uploader,
        })
    }

    /// Stop shipping (the writer's close hook ships the rest); call before closing the
    /// database.
    pub fn stop(&self) {
        self.task.abort();
    }

    /// After the database closed: give the uploader up to `wait` to drain the queue. What is
    /// left uploads on the next start.
    pub async fn finish(self, wait: Duration) {
        upload::with(&self.progress, |p| p.closing = true);
        if tokio::time::timeout(wait, self.uploader).await.is_err() {
            let left = upload::with(&self.progress, |p| p.pending.len());
            tracing::warn!(
                files = left,
                "replica uploads unfinished at shutdown; they resume on the next start"
            );
        }
    }
}

/// The destination's files, retried until it answers. With a saved position for this URL one
/// failed attempt is enough: local state alone keeps TXIDs unique.
async fn first_listing(
    replica: &Replica,
    local: &Local,
    url: &str,
    status: &Status,
) -> Option<Vec<super::replica::Entry>> {
    let known = local.position().is_some_and(|p| p.url == url);
    let mut wait = Duration::from_millis(500);
    loop {
        match replica.list().await {
            Ok(entries) => return Some(entries),
            Err(e) => {
                tracing::warn!(error = %e, "replica destination unreachable");
                status.update(|s| s.last_error = Some(format!("destination unreachable: {e}")));
                if known {
                    return None;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn cut(db: &Db, slot: &Slot, level: u8) -> Result<LocalFile> {
    let s = slot.clone();
    db.writer
        .barrier(move |_| with_shipper(&s, |sh| sh.begin_snapshot(level)))
        .await??;
    let started = Instant::now();
    let file = blocking(slot, |sh| sh.write_snapshot()).await?;
    tracing::info!(
        level,
        txid = file.max_txid,
        took_ms = started.elapsed().as_millis() as u64,
        "snapshot written"
    );
    Ok(file)
}

async fn sync(db: &Db, slot: &Slot) -> Result<bool> {
    match blocking(slot, |sh| sh.sync()).await? {
        Synced::Shipped(_) => Ok(true),
        Synced::Nothing => Ok(false),
        Synced::NeedSnapshot => {
            cut(db, slot, 0).await?;
            Ok(true)
        }
    }
}

fn next_aligned(period: Duration) -> Instant {
    let p = period.as_millis().max(1) as i64;
    let now = status::now_ms();
    let wait = p - now.rem_euclid(p);
    Instant::now() + Duration::from_millis(wait as u64)
}

async fn compact_level(slot: &Slot, local: &Local, handoff: &Handoff, level: u8) -> Result<()> {
    let progress = &handoff.progress;
    let reach = upload::with(progress, |p| p.levels[usize::from(level)]);
    let sources = compact::sources(&local.files(), level, reach);
    if sources.is_empty() {
        return Ok(());
    }
    let l = local.clone();
    let (file, bytes) = tokio::task::spawn_blocking(move || compact::merge(&l, level, &sources))
        .await
        .map_err(|e| ReplicationError::Other(format!("compaction task: {e}")))??;
    let max = file.max_txid;
    blocking(slot, move |sh| {
        sh.pos.levels[usize::from(level)] = max;
        sh.local().save_position(&sh.pos)?;
        Ok(())
    })
    .await?;
    upload::with(progress, |p| p.levels[usize::from(level)] = max);
    handoff.queue(file, bytes);
    upload::tidy(local, progress);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run(
    config: ReplicaConfig,
    db: Db,
    replica: Arc<Replica>,
    local: Local,
    slot: Slot,
    handoff: Handoff,
    status: Status,
) {
    let progress = handoff.progress.clone();
    let listing = first_listing(&replica, &local, &config.url, &status).await;
    let remote_max = listing
        .as_ref()
        .and_then(|l| l.iter().map(|e| e.max_txid).max())
        .unwrap_or(0);
    let shipper = match Shipper::open(
        local.clone(),
        &db.path,
        &config.url,
        remote_max,
        handoff.clone(),
        status.clone(),
    ) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "replication cannot start");
            status.update(|s| s.last_error = Some(e.to_string()));
            return;
        }
    };
    let levels = shipper.pos.levels;
    let mut last_snapshot_ms = shipper.pos.last_snapshot_ms;
    match slot.lock() {
        Ok(mut g) => *g = Some(shipper),
        Err(p) => *p.into_inner() = Some(shipper),
    }
    // Files a previous run left behind go up first (those the destination already has are
    // skipped; with no listing, all of them: uploading one twice is harmless).
    let remote: std::collections::HashSet<(u8, u64, u64)> = listing
        .iter()
        .flatten()
        .map(|e| (e.level, e.min_txid, e.max_txid))
        .collect();
    upload::with(&progress, |p| {
        p.levels = levels;
        for e in listing.iter().flatten() {
            let l = usize::from(e.level);
            p.uploaded[l] = p.uploaded[l].max(e.max_txid);
        }
    });
    for f in local.files() {
        if !remote.contains(&(f.level, f.min_txid, f.max_txid)) {
            let bytes = std::fs::metadata(local.path(&f)).map_or(0, |m| m.len());
            handoff.queue(f, bytes);
        }
    }
    upload::tidy(&local, &progress);

    if let Err(e) = sync(&db, &slot).await {
        tracing::error!(error = %e, "first replication sync failed");
        status.update(|s| s.last_error = Some(e.to_string()));
    }
    // A snapshot at start, so a restore never needs more than a day of changes.
    match cut(&db, &slot, 9).await {
        Ok(_) => last_snapshot_ms = status::now_ms(),
        Err(e) => {
            tracing::error!(error = %e, "snapshot failed");
            status.update(|s| s.last_error = Some(e.to_string()));
        }
    }
    tracing::info!(url = %config.url, "replicating");

    let commits = db.commits.clone();
    let mut last_shipped = Instant::now() - config.sync_interval;
    let mut last_checkpoint = Instant::now();
    let mut next_compaction = config.compaction.map(next_aligned);
    let mut next_maintenance = Instant::now() + Duration::from_secs(60);
    let mut dirty = false;
    loop {
        let wake = if dirty {
            last_shipped + config.sync_interval
        } else {
            Instant::now() + config.sync_interval
        };
        let wake = next_compaction.iter().copied().fold(wake, Instant::min);
        tokio::select! {
            _ = commits.notified(), if !dirty => {
                dirty = true;
                continue;
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        let now = Instant::now();
        if !dirty || now >= last_shipped + config.sync_interval {
            // Idle passes sync too (a change made by another process still ships), but only a
            // sync that shipped something holds the next one back.
            match sync(&db, &slot).await {
                Ok(true) => last_shipped = now,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "replication sync failed");
                    status.update(|s| s.last_error = Some(e.to_string()));
                }
            }
            dirty = false;
            let frames = with_shipper(&slot, |sh| Ok(sh.wal_frames())).unwrap_or(0);
            if frames >= config.checkpoint_pages
                || (frames > 0 && last_checkpoint.elapsed() >= config.checkpoint_interval)
            {
                let s = slot.clone();
                match db
                    .writer
                    .barrier(move |conn| with_shipper(&s, |sh| sh.checkpoint(conn)))
                    .await
                {
                    Ok(Ok(_)) => last_checkpoint = Instant::now(),
                    Ok(Err(e)) => tracing::warn!(error = %e, "checkpoint failed"),
                    Err(e) => tracing::warn!(error = %e, "checkpoint failed"),
                }
                // A checkpoint that found continuity lost leaves a snapshot to cut.
                if with_shipper(&slot, |sh| Ok(sh.needs_snapshot())).unwrap_or(false) {
                    if let Err(e) = cut(&db, &slot, 0).await {
                        tracing::warn!(error = %e, "snapshot failed");
                    }
                }
            }
        }
        for (i, due) in next_compaction.iter_mut().enumerate() {
            if Instant::now() < *due {
                continue;
            }
            *due = next_aligned(config.compaction[i]);
            let level = i as u8 + 1;
            if let Err(e) = compact_level(&slot, &local, &handoff, level).await {
                tracing::warn!(level, error = %e, "compaction failed");
                status.update(|s| s.last_error = Some(format!("compaction: {e}")));
            }
            if level == 1 {
                match upload::retain(&replica, &progress, &config).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(files = n, "pruned the replica"),
                    Err(e) => tracing::debug!(error = %e, "cannot prune the replica now"),
                }
            }
        }
        if status::now_ms() - last_snapshot_ms >= config.snapshot_interval.as_millis() as i64 {
            match cut(&db, &slot, 9).await {
                Ok(_) => last_snapshot_ms = status::now_ms(),
                Err(e) => tracing::warn!(error = %e, "snapshot failed"),
            }
        }
        if Instant::now() >= next_maintenance {
            next_maintenance = Instant::now() + Duration::from_secs(60);
            let pruned = db
                .writer
                .write(Mode::Commit, None, |c| {
                    super::changelog::prune(c, CHANGELOG_KEEP_MS).map_err(crate::db::DbError::from)
                })
                .await;
            if let Err(e) = pruned {
                tracing::warn!(error = %e, "cannot prune the realtime change log");
            }
            let st = status.get();
            tracing::info!(
                txid = st.txid,
                uploaded_txid = st.uploaded_txid,
                pending_files = st.pending_files,
                lag_seconds = st.lag_seconds,
                bytes_shipped = st.bytes_shipped,
                last_snapshot_txid = st.last_snapshot_txid,
                "replication status"
            );
        }
    }
}
