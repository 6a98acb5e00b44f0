//! Continuous replication against the real `litestream` 0.5.17 binary, on a file replica and
//! on a real S3-compatible server (moto): a replica Outpost writes under a mixed load restores
//! exactly (latest, by TXID, by timestamp) with `litestream restore` and `outpost restore`; it
//! survives the destination going away and `kill -9`; and Outpost follows a replica that
//! `litestream replicate` writes.

mod common;
use common::replication::{dump, integrity, litestream_cmd, Moto, Proxy, S3_ENV};
use common::{Server, TempDir};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const ITEMS: &str = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, body TEXT);";
const MORE: &str = "ALTER TABLE items ADD COLUMN extra TEXT;
CREATE TABLE notes (id INTEGER PRIMARY KEY, item_id INTEGER REFERENCES items(id), text TEXT NOT NULL);";

/// A quick schedule so a test sees syncs, checkpoints and every compaction level.
const FAST: [(&str, &str); 4] = [
    ("OUTPOST_REPLICA_SYNC_INTERVAL", "100ms"),
    ("OUTPOST_REPLICA_CHECKPOINT_PAGES", "64"),
    ("OUTPOST_REPLICA_CHECKPOINT_INTERVAL", "2s"),
    ("OUTPOST_REPLICA_COMPACTION", "1s,3s,6s"),
];

fn env_with<'a>(url: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![("OUTPOST_REPLICA", url)];
    env.extend(FAST);
    env.extend(S3_ENV);
    env.extend_from_slice(extra);
    env
}

async fn status(s: &Server) -> Value {
    s.get_json("/_/api/replication", 200).await
}

/// Wait until everything written is at the destination and nothing moves; returns the TXID.
async fn settle(s: &Server) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = u64::MAX;
    loop {
        let st = status(s).await;
        let txid = st["txid"].as_u64().expect("txid");
        if txid == last
            && st["uploaded_txid"].as_u64() == Some(txid)
            && st["pending_files"].as_u64() == Some(0)
        {
            return txid;
        }
        last = txid;
        assert!(
            Instant::now() < deadline,
            "replication did not settle: {st}"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

fn big(i: i64) -> String {
    format!("row {i} {}", "x".repeat(800 + (i as usize * 37) % 900))
}

async fn insert(s: &Server, from: i64, to: i64) {
    let rows: Vec<Value> = (from..to)
        .map(|i| json!({"id": i, "name": format!("n{i}"), "body": big(i)}))
        .collect();
    let res = s
        .send(
            Method::POST,
            "/rest/v1/items",
            json!(rows),
            "return=minimal",
        )
        .await;
    assert_eq!(
        res.status().as_u16(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
}

/// A state of the primary and where it is in the replica.
struct Point {
    txid: u64,
    /// RFC 3339, after this state was shipped and before the next change.
    after: String,
    rows: Vec<String>,
}

async fn point(s: &Server) -> Point {
    let txid = settle(s).await;
    let rows = dump(&s.db_path());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = outpost::replication::status::now_rfc3339();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    Point { txid, after, rows }
}

fn litestream_restore(url: &str, out: &Path, args: &[&str]) -> Output {
    litestream_cmd()
        .arg("restore")
        .args(args)
        .arg("-o")
        .arg(out)
        .arg(url)
        .output()
        .expect("run litestream restore")
}

fn outpost_restore(url: &str, out: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
        .envs(S3_ENV)
        .args(["restore", "--replica", url, "--output"])
        .arg(out)
        .args(args)
        .output()
        .expect("run outpost restore")
}

fn check_restore(what: &str, out: Output, file: &Path, expected: &[String]) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(integrity(file), "ok", "{what}: integrity_check");
    let got = dump(file);
    assert!(
        got == expected,
        "{what}: restored rows differ ({} rows vs {} expected)",
        got.len(),
        expected.len()
    );
}

/// Stop the primary cleanly; the latest state, restored by `litestream` and by Outpost, must
/// equal its database. Returns the data dir.
fn stop_and_restore_latest(s: Server, url: &str, what: &str) -> TempDir {
    let (code, dir) = s.terminate();
    assert!(code.success(), "{what}: the primary did not stop cleanly");
    let expected = dump(&dir.0.join("data/data.db"));
    let out = dir.0.join("restored.db");
    check_restore(
        &format!("litestream restore {what}"),
        litestream_restore(url, &out, &[]),
        &out,
        &expected,
    );
    let out = dir.0.join("ours.db");
    check_restore(
        &format!("outpost restore {what}"),
        outpost_restore(url, &out, &[]),
        &out,
        &expected,
    );
    dir
}

/// Inserts, updates, deletes, a schema change across a restart, a VACUUM that shrinks the
/// file, more inserts; after each, the replica must restore to exactly that state.
async fn mixed_load(url: &str) {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.0.join("migrations")).expect("mkdir");
    std::fs::write(dir.0.join("migrations/0001_items.sql"), ITEMS).expect("migration");
    let env = env_with(url, &[]);
    let mut s = Server::start_in_env(dir, &env);
    let mut points = Vec::new();

    // Grow past many pages (each row ~1–2 KB, several thousand pages in all).
    for chunk in 0..6 {
        insert(&s, chunk * 100, chunk * 100 + 100).await;
    }
    points.push(point(&s).await);
    // A read replica follows the whole run: updates, deletes, the schema change, the VACUUM.
    let mut follow_env = vec![
        ("OUTPOST_FOLLOW", url),
        ("OUTPOST_FOLLOW_INTERVAL", "200ms"),
    ];
    follow_env.extend(S3_ENV);
    let follower = Server::start_in_env(TempDir::new(), &follow_env);
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/items?id=lt.250",
            json!({"name": "updated"}),
            "",
        )
        .await;
    assert_eq!(res.status().as_u16(), 204);
    points.push(point(&s).await);
    let res = s
        .send(Method::DELETE, "/rest/v1/items?id=gte.450", json!(null), "")
        .await;
    assert_eq!(res.status().as_u16(), 204);
    points.push(point(&s).await);

    // A schema change arrives as a migration across a clean restart.
    let (code, dir) = s.terminate();
    assert!(code.success());
    std::fs::write(dir.0.join("migrations/0002_more.sql"), MORE).expect("migration");
    s = Server::start_in_env(dir, &env);
    let res = s
        .send(
            Method::POST,
            "/rest/v1/notes",
            json!([{"item_id": 1, "text": "a"}, {"item_id": 2, "text": "b"}]),
            "",
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/items?id=lt.10",
            json!({"extra": "e"}),
            "",
        )
        .await;
    assert_eq!(res.status().as_u16(), 204);
    points.push(point(&s).await);

    // Another process shrinks the database (its commit reaches no notification: the
    // replicator's idle sync finds it).
    let pages_before = std::fs::metadata(s.db_path()).map(|m| m.len()).unwrap_or(0);
    {
        let c = rusqlite::Connection::open(s.db_path()).expect("open");
        c.busy_timeout(Duration::from_secs(10)).expect("busy");
        c.execute_batch(
            "PRAGMA wal_autocheckpoint = 0;
             DELETE FROM notes; DELETE FROM items WHERE id % 5 != 0; VACUUM;",
        )
        .expect("vacuum");
    }
    points.push(point(&s).await);
    insert(&s, 1000, 1100).await;
    points.push(point(&s).await);
    // The replica reaches the same TXID and holds exactly the primary's database.
    let last = points.last().map_or(0, |p| p.txid);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = follower.get_json("/health", 200).await;
        if h["replication"]["txid"] == json!(format!("{last:016x}")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never reached {last:x}: {h}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        dump(&follower.db_path()) == dump(&s.db_path()),
        "the replica's database differs from the primary's"
    );
    assert_eq!(integrity(&follower.db_path()), "ok");
    let rows = follower.rows("notes", &[("select", "id")]).await;
    assert_eq!(
        rows,
        json!([]),
        "the replica's schema cache knows the new table"
    );
    drop(follower);
    let st = status(&s).await;
    assert!(
        st["last_checkpoint_at"].is_string(),
        "checkpoints ran: {st}"
    );
    let (code, dir) = s.terminate();
    assert!(code.success());
    let db = dir.0.join("data/data.db");
    let final_rows = dump(&db);
    assert!(
        std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) < pages_before,
        "the VACUUM shrank the file"
    );

    let out = dir.0.join("restores");
    std::fs::create_dir_all(&out).expect("mkdir");
    let latest = out.join("latest.db");
    check_restore(
        "litestream restore (latest)",
        litestream_restore(url, &latest, &[]),
        &latest,
        &final_rows,
    );
    let ours = out.join("ours.db");
    check_restore(
        "outpost restore (latest)",
        outpost_restore(url, &ours, &[]),
        &ours,
        &final_rows,
    );
    for (i, p) in points.iter().enumerate() {
        let txid = format!("{:016x}", p.txid);
        let f = out.join(format!("txid-{i}.db"));
        check_restore(
            &format!("litestream restore -txid {txid}"),
            litestream_restore(url, &f, &["-txid", &txid]),
            &f,
            &p.rows,
        );
        if i + 1 == points.len() {
            // Litestream takes only times within the replica's span; the last state's
            // "after" lies past its last file.
            continue;
        }
        let f = out.join(format!("ts-{i}.db"));
        check_restore(
            &format!("litestream restore -timestamp {}", p.after),
            litestream_restore(url, &f, &["-timestamp", &p.after]),
            &f,
            &p.rows,
        );
        let f = out.join(format!("ours-txid-{i}.db"));
        check_restore(
            &format!("outpost restore --txid {txid}"),
            outpost_restore(url, &f, &["--txid", &txid]),
            &f,
            &p.rows,
        );
    }
    let f = out.join("ours-ts.db");
    check_restore(
        "outpost restore --timestamp",
        outpost_restore(url, &f, &["--timestamp", &points[2].after]),
        &f,
        &points[2].rows,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_replica_restores_exactly_under_a_mixed_load() {
    let dir = TempDir::new();
    let url = format!("file://{}", dir.0.join("replica").display());
    mixed_load(&url).await;
    // Every level Litestream uses is there, and files carry the header time as mtime.
    for level in ["0", "1", "2", "3", "9"] {
        let d = dir.0.join("replica/ltx").join(level);
        let n = std::fs::read_dir(&d).map(|r| r.count()).unwrap_or(0);
        assert!(n > 0, "no files at level {level}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_replica_restores_exactly_under_a_mixed_load() {
    let moto = Moto::start("mixed");
    let url = moto.url("backups/app.db");
    mixed_load(&url).await;
    let keys = moto.keys("backups/app.db/");
    for level in ["0000", "0001", "0002", "0003", "0009"] {
        assert!(
            keys.iter()
                .any(|k| k.starts_with(&format!("backups/app.db/{level}/"))),
            "no files at level {level}: {keys:?}"
        );
    }
    // Each object carries Litestream's timestamp metadata, equal to its header's time.
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    let replica = outpost::replication::replica::Replica::open(&url).expect("open replica");
    let entries = replica.list().await.expect("list");
    assert!(!entries.is_empty());
    for e in entries.iter().take(5) {
        let meta = replica.op.stat(&e.key).await.expect("stat");
        let stamp = meta
            .user_metadata()
            .and_then(|m| m.get("litestream-timestamp"))
            .cloned()
            .unwrap_or_default();
        let bytes = replica.op.read(&e.key).await.expect("read").to_vec();
        let header = outpost::replication::ltx::read_header(&bytes).expect("header");
        assert_eq!(
            stamp,
            outpost::replication::status::rfc3339_ms(header.timestamp),
            "{}",
            e.key
        );
    }
}

/// Rows written continuously until `stop` is set; returns how many were acknowledged.
fn writer_load(
    url: String,
    key: String,
    start: i64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<i64> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut i = start;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let rows: Vec<Value> = (i..i + 20)
                .map(|j| json!({"id": j, "name": format!("n{j}"), "body": big(j)}))
                .collect();
            let ok = client
                .post(format!("{url}/rest/v1/items"))
                .header("apikey", &key)
                .header("authorization", format!("Bearer {key}"))
                .json(&rows)
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 201);
            if !ok {
                break;
            }
            i += 20;
        }
        i - start
    })
}

/// The destination goes away and comes back (`outage` takes it down, `restore` brings it
/// back); Outpost is killed with SIGKILL while writing and shipping, twice; afterwards the
/// replica restores to exactly the primary's database.
async fn faults(url: &str, outage: impl Fn(), back: impl Fn()) {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.0.join("migrations")).expect("mkdir");
    std::fs::write(dir.0.join("migrations/0001_items.sql"), ITEMS).expect("migration");
    let env = env_with(url, &[]);
    let s = Server::start_in_env(dir, &env);
    insert(&s, 0, 200).await;
    let before = settle(&s).await;

    outage();
    // Writes never wait for the destination.
    insert(&s, 200, 400).await;
    insert(&s, 400, 500).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = status(&s).await;
        if st["pending_files"].as_u64().unwrap_or(0) > 0
            && st["last_error"].is_string()
            && st["lag_seconds"].as_f64().unwrap_or(0.0) > 0.0
            && st["txid"].as_u64().unwrap_or(0) > before
        {
            assert_eq!(st["uploaded_txid"].as_u64(), Some(before), "{st}");
            break;
        }
        assert!(Instant::now() < deadline, "the outage never showed: {st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let health = s.get_json("/health", 200).await;
    assert!(
        health["replication"]["lag_seconds"].as_f64().unwrap_or(0.0) > 0.0,
        "{health}"
    );
    back();
    let txid = settle(&s).await;
    assert!(txid > before);

    // SIGKILL in the middle of writing and shipping.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = writer_load(s.url.clone(), s.service_key.clone(), 10_000, stop.clone());
    tokio::time::sleep(Duration::from_millis(700)).await;
    let dir = s.kill();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let written = load.await.expect("load");
    assert!(written > 0, "the load wrote before the kill");
    // Again, right after start, while the start-up snapshot is cut and uploaded.
    let s = Server::start_in_env(dir, &env);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let dir = s.kill();
    let s = Server::start_in_env(dir, &env);
    insert(&s, 50_000, 50_100).await;
    settle(&s).await;
    let dir = stop_and_restore_latest(s, url, "after faults");
    let restored = dump(&dir.0.join("restored.db"));
    assert!(
        restored.iter().any(|r| r.contains("\"n50099\"")),
        "the last write made it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_replica_survives_an_outage_and_kill_9() {
    let base = TempDir::new();
    let replica = base.0.join("replica");
    let away = base.0.join("replica.away");
    let url = format!("file://{}", replica.display());
    let (r1, a1) = (replica.clone(), away.clone());
    let (r2, a2) = (replica.clone(), away.clone());
    faults(
        &url,
        // The folder is replaced by a plain file: every write and listing fails.
        move || {
            std::fs::rename(&r1, &a1).expect("move away");
            std::fs::write(&r1, b"not a folder").expect("block");
        },
        move || {
            std::fs::remove_file(&r2).expect("unblock");
            std::fs::rename(&a2, &r2).expect("move back");
        },
    )
    .await;
    // No TXID is missing from level 0 (nothing was pruned in so short a run).
    let mut txids: Vec<(u64, u64)> = std::fs::read_dir(replica.join("ltx/0"))
        .expect("level 0")
        .filter_map(|e| e.ok())
        .filter_map(|e| outpost::replication::replica::parse_name(&e.file_name().to_string_lossy()))
        .collect();
    txids.sort();
    for w in txids.windows(2) {
        assert_eq!(w[1].0, w[0].1 + 1, "gap between {:?} and {:?}", w[0], w[1]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_replica_survives_an_outage_and_kill_9() {
    let moto = Moto::start("faults");
    let proxy = std::sync::Arc::new(Proxy::start(moto.port));
    let url = moto.url_via(proxy.port, "app");
    let (p1, p2) = (proxy.clone(), proxy.clone());
    faults(&url, move || p1.down(), move || p2.up()).await;
}

/// `litestream replicate` ships a database Outpost created; an Outpost read replica restores
/// it, follows it, serves its rows and refuses writes.
async fn follow_litestream(url: &str) {
    // A database with Outpost's schema and an app table, as a primary would have.
    let primary = Server::start(&[("0001_items.sql", ITEMS)]);
    let (code, pdir) = primary.terminate();
    assert!(code.success());
    let db = pdir.0.join("data/data.db");
    let app = rusqlite::Connection::open(&db).expect("open");
    app.busy_timeout(Duration::from_secs(10)).expect("busy");
    app.execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;")
        .expect("wal");
    let write = |from: i64, to: i64| {
        for i in from..to {
            app.execute(
                "INSERT INTO items (id, name, body) VALUES (?1, ?2, ?3)",
                rusqlite::params![i, format!("n{i}"), big(i)],
            )
            .expect("insert");
        }
    };
    write(0, 150);
    let mut ls = litestream_cmd()
        .arg("replicate")
        .arg(&db)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("litestream replicate");
    // Until litestream has shipped the first state, a replica has nothing to restore.
    let probe = pdir.0.join("probe.db");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !litestream_restore(url, &probe, &[]).status.success() {
        assert!(Instant::now() < deadline, "litestream shipped nothing");
        let _ = std::fs::remove_file(&probe);
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut env = vec![
        ("OUTPOST_FOLLOW", url),
        ("OUTPOST_FOLLOW_INTERVAL", "200ms"),
    ];
    env.extend(S3_ENV);
    let follower = Server::start_in_env(TempDir::new(), &env);
    let wait_rows = |n: usize| {
        let f = &follower;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let rows = f
                    .rows("items", &[("select", "id,name"), ("order", "id")])
                    .await;
                if rows.as_array().map_or(0, Vec::len) == n {
                    return rows;
                }
                assert!(
                    Instant::now() < deadline,
                    "the replica never reached {n} rows"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let rows = wait_rows(150).await;
    assert_eq!(rows[149], json!({"id": 149, "name": "n149"}));
    write(150, 400);
    app.execute("UPDATE items SET name = 'changed' WHERE id < 10", [])
        .expect("update");
    let rows = wait_rows(400).await;
    assert_eq!(rows[0]["name"], "changed");
    assert_eq!(rows[399], json!({"id": 399, "name": "n399"}));
    let res = follower
        .send(
            Method::POST,
            "/rest/v1/items",
            json!({"id": 9999, "name": "x"}),
            "",
        )
        .await;
    let body = common::expect_error(res, 405, "25006").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("read replica"),
        "{body}"
    );
    let health = follower.get_json("/health", 200).await;
    assert_eq!(health["replication"]["role"], "replica", "{health}");
    let _ = ls.kill();
    let _ = ls.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outpost_follows_a_file_replica_litestream_writes() {
    let dir = TempDir::new();
    let url = format!("file://{}", dir.0.join("replica").display());
    follow_litestream(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outpost_follows_an_s3_replica_litestream_writes() {
    let moto = Moto::start("followed");
    let url = moto.url("db");
    follow_litestream(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_what_litestream_prunes_and_keeps_restores_exact() {
    let base = TempDir::new();
    let replica = base.0.join("replica");
    let url = format!("file://{}", replica.display());
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.0.join("migrations")).expect("mkdir");
    std::fs::write(dir.0.join("migrations/0001_items.sql"), ITEMS).expect("migration");
    let env = env_with(
        &url,
        &[
            ("OUTPOST_REPLICA_L0_RETENTION", "1s"),
            ("OUTPOST_REPLICA_RETENTION", "2s"),
            ("OUTPOST_REPLICA_SNAPSHOT_INTERVAL", "3s"),
        ],
    );
    let s = Server::start_in_env(dir, &env);
    let count = |level: &str| {
        std::fs::read_dir(replica.join("ltx").join(level))
            .map(|r| r.filter_map(Result::ok).count())
            .unwrap_or(0)
    };
    let mut most_l0 = 0;
    for round in 0..12 {
        insert(&s, round * 20, round * 20 + 20).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        most_l0 = most_l0.max(count("0"));
    }
    let txid = settle(&s).await;
    // Let the last compaction and pruning pass run.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let st = status(&s).await;
    assert!(
        st["last_snapshot_txid"].as_u64().unwrap_or(0) > 1,
        "periodic snapshots: {st}"
    );
    assert!(count("0") >= 1, "the newest level-0 file always stays");
    assert!(
        count("0") < txid as usize,
        "compacted level-0 files were pruned: {} files for {txid} TXIDs",
        count("0")
    );
    assert!(
        count("9") >= 1 && count("9") <= 3,
        "old snapshots pruned: {}",
        count("9")
    );
    stop_and_restore_latest(s, &url, "after pruning");
    assert!(most_l0 > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_serves_storage_reads_from_the_primarys_backend() {
    let moto = Moto::start("objects");
    let base = TempDir::new();
    let url = format!("file://{}", base.0.join("replica").display());
    let endpoint = format!("http://127.0.0.1:{}", moto.port);
    let storage = [
        ("OUTPOST_STORAGE_BACKEND", "s3"),
        ("OUTPOST_STORAGE_S3_BUCKET", "objects"),
        ("OUTPOST_STORAGE_S3_ENDPOINT", endpoint.as_str()),
    ];
    let primary = Server::start_env(&[("0001_items.sql", ITEMS)], &env_with(&url, &storage));
    let res = primary
        .send(
            Method::POST,
            "/storage/v1/bucket",
            json!({"id": "docs", "name": "docs"}),
            "",
        )
        .await;
    assert_eq!(
        res.status().as_u16(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let res = primary
        .req(Method::POST, "/storage/v1/object/docs/notes/hello.txt")
        .header("content-type", "text/plain")
        .body("hello from the primary")
        .send()
        .await
        .expect("upload");
    assert_eq!(
        res.status().as_u16(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    settle(&primary).await;

    let mut env = vec![
        ("OUTPOST_FOLLOW", url.as_str()),
        ("OUTPOST_FOLLOW_INTERVAL", "200ms"),
    ];
    env.extend(storage);
    env.extend(S3_ENV);
    let follower = Server::start_in_env(TempDir::new(), &env);
    let res = follower
        .get("/storage/v1/object/docs/notes/hello.txt")
        .await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.text().await.expect("body"), "hello from the primary");
    let listed = common::expect_json(
        follower
            .send(
                Method::POST,
                "/storage/v1/object/list/docs",
                json!({"prefix": "notes"}),
                "",
            )
            .await,
        200,
    )
    .await;
    assert_eq!(listed[0]["name"], "hello.txt", "{listed}");

    // A later upload on the primary becomes readable on the replica.
    let res = primary
        .req(Method::POST, "/storage/v1/object/docs/notes/later.txt")
        .header("content-type", "text/plain")
        .body("later")
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status().as_u16(), 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = follower
            .get("/storage/v1/object/docs/notes/later.txt")
            .await;
        if res.status().as_u16() == 200 {
            assert_eq!(res.text().await.expect("body"), "later");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never served later.txt"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Uploads to the replica are refused in storage's error shape; nothing reaches the bucket.
    let before = moto.keys("").len();
    let res = follower
        .req(Method::POST, "/storage/v1/object/docs/notes/nope.txt")
        .header("content-type", "text/plain")
        .body("nope")
        .send()
        .await
        .expect("upload");
    let body = common::expect_json(res, 405).await;
    assert_eq!(body["error"], "ReadOnlyReplica", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("read replica"),
        "{body}"
    );
    assert_eq!(moto.keys("").len(), before, "no object bytes were written");
    let res = primary.get("/storage/v1/object/docs/notes/nope.txt").await;
    assert_eq!(res.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_by_another_process_is_repaired_by_a_snapshot() {
    let base = TempDir::new();
    let replica = base.0.join("replica");
    let url = format!("file://{}", replica.display());
    let s = Server::start_env(&[("0001_items.sql", ITEMS)], &env_with(&url, &[]));
    insert(&s, 0, 100).await;
    let before = settle(&s).await;
    // Another program folds the WAL into the database and truncates it: the frames the next
    // commits write start a generation the replicator did not see begin.
    {
        let c = rusqlite::Connection::open(s.db_path()).expect("open");
        c.busy_timeout(Duration::from_secs(10)).expect("busy");
        let (busy, log): (i64, i64) = c
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("checkpoint");
        assert_eq!((busy, log), (0, 0), "the outside checkpoint went through");
    }
    insert(&s, 100, 200).await;
    let after = settle(&s).await;
    assert!(after > before);
    // The first file after the break is a full copy: every page of the database.
    let snap = (before + 1..=after)
        .map(|t| {
            replica
                .join("ltx/0")
                .join(outpost::replication::ltx::file_name(t, t))
        })
        .find_map(|p| {
            let bytes = std::fs::read(p).ok()?;
            let l = outpost::replication::ltx::decode(&bytes).ok()?;
            (l.pages.len() as u32 + 1 >= l.header.commit).then_some(l.header.max_txid)
        });
    assert!(
        snap.is_some(),
        "no full level-0 snapshot after the outside checkpoint"
    );
    let dir = stop_and_restore_latest(s, &url, "across the break");
    let out = dir.0.join("at-break.db");
    let txid = format!("{before:016x}");
    let res = litestream_restore(&url, &out, &["-txid", &txid]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(integrity(&out), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_can_forward_writes_to_its_primary() {
    let base = TempDir::new();
    let url = format!("file://{}", base.0.join("replica").display());
    let primary = Server::start_env(&[("0001_items.sql", ITEMS)], &env_with(&url, &[]));
    insert(&primary, 0, 5).await;
    settle(&primary).await;
    let mut env = vec![
        ("OUTPOST_FOLLOW", url.as_str()),
        ("OUTPOST_FOLLOW_INTERVAL", "200ms"),
        ("OUTPOST_PRIMARY_URL", primary.url.as_str()),
        ("OUTPOST_PROXY_WRITES", "true"),
    ];
    env.extend(S3_ENV);
    let follower = Server::start_in_env(TempDir::new(), &env);
    // A write sent to the replica is made on the primary, answered as the primary answers it.
    let created = common::expect_json(
        follower
            .send(
                Method::POST,
                "/rest/v1/items",
                json!({"id": 77, "name": "via replica"}),
                "return=representation",
            )
            .await,
        201,
    )
    .await;
    assert_eq!(
        created,
        json!([{"id": 77, "name": "via replica", "body": null}])
    );
    let on_primary = primary
        .rows("items", &[("id", "eq.77"), ("select", "name")])
        .await;
    assert_eq!(on_primary, json!([{"name": "via replica"}]));
    // The primary's errors come back unchanged.
    let res = follower
        .send(
            Method::POST,
            "/rest/v1/items",
            json!({"id": 77, "name": "again"}),
            "",
        )
        .await;
    common::expect_error(res, 409, "23505").await;
    // And the replica reads the write once it applied it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = follower
            .rows("items", &[("id", "eq.77"), ("select", "name")])
            .await;
        if rows == json!([{"name": "via replica"}]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never read its forwarded write"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // With the primary gone, a forwarded write fails clearly; reads go on.
    drop(primary);
    let res = follower
        .send(
            Method::POST,
            "/rest/v1/items",
            json!({"id": 78, "name": "x"}),
            "",
        )
        .await;
    let body = common::expect_json(res, 502).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("cannot reach its primary"),
        "{body}"
    );
    assert_eq!(
        follower
            .rows("items", &[("select", "id")])
            .await
            .as_array()
            .map(Vec::len),
        Some(6)
    );

    // Forwarding without saying where to is refused at start.
    let out = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["serve", "--http", "127.0.0.1:0", "--follow", &url])
        .arg("--data-dir")
        .arg(base.0.join("other"))
        .env("OUTPOST_PROXY_WRITES", "true")
        .env_remove("OUTPOST_PRIMARY_URL")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("OUTPOST_PRIMARY_URL"));
}
