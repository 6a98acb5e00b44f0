//! Reading SQLite's WAL file: the header, frames with their cumulative checksums, and the pages
//! of committed transactions only.
//!
//! A frame counts only if its salts match the header and its checksum chains from the previous
//! frame; reading stops at the first one that does not (the rest is an older generation of the
//! file, or a write in progress). Pages of a transaction are kept only once its commit frame (a
//! frame with a non-zero database size) has been read.

use std::collections::BTreeMap;

const WAL_HEADER: usize = 32;
const FRAME_HEADER: usize = 24;
/// Magic with checksums over little-endian words; `| 1` means big-endian words.
const MAGIC_LE: u32 = 0x377f_0682;
const MAGIC_BE: u32 = 0x377f_0683;
const VERSION: u32 = 3_007_000;

/// Why a WAL file cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WalError {
    #[error("not a WAL file: {0}")]
    Format(String),
}

/// The WAL header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalHeader {
    pub page_size: u32,
    pub checkpoint_seq: u32,
    pub salt1: u32,
    pub salt2: u32,
    big_endian: bool,
    checksum: (u32, u32),
}

/// Committed transactions read from a WAL, from some offset on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRead {
    pub header: WalHeader,
    /// Last version of each page written by a committed transaction.
    pub pages: BTreeMap<u32, Vec<u8>>,
    /// Database size in pages after the last commit read (0: no commit).
    pub commit: u32,
    /// Offset just after the last commit frame read: where the next read continues.
    pub end: u64,
    /// Committed transactions read.
    pub transactions: usize,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// SQLite's WAL checksum: pairs of 32-bit words, folded into (s0, s1).
fn checksum(data: &[u8], big_endian: bool, seed: (u32, u32)) -> (u32, u32) {
    let (mut s0, mut s1) = seed;
    for pair in data.chunks_exact(8) {
        let word = |i: usize| {
            let w = [pair[i], pair[i + 1], pair[i + 2], pair[i + 3]];
            if big_endian {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        s0 = s0.wrapping_add(word(0)).wrapping_add(s1);
        s1 = s1.wrapping_add(word(4)).wrapping_add(s0);
    }
    (s0, s1)
}

/// Bytes in the WAL header.
pub const HEADER_LEN: usize = WAL_HEADER;

/// Bytes in one frame of a WAL with pages of `page_size`.
pub fn frame_len(page_size: u32) -> u64 {
    (FRAME_HEADER as u64) + u64::from(page_size)
}

/// Parse and verify the 32-byte WAL header.
pub fn header(b: &[u8]) -> Result<WalHeader, WalError> {
    if b.len() < WAL_HEADER {
        return Err(WalError::Format("shorter than its header".into()));
    }
    let magic = be32(b, 0);
    let big_endian = match magic {
        MAGIC_LE => false,
        MAGIC_BE => true,
        other => return Err(WalError::Format(format!("bad magic {other:08x}"))),
    };
    if be32(b, 4) != VERSION {
        return Err(WalError::Format("unknown WAL version".into()));
    }
    let sum = checksum(&b[..24], big_endian, (0, 0));
    if sum != (be32(b, 24), be32(b, 28)) {
        return Err(WalError::Format("header checksum mismatch".into()));
    }
    let page_size = match be32(b, 8) {
        1 => 65536,
        n => n,
    };
    Ok(WalHeader {
        page_size,
        checkpoint_seq: be32(b, 12),
        salt1: be32(b, 16),
        salt2: be32(b, 20),
        big_endian,
        checksum: sum,
    })
}

/// Read the committed transactions of `wal` (the whole file's bytes).
///
/// `from` is where the previous read ended (an offset of a frame boundary, or 32 for the
/// start) and `seed` the checksum there (`None` at the start: the header's).
pub fn read(
    wal: &[u8],
    from: u64,
    seed: Option<(u32, u32)>,
) -> Result<(WalRead, (u32, u32)), WalError> {
    let start = (from as usize).max(WAL_HEADER);
    let tail = wal.get(start..).unwrap_or(&[]);
    read_tail(wal, tail, start as u64, seed)
}

/// Like [`read`], with only the WAL's header (`head`, at least 32 bytes) and the bytes from
/// `from` on (`tail`) in memory.
pub fn read_tail(
    head: &[u8],
    tail: &[u8],
    from: u64,
    seed: Option<(u32, u32)>,
) -> Result<(WalRead, (u32, u32)), WalError> {
    let h = header(head)?;
    let page = h.page_size as usize;
    let frame_len = FRAME_HEADER + page;
    let start = (from as usize).max(WAL_HEADER);
    if !(start - WAL_HEADER).is_multiple_of(frame_len) {
        return Err(WalError::Format(
            "resume offset is not a frame boundary".into(),
        ));
    }
    let mut sum = seed.unwrap_or(h.checksum);
    let mut committed_sum = sum;
    let mut pending: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut out = WalRead {
        header: h,
        pages: BTreeMap::new(),
        commit: 0,
        end: start as u64,
        transactions: 0,
    };
    let mut at = 0usize;
    while at + frame_len <= tail.len() {
        let f = &tail[at..at + frame_len];
        if be32(f, 8) != h.salt1 || be32(f, 12) != h.salt2 {
            break;
        }
        let s = checksum(&f[..8], h.big_endian, sum);
        let s = checksum(&f[FRAME_HEADER..], h.big_endian, s);
        if s != (be32(f, 16), be32(f, 20)) {
            break;
        }
        sum = s;
        pending.insert(be32(f, 0), f[FRAME_HEADER..].to_vec());
        at += frame_len;
        let commit = be32(f, 4);
        if commit != 0 {
            out.pages.append(&mut pending);
            out.commit = commit;
            out.end = (start + at) as u64;
            out.transactions += 1;
            committed_sum = sum;
        }
    }
    // Pages above the final database size were truncated away by the last commit.
    if out.commit != 0 {
        let commit = out.commit;
        out.pages.retain(|pgno, _| *pgno <= commit);
    }
    Ok((out, committed_sum))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn wal_db() -> (std::path::PathBuf, Connection) {
        let dir = std::env::temp_dir().join(format!("outpost-wal-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);",
        )
        .unwrap();
        (path, conn)
    }

    #[test]
    fn reads_committed_frames_and_resumes() {
        let (path, conn) = wal_db();
        conn.execute("INSERT INTO t (v) VALUES ('a')", []).unwrap();
        let wal = std::fs::read(path.with_extension("db-wal")).unwrap();
        let (first, sum) = read(&wal, 32, None).unwrap();
        assert_eq!(first.header.page_size, 4096);
        assert_eq!(first.transactions, 2, "the CREATE TABLE and the INSERT");
        assert!(first.commit >= 2);
        assert_eq!(first.end as usize, wal.len());
        conn.execute("INSERT INTO t (v) VALUES (?1)", ["b".repeat(5000)])
            .unwrap();
        let wal = std::fs::read(path.with_extension("db-wal")).unwrap();
        let (second, _) = read(&wal, first.end, Some(sum)).unwrap();
        assert_eq!(second.transactions, 1);
        assert!(second.commit >= first.commit);
        // A torn frame (a write in progress) is not read.
        let mut torn = wal.clone();
        let last = torn.len() - 10;
        torn[last] ^= 0xff;
        let (partial, _) = read(&torn, first.end, Some(sum)).unwrap();
        assert_eq!(partial.transactions, 0);
        assert_eq!(partial.end, first.end);
    }

    #[test]
    fn refuses_what_is_not_a_wal() {
        assert!(header(&[0u8; 32]).is_err());
        assert!(header(b"short").is_err());
    }
}
