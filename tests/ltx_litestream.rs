//! LTX files checked against the real `litestream` 0.5.17 binary: files Outpost encodes are
//! restored by `litestream restore`, and files `litestream replicate` writes decode in Outpost.

mod common;
use common::replication::litestream;
use common::TempDir;
use outpost::replication::ltx::{self, Header};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn make_db(path: &Path, rows: i64, tag: &str) {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.execute_batch(
        "PRAGMA page_size = 4096; PRAGMA journal_mode = DELETE;
         CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    )
    .expect("schema");
    conn.execute("DELETE FROM t", []).expect("clear");
    let tx = conn.unchecked_transaction().expect("tx");
    for i in 0..rows {
        tx.execute(
            "INSERT INTO t (id, body) VALUES (?1, ?2)",
            rusqlite::params![i, format!("{tag}-{i}-{}", "x".repeat((i % 300) as usize))],
        )
        .expect("insert");
    }
    tx.commit().expect("commit");
    conn.execute_batch("VACUUM").expect("vacuum");
}

fn pages_of(path: &Path) -> Vec<(u32, Vec<u8>)> {
    let bytes = std::fs::read(path).expect("read db");
    assert_eq!(bytes.len() % 4096, 0);
    bytes
        .chunks(4096)
        .enumerate()
        .map(|(i, p)| (i as u32 + 1, p.to_vec()))
        .filter(|(n, _)| *n != ltx::lock_page(4096))
        .collect()
}

fn write_l0(replica: &Path, txid: u64, pages: &[(u32, Vec<u8>)], timestamp: i64) {
    let header = Header {
        page_size: 4096,
        commit: pages.last().map_or(0, |p| p.0),
        min_txid: txid,
        max_txid: txid,
        timestamp,
        wal_offset: 32,
        ..Header::default()
    };
    let refs: Vec<(u32, &[u8])> = pages.iter().map(|(n, p)| (*n, p.as_slice())).collect();
    let bytes = ltx::encode(&header, &refs).expect("encode");
    let dir = replica.join("ltx/0");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(ltx::file_name(txid, txid)), bytes).expect("write ltx");
}

fn summary(path: &Path) -> (i64, String, String) {
    let conn = rusqlite::Connection::open(path).expect("open restored");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    let (n, last): (i64, String) = conn
        .query_row("SELECT count(*), max(body) FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("rows");
    (n, last, check)
}

fn restore(replica: &Path, out: &Path, txid: Option<u64>) {
    let mut cmd = Command::new(litestream());
    cmd.arg("restore");
    if let Some(t) = txid {
        cmd.args(["-txid", &format!("{t:016x}")]);
    }
    let url = format!("file://{}", replica.display());
    let done = cmd
        .arg("-o")
        .arg(out)
        .arg(&url)
        .output()
        .expect("run litestream");
    assert!(
        done.status.success(),
        "litestream restore failed: {}{}",
        String::from_utf8_lossy(&done.stdout),
        String::from_utf8_lossy(&done.stderr)
    );
}

#[test]
fn litestream_restores_what_outpost_encodes() {
    let dir = TempDir::new();
    let db = dir.0.join("source.db");
    let replica = dir.0.join("replica");
    make_db(&db, 3000, "first");
    let first = summary(&db);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    write_l0(&replica, 1, &pages_of(&db), now - 2000);
    // A second full-page L0 file with different contents, one TXID later.
    make_db(&db, 1200, "second");
    let second = summary(&db);
    write_l0(&replica, 2, &pages_of(&db), now - 1000);

    let latest = dir.0.join("latest.db");
    restore(&replica, &latest, None);
    assert_eq!(summary(&latest), second);
    assert_eq!(second.2, "ok");
    let at_one = dir.0.join("txid1.db");
    restore(&replica, &at_one, Some(1));
    assert_eq!(summary(&at_one), first);
}

#[test]
fn outpost_decodes_what_litestream_replicates() {
    let dir = TempDir::new();
    let db = dir.0.join("app.db");
    let replica = dir.0.join("replica");
    {
        let conn = rusqlite::Connection::open(&db).expect("open");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT);",
        )
        .expect("schema");
    }
    let mut child = replicate(&db, &replica);
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.busy_timeout(Duration::from_secs(5)).expect("busy");
    for i in 0..200 {
        conn.execute(
            "INSERT INTO t (body) VALUES (?1)",
            [format!("row {i} {}", "y".repeat(200))],
        )
        .expect("insert");
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(600));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && ltx_files(&replica).len() < 2 {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let _ = child.kill();
    let _ = child.wait();
    let files = ltx_files(&replica);
    assert!(files.len() >= 2, "litestream wrote {files:?}");
    let mut snapshot_seen = false;
    for f in &files {
        let bytes = std::fs::read(f).expect("read ltx");
        let decoded = ltx::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(decoded.header.page_size, 4096);
        assert!(decoded.pages.windows(2).all(|w| w[0].0 < w[1].0));
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        assert_eq!(
            name,
            ltx::file_name(decoded.header.min_txid, decoded.header.max_txid)
        );
        if decoded.header.min_txid == 1 {
            snapshot_seen = true;
            let count = decoded.header.commit as usize;
            assert_eq!(decoded.pages.len(), count, "TXID 1 holds every page");
        }
    }
    assert!(snapshot_seen, "TXID 1 is a full copy");
}

/// `litestream replicate <db> file://<replica>`, running until killed.
fn replicate(db: &Path, replica: &Path) -> std::process::Child {
    Command::new(litestream())
        .arg("replicate")
        .arg(db)
        .arg(format!("file://{}", replica.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start litestream replicate")
}

/// Every row of `t`, in id order.
fn rows(c: &rusqlite::Connection) -> Vec<(i64, String)> {
    c.prepare("SELECT id, body FROM t ORDER BY id")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn ltx_files(replica: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(levels) = std::fs::read_dir(replica.join("ltx")) else {
        return out;
    };
    for level in levels.filter_map(Result::ok) {
        if let Ok(entries) = std::fs::read_dir(level.path()) {
            for e in entries.filter_map(Result::ok) {
                if e.path().extension().and_then(|x| x.to_str()) == Some("ltx") {
                    out.push(e.path());
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn wal_frames_shipped_as_ltx_restore_to_the_live_database() {
    use outpost::replication::wal;
    let dir = TempDir::new();
    let db = dir.0.join("live.db");
    let replica = dir.0.join("replica");
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.execute_batch(
        "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
         CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    )
    .expect("schema");
    for i in 0..500 {
        conn.execute(
            "INSERT INTO t (body) VALUES (?1)",
            [format!("a{i}{}", "z".repeat(100))],
        )
        .expect("insert");
    }
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    // TXID 1: the whole database file.
    write_l0(&replica, 1, &pages_of(&db), now - 1000);
    // Then writes that live only in the WAL: inserts, updates, deletes, growth.
    for i in 0..800 {
        conn.execute(
            "INSERT INTO t (body) VALUES (?1)",
            [format!("b{i}{}", "w".repeat(300))],
        )
        .expect("insert");
    }
    conn.execute("UPDATE t SET body = 'changed' WHERE id % 7 = 0", [])
        .expect("update");
    conn.execute("DELETE FROM t WHERE id % 11 = 0", [])
        .expect("delete");
    let wal_bytes = std::fs::read(db.with_extension("db-wal")).expect("read wal");
    let (read, _) = wal::read(&wal_bytes, 32, None).expect("wal");
    assert!(read.transactions >= 3);
    let header = Header {
        page_size: 4096,
        commit: read.commit,
        min_txid: 2,
        max_txid: 2,
        timestamp: now,
        wal_offset: 32,
        wal_size: read.end as i64 - 32,
        wal_salt1: read.header.salt1,
        wal_salt2: read.header.salt2,
        ..Header::default()
    };
    let pages: Vec<(u32, &[u8])> = read.pages.iter().map(|(n, p)| (*n, p.as_slice())).collect();
    let bytes = ltx::encode(&header, &pages).expect("encode");
    std::fs::write(replica.join("ltx/0").join(ltx::file_name(2, 2)), bytes).expect("write");

    let restored = dir.0.join("restored.db");
    restore(&replica, &restored, None);
    let copy = rusqlite::Connection::open(&restored).expect("open restored");
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
    assert_eq!(
        rows(&copy),
        rows(&conn),
        "the restore equals the live database"
    );
}

fn outpost_restore(replica: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
        .arg("restore")
        .arg("--replica")
        .arg(format!("file://{}", replica.display()))
        .arg("--output")
        .arg(out)
        .args(extra)
        .output()
        .expect("run outpost restore")
}

#[test]
fn outpost_restores_litestream_replicas_and_its_own() {
    let dir = TempDir::new();
    // A replica `litestream replicate` wrote while the app wrote.
    let db = dir.0.join("app.db");
    let replica = dir.0.join("by-litestream");
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT);",
    )
    .expect("schema");
    let mut child = replicate(&db, &replica);
    conn.busy_timeout(Duration::from_secs(5)).expect("busy");
    for i in 0..300 {
        conn.execute(
            "INSERT INTO t (body) VALUES (?1)",
            [format!("r{i}{}", "q".repeat(150))],
        )
        .expect("insert");
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(700));
        }
    }
    conn.execute("DELETE FROM t WHERE id % 3 = 0", [])
        .expect("delete");
    std::thread::sleep(Duration::from_millis(3000));
    let _ = child.kill();
    let _ = child.wait();
    let out = dir.0.join("restored.db");
    let done = outpost_restore(&replica, &out, &[]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let restored = rusqlite::Connection::open(&out).expect("open restored");
    assert_eq!(rows(&restored), rows(&conn));

    // Outpost's own files, at a point in time; and the failure paths.
    let own = dir.0.join("own");
    let src = dir.0.join("src.db");
    make_db(&src, 400, "one");
    let first = summary(&src);
    write_l0(&own, 1, &pages_of(&src), 1_700_000_000_000);
    make_db(&src, 900, "two");
    let second = summary(&src);
    write_l0(&own, 2, &pages_of(&src), 1_700_000_100_000);
    let a = dir.0.join("a.db");
    assert!(outpost_restore(&own, &a, &["--txid", "0000000000000001"])
        .status
        .success());
    assert_eq!(summary(&a), first);
    let b = dir.0.join("b.db");
    assert!(
        outpost_restore(&own, &b, &["--timestamp", "2023-11-14T22:14:00Z"])
            .status
            .success()
    );
    assert_eq!(summary(&b), first, "TXID 2 is later than the timestamp");
    let c = dir.0.join("c.db");
    assert!(outpost_restore(&own, &c, &[]).status.success());
    assert_eq!(summary(&c), second);
    let again = outpost_restore(&own, &c, &[]);
    assert!(
        !again.status.success(),
        "an existing output is not overwritten"
    );
    let missing = outpost_restore(&own, &dir.0.join("d.db"), &["--txid", "0000000000000009"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("non-contiguous"));
}
