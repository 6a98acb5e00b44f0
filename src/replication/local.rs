//! The replicator's state on local disk, `<data-dir>/replication/`: where it is in the WAL
//! (`position.json`) and the LTX files it wrote (`ltx/<level>/`), kept until they are uploaded
//! and no longer needed for compaction.
//!
//! Invariant: an LTX file is fsynced in place before the position that follows it is saved, so
//! after a crash the position never claims more than the files on disk hold. A file newer than
//! the saved position (a crash between the two writes) means continuity cannot be proven and the
//! next TXID is a full snapshot.

use super::ltx::{self, Header, LtxError};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the shipper stands. Saved after every file it writes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Position {
    /// The replica this position belongs to; another URL starts over.
    pub url: String,
    /// The last TXID written (0: none yet).
    pub txid: u64,
    pub page_size: u32,
    /// Database size in pages at `txid`.
    pub commit: u32,
    /// The WAL generation read last, and the offset just after its last shipped commit frame.
    pub salt1: u32,
    pub salt2: u32,
    pub checkpoint_seq: u32,
    pub offset: u64,
    /// SQLite's cumulative frame checksum at `offset`.
    pub seed: (u32, u32),
    /// A checkpoint of ours copied every frame of this WAL generation into the database, after
    /// every frame was shipped: the next generation (checkpoint sequence + 1) continues it.
    pub backfilled: bool,
    /// Set when the server stopped cleanly: the WAL was shipped whole and truncated, and the
    /// database file was left at this length and modification time.
    pub clean_close: Option<CleanClose>,
    /// Highest TXID compacted into levels 1, 2, 3 (index 1..=3) and snapshotted (index 9).
    pub levels: [u64; 10],
    /// Milliseconds since the epoch of the last snapshot.
    pub last_snapshot_ms: i64,
}

/// The database file as a clean shutdown left it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CleanClose {
    pub db_len: u64,
    pub db_mtime_ns: u128,
}

/// A local LTX file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalFile {
    pub level: u8,
    pub min_txid: u64,
    pub max_txid: u64,
}

impl LocalFile {
    /// `<min>-<max>.ltx`.
    pub fn name(&self) -> String {
        ltx::file_name(self.min_txid, self.max_txid)
    }
}

/// The `replication/` folder of a data directory.
#[derive(Debug, Clone)]
pub struct Local {
    dir: PathBuf,
}

impl Local {
    /// Open (creating) `<data_dir>/replication`.
    pub fn open(data_dir: &Path) -> std::io::Result<Local> {
        let dir = data_dir.join("replication");
        for level in [0u8, 1, 2, 3, 9] {
            let level_dir = dir.join("ltx").join(level.to_string());
            std::fs::create_dir_all(&level_dir)?;
            // Half-written files of a run that crashed.
            for e in std::fs::read_dir(&level_dir)?.flatten() {
                if e.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(Local { dir })
    }

    /// The saved position, if any (an unreadable one counts as none: a snapshot follows).
    pub fn position(&self) -> Option<Position> {
        let bytes = std::fs::read(self.dir.join("position.json")).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(error = %e, "replication position unreadable; a snapshot will follow");
                None
            }
        }
    }

    /// Save `pos` atomically (temp file, fsync, rename, fsync of the folder).
    pub fn save_position(&self, pos: &Position) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(pos).map_err(std::io::Error::other)?;
        write_atomic(&self.dir, "position.json", &bytes)
    }

    /// Path of a local file.
    pub fn path(&self, f: &LocalFile) -> PathBuf {
        self.dir
            .join("ltx")
            .join(f.level.to_string())
            .join(f.name())
    }

    /// Write an LTX file page by page with `fill`, durably; returns its size in bytes.
    pub fn write(
        &self,
        level: u8,
        header: &Header,
        fill: impl FnOnce(&mut ltx::Writer<std::io::BufWriter<std::fs::File>>) -> Result<(), LtxError>,
    ) -> Result<(LocalFile, u64), LtxError> {
        let f = LocalFile {
            level,
            min_txid: header.min_txid,
            max_txid: header.max_txid,
        };
        let path = self.path(&f);
        let tmp = path.with_extension("ltx.tmp");
        let io = |e: std::io::Error| LtxError::Invalid(format!("{}: {e}", tmp.display()));
        let file = std::fs::File::create(&tmp).map_err(io)?;
        let result = (|| {
            let mut w = ltx::Writer::new(std::io::BufWriter::new(file), header).map_err(io)?;
            fill(&mut w)?;
            let buf = w.finish().map_err(io)?;
            let file = buf.into_inner().map_err(|e| io(e.into_error()))?;
            file.sync_all().map_err(io)?;
            Ok::<u64, LtxError>(file.metadata().map_err(io)?.len())
        })();
        let len = match result {
            Ok(len) => len,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        std::fs::rename(&tmp, &path).map_err(io)?;
        if let Some(parent) = path.parent() {
            sync_dir(parent);
        }
        // File replicas carry the header's time as mtime, as Litestream's do.
        set_mtime(&path, header.timestamp);
        Ok((f, len))
    }

    /// Every local LTX file.
    pub fn files(&self) -> Vec<LocalFile> {
        let mut out = Vec::new();
        for level in [0u8, 1, 2, 3, 9] {
            let dir = self.dir.join("ltx").join(level.to_string());
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some((min, max)) = super::replica::parse_name(&name) {
                    out.push(LocalFile {
                        level,
                        min_txid: min,
                        max_txid: max,
                    });
                }
            }
        }
        out.sort();
        out
    }

    /// Forget a local file.
    pub fn remove(&self, f: &LocalFile) {
        if let Err(e) = std::fs::remove_file(self.path(f)) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(file = %f.name(), error = %e, "cannot remove a local LTX file");
            }
        }
    }
}

/// Write `name` in `dir` atomically and durably.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir);
    Ok(())
}

fn sync_dir(dir: &Path) {
    // A rename is durable only once its folder is; failing that is not worth failing the write.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Set a file's modification time to `ms` since the epoch.
pub fn set_mtime(path: &Path, ms: i64) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(path) {
        let _ = f.set_modified(t);
    }
}
