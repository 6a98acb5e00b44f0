//! Admin sessions for the web UI: sign-in with an admin account (or, while there is none, the
//! one-time setup link printed at start), a random token in an HttpOnly cookie whose SHA-256 is
//! kept in `_outpost_admin_sessions`, sign-out. Every admin API call is authorized here: an
//! admin session, or the service_role key for scripts and deploys.

use super::error::{AdminError, AdminResult};
use crate::app::AppState;
use crate::auth::{password, ClientIp};
use crate::db::{DbError, Mode};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::time::Duration;

/// The session cookie's name.
pub const COOKIE: &str = "outpost_admin";

/// An admin account.
#[derive(Debug, Clone, Serialize)]
pub struct Admin {
    pub id: String,
    pub email: String,
}

/// Who is calling the admin API.
#[derive(Debug, Clone)]
pub enum Caller {
    /// Signed in to the web UI.
    Admin(Admin),
    /// A script holding the service_role key.
    ServiceRole,
}

/// How long a session lasts (`OUTPOST_ADMIN_SESSION_TTL`, 12h).
fn ttl() -> Duration {
    crate::config::env_duration("OUTPOST_ADMIN_SESSION_TTL", Duration::from_secs(12 * 3600))
        .unwrap_or(Duration::from_secs(12 * 3600))
}

fn now_ms() -> i64 {
    crate::replication::status::now_ms()
}

fn digest(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// The session token in the request's cookie, if any.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

fn unauthorized() -> AdminError {
    AdminError::new(
        StatusCode::UNAUTHORIZED,
        "not_signed_in",
        "sign in as an admin (or send the service_role key)",
    )
}

/// Who may call the admin API: a live admin session, or the service_role key.
pub async fn authorize(state: &AppState, headers: &HeaderMap) -> AdminResult<Caller> {
    if let Some(token) = cookie_token(headers) {
        let hash = digest(&token);
        let admin = state
            .db
            .read(None, move |c| {
                c.query_row(
                    "SELECT a.id, a.email FROM _outpost_admin_sessions s
                       JOIN _outpost_admins a ON a.id = s.admin_id
                      WHERE s.token_hash = ?1 AND s.expires_at > ?2",
                    params![hash, now_ms()],
                    |r| {
                        Ok(Admin {
                            id: r.get(0)?,
                            email: r.get(1)?,
                        })
                    },
                )
                .optional()
                .map_err(DbError::from)
            })
            .await?;
        if let Some(admin) = admin {
            return Ok(Caller::Admin(admin));
        }
    }
    if crate::auth::bearer(headers).is_some() {
        return match crate::auth::require_admin(state, headers) {
            Ok(()) => Ok(Caller::ServiceRole),
            Err(e) => Err(AdminError::new(
                e.status,
                "not_admin",
                "the admin API takes an admin session or the service_role key",
            )),
        };
    }
    Err(unauthorized())
}

/// Routes under `/_/api/admin`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/me", get(me))
        .route("/setup", get(setup_state).post(setup))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    email: String,
    password: String,
}

/// `Set-Cookie` for a new session, or for clearing it (`token` empty).
fn cookie(state: &AppState, token: &str, max_age: Duration) -> HeaderValue {
    let secure = if state.auth.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{COOKIE}={token}; Path=/_/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.as_secs()
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Start a session for `admin`: the answer with its cookie.
async fn start_session(
    state: &AppState,
    admin: Admin,
    headers: &HeaderMap,
) -> AdminResult<Response> {
    let token = hex::encode(rand::random::<[u8; 32]>());
    let ttl = ttl();
    let hash = digest(&token);
    let admin_id = admin.id.clone();
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(256).collect::<String>());
    let expires_at = now_ms() + ttl.as_millis() as i64;
    state
        .db
        .writer
        .write(Mode::Commit, None, move |c| {
            // Expired sessions go as new ones come.
            c.execute(
                "DELETE FROM _outpost_admin_sessions WHERE expires_at <= ?1",
                [now_ms()],
            )?;
            c.execute(
                "INSERT INTO _outpost_admin_sessions (token_hash, admin_id, created_at, expires_at, user_agent)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hash, admin_id, now_ms(), expires_at, agent],
            )
            .map_err(DbError::from)
        })
        .await?;
    let mut res = Json(serde_json::json!({
        "admin": admin,
        "expires_at": expires_at,
    }))
    .into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, cookie(state, &token, ttl));
    Ok(res)
}

fn bad_credentials() -> AdminError {
    AdminError::new(
        StatusCode::BAD_REQUEST,
        "invalid_credentials",
        "Invalid email or password",
    )
}

/// Count a sign-in or setup attempt from the caller's address (the auth service's sign-in
/// limit, `OUTPOST_AUTH_RATE_LIMIT_SIGNIN` per window); 429 past it.
fn limit(state: &AppState, ip: &ClientIp, headers: &HeaderMap) -> AdminResult<()> {
    let key = format!("admin:{}", ip.resolve(&state.auth.config, headers));
    state
        .auth
        .limit(crate::auth::ratelimit::Bucket::SignIn, &key)
        .map_err(|_| {
            AdminError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "too many sign-in attempts from this address; wait a moment",
            )
        })
}

async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Result<Json<Credentials>, JsonRejection>,
) -> Response {
    let work = async {
        limit(&state, &ip, &headers)?;
        let Json(c) = body.map_err(|e| AdminError::invalid(e.body_text()))?;
        let email = c.email.trim().to_lowercase();
        let found = state
            .db
            .read(None, move |conn| {
                conn.query_row(
                    "SELECT id, email, password_hash FROM _outpost_admins WHERE email = ?1",
                    [email],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(DbError::from)
            })
            .await?;
        let (id, email, hash) = found.unwrap_or_default();
        let password_text = c.password;
        // An unknown email costs a hash check too, so timing does not tell accounts apart.
        let check = tokio::task::spawn_blocking(move || password::verify(&password_text, &hash))
            .await
            .map_err(|_| AdminError::invalid("cannot check the password"))?;
        if id.is_empty() || matches!(check, password::Check::Wrong) {
            tracing::warn!("admin sign-in refused");
            return Err(bad_credentials());
        }
        start_session(&state, Admin { id, email }, &headers).await
    };
    work.await.unwrap_or_else(IntoResponse::into_response)
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let work = async {
        let token = cookie_token(&headers).ok_or_else(unauthorized)?;
        let hash = digest(&token);
        state
            .db
            .writer
            .write(Mode::Commit, None, move |c| {
                c.execute(
                    "DELETE FROM _outpost_admin_sessions WHERE token_hash = ?1",
                    [hash],
                )
                .map_err(DbError::from)
            })
            .await?;
        let mut res = StatusCode::NO_CONTENT.into_response();
        res.headers_mut()
            .insert(header::SET_COOKIE, cookie(&state, "", Duration::ZERO));
        Ok::<_, AdminError>(res)
    };
    work.await.unwrap_or_else(IntoResponse::into_response)
}

async fn me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match authorize(&state, &headers).await {
        Ok(Caller::Admin(a)) => Json(serde_json::json!({ "admin": a })).into_response(),
        Ok(Caller::ServiceRole) => {
            Json(serde_json::json!({ "admin": null, "service_role": true })).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Whether the first admin still has to be created (then the setup link works).
async fn setup_state(State(state): State<AppState>) -> Response {
    let open = state
        .admin_setup
        .lock()
        .map(|t| t.is_some())
        .unwrap_or(false);
    Json(serde_json::json!({ "needed": open })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Setup {
    token: String,
    email: String,
    password: String,
}

/// Create the first admin with the one-time token printed at start, and sign them in.
async fn setup(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Result<Json<Setup>, JsonRejection>,
) -> Response {
    let work = async {
        limit(&state, &ip, &headers)?;
        let Json(s) = body.map_err(|e| AdminError::invalid(e.body_text()))?;
        let expected = state
            .admin_setup
            .lock()
            .ok()
            .and_then(|t| t.clone())
            .ok_or_else(|| {
                AdminError::new(
                    StatusCode::GONE,
                    "setup_done",
                    "an admin account exists: sign in instead",
                )
            })?;
        let matches = expected.len() == s.token.len()
            && expected
                .bytes()
                .zip(s.token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !matches {
            return Err(AdminError::new(
                StatusCode::FORBIDDEN,
                "bad_setup_token",
                "this setup link is not valid; use the one the server printed",
            ));
        }
        let email = crate::auth::normalize_email(&s.email)
            .map_err(|_| AdminError::invalid("email: not an email address"))?;
        if s.password.chars().count() < super::accounts::MIN_PASSWORD {
            return Err(AdminError::invalid(format!(
                "password: at least {} characters",
                super::accounts::MIN_PASSWORD
            )));
        }
        let password_text = s.password.clone();
        let hash = tokio::task::spawn_blocking(move || password::hash(&password_text))
            .await
            .map_err(|_| AdminError::invalid("cannot hash the password"))?
            .map_err(|e| AdminError::invalid(e.msg))?;
        let id = uuid::Uuid::new_v4().to_string();
        let (admin_id, admin_email) = (id.clone(), email.clone());
        let created = state
            .db
            .writer
            .write(Mode::Commit, None, move |c| {
                // Only while there is no admin at all: the link makes the first one.
                c.execute(
                    "INSERT INTO _outpost_admins (id, email, password_hash)
                     SELECT ?1, ?2, ?3 WHERE NOT EXISTS (SELECT 1 FROM _outpost_admins)",
                    params![admin_id, admin_email, hash],
                )
                .map_err(DbError::from)
            })
            .await?;
        if let Ok(mut t) = state.admin_setup.lock() {
            *t = None;
        }
        if created == 0 {
            return Err(AdminError::new(
                StatusCode::GONE,
                "setup_done",
                "an admin account exists: sign in instead",
            ));
        }
        tracing::info!(%email, "first admin account created through the setup link");
        start_session(&state, Admin { id, email }, &headers).await
    };
    work.await.unwrap_or_else(IntoResponse::into_response)
}
