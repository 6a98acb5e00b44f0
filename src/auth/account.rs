//! Sign-up, the token grants, the signed-in user, sign-out, and the service's own `/settings`
//! and `/health`.

use super::email::{self, Outbox};
use super::error::{json_ok, AuthError, AuthResult};
use super::otp::{self, Kind};
use super::password::{self, Check};
use super::ratelimit::Bucket;
use super::sessions::{self, Scope};
use super::users::{self, NewUser, User};
use super::{blocking, normalize_email, parse_body, redirect, require_key, require_user, ClientIp};
use crate::app::AppState;
use crate::db::Mode;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// `GET /health`.
pub async fn health() -> Response {
    json_ok(
        StatusCode::OK,
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "name": "GoTrue",
            "description": "Outpost's GoTrue-compatible auth service",
        }),
    )
}

/// `GET /settings`: which sign-in methods are on.
pub async fn settings(State(state): State<AppState>) -> Response {
    let c = &state.auth.config;
    let mut external = Map::new();
    external.insert("anonymous_users".into(), json!(c.anonymous_users));
    external.insert("email".into(), json!(true));
    external.insert("phone".into(), json!(false));
    for name in ["github", "google"] {
        external.insert(name.into(), json!(c.providers.contains_key(name)));
    }
    for name in c.providers.keys() {
        external.insert(name.clone(), json!(true));
    }
    json_ok(
        StatusCode::OK,
        json!({
            "external": external,
            "disable_signup": c.disable_signup,
            "mailer_autoconfirm": c.mailer_autoconfirm,
            "phone_autoconfirm": false,
            "sms_provider": "",
            "saml_enabled": false,
        }),
    )
}

/// Query parameters shared by the email flows.
#[derive(Debug, Deserialize, Default)]
pub struct RedirectQuery {
    pub redirect_to: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct SignupBody {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    #[serde(default)]
    data: Option<Map<String, Value>>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// `POST /signup`: a new user with email and password, or an anonymous one.
pub async fn signup(
    State(state): State<AppState>,
    ip: ClientIp,
    Query(q): Query<RedirectQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> AuthResult<Response> {
    require_key(&state, &headers)?;
    let body: SignupBody = parse_body(&body)?;
    let config = &state.auth.config;
    let ip = ip.resolve(config, &headers);
    let metadata = body.data.unwrap_or_default();
    if body.email.is_none() && body.phone.is_none() && body.password.is_none() {
        return anonymous(&state, &ip, metadata).await;
    }
    if body.phone.is_some() && body.email.is_none() {
        return Err(AuthError::phone_disabled());
    }
    if config.disable_signup {
        return Err(signup_disabled());
    }
    let email = normalize_email(body.email.as_deref().unwrap_or_default())?;
    let password = body.password.unwrap_or_default();
    if password.is_empty() {
        return Err(AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Signup requires a valid password",
        ));
    }
    password::check_strength(config, &password)?;
    state.auth.limit_both(Bucket::SignUp, &ip, &email)?;
    let pkce = otp::pkce_params(
        body.code_challenge.as_deref(),
        body.code_challenge_method.as_deref(),
    )?;
    let redirect_to = redirect::resolve(config, q.redirect_to.as_deref());
    let hash = blocking(move || password::hash(&password)).await??;
    let autoconfirm = config.mailer_autoconfirm;
    let signer = state.auth.signer.clone();
    let lifetime = config.otp_expiry;
    let outcome = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            if let Some(existing) = users::by_email(conn, &email)? {
                if autoconfirm || existing.email_confirmed_at.is_some() {
                    if autoconfirm {
                        return Err(AuthError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "user_already_exists",
                            "User already registered",
                        ));
                    }
                    // With confirmations on, an existing address is not revealed: the answer
                    // looks like a fresh sign-up and no mail goes out.
                    return Ok(SignupOutcome::Pending(
                        obfuscated_user(&email, &metadata),
                        None,
                    ));
                }
                // Not yet confirmed: the new password wins and the confirmation is sent again.
                users::set(conn, &existing.id, "encrypted_password", Some(&hash))?;
                users::set_metadata(conn, &existing.id, "raw_user_meta_data", &metadata)?;
                let flow = pkce
                    .as_ref()
                    .map(|p| otp::new_flow_state(conn, Some(&existing.id), p, "email/signup"))
                    .transpose()?;
                let issued = otp::issue(
                    conn,
                    &existing.id,
                    Kind::Signup,
                    &email,
                    &redirect_to,
                    flow.as_deref(),
                    lifetime,
                )?;
                let user =
                    users::by_id(conn, &existing.id)?.ok_or_else(AuthError::user_not_found)?;
                return Ok(SignupOutcome::Pending(user.to_json(conn)?, Some(issued)));
            }
            let user = users::insert(
                conn,
                NewUser {
                    email: Some(email.clone()),
                    password_hash: Some(hash),
                    confirmed: autoconfirm,
                    provider: "email".into(),
                    user_metadata: metadata,
                    ..NewUser::default()
                },
            )?;
            if autoconfirm {
                let issued = sessions::start(conn, &signer, &user, "password")?;
                return Ok(SignupOutcome::Session(issued.to_json()));
            }
            let flow = pkce
                .as_ref()
                .map(|p| otp::new_flow_state(conn, Some(&user.id), p, "email/signup"))
                .transpose()?;
            let issued = otp::issue(
                conn,
                &user.id,
                Kind::Signup,
                &email,
                &redirect_to,
                flow.as_deref(),
                lifetime,
            )?;
            let user = users::by_id(conn, &user.id)?.ok_or_else(AuthError::user_not_found)?;
            Ok(SignupOutcome::Pending(user.to_json(conn)?, Some(issued)))
        })
        .await?;
    match outcome {
        SignupOutcome::Session(session) => Ok(json_ok(StatusCode::OK, session)),
        SignupOutcome::Pending(user, issued) => {
            if let Some(issued) = issued {
                email::send(&state, Outbox::one(issued)).await?;
            }
            Ok(json_ok(StatusCode::OK, user))
        }
    }
}

enum SignupOutcome {
    Session(Value),
    Pending(Value, Option<otp::Issued>),
}

/// A user object for an address that is already registered, shaped like a new one.
fn obfuscated_user(email: &str, metadata: &Map<String, Value>) -> Value {
    let now = crate::db::functions::now_iso();
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "aud": "authenticated",
        "role": "authenticated",
        "email": email,
        "phone": "",
        "confirmation_sent_at": now,
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": metadata,
        "identities": [],
        "created_at": now,
        "updated_at": now,
        "is_anonymous": false,
    })
}

fn signup_disabled() -> AuthError {
    AuthError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "signup_disabled",
        "Signups not allowed for this instance",
    )
}

async fn anonymous(
    state: &AppState,
    ip: &str,
    metadata: Map<String, Value>,
) -> AuthResult<Response> {
    if !state.auth.config.anonymous_users {
        return Err(AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "anonymous_provider_disabled",
            "Anonymous sign-ins are disabled",
        ));
    }
    if state.auth.config.disable_signup {
        return Err(signup_disabled());
    }
    state.auth.limit(Bucket::SignUp, ip)?;
    let signer = state.auth.signer.clone();
    let session = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            let user = users::insert(
                conn,
                NewUser {
                    is_anonymous: true,
                    provider: "anonymous".into(),
                    user_metadata: metadata,
                    ..NewUser::default()
                },
            )?;
            sessions::start(conn, &signer, &user, "anonymous")
        })
        .await?;
    Ok(json_ok(StatusCode::OK, session.to_json()))
}

#[derive(Debug, Deserialize)]
pub struct GrantQuery {
    pub grant_type: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct TokenBody {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    auth_code: Option<String>,
    code_verifier: Option<String>,
}

/// `POST /token?grant_type=password|refresh_token|pkce`.
pub async fn token(
    State(state): State<AppState>,
    ip: ClientIp,
    Query(q): Query<GrantQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> AuthResult<Response> {
    require_key(&state, &headers)?;
    let body: TokenBody = parse_body(&body)?;
    let ip = ip.resolve(&state.auth.config, &headers);
    let session = match q.grant_type.as_deref() {
        Some("password") => password_grant(&state, &ip, body).await?,
        Some("refresh_token") => {
            state.auth.limit(Bucket::Refresh, &ip)?;
            let token = body
                .refresh_token
                .filter(|t| !t.is_empty())
                .ok_or_else(|| AuthError::validation("Refresh Token is required"))?;
            let signer = state.auth.signer.clone();
            state
                .db
                .writer
                .write(Mode::Commit, None, move |conn| {
                    sessions::refresh(conn, &signer, &token)
                })
                .await??
                .to_json()
        }
        Some("pkce") => {
            let (Some(code), Some(verifier)) = (body.auth_code, body.code_verifier) else {
                return Err(AuthError::validation(
                    "invalid request: both auth code and code verifier should be non-empty",
                ));
            };
            let signer = state.auth.signer.clone();
            state
                .db
                .writer
                .write(Mode::Commit, None, move |conn| {
                    let ex = otp::exchange(conn, &code, &verifier)?;
                    let user =
                        users::by_id(conn, &ex.user_id)?.ok_or_else(AuthError::user_not_found)?;
                    if user.is_banned() {
                        return Err(sessions::banned());
                    }
                    let mut session = sessions::start(conn, &signer, &user, &ex.method)?.to_json();
                    if let Some(t) = ex.provider_token {
                        session["provider_token"] = json!(t);
                    }
                    if let Some(t) = ex.provider_refresh_token {
                        session["provider_refresh_token"] = json!(t);
                    }
                    Ok::<_, AuthError>(session)
                })
                .await?
        }
        Some(other) => {
            return Err(AuthError::validation(format!(
                "unsupported_grant_type: `{other}` is not supported"
            )))
        }
        None => return Err(AuthError::validation("unsupported_grant_type")),
    };
    Ok(json_ok(StatusCode::OK, session))
}

async fn password_grant(state: &AppState, ip: &str, body: TokenBody) -> AuthResult<Value> {
    if body.phone.is_some() && body.email.is_none() {
        return Err(AuthError::phone_disabled());
    }
    let email = normalize_email(body.email.as_deref().unwrap_or_default())
        .map_err(|_| AuthError::invalid_credentials())?;
    let password = body.password.unwrap_or_default();
    state.auth.limit(Bucket::SignIn, ip)?;
    state.auth.limit(Bucket::SignIn, &email)?;
    let lookup = email.clone();
    let user: Option<User> = state
        .db
        .read(None, move |conn| {
            Ok::<_, AuthError>(users::by_email(conn, &lookup)?)
        })
        .await?;
    let stored = user
        .as_ref()
        .and_then(|u| u.encrypted_password.clone())
        .unwrap_or_default();
    let check = blocking(move || {
        let check = password::verify(&password, &stored);
        let rehash = match check {
            Check::RightRehash => password::hash(&password).ok(),
            _ => None,
        };
        (check, rehash)
    })
    .await?;
    let (Some(user), (Check::Right | Check::RightRehash, rehash)) = (user, check) else {
        return Err(AuthError::invalid_credentials());
    };
    if user.is_banned() {
        return Err(sessions::banned());
    }
    if user.email_confirmed_at.is_none() {
        return Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "email_not_confirmed",
            "Email not confirmed",
        ));
    }
    let signer = state.auth.signer.clone();
    let session = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            if let Some(hash) = rehash {
                users::set(conn, &user.id, "encrypted_password", Some(&hash))?;
            }
            sessions::start(conn, &signer, &user, "password")
        })
        .await?;
    Ok(session.to_json())
}

/// `GET /user`.
pub async fn get_user(State(state): State<AppState>, headers: HeaderMap) -> AuthResult<Response> {
    let token = require_user(&state, &headers).await?;
    let user = state
        .db
        .read(None, move |conn| {
            let user = users::by_id(conn, &token.user_id)?.ok_or_else(user_gone)?;
            Ok::<_, AuthError>(user.to_json(conn)?)
        })
        .await?;
    Ok(json_ok(StatusCode::OK, user))
}

/// The user a valid token names no longer exists.
pub fn user_gone() -> AuthError {
    AuthError::new(
        StatusCode::FORBIDDEN,
        "user_not_found",
        "User from sub claim in JWT does not exist",
    )
}

#[derive(Debug, Deserialize, Default)]
struct UpdateBody {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    data: Option<Map<String, Value>>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// `PUT /user`: change metadata, password or email (the last confirmed by mail when on).
pub async fn update_user(
    State(state): State<AppState>,
    ip: ClientIp,
    Query(q): Query<RedirectQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> AuthResult<Response> {
    let token = require_user(&state, &headers).await?;
    let body: UpdateBody = parse_body(&body)?;
    let config = state.auth.config.clone();
    if body.phone.is_some() {
        return Err(AuthError::phone_disabled());
    }
    let new_email = body.email.as_deref().map(normalize_email).transpose()?;
    if new_email.is_some() {
        let ip = ip.resolve(&config, &headers);
        state.auth.limit(Bucket::Otp, &ip)?;
    }
    let pkce = otp::pkce_params(
        body.code_challenge.as_deref(),
        body.code_challenge_method.as_deref(),
    )?;
    let new_hash = match body.password {
        Some(pw) => {
            password::check_strength(&config, &pw)?;
            let uid = token.user_id.clone();
            let current: Option<String> = state
                .db
                .read(None, move |conn| {
                    Ok::<_, AuthError>(users::by_id(conn, &uid)?.and_then(|u| u.encrypted_password))
                })
                .await?;
            let (same, hash) = blocking(move || {
                let same = current.is_some_and(|c| password::verify(&pw, &c) != Check::Wrong);
                (same, password::hash(&pw))
            })
            .await?;
            if same {
                return Err(AuthError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "same_password",
                    "New password should be different from the old password.",
                ));
            }
            Some(hash?)
        }
        None => None,
    };
    let redirect_to = redirect::resolve(&config, q.redirect_to.as_deref());
    let session_id = token.session_id.clone();
    let (user, outbox) = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            let user = users::by_id(conn, &token.user_id)?.ok_or_else(user_gone)?;
            if let Some(data) = body.data {
                let mut meta = user.user_metadata.clone();
                for (k, v) in data {
                    if v.is_null() {
                        meta.remove(&k);
                    } else {
                        meta.insert(k, v);
                    }
                }
                users::set_metadata(conn, &user.id, "raw_user_meta_data", &meta)?;
            }
            if let Some(hash) = new_hash {
                users::set(conn, &user.id, "encrypted_password", Some(&hash))?;
                // Other sessions end with a password change; the caller's stays.
                if let Some(sid) = &session_id {
                    sessions::sign_out(conn, &user.id, sid, Scope::Others)?;
                }
            }
            let mut outbox = Outbox::default();
            if let Some(new_email) = new_email.filter(|e| Some(e) != user.email.as_ref()) {
                outbox = email::start_email_change(
                    conn,
                    &config,
                    &user,
                    &new_email,
                    &redirect_to,
                    pkce.as_ref(),
                )?;
            }
            let user = users::by_id(conn, &user.id)?.ok_or_else(user_gone)?;
            Ok::<_, AuthError>((user.to_json(conn)?, outbox))
        })
        .await?;
    email::send(&state, outbox).await?;
    Ok(json_ok(StatusCode::OK, user))
}

/// `POST /logout?scope=global|local|others`.
pub async fn logout(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> AuthResult<Response> {
    let scope = match q.get("scope").map(String::as_str) {
        None | Some("global") => Scope::Global,
        Some("local") => Scope::Local,
        Some("others") => Scope::Others,
        Some(other) => {
            return Err(AuthError::validation(format!(
                "Unsupported logout scope `{other}`"
            )))
        }
    };
    let token = require_user(&state, &headers).await?;
    let Some(session_id) = token.session_id else {
        return Ok(no_content());
    };
    state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            sessions::sign_out(conn, &token.user_id, &session_id, scope).map_err(AuthError::from)
        })
        .await?;
    Ok(no_content())
}

fn no_content() -> Response {
    let mut r = Response::new(axum::body::Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    super::error::with_api_version(&mut r);
    r
}
