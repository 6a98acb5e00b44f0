//! Object bytes and rows stay in step when uploads fail, are cut off, or the process dies.

mod common;
use common::*;
use reqwest::Method;
use serde_json::json;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

fn stored_files(data: &Path) -> Vec<String> {
    let dir = data.join("storage/objects");
    match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn object_rows(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.query_row("SELECT count(*) FROM _outpost_storage_objects", [], |r| {
        r.get(0)
    })
    .expect("count")
}

async fn create_bucket(s: &Server, id: &str) {
    let res = s
        .req(Method::POST, "/storage/v1/bucket")
        .json(&json!({"id": id}))
        .send()
        .await
        .expect("send");
    expect_json(res, 200).await;
}

/// Send the head of an upload and part of its body over a raw socket; returns the socket.
fn partial_upload(s: &Server, path: &str, declared: usize, sent: usize) -> TcpStream {
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut sock = TcpStream::connect(&addr).expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\napikey: {key}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n",
        key = s.service_key
    );
    sock.write_all(head.as_bytes()).expect("head");
    sock.write_all(&vec![b'x'; sent]).expect("body");
    sock.flush().expect("flush");
    sock
}

#[tokio::test]
async fn a_cut_off_upload_leaves_no_row_and_no_bytes() {
    let s = Server::start(&[]);
    create_bucket(&s, "files").await;
    let sock = partial_upload(&s, "/storage/v1/object/files/cut.bin", 100_000, 1_000);
    std::thread::sleep(Duration::from_millis(300));
    drop(sock);
    // The server notices the closed connection, removes the partial bytes and forgets them.
    let data = s.dir.0.join("data");
    let mut settled = false;
    for _ in 0..50 {
        if stored_files(&data).is_empty() {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        settled,
        "partial bytes left behind: {:?}",
        stored_files(&data)
    );
    assert_eq!(object_rows(&s.db_path()), 0);
    let res = s.get("/storage/v1/object/info/files/cut.bin").await;
    expect_json(res, 404).await;
    // A complete upload afterwards works and is the only thing stored.
    let res = s
        .req(Method::POST, "/storage/v1/object/files/whole.bin")
        .body(vec![b'y'; 2048])
        .send()
        .await
        .expect("send");
    expect_json(res, 200).await;
    assert_eq!(stored_files(&data).len(), 1);
    assert_eq!(object_rows(&s.db_path()), 1);
}

#[tokio::test]
async fn bytes_of_an_upload_interrupted_by_a_crash_are_swept_at_start() {
    let s = Server::start(&[]);
    create_bucket(&s, "files").await;
    let res = s
        .req(Method::POST, "/storage/v1/object/files/kept.txt")
        .body("kept")
        .send()
        .await
        .expect("send");
    expect_json(res, 200).await;
    // Half of a 4 MB upload is in the store when the process dies.
    let _sock = partial_upload(&s, "/storage/v1/object/files/big.bin", 4_000_000, 2_000_000);
    let data = s.dir.0.join("data");
    for _ in 0..50 {
        if stored_files(&data).len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        stored_files(&data).len(),
        2,
        "the partial upload reached the store"
    );
    let dir = s.kill();
    let s = Server::start_in(dir);
    let data = s.dir.0.join("data");
    assert_eq!(
        stored_files(&data).len(),
        1,
        "only the committed object's bytes remain"
    );
    assert_eq!(object_rows(&s.db_path()), 1);
    let res = s.get("/storage/v1/object/files/kept.txt").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.expect("body"), "kept");
}

#[tokio::test]
async fn replaced_and_deleted_objects_take_their_bytes_with_them() {
    let s = Server::start(&[]);
    create_bucket(&s, "files").await;
    let data = s.dir.0.join("data");
    for body in ["one", "two"] {
        let res = s
            .req(Method::POST, "/storage/v1/object/files/a.txt")
            .header("x-upsert", "true")
            .body(body)
            .send()
            .await
            .expect("send");
        expect_json(res, 200).await;
    }
    assert_eq!(
        stored_files(&data).len(),
        1,
        "the replaced version's bytes are gone"
    );
    let res = s.get("/storage/v1/object/files/a.txt").await;
    assert_eq!(res.text().await.expect("body"), "two");
    let res = s
        .req(Method::DELETE, "/storage/v1/object/files")
        .json(&json!({"prefixes": ["a.txt"]}))
        .send()
        .await
        .expect("send");
    let removed = expect_json(res, 200).await;
    assert_eq!(removed[0]["name"], "a.txt");
    assert!(stored_files(&data).is_empty());
    assert_eq!(object_rows(&s.db_path()), 0);
}
