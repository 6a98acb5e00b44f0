//! Restoring from Litestream 0.3's "generations" layout, which Litestream 0.5 still reads:
//! `generations/<16 hex>/snapshots/<index 8 hex>.snapshot.lz4` (a whole database, one LZ4
//! frame) and `generations/<gen>/wal/<index 8 hex>_<offset 8 hex>.wal.lz4` (pieces of the WAL
//! file of each index). A restore takes the newest generation, its newest snapshot, then every
//! later WAL index in turn: the pieces joined into a WAL file beside the database, which
//! SQLite itself recovers and checkpoints.

use super::error::ReplicationError;
use super::replica::Replica;
use super::restore::Target;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One file of a generation.
#[derive(Debug, Clone)]
struct Piece {
    key: String,
    /// Milliseconds since the epoch.
    modified: i64,
}

#[derive(Debug, Default)]
struct Generation {
    name: String,
    /// index → snapshot.
    snapshots: BTreeMap<u32, Piece>,
    /// index → offset → WAL piece.
    wal: BTreeMap<u32, BTreeMap<u64, Piece>>,
}

impl Generation {
    fn newest(&self) -> i64 {
        self.snapshots
            .values()
            .chain(self.wal.values().flat_map(|m| m.values()))
            .map(|p| p.modified)
            .max()
            .unwrap_or(0)
    }
}

fn hex8(s: &str) -> Option<u32> {
    (s.len() == 8
        && s.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
    .then(|| u32::from_str_radix(s, 16).ok())
    .flatten()
}

async fn modified(replica: &Replica, key: &str) -> Result<i64, ReplicationError> {
    let meta = replica.op.stat(key).await?;
    Ok(meta.last_modified().map_or(0, |t| t.timestamp_millis()))
}

async fn names(replica: &Replica, dir: &str) -> Result<Vec<String>, ReplicationError> {
    match replica.op.list(dir).await {
        Ok(entries) => Ok(entries
            .into_iter()
            .map(|e| e.name().trim_end_matches('/').to_string())
            .filter(|n| !n.is_empty())
            .collect()),
        Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

async fn load(
    replica: &Replica,
    name: &str,
    until: Option<i64>,
) -> Result<Generation, ReplicationError> {
    let mut g = Generation {
        name: name.to_string(),
        ..Generation::default()
    };
    let fits = |m: i64| until.is_none_or(|t| m <= t);
    let snap_dir = format!("generations/{name}/snapshots/");
    for file in names(replica, &snap_dir).await? {
        let Some(index) = file.strip_suffix(".snapshot.lz4").and_then(hex8) else {
            continue;
        };
        let key = format!("{snap_dir}{file}");
        let m = modified(replica, &key).await?;
        if fits(m) {
            g.snapshots.insert(index, Piece { key, modified: m });
        }
    }
    let wal_dir = format!("generations/{name}/wal/");
    for file in names(replica, &wal_dir).await? {
        let Some((index, offset)) = file
            .strip_suffix(".wal.lz4")
            .and_then(|s| s.split_once('_'))
            .and_then(|(i, o)| Some((hex8(i)?, hex8(o)?)))
        else {
            continue;
        };
        let key = format!("{wal_dir}{file}");
        let m = modified(replica, &key).await?;
        if fits(m) {
            g.wal
                .entry(index)
                .or_default()
                .insert(u64::from(offset), Piece { key, modified: m });
        }
    }
    Ok(g)
}

/// Whether the replica holds 0.3 generations.
pub async fn present(replica: &Replica) -> Result<bool, ReplicationError> {
    Ok(!names(replica, "generations/").await?.is_empty())
}

async fn unlz4(replica: &Replica, key: &str) -> Result<Vec<u8>, ReplicationError> {
    let bytes = replica.op.read(key).await?.to_vec();
    let mut out = Vec::new();
    lz4_flex::frame::FrameDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .map_err(|e| ReplicationError::Other(format!("{key}: {e}")))?;
    Ok(out)
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Restore the newest state (or the last one written at or before a timestamp) from 0.3
/// generations into `output`; returns the last WAL index applied.
pub async fn restore(
    replica: &Replica,
    target: Target,
    output: &Path,
) -> Result<u64, ReplicationError> {
    let until =
        match target {
            Target::Latest => None,
            Target::Timestamp(ts) => Some(ts),
            Target::Txid(_) => return Err(ReplicationError::Other(
                "a Litestream 0.3 replica has no TXIDs: restore the latest state or a --timestamp"
                    .into(),
            )),
        };
    let mut best: Option<Generation> = None;
    for name in names(replica, "generations/").await? {
        if name.len() != 16 {
            continue;
        }
        let g = load(replica, &name, until).await?;
        if !g.snapshots.is_empty() && best.as_ref().is_none_or(|b| g.newest() > b.newest()) {
            best = Some(g);
        }
    }
    let g = best.ok_or_else(|| {
        ReplicationError::Other("the replica has no 0.3 snapshot for that time".into())
    })?;
    let (&start, snapshot) = g
        .snapshots
        .iter()
        .next_back()
        .ok_or_else(|| ReplicationError::Other("no snapshot".into()))?;
    let tmp = with_suffix(output, ".tmp");
    let wal = with_suffix(&tmp, "-wal");
    let cleanup = |paths: &[&Path]| {
        for p in paths {
            let _ = std::fs::remove_file(p);
        }
    };
    let result = async {
        std::fs::write(&tmp, unlz4(replica, &snapshot.key).await?)?;
        let mut last = u64::from(start);
        let mut expected = start;
        for (index, pieces) in g.wal.range(start..) {
            if *index != expected {
                return Err(ReplicationError::Other(format!(
                    "generation {}: WAL index {expected:08x} is missing",
                    g.name
                )));
            }
            let mut bytes = Vec::new();
            for (offset, piece) in pieces {
                if *offset != bytes.len() as u64 {
                    return Err(ReplicationError::Other(format!(
                        "generation {}: WAL {index:08x} has a gap at offset {}",
                        g.name,
                        bytes.len()
                    )));
                }
                bytes.extend(unlz4(replica, &piece.key).await?);
            }
            std::fs::write(&wal, &bytes)?;
            // SQLite recovers the WAL (whole transactions only) and folds it in.
            let conn = rusqlite::Connection::open(&tmp)
                .map_err(|e| ReplicationError::Other(e.to_string()))?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(|e| ReplicationError::Other(e.to_string()))?;
            drop(conn);
            last = u64::from(*index);
            expected = index + 1;
        }
        Ok(last)
    }
    .await;
    let shm = with_suffix(&tmp, "-shm");
    match result {
        Ok(last) => {
            cleanup(&[&wal, &shm]);
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, output)?;
            Ok(last)
        }
        Err(e) => {
            cleanup(&[&tmp, &wal, &shm]);
            Err(e)
        }
    }
}
