//! The binary's lifecycle: first run, health, keys, migrations at start-up, clean shutdown.

mod common;
use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn health_and_clean_shutdown() {
    let s = Server::start(&[(
        "001_t.sql",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);",
    )]);
    let health = s.get_json("/health", 200).await;
    assert_eq!(health["status"], "ok");
    let res = s.post_json("/rest/v1/t", json!({"v": "x"}), "").await;
    assert_eq!(res.status(), 201);
    let (status, dir) = s.terminate();
    assert!(status.success(), "exit status {status:?}");
    // A clean shutdown checkpoints with TRUNCATE: the WAL is empty and the row is in the file.
    let wal = dir.0.join("data/data.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
    let conn = rusqlite::Connection::open(dir.0.join("data/data.db")).unwrap();
    let v: String = conn.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(v, "x");
}

#[tokio::test]
async fn failing_migration_stops_startup_with_its_name() {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.0.join("migrations")).unwrap();
    std::fs::write(
        dir.0.join("migrations/001_ok.sql"),
        "CREATE TABLE a (id INTEGER);",
    )
    .unwrap();
    std::fs::write(
        dir.0.join("migrations/002_bad.sql"),
        "CREATE TABLE b (id INTEGER); SELEC 1;",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["serve", "--http", "127.0.0.1:0", "--data-dir"])
        .arg(dir.0.join("data"))
        .arg("--migrations-dir")
        .arg(dir.0.join("migrations"))
        .env("OUTPOST_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("002_bad.sql") && err.contains("syntax error"),
        "{err}"
    );
    let conn = rusqlite::Connection::open(dir.0.join("data/data.db")).unwrap();
    let b: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'b'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(b, 0, "the failed migration must leave nothing behind");
}

#[tokio::test]
async fn keys_command_prints_keys_that_the_server_accepts() {
    let dir = TempDir::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["keys", "--json", "--data-dir"])
        .arg(dir.0.join("data"))
        .env_remove("OUTPOST_JWT_SECRET")
        .output()
        .unwrap();
    assert!(out.status.success());
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let service = keys["service_role_key"].as_str().unwrap().to_string();
    assert!(keys["anon_key"].as_str().unwrap().starts_with("ey"));
    assert_eq!(keys["url"], "http://127.0.0.1:8000");
    // Same secret file → same keys on a second call.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["keys", "--json", "--data-dir"])
        .arg(dir.0.join("data"))
        .env_remove("OUTPOST_JWT_SECRET")
        .output()
        .unwrap();
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["service_role_key"], service.as_str());
    let _ = Method::GET;
}

#[tokio::test]
async fn version_and_unavailable_commands() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
        .arg("version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("outpost "));
    // A replica with no files is refused with Litestream's reason, and nothing is written.
    let dir = TempDir::new();
    let output = dir.0.join("restored.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
        .arg("restore")
        .arg("--replica")
        .arg(format!("file://{}", dir.0.join("empty-replica").display()))
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no files starting at TXID 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!output.exists());
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args([
            "restore",
            "--replica",
            "ftp://x",
            "--output",
            "/tmp/never.db",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("file:///path or s3://"));
    // Replication flags that cannot work stop the server at start with the reason.
    let serve = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
            .args(["serve", "--http", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.0.join("data"))
            .args(extra)
            .output()
            .unwrap()
    };
    let empty = format!("file://{}", dir.0.join("empty-replica").display());
    for (args, reason) in [
        (vec!["--replica", "ftp://x"], "file:///path or s3://"),
        (
            vec!["--replica", "file:///tmp/a", "--follow", "file:///tmp/b"],
            "exclude each other",
        ),
        (
            vec!["--follow", empty.as_str()],
            "no files starting at TXID 1",
        ),
    ] {
        let out = serve(&args);
        assert!(!out.status.success(), "{args:?} started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(reason), "{args:?}: {err}");
    }
}
