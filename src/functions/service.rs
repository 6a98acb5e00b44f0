//! The functions service: finding a function's source, checking the caller, handing the request
//! to the pool, and turning the outcome into a response (reference §6: `x-relay-error: true`
//! when Outpost, not the function, failed).

use super::pool::{Pool, Refused};
use super::runtime::{Failure, Invocation};
use crate::app::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
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
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| format!("{name}={v} is not a number")),
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

#[derive(Clone)]
struct Loaded {
    modified: SystemTime,
    source: String,
    verify_jwt: bool,
    /// A cron expression (5 or 6 fields, UTC) from `outpost.json`'s `schedule`.
    schedule: Option<String>,
}

/// Functions and the workers that run them.
pub struct FunctionsService {
    pub config: FunctionsConfig,
    pool: Pool,
    cache: Mutex<HashMap<String, Loaded>>,
    /// `SUPABASE_URL`, `SUPABASE_ANON_KEY`, `SUPABASE_SERVICE_ROLE_KEY`.
    env: HashMap<String, String>,
}

/// Why an internal call (cron, webhooks) failed.
pub type CallError = String;

impl FunctionsService {
    /// Start the worker pool; `env` is what `Deno.env` shows every function.
    pub fn new(config: FunctionsConfig, env: HashMap<String, String>) -> FunctionsService {
        let pool = Pool::start(config.workers, config.queue);
        FunctionsService {
            config,
            pool,
            cache: Mutex::new(HashMap::new()),
            env,
        }
    }

    /// Whether a function named `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        self.load(name).is_some()
    }

    /// Every function with a schedule: `(name, cron expression)`.
    pub fn schedules(&self) -> Vec<(String, String)> {
        let Some(dir) = &self.config.dir else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let schedule = self.load(&name)?.schedule?;
                Some((name, schedule))
            })
            .collect();
        out.sort();
        out
    }

    /// Call `name` from inside Outpost (cron, jobs): a POST with a JSON body, as service_role.
    pub async fn call(&self, name: &str, body: &serde_json::Value) -> Result<u16, CallError> {
        let function = self
            .load(name)
            .ok_or_else(|| format!("no function named {name}"))?;
        let public = self.env.get("SUPABASE_URL").cloned().unwrap_or_default();
        let key = self
            .env
            .get("SUPABASE_SERVICE_ROLE_KEY")
            .cloned()
            .unwrap_or_default();
        let invocation = Invocation {
            source: function.source,
            method: "POST".into(),
            url: format!("{public}/{name}"),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("authorization".into(), format!("Bearer {key}")),
                ("x-outpost-trigger".into(), "internal".into()),
            ],
            body: body.to_string().into_bytes(),
            env: self.env.clone(),
            loop_limit: self.config.loop_limit,
            deadline: std::time::Instant::now() + self.config.timeout,
            fetch_allow: self.config.fetch_allow.clone(),
        };
        let rx = self
            .pool
            .submit(invocation)
            .map_err(|_| "every function worker is busy".to_string())?;
        let (result, logs) = tokio::time::timeout(self.config.timeout, rx)
            .await
            .map_err(|_| format!("no answer within {} ms", self.config.timeout.as_millis()))?
            .map_err(|_| "the worker stopped".to_string())?;
        for (level, line) in &logs {
            tracing::info!(function = %name, level = %level, "{line}");
        }
        match result {
            Ok(reply) if (200..300).contains(&reply.status) => Ok(reply.status),
            Ok(reply) => Err(format!("the function answered {}", reply.status)),
            Err(Failure::Boot(e)) => Err(format!("the function failed to start: {e}")),
            Err(Failure::Limit(e)) => Err(format!("the function exceeded a limit: {e}")),
            Err(Failure::Handler(e)) => Err(format!("the function threw: {e}")),
        }
    }

    /// The function `name`, re-read when its file changed since the last call.
    fn load(&self, name: &str) -> Option<Loaded> {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let dir = self.config.dir.as_ref()?.join(name);
        if !valid {
            return None;
        }
        let file = ["index.js", "index.mjs"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())?;
        let modified = std::fs::metadata(&file).and_then(|m| m.modified()).ok()?;
        let mut cache = self.cache.lock().ok()?;
        if let Some(l) = cache.get(name).filter(|l| l.modified == modified) {
            return Some(l.clone());
        }
        let source = std::fs::read_to_string(&file).ok()?;
        // `outpost.json` beside the code: `{"verify_jwt": false}` for public endpoints.
        let verify_jwt = std::fs::read(dir.join("outpost.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("verify_jwt").and_then(serde_json::Value::as_bool))
            .unwrap_or(true);
        let schedule = std::fs::read(dir.join("outpost.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| {
                v.get("schedule")
                    .and_then(|s| s.as_str().map(str::to_string))
            });
        let loaded = Loaded {
            modified,
            source,
            verify_jwt,
            schedule,
        };
        cache.insert(name.to_string(), loaded.clone());
        Some(loaded)
    }
}

/// Routes under `/functions/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{name}", any(invoke))
        .route("/{name}/{*rest}", any(invoke))
}

/// An error Outpost itself answers (not the function): marked with `x-relay-error: true`.
fn relay(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let mut res = (
        status,
        axum::Json(serde_json::json!({"code": code, "message": message.into()})),
    )
        .into_response();
    res.headers_mut()
        .insert("x-relay-error", HeaderValue::from_static("true"));
    res
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
    let Some(function) = service.load(&name) else {
        return relay(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Requested function {name} was not found"),
        );
    };
    if function.verify_jwt {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        let verified = token.map(|t| state.verifier.verify(t));
        match verified {
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
    let env = service.env.clone();
    let invocation = Invocation {
        source: function.source,
        method: method.to_string(),
        url: format!("{public}{uri}"),
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
            .collect(),
        body: body.to_vec(),
        env,
        loop_limit: service.config.loop_limit,
        deadline: std::time::Instant::now() + service.config.timeout,
        fetch_allow: service.config.fetch_allow.clone(),
    };
    let started = std::time::Instant::now();
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
    let outcome = match tokio::time::timeout(service.config.timeout, rx).await {
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
    let (result, logs) = outcome;
    for (level, line) in &logs {
        tracing::info!(function = %name, level = %level, "{line}");
    }
    let took = started.elapsed().as_millis() as u64;
    match result {
        Ok(reply) => {
            if reply.body.len() > service.config.max_body {
                return relay(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "RESPONSE_TOO_LARGE",
                    format!("responses are limited to {} bytes", service.config.max_body),
                );
            }
            tracing::debug!(function = %name, status = reply.status, took_ms = took, "invoked");
            let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
            let mut res = Response::new(axum::body::Body::from(reply.body));
            *res.status_mut() = status;
            for (k, v) in reply.headers {
                if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                    res.headers_mut().append(k, v);
                }
            }
            res
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
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(serde_json::json!({"code": "WORKER_ERROR", "message": e})),
            )
                .into_response()
        }
    }
}
