//! The shipper: turns committed WAL frames into level-0 LTX files on local disk, writes full
//! snapshots, and runs the checkpoints, so no frame is ever checkpointed away unshipped.
//!
//! Invariants (see the reference's §3):
//! - Only the shipper checkpoints (every connection runs with `wal_autocheckpoint = 0`), and
//!   only on the writer thread, between transactions, right after shipping every committed
//!   frame. SQLite restarts the WAL (new salts, checkpoint sequence + 1) only after a checkpoint
//!   copied every frame, so a new generation right after one of our checkpoints continues the
//!   stream exactly; any other change of generation breaks continuity and forces a snapshot.
//! - A snapshot is cut at a known WAL position: the position is read, and a read transaction
//!   begun, on the writer thread while no write can happen; the pages are then streamed from
//!   that read transaction (through `sqlite_dbpage`) while writes go on.

use super::error::{ReplicationError, Result};
use super::local::{CleanClose, Local, LocalFile, Position};
use super::ltx::{self, Header};
use super::status::{self, Status};
use super::upload::Handoff;
use super::wal;
use rusqlite::{Connection, OpenFlags};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A snapshot whose read transaction is open, waiting to be written.
#[derive(Debug, Clone, Copy)]
struct Cut {
    /// 0: a full level-0 file at the next TXID; 9: a level-9 snapshot `1-txid`.
    level: u8,
    txid: u64,
    commit: u32,
    page_size: u32,
    timestamp: i64,
}

/// What a sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synced {
    Nothing,
    Shipped(u64),
    /// Continuity could not be proven: a snapshot must be cut (on the writer thread).
    NeedSnapshot,
}

/// The shipper's state: owned by the replicator, borrowed by the writer thread at checkpoints.
pub struct Shipper {
    local: Local,
    pub pos: Position,
    need_snapshot: bool,
    db_path: PathBuf,
    wal_path: PathBuf,
    /// Reads pages for snapshots; never writes.
    reader: Connection,
    cut: Option<Cut>,
    handoff: Handoff,
    status: Status,
}

fn db_file_state(path: &Path) -> Option<CleanClose> {
    let m = std::fs::metadata(path).ok()?;
    let mtime = m
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(CleanClose {
        db_len: m.len(),
        db_mtime_ns: mtime.as_nanos(),
    })
}

impl Shipper {
    /// Resume from local state for `url`, or prepare a snapshot when continuity with what was
    /// shipped before cannot be proven. `remote_max` is the newest TXID the replica holds.
    pub fn open(
        local: Local,
        db_path: &Path,
        url: &str,
        remote_max: u64,
        handoff: Handoff,
        status: Status,
    ) -> Result<Shipper> {
        let reader = Connection::open_with_flags(
            db_path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        reader.busy_timeout(crate::db::connection::BUSY_TIMEOUT)?;
        let local_max = local.files().iter().map(|f| f.max_txid).max().unwrap_or(0);
        let saved = local.position().filter(|p| p.url == url);
        let (pos, need_snapshot) = match saved {
            None => (
                Position {
                    url: url.to_string(),
                    txid: remote_max.max(local_max),
                    ..Position::default()
                },
                true,
            ),
            Some(mut p) => {
                let top = remote_max.max(local_max);
                if top > p.txid {
                    tracing::warn!(
                        saved = p.txid,
                        found = top,
                        "the replica is ahead of the saved position; writing a snapshot"
                    );
                    p.txid = top;
                    (p, true)
                } else if let Some(clean) = p.clean_close.take() {
                    if db_file_state(db_path) == Some(clean) {
                        // The WAL was shipped whole and truncated; the one there now began after.
                        p.offset = 0;
                        p.backfilled = false;
                        (p, false)
                    } else {
                        tracing::warn!(
                            "the database file changed while Outpost was stopped; writing a snapshot"
                        );
                        (p, true)
                    }
                } else {
                    (p, false)
                }
            }
        };
        status.update(|s| {
            s.txid = pos.txid;
            s.last_snapshot_txid = pos.levels[9];
        });
        Ok(Shipper {
            local,
            pos,
            need_snapshot,
            wal_path: wal_path(db_path),
            db_path: db_path.to_path_buf(),
            reader,
            cut: None,
            handoff,
            status,
        })
    }

    /// Whether the next step must be a snapshot.
    pub fn needs_snapshot(&self) -> bool {
        self.need_snapshot
    }

    /// The local folder.
    pub fn local(&self) -> &Local {
        &self.local
    }

    /// Ship the committed frames written since the last sync as one level-0 file.
    pub fn sync(&mut self) -> Result<Synced> {
        if self.need_snapshot || self.cut.is_some_and(|c| c.level == 0) {
            return Ok(Synced::NeedSnapshot);
        }
        let Some((head, mut file)) = open_wal(&self.wal_path)? else {
            return Ok(Synced::Nothing);
        };
        let h = match wal::header(&head) {
            Ok(h) => h,
            // A header being rewritten at this moment; the next sync reads it whole.
            Err(_) => return Ok(Synced::Nothing),
        };
        let same_generation =
            self.pos.offset != 0 && h.salt1 == self.pos.salt1 && h.salt2 == self.pos.salt2;
        let (from, seed) = if same_generation {
            (self.pos.offset, Some(self.pos.seed))
        } else if self.pos.offset == 0
            || (self.pos.backfilled && h.checkpoint_seq == self.pos.checkpoint_seq.wrapping_add(1))
        {
            (wal::HEADER_LEN as u64, None)
        } else {
            tracing::warn!("the WAL restarted without a checkpoint of ours; writing a snapshot");
            self.need_snapshot = true;
            return Ok(Synced::NeedSnapshot);
        };
        let len = file.metadata()?.len();
        if len < from {
            tracing::warn!("the WAL is shorter than the shipped position; writing a snapshot");
            self.need_snapshot = true;
            return Ok(Synced::NeedSnapshot);
        }
        let mut tail = Vec::with_capacity((len - from) as usize);
        file.seek(SeekFrom::Start(from))?;
        file.read_to_end(&mut tail)?;
        let (read, sum) = wal::read_tail(&head, &tail, from, seed)?;
        if read.transactions == 0 {
            return Ok(Synced::Nothing);
        }
        let txid = self.pos.txid + 1;
        let header = Header {
            page_size: h.page_size,
            commit: read.commit,
            min_txid: txid,
            max_txid: txid,
            timestamp: status::now_ms(),
            wal_offset: from as i64,
            wal_size: (read.end - from) as i64,
            wal_salt1: h.salt1,
            wal_salt2: h.salt2,
            ..Header::default()
        };
        let lock = ltx::lock_page(h.page_size);
        let (file, bytes) = self.local.write(0, &header, |w| {
            for (pgno, page) in &read.pages {
                if *pgno != lock {
                    w.page(*pgno, page)?;
                }
            }
            Ok(())
        })?;
        self.pos.txid = txid;
        self.pos.page_size = h.page_size;
        self.pos.commit = read.commit;
        self.pos.salt1 = h.salt1;
        self.pos.salt2 = h.salt2;
        self.pos.checkpoint_seq = h.checkpoint_seq;
        self.pos.offset = read.end;
        self.pos.seed = sum;
        self.pos.backfilled = false;
        self.local.save_position(&self.pos)?;
        self.handed(file, bytes);
        Ok(Synced::Shipped(txid))
    }

    fn handed(&self, file: LocalFile, bytes: u64) {
        let txid = file.max_txid;
        let level = file.level;
        self.handoff.queue(file, bytes);
        self.status.update(|s| {
            if level == 0 || level == 9 {
                s.txid = s.txid.max(txid);
            }
        });
    }

    /// On the writer thread, between transactions: fix the point a snapshot is cut at and
    /// open the read transaction it is read from. Level 9 ships pending frames first and cuts
    /// at the current TXID; level 0 (continuity lost) cuts at the WAL's end as a new TXID.
    pub fn begin_snapshot(&mut self, level: u8) -> Result<()> {
        self.abandon_cut();
        if level == 9 {
            if self.sync()? == Synced::NeedSnapshot {
                return Err(ReplicationError::Other(
                    "a level-0 snapshot must come first".into(),
                ));
            }
        } else {
            self.read_wal_end()?;
        }
        self.reader.execute_batch("BEGIN")?;
        let page = (|| -> rusqlite::Result<(u32, u32)> {
            let count: u32 = self
                .reader
                .query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let size: u32 = self
                .reader
                .query_row("PRAGMA page_size", [], |r| r.get(0))?;
            Ok((count, size))
        })();
        let (commit, page_size) = match page {
            Ok(v) => v,
            Err(e) => {
                let _ = self.reader.execute_batch("ROLLBACK");
                return Err(e.into());
            }
        };
        let txid = if level == 9 {
            self.pos.txid
        } else {
            self.pos.txid + 1
        };
        self.cut = Some(Cut {
            level,
            txid,
            commit,
            page_size,
            timestamp: status::now_ms(),
        });
        Ok(())
    }

    /// Point the position at the WAL's committed end (for a level-0 snapshot, whose pages
    /// stand in for everything before it).
    fn read_wal_end(&mut self) -> Result<()> {
        let Some((head, mut file)) = open_wal(&self.wal_path)? else {
            self.pos.offset = 0;
            return Ok(());
        };
        let Ok(h) = wal::header(&head) else {
            self.pos.offset = 0;
            return Ok(());
        };
        let mut all = Vec::new();
        file.seek(SeekFrom::Start(0))?;
        file.read_to_end(&mut all)?;
        let (read, sum) = wal::read(&all, wal::HEADER_LEN as u64, None)?;
        self.pos.salt1 = h.salt1;
        self.pos.salt2 = h.salt2;
        self.pos.checkpoint_seq = h.checkpoint_seq;
        self.pos.page_size = h.page_size;
        self.pos.offset = read.end;
        self.pos.seed = sum;
        self.pos.backfilled = false;
        Ok(())
    }

    fn abandon_cut(&mut self) {
        if self.cut.take().is_some() {
            let _ = self.reader.execute_batch("ROLLBACK");
        }
    }

    /// Write the snapshot cut by [`Shipper::begin_snapshot`] (off the writer thread: it reads
    /// every page). Returns the file written.
    pub fn write_snapshot(&mut self) -> Result<LocalFile> {
        let cut = self
            .cut
            .ok_or_else(|| ReplicationError::Other("no snapshot was cut".into()))?;
        let header = Header {
            page_size: cut.page_size,
            commit: cut.commit,
            min_txid: if cut.level == 9 { 1 } else { cut.txid },
            max_txid: cut.txid,
            timestamp: cut.timestamp,
            // Litestream resumes from a level-0 file's WAL range; a snapshot covers none, so
            // it names the position it was cut at with an empty range.
            wal_offset: if cut.level == 0 {
                self.pos.offset.max(32) as i64
            } else {
                0
            },
            wal_salt1: if cut.level == 0 { self.pos.salt1 } else { 0 },
            wal_salt2: if cut.level == 0 { self.pos.salt2 } else { 0 },
            ..Header::default()
        };
        let lock = ltx::lock_page(cut.page_size);
        let reader = &self.reader;
        let written = self.local.write(cut.level, &header, |w| {
            let mut stmt = reader
                .prepare("SELECT pgno, data FROM sqlite_dbpage ORDER BY pgno")
                .map_err(|e| ltx::LtxError::Invalid(e.to_string()))?;
            let mut rows = stmt
                .query([])
                .map_err(|e| ltx::LtxError::Invalid(e.to_string()))?;
            while let Some(row) = rows
                .next()
                .map_err(|e| ltx::LtxError::Invalid(e.to_string()))?
            {
                let pgno: u32 = row
                    .get(0)
                    .map_err(|e| ltx::LtxError::Invalid(e.to_string()))?;
                if pgno == lock || pgno > cut.commit {
                    continue;
                }
                let data = row
                    .get_ref(1)
                    .map_err(|e| ltx::LtxError::Invalid(e.to_string()))?
                    .as_blob()
                    .map_err(|e| ltx::LtxError::Invalid(e.to_string()))?;
                w.page(pgno, data)?;
            }
            Ok(())
        });
        self.abandon_cut();
        let (file, bytes) = written?;
        if cut.level == 0 {
            self.pos.txid = cut.txid;
            self.pos.commit = cut.commit;
            self.pos.page_size = cut.page_size;
            self.need_snapshot = false;
        } else {
            self.pos.levels[9] = cut.txid;
            self.pos.last_snapshot_ms = cut.timestamp;
            self.status.update(|s| {
                s.last_snapshot_txid = cut.txid;
                s.last_snapshot_at = Some(status::rfc3339_ms(cut.timestamp));
            });
        }
        self.local.save_position(&self.pos)?;
        self.handed(file.clone(), bytes);
        Ok(file)
    }

    /// On the writer thread, between transactions: ship everything, then checkpoint
    /// (PASSIVE). Returns whether every frame reached the database file.
    pub fn checkpoint(&mut self, conn: &Connection) -> Result<bool> {
        let synced = self.sync()?;
        let (busy, log, done): (i64, i64, i64) =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        let complete = busy == 0 && log == done;
        if synced != Synced::NeedSnapshot && complete && self.pos.offset != 0 {
            self.pos.backfilled = true;
            self.local.save_position(&self.pos)?;
        }
        self.status
            .update(|s| s.last_checkpoint_at = Some(status::now_rfc3339()));
        Ok(complete)
    }

    /// WAL size in frames, read from the file's length.
    pub fn wal_frames(&self) -> u64 {
        let len = std::fs::metadata(&self.wal_path).map_or(0, |m| m.len());
        let page = u64::from(self.pos.page_size.max(512));
        len.saturating_sub(wal::HEADER_LEN as u64) / wal::frame_len(page as u32)
    }

    /// On the writer thread as it closes: ship the rest, fold the WAL into the database and
    /// remember the file as left, so the next start continues without a snapshot.
    pub fn close(&mut self, conn: &Connection) {
        self.abandon_cut();
        match self.sync() {
            Ok(Synced::NeedSnapshot) | Err(_) => return,
            Ok(_) => {}
        }
        let truncated = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .map(|(busy, log)| busy == 0 && log == 0);
        if let (Ok(true), Some(state)) = (truncated, db_file_state(&self.db_path)) {
            self.pos.clean_close = Some(state);
            if let Err(e) = self.local.save_position(&self.pos) {
                tracing::warn!(error = %e, "cannot save the replication position");
            }
        }
    }
}

/// `<db>-wal`.
pub fn wal_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

/// The WAL's header bytes and an open handle, or `None` when there is no WAL (yet).
fn open_wal(path: &Path) -> Result<Option<([u8; 32], std::fs::File)>> {
    // No SQLite lock lives on the -wal file, so opening and closing it here cannot drop one.
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut head = [0u8; 32];
    match file.read_exact(&mut head) {
        Ok(()) => Ok(Some((head, file))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e.into()),
    }
}
