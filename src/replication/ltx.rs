//! LTX files (format v3, as Litestream 0.5.17 / ltx v0.5.2 write them): a 100-byte header, page
//! frames holding LZ4 blocks, a page index, and a 16-byte trailer, all big-endian, checksummed
//! with CRC-64/GO-ISO over the *logical* stream (pages decompressed).
//!
//! Invariants the encoder keeps (Litestream refuses files that break them): pages ascending,
//! never the lock page, never above `commit`; flags = NoChecksum with zero database checksums;
//! every stored checksum has bit 63 set.

use crc::{Crc, Digest, CRC_64_GO_ISO};

/// `LTX1`.
const MAGIC: &[u8; 4] = b"LTX1";
/// The only valid header flag: the file carries no database checksums.
pub const FLAG_NO_CHECKSUM: u32 = 0x0000_0002;
/// Page frame flag: a size field and a raw LZ4 block follow (without it: a legacy LZ4 frame).
const PAGE_FLAG_SIZE: u16 = 0x0001;
const HEADER_SIZE: usize = 100;
const TRAILER_SIZE: usize = 16;
const CHECKSUM_FLAG: u64 = 1 << 63;

static CRC64: Crc<u64> = Crc::<u64>::new(&CRC_64_GO_ISO);

/// What an LTX file says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    pub flags: u32,
    pub page_size: u32,
    /// Database size in pages after applying the file.
    pub commit: u32,
    pub min_txid: u64,
    pub max_txid: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    pub pre_apply_checksum: u64,
    pub wal_offset: i64,
    pub wal_size: i64,
    pub wal_salt1: u32,
    pub wal_salt2: u32,
    pub node_id: u64,
}

/// A decoded LTX file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ltx {
    pub header: Header,
    /// `(pgno, page)`, ascending.
    pub pages: Vec<(u32, Vec<u8>)>,
    pub post_apply_checksum: u64,
}

/// Why bytes are not a valid LTX file (or pages cannot become one).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LtxError {
    #[error("not an LTX file: {0}")]
    Format(String),
    #[error("LTX checksum mismatch: stored {stored:016x}, computed {computed:016x}")]
    Checksum { stored: u64, computed: u64 },
    #[error("invalid LTX contents: {0}")]
    Invalid(String),
}

fn bad(why: impl Into<String>) -> LtxError {
    LtxError::Format(why.into())
}

/// The page SQLite reserves for its byte-range locks, never stored.
pub fn lock_page(page_size: u32) -> u32 {
    (0x4000_0000 / page_size) + 1
}

impl Header {
    fn validate(&self) -> Result<(), LtxError> {
        let invalid = |why: &str| Err(LtxError::Invalid(why.to_string()));
        if self.flags & !FLAG_NO_CHECKSUM != 0 {
            return invalid("unknown header flags");
        }
        if !(512..=65536).contains(&self.page_size) || !self.page_size.is_power_of_two() {
            return invalid("page size must be a power of two from 512 to 65536");
        }
        if self.min_txid == 0 || self.max_txid < self.min_txid {
            return invalid("TXIDs must satisfy 1 <= min <= max");
        }
        if self.min_txid == 1 && self.pre_apply_checksum != 0 {
            return invalid("a snapshot (min TXID 1) has no pre-apply checksum");
        }
        if self.flags & FLAG_NO_CHECKSUM != 0 && self.pre_apply_checksum != 0 {
            return invalid("NoChecksum files carry no database checksums");
        }
        if (self.wal_salt1 != 0 || self.wal_salt2 != 0 || self.wal_size != 0)
            && self.wal_offset == 0
        {
            return invalid("WAL salts or size need a WAL offset");
        }
        Ok(())
    }

    fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..4].copy_from_slice(MAGIC);
        b[4..8].copy_from_slice(&self.flags.to_be_bytes());
        b[8..12].copy_from_slice(&self.page_size.to_be_bytes());
        b[12..16].copy_from_slice(&self.commit.to_be_bytes());
        b[16..24].copy_from_slice(&self.min_txid.to_be_bytes());
        b[24..32].copy_from_slice(&self.max_txid.to_be_bytes());
        b[32..40].copy_from_slice(&self.timestamp.to_be_bytes());
        b[40..48].copy_from_slice(&self.pre_apply_checksum.to_be_bytes());
        b[48..56].copy_from_slice(&self.wal_offset.to_be_bytes());
        b[56..64].copy_from_slice(&self.wal_size.to_be_bytes());
        b[64..68].copy_from_slice(&self.wal_salt1.to_be_bytes());
        b[68..72].copy_from_slice(&self.wal_salt2.to_be_bytes());
        b[72..80].copy_from_slice(&self.node_id.to_be_bytes());
        b
    }

    fn from_bytes(b: &[u8]) -> Result<Header, LtxError> {
        if b.len() < HEADER_SIZE || &b[0..4] != MAGIC {
            return Err(bad("missing LTX1 header"));
        }
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_be_bytes(a)
        };
        let h = Header {
            flags: u32_at(4),
            page_size: u32_at(8),
            commit: u32_at(12),
            min_txid: u64_at(16),
            max_txid: u64_at(24),
            timestamp: u64_at(32) as i64,
            pre_apply_checksum: u64_at(40),
            wal_offset: u64_at(48) as i64,
            wal_size: u64_at(56) as i64,
            wal_salt1: u32_at(64),
            wal_salt2: u32_at(68),
            node_id: u64_at(72),
        };
        h.validate()?;
        Ok(h)
    }
}

/// Unsigned LEB128, as Go's `binary.PutUvarint` writes it.
fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_uvarint(b: &[u8], at: &mut usize) -> Result<u64, LtxError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at).ok_or_else(|| bad("truncated page index"))?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(bad("overlong varint in the page index"))
}

/// Encode `pages` (ascending `(pgno, bytes)`) under `header` into LTX bytes. The header's
/// flags are forced to NoChecksum, as Litestream 0.5 requires.
pub fn encode(header: &Header, pages: &[(u32, &[u8])]) -> Result<Vec<u8>, LtxError> {
    let out = Vec::with_capacity(HEADER_SIZE + pages.len() * (header.page_size as usize / 2) + 64);
    let mut w = Writer::new(out, header).map_err(io_to_ltx)?;
    for (pgno, page) in pages {
        w.page(*pgno, page)?;
    }
    w.finish().map_err(io_to_ltx)
}

fn io_to_ltx(e: std::io::Error) -> LtxError {
    match e.get_ref().and_then(|i| i.downcast_ref::<LtxError>()) {
        Some(l) => l.clone(),
        None => LtxError::Invalid(e.to_string()),
    }
}

/// Writes an LTX file page by page, so a snapshot of a large database never sits in memory.
pub struct Writer<W: std::io::Write> {
    out: W,
    header: Header,
    digest: Digest<'static, u64>,
    /// `(pgno, offset, frame length)` for the page index.
    index: Vec<(u32, u64, u64)>,
    written: u64,
    last: u32,
    lock: u32,
}

impl<W: std::io::Write> Writer<W> {
    /// Start a file: validates and writes the header (flags forced to NoChecksum).
    pub fn new(mut out: W, header: &Header) -> std::io::Result<Writer<W>> {
        let mut header = header.clone();
        header.flags = FLAG_NO_CHECKSUM;
        header.validate().map_err(std::io::Error::other)?;
        let mut digest = CRC64.digest();
        let head = header.to_bytes();
        out.write_all(&head)?;
        digest.update(&head);
        let lock = lock_page(header.page_size);
        Ok(Writer {
            out,
            header,
            digest,
            index: Vec::new(),
            written: HEADER_SIZE as u64,
            last: 0,
            lock,
        })
    }

    /// Add the next page; pages must come ascending, never the lock page, never above commit.
    pub fn page(&mut self, pgno: u32, page: &[u8]) -> Result<(), LtxError> {
        if pgno <= self.last {
            return Err(LtxError::Invalid(
                "pages must be ascending and distinct".into(),
            ));
        }
        if pgno == self.lock {
            return Err(LtxError::Invalid("the lock page is never stored".into()));
        }
        if pgno > self.header.commit {
            return Err(LtxError::Invalid(format!(
                "page {pgno} is above commit {}",
                self.header.commit
            )));
        }
        if page.len() != self.header.page_size as usize {
            return Err(LtxError::Invalid(format!(
                "page {pgno} is not {} bytes",
                self.header.page_size
            )));
        }
        let block = lz4_flex::block::compress(page);
        let mut frame_head = [0u8; 10];
        frame_head[0..4].copy_from_slice(&pgno.to_be_bytes());
        frame_head[4..6].copy_from_slice(&PAGE_FLAG_SIZE.to_be_bytes());
        frame_head[6..10].copy_from_slice(&(block.len() as u32).to_be_bytes());
        let io = |e: std::io::Error| LtxError::Invalid(format!("writing page {pgno}: {e}"));
        self.out.write_all(&frame_head).map_err(io)?;
        self.out.write_all(&block).map_err(io)?;
        // The checksum covers the page as it decompresses, not the block.
        self.digest.update(&frame_head);
        self.digest.update(page);
        let len = (frame_head.len() + block.len()) as u64;
        self.index.push((pgno, self.written, len));
        self.written += len;
        self.last = pgno;
        Ok(())
    }

    /// Pages written so far.
    pub fn pages(&self) -> usize {
        self.index.len()
    }

    /// Write the end of pages, the page index and the trailer; returns the sink.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.write_all(&[0u8; 6])?;
        self.digest.update(&[0u8; 6]);
        let mut varints = Vec::with_capacity(self.index.len() * 6 + 1);
        for (pgno, offset, len) in &self.index {
            put_uvarint(&mut varints, u64::from(*pgno));
            put_uvarint(&mut varints, *offset);
            put_uvarint(&mut varints, *len);
        }
        put_uvarint(&mut varints, 0);
        let varint_len = (varints.len() as u64).to_be_bytes();
        for part in [&varints[..], &varint_len[..], &[0u8; 8][..]] {
            self.out.write_all(part)?;
            self.digest.update(part);
        }
        let checksum = self.digest.finalize() | CHECKSUM_FLAG;
        self.out.write_all(&checksum.to_be_bytes())?;
        Ok(self.out)
    }
}

/// Read an LTX header (the first 100 bytes of a file).
pub fn read_header(b: &[u8]) -> Result<Header, LtxError> {
    Header::from_bytes(b)
}

/// An LTX file on local disk, read page by page through its page index (for merging files
/// larger than memory should hold). The file checksum is not verified: only files this
/// process wrote and verified are opened this way.
pub struct FileReader {
    file: std::fs::File,
    pub header: Header,
    /// `(pgno, offset, frame length)`, ascending.
    pub index: Vec<(u32, u64, u64)>,
}

impl FileReader {
    /// Open `path` and load its header and page index.
    pub fn open(path: &std::path::Path) -> Result<FileReader, LtxError> {
        use std::os::unix::fs::FileExt;
        let file =
            std::fs::File::open(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        let len = file
            .metadata()
            .map_err(|e| bad(format!("{}: {e}", path.display())))?
            .len();
        let read = |at: u64, n: usize| -> Result<Vec<u8>, LtxError> {
            let mut buf = vec![0u8; n];
            file.read_exact_at(&mut buf, at)
                .map_err(|e| bad(format!("{}: {e}", path.display())))?;
            Ok(buf)
        };
        if len < (HEADER_SIZE + 6 + 1 + 8 + TRAILER_SIZE) as u64 {
            return Err(bad("too short"));
        }
        let header = Header::from_bytes(&read(0, HEADER_SIZE)?)?;
        let len_at = len - (TRAILER_SIZE + 8) as u64;
        let mut word = [0u8; 8];
        word.copy_from_slice(&read(len_at, 8)?);
        let varint_len = u64::from_be_bytes(word);
        let start = len_at
            .checked_sub(varint_len)
            .ok_or_else(|| bad("page index longer than the file"))?;
        let varints = read(start, varint_len as usize)?;
        let mut at = 0usize;
        let mut index = Vec::new();
        loop {
            let pgno = get_uvarint(&varints, &mut at)?;
            if pgno == 0 {
                break;
            }
            let offset = get_uvarint(&varints, &mut at)?;
            let len = get_uvarint(&varints, &mut at)?;
            index.push((pgno as u32, offset, len));
        }
        Ok(FileReader {
            file,
            header,
            index,
        })
    }

    /// The page stored in the index entry `i`.
    pub fn page(&self, i: usize) -> Result<Vec<u8>, LtxError> {
        use std::os::unix::fs::FileExt;
        let (pgno, offset, len) = *self
            .index
            .get(i)
            .ok_or_else(|| bad("no such index entry"))?;
        let mut frame = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut frame, offset)
            .map_err(|e| bad(format!("page {pgno}: {e}")))?;
        decode_frame(&frame, pgno, self.header.page_size as usize).map(|(page, _)| page)
    }
}

/// Decompress one page frame; also returns the frame header length the checksum covers.
fn decode_frame(frame: &[u8], pgno: u32, page_size: usize) -> Result<(Vec<u8>, usize), LtxError> {
    if frame.len() < 6 || u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) != pgno {
        return Err(bad(format!("page frame {pgno} is damaged")));
    }
    let flags = u16::from_be_bytes([frame[4], frame[5]]);
    let (page, head) = if flags & PAGE_FLAG_SIZE != 0 {
        if frame.len() < 10 {
            return Err(bad("truncated page block"));
        }
        let size = u32::from_be_bytes([frame[6], frame[7], frame[8], frame[9]]) as usize;
        let block = frame
            .get(10..10 + size)
            .ok_or_else(|| bad("truncated page block"))?;
        let page = lz4_flex::block::decompress(block, page_size)
            .map_err(|e| bad(format!("page {pgno}: {e}")))?;
        (page, 10)
    } else {
        use std::io::Read;
        let mut page = Vec::with_capacity(page_size);
        lz4_flex::frame::FrameDecoder::new(&frame[6..])
            .read_to_end(&mut page)
            .map_err(|e| bad(format!("page {pgno}: {e}")))?;
        (page, 6)
    };
    if page.len() != page_size {
        return Err(bad(format!(
            "page {pgno} decompresses to {} bytes",
            page.len()
        )));
    }
    Ok((page, head))
}

/// Decode LTX bytes, verifying the file checksum. Reads both page frame kinds: raw LZ4 blocks
/// with a size field, and the legacy LZ4 frame per page.
pub fn decode(b: &[u8]) -> Result<Ltx, LtxError> {
    let header = Header::from_bytes(b)?;
    if b.len() < HEADER_SIZE + 6 + 1 + 8 + TRAILER_SIZE {
        return Err(bad("too short"));
    }
    let trailer = &b[b.len() - TRAILER_SIZE..];
    let mut word = [0u8; 8];
    word.copy_from_slice(&trailer[0..8]);
    let post_apply_checksum = u64::from_be_bytes(word);
    word.copy_from_slice(&trailer[8..16]);
    let stored = u64::from_be_bytes(word);
    // The page index ends with the u64 length of its varint section, just before the trailer.
    let len_at = b.len() - TRAILER_SIZE - 8;
    word.copy_from_slice(&b[len_at..len_at + 8]);
    let varint_len = u64::from_be_bytes(word) as usize;
    let index_start = len_at
        .checked_sub(varint_len)
        .ok_or_else(|| bad("page index longer than the file"))?;
    let mut at = index_start;
    let mut index = Vec::new();
    loop {
        let pgno = get_uvarint(b, &mut at)?;
        if pgno == 0 {
            break;
        }
        let offset = get_uvarint(b, &mut at)? as usize;
        let len = get_uvarint(b, &mut at)? as usize;
        index.push((pgno as u32, offset, len));
    }
    if at != len_at {
        return Err(bad("page index length does not match its contents"));
    }
    let page_size = header.page_size as usize;
    let mut digest: Digest<u64> = CRC64.digest();
    digest.update(&b[..HEADER_SIZE]);
    let mut pages = Vec::with_capacity(index.len());
    let mut expect_at = HEADER_SIZE;
    for (pgno, offset, len) in index {
        if offset != expect_at || offset + len > index_start {
            return Err(bad(format!("page {pgno} is not where the index says")));
        }
        let frame = &b[offset..offset + len];
        let (page, head) = decode_frame(frame, pgno, page_size)?;
        digest.update(&frame[..head]);
        digest.update(&page);
        pages.push((pgno, page));
        expect_at = offset + len;
    }
    if b.get(expect_at..expect_at + 6) != Some(&[0u8; 6][..]) || expect_at + 6 != index_start {
        return Err(bad("missing end of pages"));
    }
    digest.update(&[0u8; 6]);
    digest.update(&b[index_start..b.len() - 8]);
    let computed = digest.finalize() | CHECKSUM_FLAG;
    if computed != stored {
        return Err(LtxError::Checksum { stored, computed });
    }
    Ok(Ltx {
        header,
        pages,
        post_apply_checksum,
    })
}

/// The file name Litestream gives an LTX file: `<minTXID>-<maxTXID>.ltx`, 16 hex digits each.
pub fn file_name(min_txid: u64, max_txid: u64) -> String {
    format!("{min_txid:016x}-{max_txid:016x}.ltx")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(commit: u32) -> Header {
        Header {
            page_size: 4096,
            commit,
            min_txid: 1,
            max_txid: 1,
            timestamp: 1_795_000_000_000,
            wal_offset: 32,
            ..Header::default()
        }
    }

    #[test]
    fn round_trip_with_checksums_and_index() {
        let a = vec![7u8; 4096];
        let mut b = vec![0u8; 4096];
        b[100..200].copy_from_slice(&[42; 100]);
        let bytes = encode(&header(3), &[(1, &a), (3, &b)]).unwrap();
        assert_eq!(&bytes[0..4], b"LTX1");
        assert_eq!(
            u32::from_be_bytes(bytes[4..8].try_into().unwrap()),
            FLAG_NO_CHECKSUM
        );
        let stored = u64::from_be_bytes(bytes[bytes.len() - 8..].try_into().unwrap());
        assert_ne!(stored & CHECKSUM_FLAG, 0, "checksums carry bit 63");
        let ltx = decode(&bytes).unwrap();
        assert_eq!(ltx.pages, vec![(1, a), (3, b)]);
        assert_eq!(ltx.header.commit, 3);
        assert_eq!(file_name(1, 0x2a), "0000000000000001-000000000000002a.ltx");
        // Any flipped byte is caught.
        let mut broken = bytes.clone();
        broken[HEADER_SIZE + 12] ^= 1;
        assert!(decode(&broken).is_err());
    }

    #[test]
    fn refuses_pages_litestream_would_refuse() {
        let page = vec![0u8; 4096];
        assert!(encode(&header(2), &[(2, &page), (1, &page)]).is_err());
        assert!(encode(&header(1), &[(2, &page)]).is_err());
        assert!(encode(&header(300_000), &[(lock_page(4096), &page)]).is_err());
        assert!(encode(&header(1), &[(1, &page[..100])]).is_err());
        let mut h = header(1);
        h.min_txid = 0;
        assert!(encode(&h, &[]).is_err());
    }

    #[test]
    fn reads_legacy_lz4_frame_pages() {
        use std::io::Write;
        let page = vec![9u8; 4096];
        let mut frame = lz4_flex::frame::FrameEncoder::new(Vec::new());
        frame.write_all(&page).unwrap();
        let lz4 = frame.finish().unwrap();
        // Build a file by hand: header, one legacy frame (flags 0), end, index, trailer.
        let head = header(1).to_bytes();
        let mut h = head;
        h[4..8].copy_from_slice(&FLAG_NO_CHECKSUM.to_be_bytes());
        let mut out = h.to_vec();
        let mut digest = CRC64.digest();
        digest.update(&h);
        let mut fh = [0u8; 6];
        fh[0..4].copy_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(&fh);
        out.extend_from_slice(&lz4);
        digest.update(&fh);
        digest.update(&page);
        out.extend_from_slice(&[0u8; 6]);
        digest.update(&[0u8; 6]);
        let mut varints = Vec::new();
        put_uvarint(&mut varints, 1);
        put_uvarint(&mut varints, HEADER_SIZE as u64);
        put_uvarint(&mut varints, (6 + lz4.len()) as u64);
        put_uvarint(&mut varints, 0);
        let len = (varints.len() as u64).to_be_bytes();
        for part in [&varints[..], &len[..], &[0u8; 8][..]] {
            out.extend_from_slice(part);
            digest.update(part);
        }
        out.extend_from_slice(&(digest.finalize() | CHECKSUM_FLAG).to_be_bytes());
        let ltx = decode(&out).unwrap();
        assert_eq!(ltx.pages, vec![(1, page)]);
    }
}
