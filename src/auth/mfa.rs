//! Multi-factor authentication with TOTP: enroll, challenge, verify (the session becomes
//! `aal2`), unenroll.

use super::error::{json_ok, AuthError, AuthResult};
use super::ratelimit::Bucket;
use super::secrets::unix_now;
use super::sessions;
use super::users;
use super::{parse_body, require_user, ClientIp};
use crate::app::AppState;
use crate::db::Mode;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds a challenge may be answered in.
const CHALLENGE_LIFETIME: i64 = 300;
/// Seconds per TOTP step (RFC 6238 default, what authenticator apps use).
const STEP: u64 = 30;

/// The factors of a user, as listed on the user object.
pub fn factors_json(conn: &Connection, user_id: &str) -> rusqlite::Result<Vec<Value>> {
    conn.prepare_cached(
        "SELECT id, friendly_name, factor_type, status, created_at, updated_at \
         FROM _outpost_auth_factors WHERE user_id = ?1 ORDER BY created_at",
    )?
    .query_map([user_id], |r| {
        Ok(json!({
            "id": r.get::<_, String>(0)?,
            "friendly_name": r.get::<_, Option<String>>(1)?,
            "factor_type": r.get::<_, String>(2)?,
            "status": r.get::<_, String>(3)?,
            "created_at": r.get::<_, String>(4)?,
            "updated_at": r.get::<_, String>(5)?,
        }))
    })?
    .collect()
}

fn factor_not_found() -> AuthError {
    AuthError::new(
        StatusCode::NOT_FOUND,
        "mfa_factor_not_found",
        "Factor not found",
    )
}

fn insufficient_aal(what: &str) -> AuthError {
    AuthError::new(
        StatusCode::FORBIDDEN,
        "insufficient_aal",
        format!("AAL2 required to {what}"),
    )
}

struct Factor {
    status: String,
    secret: String,
    last_step: Option<i64>,
}

fn factor(conn: &Connection, user_id: &str, factor_id: &str) -> AuthResult<Factor> {
    conn.prepare_cached(
        "SELECT status, secret, last_step FROM _outpost_auth_factors WHERE id = ?1 AND user_id = ?2",
    )?
    .query_row([factor_id, user_id], |r| {
        Ok(Factor {
            status: r.get(0)?,
            secret: r.get(1)?,
            last_step: r.get(2)?,
        })
    })
    .optional()?
    .ok_or_else(factor_not_found)
}

fn has_verified_factor(conn: &Connection, user_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM _outpost_auth_factors WHERE user_id = ?1 AND status = 'verified'",
    )?
    .exists([user_id])
}

/// Delete a factor of a user; returns `{id}`.
pub fn delete_factor(conn: &Connection, user_id: &str, factor_id: &str) -> AuthResult<Value> {
    factor(conn, user_id, factor_id)?;
    conn.prepare_cached("DELETE FROM _outpost_auth_factors WHERE id = ?1")?
        .execute([factor_id])?;
    sessions::downgrade_factor(conn, factor_id)?;
    Ok(json!({ "id": factor_id }))
}

fn totp(secret_b32: &str, issuer: Option<String>, account: String) -> AuthResult<TOTP> {
    let bytes = Secret::Encoded(secret_b32.to_string())
        .to_bytes()
        .map_err(|e| AuthError::internal(format!("stored TOTP secret: {e:?}")))?;
    TOTP::new(Algorithm::SHA1, 6, 1, STEP, bytes, issuer, account).map_err(AuthError::internal)
}

#[derive(Debug, Deserialize, Default)]
struct EnrollBody {
    factor_type: Option<String>,
    friendly_name: Option<String>,
    issuer: Option<String>,
}

/// `POST /factors`: a new unverified TOTP factor, its secret, `otpauth://` URI and QR code.
pub async fn enroll(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AuthResult<Response> {
    let token = require_user(&state, &headers).await?;
    let body: EnrollBody = parse_body(&body)?;
    match body.factor_type.as_deref() {
        Some("totp") => {}
        Some("phone") => {
            return Err(AuthError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "mfa_phone_enroll_not_enabled",
                "MFA enroll is disabled for Phone",
            ))
        }
        _ => {
            return Err(AuthError::validation(
                "factor_type needs to be totp or phone",
            ))
        }
    }
    let issuer = body
        .issuer
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| super::config::host_of(&state.auth.config.site_url).to_string())
        .replace(':', "-");
    let max = state.auth.config.mfa_max_factors;
    let mut raw = [0u8; 20];
    rand::rng().fill_bytes(&mut raw);
    let secret = Secret::Raw(raw.to_vec()).to_encoded().to_string();
    let friendly = body.friendly_name.filter(|n| !n.is_empty());
    let name = friendly.clone().unwrap_or_default();
    let (id, uri, secret) = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            let user = users::by_id(conn, &token.user_id)?.ok_or_else(super::account::user_gone)?;
            if token.aal != "aal2" && has_verified_factor(conn, &user.id)? {
                return Err(insufficient_aal("enroll a new factor"));
            }
            // Unverified factors left behind by abandoned enrollments do not count.
            conn.prepare_cached(
                "DELETE FROM _outpost_auth_factors WHERE user_id = ?1 AND status = 'unverified' \
                 AND created_at < strftime('%Y-%m-%dT%H:%M:%f', 'now', '-1 day')",
            )?
            .execute([&user.id])?;
            let count: i64 = conn.query_row(
                "SELECT count(*) FROM _outpost_auth_factors WHERE user_id = ?1",
                [&user.id],
                |r| r.get(0),
            )?;
            if count as usize >= max {
                return Err(AuthError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "too_many_enrolled_mfa_factors",
                    "Maximum number of verified factors reached, unenroll to continue",
                ));
            }
            if let Some(name) = &friendly {
                let taken = conn
                    .prepare_cached(
                        "SELECT 1 FROM _outpost_auth_factors WHERE user_id = ?1 AND friendly_name = ?2",
                    )?
                    .exists([&user.id, name])?;
                if taken {
                    return Err(AuthError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "mfa_factor_name_conflict",
                        format!("A factor with the friendly name \"{name}\" for this user already exists"),
                    ));
                }
            }
            let account = user
                .email
                .clone()
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| user.id.clone())
                .replace(':', "-");
            let uri = totp(&secret, Some(issuer), account)?.get_url();
            let id = uuid::Uuid::new_v4().to_string();
            conn.prepare_cached(
                "INSERT INTO _outpost_auth_factors (id, user_id, friendly_name, factor_type, secret) \
                 VALUES (?1, ?2, ?3, 'totp', ?4)",
            )?
            .execute(params![id, user.id, friendly, secret])?;
            Ok((id, uri, secret))
        })
        .await?;
    let qr = qrcode::QrCode::new(uri.as_bytes())
        .map_err(AuthError::internal)?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    Ok(json_ok(
        StatusCode::OK,
        json!({
            "id": id,
            "type": "totp",
            "friendly_name": name,
            "totp": {"qr_code": qr, "secret": secret, "uri": uri},
        }),
    ))
}

/// `POST /factors/{id}/challenge`.
pub async fn challenge(
    State(state): State<AppState>,
    ip: ClientIp,
    Path(factor_id): Path<String>,
    headers: HeaderMap,
) -> AuthResult<Response> {
    let token = require_user(&state, &headers).await?;
    let ip = ip.resolve(&state.auth.config, &headers);
    let (id, expires_at) = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            factor(conn, &token.user_id, &factor_id)?;
            let id = uuid::Uuid::new_v4().to_string();
            let now = unix_now();
            conn.prepare_cached(
                "INSERT INTO _outpost_auth_challenges (id, factor_id, ip, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, factor_id, ip, now])?;
            Ok::<_, AuthError>((id, now + CHALLENGE_LIFETIME))
        })
        .await?;
    Ok(json_ok(
        StatusCode::OK,
        json!({"id": id, "type": "totp", "expires_at": expires_at}),
    ))
}

#[derive(Debug, Deserialize, Default)]
struct VerifyBody {
    challenge_id: Option<String>,
    code: Option<String>,
}

/// `POST /factors/{id}/verify`: check the code; the factor becomes verified and the session
/// `aal2`.
pub async fn verify(
    State(state): State<AppState>,
    ip: ClientIp,
    Path(factor_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AuthResult<Response> {
    let token = require_user(&state, &headers).await?;
    let body: VerifyBody = parse_body(&body)?;
    state
        .auth
        .limit(Bucket::Verify, &ip.resolve(&state.auth.config, &headers))?;
    let challenge_id = body
        .challenge_id
        .ok_or_else(|| AuthError::validation("challenge_id is required"))?;
    let code = body.code.unwrap_or_default().trim().to_string();
    let session_id = token.session_id.clone().ok_or_else(|| {
        AuthError::new(
            StatusCode::FORBIDDEN,
            "session_not_found",
            "Session not found",
        )
    })?;
    let signer = state.auth.signer.clone();
    let session = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            let f = factor(conn, &token.user_id, &factor_id)?;
            let created: Option<(i64, Option<i64>)> = conn
                .prepare_cached(
                    "SELECT created_at, verified_at FROM _outpost_auth_challenges WHERE id = ?1 AND factor_id = ?2",
                )?
                .query_row([&challenge_id, &factor_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((created, None)) = created else {
                return Err(AuthError::new(
                    StatusCode::NOT_FOUND,
                    "mfa_challenge_not_found",
                    "MFA challenge not found",
                ));
            };
            if created + CHALLENGE_LIFETIME < unix_now() {
                conn.execute("DELETE FROM _outpost_auth_challenges WHERE id = ?1", [&challenge_id])?;
                return Ok(Err(AuthError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "mfa_challenge_expired",
                    "MFA challenge has expired, verify against another challenge or create a new challenge.",
                )));
            }
            let t = totp(&f.secret, None, String::new())?;
            let now_step = unix_now() / STEP as i64;
            let matched = [now_step - 1, now_step, now_step + 1]
                .into_iter()
                .filter(|step| f.last_step.is_none_or(|last| *step > last))
                .find(|step| t.generate(*step as u64 * STEP) == code);
            let Some(step) = matched else {
                return Err(AuthError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "mfa_verification_failed",
                    "Invalid TOTP code entered",
                ));
            };
            conn.execute(
                "UPDATE _outpost_auth_challenges SET verified_at = ?2 WHERE id = ?1",
                params![challenge_id, unix_now()],
            )?;
            conn.execute(
                "UPDATE _outpost_auth_factors SET status = 'verified', last_step = ?2, updated_at = now() WHERE id = ?1",
                params![factor_id, step],
            )?;
            Ok(Ok(sessions::upgrade_aal2(conn, &signer, &session_id, &factor_id)?))
        })
        .await??;
    Ok(json_ok(StatusCode::OK, session.to_json()))
}

/// `DELETE /factors/{id}`: a verified factor can only be removed from an `aal2` session.
pub async fn unenroll(
    State(state): State<AppState>,
    Path(factor_id): Path<String>,
    headers: HeaderMap,
) -> AuthResult<Response> {
    let token = require_user(&state, &headers).await?;
    let removed = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            let f = factor(conn, &token.user_id, &factor_id)?;
            if f.status == "verified" && token.aal != "aal2" {
                return Err(insufficient_aal("unenroll a verified factor"));
            }
            delete_factor(conn, &token.user_id, &factor_id)
        })
        .await?;
    Ok(json_ok(StatusCode::OK, removed))
}
