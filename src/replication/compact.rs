//! Compaction: merge the level-(n-1) files newer than level n's reach into one level-n file,
//! page by page from disk (the newest version of each page wins; pages above the final size
//! are dropped), as Litestream does for levels 1–3.

use super::error::{ReplicationError, Result};
use super::local::{Local, LocalFile};
use super::ltx::{self, FileReader, Header};
use std::collections::BTreeMap;

/// The run of `level - 1` files that continue `level`'s reach (`reach`: its highest TXID),
/// contiguous from `reach + 1`.
pub fn sources(files: &[LocalFile], level: u8, reach: u64) -> Vec<LocalFile> {
    let mut run: Vec<LocalFile> = files
        .iter()
        .filter(|f| f.level == level - 1 && f.min_txid > reach)
        .cloned()
        .collect();
    run.sort_by_key(|f| f.min_txid);
    let mut out = Vec::new();
    let mut next = reach + 1;
    for f in run {
        if f.min_txid != next {
            break;
        }
        next = f.max_txid + 1;
        out.push(f);
    }
    out
}

/// Merge `inputs` (contiguous, ascending) into one file at `level`; returns it and its size.
pub fn merge(local: &Local, level: u8, inputs: &[LocalFile]) -> Result<(LocalFile, u64)> {
    let (first, last) = match (inputs.first(), inputs.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err(ReplicationError::Other("nothing to compact".into())),
    };
    let readers: Vec<FileReader> = inputs
        .iter()
        .map(|f| FileReader::open(&local.path(f)))
        .collect::<std::result::Result<_, _>>()?;
    let newest = &readers[readers.len() - 1].header;
    let page_size = newest.page_size;
    if readers.iter().any(|r| r.header.page_size != page_size) {
        return Err(ReplicationError::Other(
            "page size changed between files".into(),
        ));
    }
    let commit = newest.commit;
    // pgno → (reader, index entry) of its newest version.
    let mut latest: BTreeMap<u32, (usize, usize)> = BTreeMap::new();
    for (r, reader) in readers.iter().enumerate() {
        for (i, (pgno, _, _)) in reader.index.iter().enumerate() {
            latest.insert(*pgno, (r, i));
        }
    }
    let header = Header {
        page_size,
        commit,
        min_txid: first.min_txid,
        max_txid: last.max_txid,
        timestamp: newest.timestamp,
        ..Header::default()
    };
    let lock = ltx::lock_page(page_size);
    local
        .write(level, &header, |w| {
            for (pgno, (r, i)) in latest.range(1..=commit) {
                if *pgno == lock {
                    continue;
                }
                let page = readers[*r].page(*i)?;
                w.page(*pgno, &page)?;
            }
            Ok(())
        })
        .map_err(ReplicationError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(level: u8, min: u64, max: u64) -> LocalFile {
        LocalFile {
            level,
            min_txid: min,
            max_txid: max,
        }
    }

    #[test]
    fn sources_are_the_contiguous_run_after_the_reach() {
        let files = vec![f(0, 1, 1), f(0, 2, 2), f(0, 3, 3), f(0, 5, 5), f(1, 1, 1)];
        assert_eq!(sources(&files, 1, 1), vec![f(0, 2, 2), f(0, 3, 3)]);
        assert_eq!(sources(&files, 1, 0).len(), 3);
        assert!(sources(&files, 1, 5).is_empty());
        assert_eq!(sources(&files, 2, 0), vec![f(1, 1, 1)]);
        assert!(sources(&files, 2, 1).is_empty());
    }

    #[test]
    fn merge_keeps_the_newest_page_and_drops_pages_past_the_end() {
        let dir = std::env::temp_dir().join(format!("outpost-compact-{}", uuid::Uuid::new_v4()));
        let local = Local::open(&dir).unwrap();
        let page = |b: u8| vec![b; 512];
        let write = |min: u64, commit: u32, pages: Vec<(u32, Vec<u8>)>| {
            let h = Header {
                page_size: 512,
                commit,
                min_txid: min,
                max_txid: min,
                timestamp: min as i64,
                wal_offset: 32,
                ..Header::default()
            };
            local
                .write(0, &h, |w| {
                    for (p, d) in &pages {
                        w.page(*p, d)?;
                    }
                    Ok(())
                })
                .unwrap()
                .0
        };
        let a = write(1, 3, vec![(1, page(1)), (2, page(1)), (3, page(1))]);
        let b = write(2, 4, vec![(2, page(2)), (4, page(2))]);
        let c = write(3, 2, vec![(1, page(3))]);
        let (out, _) = merge(&local, 1, &[a, b, c]).unwrap();
        assert_eq!((out.min_txid, out.max_txid), (1, 3));
        let bytes = std::fs::read(local.path(&out)).unwrap();
        let decoded = ltx::decode(&bytes).unwrap();
        assert_eq!(decoded.header.commit, 2);
        assert_eq!(decoded.header.timestamp, 3);
        assert_eq!(decoded.header.wal_offset, 0);
        assert_eq!(
            decoded.pages,
            vec![(1, page(3)), (2, page(2))],
            "newest page wins; pages above commit 2 are gone"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
