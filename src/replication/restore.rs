//! `outpost restore`: pick a replica's files the way Litestream does, merge their pages, write
//! the database, and check it.

use super::error::ReplicationError;
use super::ltx;
use super::replica::{Entry, Replica};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Which state to restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Latest,
    Txid(u64),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
}

async fn timestamp_of(replica: &Replica, e: &Entry) -> Result<i64, ReplicationError> {
    let head = replica.op.read_with(&e.key).range(0..100).await?.to_vec();
    let mut w = [0u8; 8];
    w.copy_from_slice(
        head.get(32..40)
            .ok_or_else(|| ReplicationError::Other(format!("{} is truncated", e.key)))?,
    );
    Ok(i64::from_be_bytes(w))
}

/// From the state at TXID `current`, the files of levels 0–8 that reach furthest, in order:
/// at each step the file that continues `current` (MinTXID ≤ current + 1) with the largest
/// MaxTXID; ties go to the lower MinTXID, then the higher level.
pub fn chain(entries: &[Entry], mut current: u64) -> Vec<Entry> {
    let mut out = Vec::new();
    loop {
        let next = entries
            .iter()
            .filter(|e| e.level <= 8 && e.min_txid <= current + 1 && e.max_txid > current)
            .max_by(|a, b| {
                a.max_txid
                    .cmp(&b.max_txid)
                    .then(b.min_txid.cmp(&a.min_txid))
                    .then(a.level.cmp(&b.level))
            });
        match next {
            Some(e) => {
                current = e.max_txid;
                out.push(e.clone());
            }
            None => return out,
        }
    }
}

/// Pages merged from several LTX files: the newest version of each, up to the last commit.
pub struct Merged {
    pub pages: BTreeMap<u32, Vec<u8>>,
    pub commit: u32,
    pub page_size: u32,
    /// The last file's header timestamp (ms).
    pub timestamp: i64,
}

/// Download `files` (in order) and merge their pages.
pub async fn merge(replica: &Replica, files: &[Entry]) -> Result<Merged, ReplicationError> {
    let mut m = Merged {
        pages: BTreeMap::new(),
        commit: 0,
        page_size: 0,
        timestamp: 0,
    };
    for f in files {
        let bytes = replica.op.read(&f.key).await?.to_vec();
        let decoded = ltx::decode(&bytes)?;
        if m.page_size != 0 && decoded.header.page_size != m.page_size {
            return Err(ReplicationError::Other(
                "page size changed between files".into(),
            ));
        }
        m.page_size = decoded.header.page_size;
        m.commit = decoded.header.commit;
        m.timestamp = decoded.header.timestamp;
        for (pgno, page) in decoded.pages {
            m.pages.insert(pgno, page);
        }
        let commit = m.commit;
        m.pages.retain(|p, _| *p <= commit);
    }
    Ok(m)
}

/// Choose the files that rebuild the target state, in order (Litestream's rules: the newest
/// fitting snapshot, then the longest reach from each level down to 0).
pub async fn plan(replica: &Replica, target: Target) -> Result<Vec<Entry>, ReplicationError> {
    let mut entries = replica.list().await?;
    if let Target::Timestamp(ts) = target {
        let mut kept = Vec::with_capacity(entries.len());
        for e in entries {
            if timestamp_of(replica, &e).await? <= ts {
                kept.push(e);
            }
        }
        entries = kept;
    }
    let limit = match target {
        Target::Txid(t) => t,
        _ => u64::MAX,
    };
    entries.retain(|e| e.max_txid <= limit);
    let mut chosen = Vec::new();
    let mut current = 0u64;
    if let Some(snap) = entries
        .iter()
        .filter(|e| e.level == 9 && e.min_txid == 1)
        .max_by_key(|e| e.max_txid)
    {
        current = snap.max_txid;
        chosen.push(snap.clone());
    }
    let rest = chain(&entries, current);
    if let Some(last) = rest.last() {
        current = last.max_txid;
    }
    chosen.extend(rest);
    if chosen.is_empty() || chosen[0].min_txid != 1 {
        return Err(ReplicationError::Other(
            "the replica has no files starting at TXID 1".into(),
        ));
    }
    if let Target::Txid(t) = target {
        if current != t {
            return Err(ReplicationError::Other(format!(
                "non-contiguous ltx files: reached TXID {current:016x}, not {t:016x}"
            )));
        }
    }
    Ok(chosen)
}

/// Restore `target` from `replica` into `output` (which must not exist); returns the TXID.
pub async fn restore(
    replica: &Replica,
    target: Target,
    output: &Path,
) -> Result<u64, ReplicationError> {
    if output.exists() {
        return Err(ReplicationError::Other(format!(
            "{} already exists",
            output.display()
        )));
    }
    // A replica with no LTX files may hold Litestream 0.3 generations.
    if replica.list().await?.is_empty() && super::generations::present(replica).await? {
        let last = super::generations::restore(replica, target, output).await?;
        check(output)?;
        return Ok(last);
    }
    let files = plan(replica, target).await?;
    let Merged {
        pages,
        commit,
        page_size,
        ..
    } = merge(replica, &files).await?;
    let tmp = output.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    let zero = vec![0u8; page_size as usize];
    let lock = ltx::lock_page(page_size.max(512));
    for pgno in 1..=commit {
        match pages.get(&pgno) {
            Some(p) => file.write_all(p)?,
            None if pgno == lock => file.write_all(&zero)?,
            None => {
                let _ = std::fs::remove_file(&tmp);
                return Err(ReplicationError::Other(format!(
                    "page {pgno} is in no file"
                )));
            }
        }
    }
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, output)?;
    check(output)?;
    Ok(files.last().map_or(0, |f| f.max_txid))
}

/// `PRAGMA integrity_check` of a restored file.
fn check(path: &Path) -> Result<(), ReplicationError> {
    let conn =
        rusqlite::Connection::open(path).map_err(|e| ReplicationError::Other(e.to_string()))?;
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| ReplicationError::Other(e.to_string()))?;
    if check != "ok" {
        return Err(ReplicationError::Other(format!("integrity_check: {check}")));
    }
    Ok(())
}
