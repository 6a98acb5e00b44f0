//! The functions service: finding a function's source, checking the caller, handing the request
//! to the pool, and turning the outcome into a response (reference §6: `x-relay-error: true`
//! when Outpost, not the function, failed).

use super::local::Local;
use super::logs::{Entry, Line, Logs};
use super::pool::{Pool, Refused};
use super::runtime::{self, Body, Failure, Invocation};
use super::store;
use crate::app::AppState;
use crate::db::{Db, DbError};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// Settings from `--functions-dir` and `OUTPOST_FUNCTIONS_*`.
#[derive(Debug, Clone)]
pub struct FunctionsConfig {
    pub dir: Option<PathBuf>,
    pub workers: usize,
    pub queue: usize,
    /// Wall-clock limit per invocation (`OUTPOST_FUNCTIONS_TIMEOUT`, 10s).
    pub timeout: Duration,
    /// Loop iterations an invocation may run (`OUTPOST_FUNCTIONS_LOOP_LIMIT`, 100 million).
    pub loop_limit: u64,
    /// Largest request and response body (`OUTPOST_FUNCTIONS_MAX_BODY_BYTES`, 10 MiB).
    pub max_body: usize,
    /// Hosts `fetch` may reach, comma-separated (`OUTPOST_FUNCTIONS_FETCH_ALLOW`, `*`: any).
    pub fetch_allow: std::sync::Arc<Vec<String>>,
    /// Invocations kept in each function's log (`OUTPOST_FUNCTIONS_LOG_ENTRIES`, 100).
    pub log_entries: usize,
    /// Reuse each worker's warm, frozen context (`OUTPOST_FUNCTIONS_WARM`, true); false builds
    /// a fresh one for every invocation.
    pub warm: bool,
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| format!("{name}={v} is not valid here")),
        _ => Ok(default),
    }
}

impl FunctionsConfig {
    /// Settings for functions in `dir`.
    pub fn from_env(dir: Option<PathBuf>) -> Result<FunctionsConfig, String> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let timeout =
            crate::config::env_duration("OUTPOST_FUNCTIONS_TIMEOUT", Duration::from_secs(10))?;
        Ok(FunctionsConfig {
            dir,
            workers: number("OUTPOST_FUNCTIONS_WORKERS", cores)?.max(1),
            queue: number("OUTPOST_FUNCTIONS_QUEUE", 64)?,
            timeout,
            loop_limit: number("OUTPOST_FUNCTIONS_LOOP_LIMIT", 100_000_000)?,
            max_body: number("OUTPOST_FUNCTIONS_MAX_BODY_BYTES", 10 * 1024 * 1024)?,
            log_entries: number("OUTPOST_FUNCTIONS_LOG_ENTRIES", 100)?,
            warm: number("OUTPOST_FUNCTIONS_WARM", true)?,
            fetch_allow: std::sync::Arc::new(
                std::env::var("OUTPOST_FUNCTIONS_FETCH_ALLOW")
                    .unwrap_or_else(|_| "*".into())
                    .split(',')
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
                    .collect(),
            ),
        })
    }
}

/// Where a function's code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `--functions-dir/<name>/index.js`: edited on disk, re-read on change.
    Directory,
    /// Deployed through the admin API into `_outpost_js_functions`.
    Database,
}

/// What tells a cached copy is still current: file times, or the deployed version.
#[derive(Debug, Clone, PartialEq)]
enum Stamp {
    Files(SystemTime, Option<SystemTime>),
    Version(i64),
}

#[derive(Clone)]
pub(super) struct Loaded {
    stamp: Stamp,
    pub(super) origin: Origin,
    pub(super) source: String,
    pub(super) verify_jwt: bool,
    /// A cron expression (5 or 6 fields, UTC).
    pub(super) schedule: Option<String>,
}

/// Functions and the workers that run them.
pub struct FunctionsService {
    pub config: FunctionsConfig,
    pool: Pool,
    cache: Mutex<HashMap<String, Loaded>>,
    /// `SUPABASE_URL`, `SUPABASE_ANON_KEY`, `SUPABASE_SERVICE_ROLE_KEY`.
    env: HashMap<String, String>,
    /// Outpost's router, set once it is built, for in-process requests from functions; taken
    /// away at shutdown (it holds the state that holds this service).
    local: RwLock<Option<Local>>,
    /// The last invocations of each function.
    pub logs: Logs,
}

/// Why an internal call (cron, webhooks) failed.
pub type CallError = String;

/// A name a function may have: letters, digits, `-` and `_`, at most 64.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl FunctionsService {
    /// Start the worker pool; `env` is what `Deno.env` shows every function besides secrets.
    pub fn new(config: FunctionsConfig, env: HashMap<String, String>) -> FunctionsService {
        let pool = Pool::start(
            config.workers,
            config.queue,
            config.warm.then_some(config.max_body),
        );
        let logs = Logs::new(config.log_entries);
        FunctionsService {
            config,
            pool,
            cache: Mutex::new(HashMap::new()),
            env,
            local: RwLock::new(None),
            logs,
        }
    }

    /// Let functions reach Outpost's APIs in-process through `router`.
    pub fn set_router(&self, router: axum::Router) {
        if let Ok(mut l) = self.local.write() {
            *l = Some(Local(router));
        }
    }

    /// Let go of the router (at shutdown), so the state it holds can be dropped.
    pub fn close(&self) {
        if let Ok(mut l) = self.local.write() {
            *l = None;
        }
    }

    /// Whether a function named `name` exists.
    pub async fn exists(&self, db: &Db, name: &str) -> bool {
        matches!(self.load(db, name).await, Ok(Some(_)))
    }

    /// Whether `name` is a folder in `--functions-dir` (those are edited on disk, not deployed).
    pub fn in_directory(&self, name: &str) -> bool {
        valid_name(name) && self.load_file(name).is_some()
    }

    /// Every function in `--functions-dir`: `(name, loaded)`.
    pub(super) fn directory(&self) -> Vec<(String, Loaded)> {
        let Some(dir) = &self.config.dir else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out: Vec<(String, Loaded)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let loaded = self.load_file(&name)?;
                Some((name, loaded))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Every function with a schedule: `(name, cron expression)`; a folder hides a deployed
    /// function of the same name.
    pub async fn schedules(&self, db: &Db) -> Vec<(String, String)> {
        let files = self.directory();
        let deployed = db
            .read(None, |conn| store::schedules(conn).map_err(DbError::from))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the deployed functions' schedules");
                Vec::new()
            });
        let mut out: Vec<(String, String)> = files
            .iter()
            .filter_map(|(n, l)| Some((n.clone(), l.schedule.clone()?)))
            .collect();
        out.extend(
            deployed
                .into_iter()
                .filter(|(n, _)| !files.iter().any(|(f, _)| f == n)),
        );
        out.sort();
        out
    }

    /// What `Deno.env` shows: the secrets, then the project's URL and keys (which no secret
    /// may replace).
    async fn environment(&self, db: &Db) -> HashMap<String, String> {
        let mut env = db
            .read(None, |conn| store::secrets(conn).map_err(DbError::from))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the functions' secrets");
                HashMap::new()
            });
        env.extend(self.env.clone());
        env
    }

    fn invocation(
        &self,
        function: &Loaded,
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        env: HashMap<String, String>,
    ) -> Invocation {
        Invocation {
            source: function.source.clone(),
            method,
            url,
            headers,
            body,
            env,
            loop_limit: self.config.loop_limit,
            deadline: std::time::Instant::now() + self.config.timeout,
            fetch_allow: self.config.fetch_allow.clone(),
            local: self.local.read().ok().and_then(|l| l.clone()),
            max_body: self.config.max_body,
            warm: self.config.warm,
        }
    }

    /// Call `name` from inside Outpost (cron, webhooks): a POST with a JSON body, as
    /// service_role; `trigger` names the caller in the logs.
    pub async fn call(
        &self,
        db: &Db,
        name: &str,
        body: &serde_json::Value,
        trigger: &str,
    ) -> Result<u16, CallError> {
        let function = self
            .load(db, name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no function named {name}"))?;
        let public = self.env.get("SUPABASE_URL").cloned().unwrap_or_default();
        let key = self
            .env
            .get("SUPABASE_SERVICE_ROLE_KEY")
            .cloned()
            .unwrap_or_default();
        let env = self.environment(db).await;
        let invocation = self.invocation(
            &function,
            "POST".into(),
            format!("{public}/functions/v1/{name}"),
            vec![
                ("content-type".into(), "application/json".into()),
                ("authorization".into(), format!("Bearer {key}")),
                ("x-outpost-trigger".into(), trigger.into()),
            ],
            body.to_string().into_bytes(),
            env,
        );
        let mut log = Record::start(name, trigger, "POST", &format!("/{name}"));
        let rx = self.pool.submit(invocation).map_err(|_| {
            let e = "every function worker is busy".to_string();
            self.logs.push(log.fail(503, &e));
            e
        })?;
        let (result, lines) = match tokio::time::timeout(self.config.timeout, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => {
                let e = "the worker stopped".to_string();
                self.logs.push(log.fail(500, &e));
                return Err(e);
            }
            Err(_) => {
                let e = format!("no answer within {} ms", self.config.timeout.as_millis());
                self.logs.push(log.fail(504, &e));
                return Err(e);
            }
        };
        log.console(name, &lines);
        let out = match result {
            Ok(reply) if (200..300).contains(&reply.status) => Ok(reply.status),
            Ok(reply) => Err(format!("the function answered {}", reply.status)),
            Err(Failure::Boot(e)) => Err(format!("the function failed to start: {e}")),
            Err(Failure::Limit(e)) => Err(format!("the function exceeded a limit: {e}")),
            Err(Failure::Handler(e)) => Err(format!("the function threw: {e}")),
        };
        self.logs.push(match &out {
            Ok(status) => log.done(*status),
            Err(e) => log.fail(500, e),
        });
        out
    }

    /// The function `name`: a folder in `--functions-dir` first, else a deployed one; cached
    /// until its files or its version change.
    pub(super) async fn load(&self, db: &Db, name: &str) -> Result<Option<Loaded>, DbError> {
        if !valid_name(name) {
            return Ok(None);
        }
        if let Some(l) = self.load_file(name) {
            return Ok(Some(l));
        }
        let cached = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(name).cloned())
            .filter(|l| l.origin == Origin::Database);
        let known = cached.as_ref().map(|l| l.stamp.clone());
        let key = name.to_string();
        let fresh = db
            .read(None, move |conn| {
                let Some(version) = store::version(conn, &key)? else {
                    return Ok(None);
                };
                if known == Some(Stamp::Version(version)) {
                    return Ok(Some(None));
                }
                Ok::<_, DbError>(Some(store::get(conn, &key)?))
            })
            .await?;
        let loaded = match fresh {
            None => None,
            Some(None) => cached,
            Some(Some(f)) => Some(Loaded {
                stamp: Stamp::Version(f.version),
                origin: Origin::Database,
                source: f.source,
                verify_jwt: f.verify_jwt,
                schedule: f.schedule,
            }),
        };
        if let Ok(mut cache) = self.cache.lock() {
            match &loaded {
                Some(l) => cache.insert(name.to_string(), l.clone()),
                None => cache.remove(name),
            };
        }
        Ok(loaded)
    }

    /// `--functions-dir/<name>`, re-read when `index.js` or `outpost.json` changed.
    fn load_file(&self, name: &str) -> Option<Loaded> {
        if !valid_name(name) {
            return None;
        }
        let dir = self.config.dir.as_ref()?.join(name);
        let file = ["index.js", "index.mjs"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())?;
        let settings = dir.join("outpost.json");
        let stamp = Stamp::Files(
            std::fs::metadata(&file).and_then(|m| m.modified()).ok()?,
            std::fs::metadata(&settings).and_then(|m| m.modified()).ok(),
        );
        let mut cache = self.cache.lock().ok()?;
        if let Some(l) = cache.get(name).filter(|l| l.stamp == stamp) {
            return Some(l.clone());
        }
        let source = std::fs::read_to_string(&file).ok()?;
        // `outpost.json` beside the code: `{"verify_jwt": false}` for public endpoints,
        // `{"schedule": "*/5 * * * *"}` for cron.
        let settings = std::fs::read(settings)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .unwrap_or_default();
        let loaded = Loaded {
            stamp,
            origin: Origin::Directory,
            source,
            verify_jwt: settings
                .get("verify_jwt")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(true),
            schedule: settings
                .get("schedule")
                .and_then(|s| s.as_str().map(str::to_string)),
        };
        cache.insert(name.to_string(), loaded.clone());
        Some(loaded)
    }
}

/// An execution-log entry being filled in as an invocation goes.
struct Record {
    entry: Entry,
    started: std::time::Instant,
}

impl Record {
    fn start(function: &str, trigger: &str, method: &str, path: &str) -> Record {
        Record {
            entry: Entry {
                id: 0,
                function: function.to_string(),
                started_at: crate::db::functions::now_iso(),
                trigger: trigger.to_string(),
                method: method.to_string(),
                path: path.to_string(),
                status: 0,
                duration_ms: 0.0,
                error: None,
                console: Vec::new(),
            },
            started: std::time::Instant::now(),
        }
    }

    /// Keep the console lines, and write them to the server log too.
    fn console(&mut self, function: &str, lines: &[runtime::Log]) {
        for (level, message) in lines {
            tracing::info!(function = %function, level = %level, "{message}");
            self.entry.console.push(Line {
                level: level.clone(),
                message: message.clone(),
            });
        }
    }

    fn done(&self, status: u16) -> Entry {
        let mut e = self.entry.clone();
        e.status = status;
        e.duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        e
    }

    fn fail(&self, status: u16, error: &str) -> Entry {
        let mut e = self.done(status);
        e.error = Some(error.to_string());
        e
    }
}

/// Routes under `/functions/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{name}", any(invoke))
        .route("/{name}/{*rest}", any(invoke))
}

/// An error Outpost itself answers (not the function): marked with `x-relay-error: true`;
/// with the message again for the execution log.
fn relay(status: StatusCode, code: &str, message: impl Into<String>) -> (Response, Option<String>) {
    let message = message.into();
    let mut res = (
        status,
        axum::Json(serde_json::json!({"code": code, "message": message})),
    )
        .into_response();
    res.headers_mut()
        .insert("x-relay-error", HeaderValue::from_static("true"));
    (res, Some(format!("{code}: {message}")))
}

async fn invoke(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let service = &state.functions;
    let name = params.get("name").cloned().unwrap_or_default();
    let path = uri
        .path()
        .strip_prefix("/functions/v1")
        .unwrap_or(uri.path())
        .to_string();
    let mut log = Record::start(&name, "http", method.as_str(), &path);
    let (res, error) = answer(&state, &name, method, uri, headers, body, &mut log).await;
    // A function that was never found leaves no log: there is no function to file it under.
    if res.status() != StatusCode::NOT_FOUND || res.headers().get("x-relay-error").is_none() {
        let entry = match error {
            Some(e) => log.fail(res.status().as_u16(), &e),
            None => log.done(res.status().as_u16()),
        };
        service.logs.push(entry);
    }
    res
}

/// Run the invocation; the response, and the error for the log when something failed.
async fn answer(
    state: &AppState,
    name: &str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    log: &mut Record,
) -> (Response, Option<String>) {
    let service = &state.functions;
    let function = match service.load(&state.db, name).await {
        Ok(Some(f)) => f,
        Ok(None) => {
            return relay(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("Requested function {name} was not found"),
            )
        }
        Err(e) => {
            tracing::error!(function = %name, error = %e, "cannot load a function");
            return relay(
                StatusCode::INTERNAL_SERVER_ERROR,
                "BOOT_ERROR",
                "cannot load the function, see the server log",
            );
        }
    };
    if function.verify_jwt {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        match token.map(|t| state.verifier.verify(t)) {
            Some(Ok(_)) => {}
            Some(Err(_)) => {
                return relay(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED_INVALID_JWT",
                    "Invalid JWT",
                )
            }
            None => {
                return relay(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED_NO_AUTH_HEADER",
                    "Missing authorization header",
                )
            }
        }
    }
    if body.len() > service.config.max_body {
        return relay(
            StatusCode::PAYLOAD_TOO_LARGE,
            "REQUEST_TOO_LARGE",
            format!(
                "request bodies are limited to {} bytes",
                service.config.max_body
            ),
        );
    }
    let public = service.env.get("SUPABASE_URL").cloned().unwrap_or_default();
    let env = service.environment(&state.db).await;
    let invocation = service.invocation(
        &function,
        method.to_string(),
        format!("{public}{uri}"),
        runtime::header_pairs(&headers),
        body.to_vec(),
        env,
    );
    let rx = match service.pool.submit(invocation) {
        Ok(rx) => rx,
        Err(Refused::Full) => {
            return relay(
                StatusCode::SERVICE_UNAVAILABLE,
                "WORKER_LIMIT",
                "every function worker is busy; try again shortly",
            )
        }
        Err(Refused::Gone) => {
            return relay(
                StatusCode::SERVICE_UNAVAILABLE,
                "WORKER_UNAVAILABLE",
                "no function workers",
            )
        }
    };
    let (result, lines) = match tokio::time::timeout(service.config.timeout, rx).await {
        Ok(Ok(o)) => o,
        Ok(Err(_)) => {
            return relay(
                StatusCode::INTERNAL_SERVER_ERROR,
                "WORKER_ERROR",
                "the worker stopped",
            )
        }
        Err(_) => {
            tracing::warn!(function = %name, "function timed out");
            return relay(
                StatusCode::GATEWAY_TIMEOUT,
                "WORKER_TIMEOUT",
                format!(
                    "the function did not answer within {} ms",
                    service.config.timeout.as_millis()
                ),
            );
        }
    };
    log.console(name, &lines);
    match result {
        Ok(reply) => {
            let body = match reply.body {
                Body::Bytes(b) if b.len() > service.config.max_body => {
                    return relay(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "RESPONSE_TOO_LARGE",
                        format!("responses are limited to {} bytes", service.config.max_body),
                    );
                }
                Body::Bytes(b) => axum::body::Body::from(b),
                Body::Stream(rx) => axum::body::Body::from_stream(tokio_stream_of(rx)),
            };
            let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
            let mut res = Response::new(body);
            *res.status_mut() = status;
            for (k, v) in reply.headers {
                if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                    res.headers_mut().append(k, v);
                }
            }
            (res, None)
        }
        Err(Failure::Boot(e)) => {
            tracing::warn!(function = %name, error = %e, "function failed to boot");
            relay(
                StatusCode::INTERNAL_SERVER_ERROR,
                "BOOT_ERROR",
                format!("the function failed to start: {e}"),
            )
        }
        Err(Failure::Limit(e)) => {
            tracing::warn!(function = %name, error = %e, "function hit a limit");
            relay(
                StatusCode::from_u16(546).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "WORKER_LIMIT",
                format!("the function exceeded a resource limit: {e}"),
            )
        }
        Err(Failure::Handler(e)) => {
            tracing::warn!(function = %name, error = %e, "function threw");
            // The function itself failed: an ordinary error response, not a relay error.
            let res = (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(serde_json::json!({"code": "WORKER_ERROR", "message": e})),
            )
                .into_response();
            (res, Some(e))
        }
    }
}

/// The chunks a streaming function sends, as a body stream; an error ends the response early.
fn tokio_stream_of(
    rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, String>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((chunk.map(Bytes::from).map_err(std::io::Error::other), rx))
    })
}
