//! Durability: every acknowledged insert survives `kill -9`, and the database stays intact.

mod common;
use common::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_inserts_survive_kill_9() {
    let s = Server::start(&[(
        "001.sql",
        "CREATE TABLE events (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, seq INTEGER NOT NULL, payload TEXT, UNIQUE (writer, seq));",
    )]);
    let acked: Arc<Mutex<Vec<(i64, i64)>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for writer in 0..16i64 {
        let client = s.client.clone();
        let url = format!("{}/rest/v1/events", s.url);
        let key = s.service_key.clone();
        let acked = acked.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut seq = 0i64;
            while !stop.load(Ordering::Relaxed) && seq < 100_000 {
                let res = client
                    .post(&url)
                    .header("apikey", &key)
                    .json(&json!({"writer": writer, "seq": seq, "payload": "x".repeat(200)}))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 201 => acked.lock().unwrap().push((writer, seq)),
                    // The server died mid-request: unacknowledged, so nothing is promised.
                    _ => break,
                }
                seq += 1;
            }
        }));
    }
    // Let writes flow, then kill without warning once enough are acknowledged.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while acked.lock().unwrap().len() < 2_000 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let dir = s.kill();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 500,
        "too few writes acknowledged before the kill: {}",
        acked.len()
    );

    // Restart on the same data dir: recovery replays the WAL.
    let s = Server::start_in(dir);
    let rows = s.get_json("/rest/v1/events?select=writer,seq", 200).await;
    let present: std::collections::HashSet<(i64, i64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["writer"].as_i64().unwrap(), r["seq"].as_i64().unwrap()))
        .collect();
    let missing: Vec<_> = acked.iter().filter(|k| !present.contains(k)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged rows lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );

    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let fk: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk, 0);
}
