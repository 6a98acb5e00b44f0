//! Getting local LTX files to the destination: a queue that survives the destination being
//! down (files wait on local disk; the lag grows and is reported), uploads in TXID order with
//! Litestream's metadata, and prunes the destination as Litestream's retention does.

use super::config::ReplicaConfig;
use super::error::Result;
use super::local::{self, Local, LocalFile};
use super::replica::{Entry, Layout, Replica};
use super::status::{self, Status};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the uploader and the compactor share.
#[derive(Debug, Default)]
pub struct Progress {
    /// Files written locally and not yet uploaded: size and creation time (ms).
    pub pending: BTreeMap<LocalFile, (u64, i64)>,
    /// Highest TXID compacted into each level (from the position).
    pub levels: [u64; 10],
    /// Highest TXID uploaded per level.
    pub uploaded: [u64; 10],
    /// Set at shutdown: upload what is left, then stop.
    pub closing: bool,
}

/// Shared handle on [`Progress`].
pub type SharedProgress = Arc<Mutex<Progress>>;

/// How writers of LTX files hand them to the uploader: queued in the shared progress before
/// anyone may tidy, then the uploader is woken.
#[derive(Clone, Default)]
pub struct Handoff {
    pub progress: SharedProgress,
    wake: Arc<tokio::sync::Notify>,
}

impl Handoff {
    /// Queue `file` (`bytes` long) for upload.
    pub fn queue(&self, file: LocalFile, bytes: u64) {
        with(&self.progress, |p| {
            p.pending.insert(file, (bytes, status::now_ms()));
        });
        self.wake.notify_one();
    }
}

fn lock(p: &SharedProgress) -> std::sync::MutexGuard<'_, Progress> {
    match p.lock() {
        Ok(g) => g,
        Err(e) => e.into_inner(),
    }
}

/// Run `f` on the shared progress.
pub fn with<T>(p: &SharedProgress, f: impl FnOnce(&mut Progress) -> T) -> T {
    f(&mut lock(p))
}

/// Remove local files nobody needs any more: uploaded, and compacted into the next level (or
/// at the top levels, which feed nothing).
pub fn tidy(local: &Local, progress: &SharedProgress) {
    let files = local.files();
    let doomed: Vec<LocalFile> = with(progress, |p| {
        files
            .into_iter()
            .filter(|f| !p.pending.contains_key(f))
            .filter(|f| f.level >= 3 || f.max_txid <= p.levels[usize::from(f.level) + 1])
            .collect()
    });
    for f in doomed {
        local.remove(&f);
    }
}

fn refresh_status(progress: &SharedProgress, status: &Status) {
    let (files, bytes, oldest) = with(progress, |p| {
        (
            p.pending.len() as u64,
            p.pending.values().map(|(b, _)| b).sum::<u64>(),
            p.pending.values().map(|(_, t)| *t).min(),
        )
    });
    status.update(|s| {
        s.pending_files = files;
        s.pending_bytes = bytes;
        s.lag_seconds = oldest.map_or(0.0, |t| (status::now_ms() - t).max(0) as f64 / 1000.0);
    });
}

/// Bytes read from disk per write; S3 multipart parts are [`PART`] bytes.
const READ: usize = 1024 * 1024;
const PART: usize = 8 * 1024 * 1024;

/// Upload one local file under Litestream's key, with its timestamp as metadata (S3) or
/// modification time (file replicas). The file is streamed: a large snapshot never sits in
/// memory whole.
async fn upload(replica: &Replica, local: &Local, f: &LocalFile) -> Result<u64> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(local.path(f)).await?;
    let mut head = vec![0u8; 100];
    file.read_exact(&mut head).await?;
    let header = super::ltx::read_header(&head)?;
    let key = replica.key(f.level, &f.name());
    let mut w = replica
        .op
        .writer_with(&key)
        .chunk(PART)
        .content_type("application/octet-stream");
    if replica.layout == Layout::Hex4 {
        w = w.user_metadata([(
            "litestream-timestamp".to_string(),
            status::rfc3339_ms(header.timestamp),
        )]);
    }
    let mut w = w.await?;
    let mut len = head.len() as u64;
    let sent = async {
        w.write(head).await?;
        loop {
            let mut buf = Vec::with_capacity(READ);
            let n = (&mut file).take(READ as u64).read_to_end(&mut buf).await?;
            if n == 0 {
                break;
            }
            len += n as u64;
            w.write(buf).await?;
        }
        w.close().await?;
        Ok::<(), super::error::ReplicationError>(())
    }
    .await;
    if let Err(e) = sent {
        // Leave no half-finished multipart upload behind.
        let _ = w.abort().await;
        return Err(e);
    }
    if let Some(root) = &replica.fs_root {
        local::set_mtime(&root.join(&key), header.timestamp);
    }
    Ok(len)
}

/// The uploader: takes files as the shipper and compactor write them, uploads them in order,
/// retries with backoff while the destination is down, and stops once closing and drained.
pub async fn run(replica: Arc<Replica>, local: Local, handoff: Handoff, status: Status) {
    let progress = handoff.progress.clone();
    let mut backoff = Duration::from_millis(500);
    loop {
        refresh_status(&progress, &status);
        let next = with(&progress, |p| p.pending.keys().next().cloned());
        let Some(f) = next else {
            if with(&progress, |p| p.closing) {
                return;
            }
            // Wake for a new file, or now and then to notice shutdown.
            let _ = tokio::time::timeout(Duration::from_millis(200), handoff.wake.notified()).await;
            continue;
        };
        match upload(&replica, &local, &f).await {
            Ok(len) => {
                backoff = Duration::from_millis(500);
                with(&progress, |p| {
                    p.pending.remove(&f);
                    let l = usize::from(f.level);
                    p.uploaded[l] = p.uploaded[l].max(f.max_txid);
                });
                status.update(|s| {
                    s.bytes_shipped += len;
                    s.files_shipped += 1;
                    s.last_upload_at = Some(status::now_rfc3339());
                    if f.level == 0 || f.level == 9 {
                        s.uploaded_txid = s.uploaded_txid.max(f.max_txid);
                    }
                    s.last_error = None;
                });
                tidy(&local, &progress);
            }
            Err(e) => {
                if local.path(&f).exists() {
                    tracing::warn!(file = %f.name(), level = f.level, error = %e, retry_in = ?backoff, "upload failed; the file waits on local disk");
                    status.update(|s| s.last_error = Some(format!("upload {}: {e}", f.name())));
                    refresh_status(&progress, &status);
                    if with(&progress, |p| p.closing) {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                } else {
                    // Gone from disk (removed by hand): nothing left to upload.
                    with(&progress, |p| p.pending.remove(&f));
                }
            }
        }
    }
}

async fn age_ms(replica: &Replica, e: &Entry, now: i64) -> Option<i64> {
    let meta = replica.op.stat(&e.key).await.ok()?;
    meta.last_modified().map(|t| now - t.timestamp_millis())
}

/// Delete what Litestream's retention deletes: level-0 files covered by an uploaded level-1
/// file and older than `l0_retention` (the newest is kept); snapshots older than `retention`
/// (the newest is kept), and level 1–3 files wholly before the newest snapshot deleted (one
/// per level is kept).
pub async fn retain(
    replica: &Replica,
    progress: &SharedProgress,
    config: &ReplicaConfig,
) -> Result<usize> {
    let now = status::now_ms();
    let covered = with(progress, |p| p.uploaded[1]);
    let mut deleted = 0;
    let mut l0 = replica.list_levels([0]).await?;
    l0.sort_by_key(|e| e.max_txid);
    let newest_l0 = l0.last().map(|e| e.max_txid);
    for e in &l0 {
        if Some(e.max_txid) == newest_l0 || e.max_txid > covered {
            continue;
        }
        if age_ms(replica, e, now)
            .await
            .is_some_and(|a| a > config.l0_retention.as_millis() as i64)
        {
            replica.op.delete(&e.key).await?;
            deleted += 1;
        }
    }
    let mut snaps = replica.list_levels([9]).await?;
    snaps.sort_by_key(|e| e.max_txid);
    let mut pruned_below = 0;
    for e in snaps.iter().rev().skip(1) {
        if age_ms(replica, e, now)
            .await
            .is_some_and(|a| a > config.retention.as_millis() as i64)
        {
            replica.op.delete(&e.key).await?;
            deleted += 1;
            pruned_below = pruned_below.max(e.max_txid);
        }
    }
    if pruned_below > 0 {
        for level in 1..=3u8 {
            let mut files = replica.list_levels([level]).await?;
            files.sort_by_key(|e| e.max_txid);
            files.pop();
            for e in files.iter().filter(|e| e.max_txid < pruned_below) {
                replica.op.delete(&e.key).await?;
                deleted += 1;
            }
        }
    }
    Ok(deleted)
}
