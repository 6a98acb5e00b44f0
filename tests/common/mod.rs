//! Test harness: start the real `outpost` binary on an ephemeral loopback port with a temp data
//! dir, and talk to it over HTTP.
#![allow(dead_code)]

pub mod replication;

use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The JWT secret every test server uses, so tests can mint their own tokens.
pub const SECRET: &str = "outpost-test-secret-0123456789abcdef0123456789";

/// The blog tables the data-API tests share (`authors`, `posts`, `comments`); each test file adds
/// its own tables and rows in a second migration.
pub const BLOG_TABLES: &str = r#"
CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, bio TEXT);
CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    published BOOLEAN NOT NULL DEFAULT 0,
    meta JSON,
    author_id INTEGER REFERENCES authors(id),
    score REAL,
    data BLOB,
    created_at TEXT DEFAULT (now()),
    uid TEXT DEFAULT (gen_random_uuid()),
    CHECK (length(title) > 0)
);
CREATE TABLE comments (id INTEGER PRIMARY KEY, post_id INTEGER NOT NULL REFERENCES posts(id), body TEXT);
"#;

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf, bool);

impl TempDir {
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!("outpost-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p, true)
    }

    /// Hand the directory to a new owner; this handle will no longer remove it.
    fn take(&mut self) -> TempDir {
        self.1 = false;
        TempDir(self.0.clone(), true)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A running server.
pub struct Server {
    pub url: String,
    pub child: Child,
    pub dir: TempDir,
    pub client: Client,
    pub service_key: String,
    pub anon_key: String,
    /// Every line the server printed on stdout (its banner).
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Sign claims with the test secret.
pub fn mint(claims: Value) -> String {
    outpost::keys::sign(SECRET, &claims).expect("sign")
}

impl Server {
    /// Start a server whose user migrations are `migrations` (file name, SQL).
    pub fn start(migrations: &[(&str, &str)]) -> Server {
        let dir = TempDir::new();
        let mig = dir.0.join("migrations");
        std::fs::create_dir_all(&mig).expect("mkdir");
        for (name, sql) in migrations {
            std::fs::write(mig.join(name), sql).expect("write migration");
        }
        Self::start_in(dir)
    }

    /// Start (or restart) a server on an existing temp dir (`<dir>/data`, `<dir>/migrations`).
    pub fn start_in(dir: TempDir) -> Server {
        Self::start_in_env(dir, &[])
    }

    /// Start a server with `migrations` and extra environment variables.
    pub fn start_env(migrations: &[(&str, &str)], env: &[(&str, &str)]) -> Server {
        let dir = TempDir::new();
        let mig = dir.0.join("migrations");
        std::fs::create_dir_all(&mig).expect("mkdir");
        for (name, sql) in migrations {
            std::fs::write(mig.join(name), sql).expect("write migration");
        }
        Self::start_in_env(dir, env)
    }

    /// Start a server on an existing temp dir with extra environment variables.
    pub fn start_in_env(dir: TempDir, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_outpost"))
            .args(["serve", "--http", "127.0.0.1:0", "--data-dir"])
            .arg(dir.0.join("data"))
            .arg("--migrations-dir")
            .arg(dir.0.join("migrations"))
            .env("OUTPOST_JWT_SECRET", SECRET)
            .env("OUTPOST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn outpost");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let printed: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let lines = printed.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on ") {
                    let _ = tx.send(line[i + "listening on ".len()..].trim().to_string());
                }
                if let Ok(mut l) = lines.lock() {
                    l.push(line);
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("server did not start: {err}");
            }
        };
        // Drain stderr so the child never blocks on a full pipe.
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if std::env::var_os("OUTPOST_TEST_VERBOSE").is_some() {
                        eprintln!("[server] {line}");
                    }
                }
            });
        }
        let now = 1_700_000_000i64;
        Server {
            url,
            child,
            dir,
            client: Client::new(),
            service_key: mint(json!({"role": "service_role", "iss": "outpost", "iat": now})),
            anon_key: mint(json!({"role": "anon", "iss": "outpost", "iat": now})),
            stdout: printed,
        }
    }

    /// The rest of the first banner line starting with `label` (e.g. `"admin UI:"`), waiting a
    /// moment for it to be printed; `None` if the server never printed one.
    pub fn banner(&self, label: &str) -> Option<String> {
        let until = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            let found = self.stdout.lock().ok().and_then(|l| {
                l.iter().find_map(|x| {
                    x.trim_start()
                        .strip_prefix(label)
                        .map(|r| r.trim().to_string())
                })
            });
            if found.is_some() || std::time::Instant::now() > until {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Path of the database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.0.join("data").join("data.db")
    }

    /// A request with the service_role key.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.url, path))
            .header("apikey", &self.service_key)
            .header("authorization", format!("Bearer {}", self.service_key))
    }

    /// A request with no credentials.
    pub fn bare(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{}", self.url, path))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).send().await.expect("send")
    }

    /// GET and parse JSON, asserting the status.
    pub async fn get_json(&self, path: &str, status: u16) -> Value {
        let res = self.get(path).await;
        expect_json(res, status).await
    }

    pub async fn post_json(&self, path: &str, body: Value, prefer: &str) -> Response {
        let mut r = self.req(Method::POST, path).json(&body);
        if !prefer.is_empty() {
            r = r.header("prefer", prefer);
        }
        r.send().await.expect("send")
    }

    /// A request with a JSON body and an optional `Prefer` header, as service_role.
    pub async fn send(&self, method: Method, path: &str, body: Value, prefer: &str) -> Response {
        let mut r = self.req(method, path).json(&body);
        if !prefer.is_empty() {
            r = r.header("prefer", prefer);
        }
        r.send().await.expect("send")
    }

    /// GET `/rest/v1/{table}?{params}` as service_role, expecting 200 and JSON.
    pub async fn rows(&self, table: &str, params: &[(&str, &str)]) -> Value {
        self.get_json(&format!("/rest/v1/{table}?{}", qs(params)), 200)
            .await
    }

    /// Stop with SIGKILL.
    pub fn kill(mut self) -> TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.take()
    }

    /// Stop with SIGTERM and wait for a clean exit.
    pub fn terminate(mut self) -> (std::process::ExitStatus, TempDir) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = self.child.wait().expect("wait");
        (status, self.dir.take())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Assert the status and parse the JSON body.
pub async fn expect_json(res: Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let text = res.text().await.expect("body");
    assert_eq!(got, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Assert a PostgREST error: status, code, and the four keys.
pub async fn expect_error(res: Response, status: u16, code: &str) -> Value {
    let body = expect_json(res, status).await;
    assert_eq!(body["code"], code, "wrong code: {body}");
    for k in ["code", "details", "hint", "message"] {
        assert!(body.get(k).is_some(), "missing {k} in {body}");
    }
    body
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Users the row-level security tests act as.
pub const USER_A: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
pub const USER_B: &str = "bbbbbbbb-0000-4000-8000-00000000000b";
pub const USER_C: &str = "cccccccc-0000-4000-8000-00000000000c";

/// Who sends a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Anon,
    A,
    B,
    C,
    Service,
}

impl Who {
    pub fn uid(self) -> Option<&'static str> {
        match self {
            Who::A => Some(USER_A),
            Who::B => Some(USER_B),
            Who::C => Some(USER_C),
            Who::Anon | Who::Service => None,
        }
    }

    pub fn email(self) -> &'static str {
        match self {
            Who::A => "a@x",
            Who::B => "b@x",
            _ => "c@x",
        }
    }
}

/// A request as `who`: the anon key as `apikey`, and the caller's token as bearer.
pub fn as_who(s: &Server, who: Who, method: Method, path: &str) -> RequestBuilder {
    let url = format!("/rest/v1/{path}");
    match who {
        Who::Service => s.req(method, &url),
        Who::Anon => s
            .bare(method, &url)
            .header("apikey", &s.anon_key)
            .header("authorization", format!("Bearer {}", s.anon_key)),
        user => {
            let token = mint(json!({
                "role": "authenticated",
                "sub": user.uid(),
                "email": user.email(),
                "exp": 4000000000i64,
            }));
            s.bare(method, &url)
                .header("apikey", &s.anon_key)
                .header("authorization", format!("Bearer {token}"))
        }
    }
}

/// Form-encode a query string from pairs.
pub fn qs(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}
