//! `/auth/v1`: GoTrue's API over users kept in Outpost's database.
//!
//! A request's path: [`router`] → a handler in `account`, `email`, `mfa`, `oauth` or `admin` →
//! the SQL in `users`/`sessions`/`otp` on the writer (or a reader) → a JSON body or a redirect.

pub mod account;
pub mod admin;
pub mod config;
pub mod email;
pub mod error;
pub mod hasher;
pub mod mailer;
pub mod mfa;
pub mod oauth;
pub mod otp;
pub mod password;
pub mod ratelimit;
pub mod redirect;
pub mod secrets;
pub mod sessions;
pub mod users;

use crate::app::AppState;
use crate::keys::{Caller, Role, TokenError};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::Router;
use config::AuthConfig;
use error::{AuthError, AuthResult};
use mailer::Mailer;
use ratelimit::{Bucket, RateLimiter};
use serde::de::DeserializeOwned;
use sessions::Signer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The auth service's configuration and shared machinery.
pub struct AuthService {
    pub config: AuthConfig,
    pub signer: Signer,
    pub limiter: RateLimiter,
    pub mailer: Option<Mailer>,
    /// Talks to OAuth providers.
    pub http: reqwest::Client,
    /// OpenID Connect discovery documents, fetched once per provider.
    pub discovered: Mutex<HashMap<String, Arc<oauth::Discovery>>>,
}

impl AuthService {
    /// Build the service from its configuration and the project's JWT secret.
    pub fn new(config: AuthConfig, secret: &str) -> Result<AuthService, String> {
        let mailer = match &config.smtp {
            Some(smtp) => Some(Mailer::new(smtp, config.templates_dir.clone())?),
            None => None,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("outpost/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(AuthService {
            signer: Signer {
                secret: secret.to_string(),
                issuer: format!("{}/auth/v1", config.public_url),
                expiry: config.jwt_expiry,
                reuse_interval: config.refresh_reuse_interval,
            },
            limiter: RateLimiter::new(Duration::from_secs(config.rate_limits.window_secs.max(1))),
            mailer,
            http,
            discovered: Mutex::default(),
            config,
        })
    }

    /// Count a request against `bucket` for both the client's address and the email it names.
    pub fn limit_both(&self, bucket: Bucket, ip: &str, email: &str) -> AuthResult<()> {
        self.limit(bucket, ip)?;
        self.limit(bucket, email)
    }

    /// Count a request against `bucket` for `key`; 429 past the limit.
    pub fn limit(&self, bucket: Bucket, key: &str) -> AuthResult<()> {
        let l = &self.config.rate_limits;
        let limit = match bucket {
            Bucket::SignIn => l.sign_in,
            Bucket::SignUp => l.sign_up,
            Bucket::Otp => l.otp,
            Bucket::Verify => l.verify,
            Bucket::Refresh => l.refresh,
        };
        if self.limiter.allow(bucket, key, limit) {
            Ok(())
        } else {
            Err(AuthError::rate_limited())
        }
    }
}

/// Every route of `/auth/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(account::health))
        .route("/settings", get(account::settings))
        .route("/signup", post(account::signup))
        .route("/token", post(account::token))
        .route("/user", get(account::get_user).put(account::update_user))
        .route("/logout", post(account::logout))
        .route("/otp", post(email::otp))
        .route("/magiclink", post(email::otp))
        .route("/recover", post(email::recover))
        .route("/resend", post(email::resend))
        .route("/verify", get(email::verify_link).post(email::verify))
        .route("/invite", post(admin::invite))
        .route("/factors", post(mfa::enroll))
        .route("/factors/{id}", delete(mfa::unenroll))
        .route("/factors/{id}/challenge", post(mfa::challenge))
        .route("/factors/{id}/verify", post(mfa::verify))
        .route("/authorize", get(oauth::authorize))
        .route("/callback", get(oauth::callback))
        .route("/admin/users", get(admin::list).post(admin::create))
        .route(
            "/admin/users/{id}",
            get(admin::get).put(admin::update).delete(admin::remove),
        )
        .route("/admin/users/{id}/factors", get(admin::list_factors))
        .route(
            "/admin/users/{id}/factors/{factor}",
            delete(admin::delete_factor),
        )
        .route("/admin/generate_link", post(admin::generate_link))
        .fallback(not_found)
}

async fn not_found(uri: axum::http::Uri) -> AuthError {
    AuthError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("{} is not available on this server", uri.path()),
    )
}

/// The client's address, as the rate limiter sees it.
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_default();
        Ok(ClientIp(peer))
    }
}

impl ClientIp {
    /// The address to count: the proxy's forwarded header when trusted, else the peer.
    pub fn resolve(&self, config: &AuthConfig, headers: &HeaderMap) -> String {
        if config.trust_proxy {
            let forwarded = headers
                .get("fly-client-ip")
                .or_else(|| headers.get("x-forwarded-for"))
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty());
            if let Some(ip) = forwarded {
                return ip.to_string();
            }
        }
        self.0.clone()
    }
}

/// Parse a JSON request body; an empty body reads as `{}`.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> AuthResult<T> {
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    serde_json::from_slice(text)
        .map_err(|e| AuthError::validation(format!("Could not parse request body as JSON: {e}")))
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
}

fn bad_jwt(why: &str) -> AuthError {
    AuthError::new(
        StatusCode::FORBIDDEN,
        "bad_jwt",
        format!("invalid JWT: unable to parse or verify signature, {why}"),
    )
}

/// The caller must present a project key (`apikey` header, or a bearer token).
pub fn require_key(state: &AppState, headers: &HeaderMap) -> AuthResult<Arc<Caller>> {
    crate::http::auth::caller(headers, &state.verifier).map_err(|e| match e {
        crate::http::auth::AuthFailure::Missing => AuthError::new(
            StatusCode::UNAUTHORIZED,
            "no_authorization",
            "No API key found in request",
        ),
        crate::http::auth::AuthFailure::Expired => bad_jwt("token has expired"),
        crate::http::auth::AuthFailure::Invalid(why) => bad_jwt(&why),
    })
}

/// A signed-in user's verified token: its user id and session.
pub struct UserToken {
    pub user_id: String,
    pub session_id: Option<String>,
    pub aal: String,
    pub caller: Arc<Caller>,
}

/// The caller must present a user's access token whose session still exists.
pub async fn require_user(state: &AppState, headers: &HeaderMap) -> AuthResult<UserToken> {
    let caller = verified_bearer(state, headers)?;
    let text = |k: &str| {
        caller
            .claims
            .get(k)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let user_id = text("sub")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad_jwt("invalid claim: missing sub claim"))?;
    let session_id = text("session_id");
    let aal = text("aal").unwrap_or_else(|| "aal1".into());
    if let Some(sid) = session_id.clone() {
        let exists = state
            .db
            .read(None, move |conn| {
                Ok::<_, AuthError>(sessions::by_id(conn, &sid)?.is_some())
            })
            .await?;
        if !exists {
            return Err(AuthError::new(
                StatusCode::FORBIDDEN,
                "session_not_found",
                "Session from session_id claim in JWT does not exist",
            ));
        }
    }
    Ok(UserToken {
        user_id,
        session_id,
        aal,
        caller,
    })
}

/// The bearer token of the request, verified (401 without one, 403 `bad_jwt` when invalid).
fn verified_bearer(state: &AppState, headers: &HeaderMap) -> AuthResult<Arc<Caller>> {
    let token = bearer(headers).ok_or_else(|| {
        AuthError::new(
            StatusCode::UNAUTHORIZED,
            "no_authorization",
            "This endpoint requires a Bearer token",
        )
    })?;
    let caller = state.verifier.verify(token).map_err(|e| match e {
        TokenError::Expired => bad_jwt("token has invalid claims: token is expired"),
        TokenError::Invalid(why) => bad_jwt(&why),
    })?;
    Ok(caller)
}

/// The caller must present the service_role key.
pub fn require_admin(state: &AppState, headers: &HeaderMap) -> AuthResult<()> {
    let caller = verified_bearer(state, headers)?;
    if caller.role != Role::ServiceRole {
        return Err(AuthError::new(
            StatusCode::FORBIDDEN,
            "not_admin",
            "User not allowed",
        ));
    }
    Ok(())
}

/// Lower-case and check an email address (GoTrue's loose check: one `@`, a dot-less domain ok).
pub fn normalize_email(email: &str) -> AuthResult<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 255
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.contains(char::is_whitespace)
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if !valid {
        return Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "email_address_invalid",
            "Unable to validate email address: invalid format",
        ));
    }
    Ok(email)
}

/// Run a password hash or check off the async workers, on the hashing threads: argon2 takes
/// tens of milliseconds and megabytes.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> AuthResult<T> {
    hasher::run(f)
        .await
        .ok_or_else(|| AuthError::internal("the password hashing threads have stopped"))
}
