//! Sessions: access JWTs, refresh tokens (hashed, rotated, reuse-detected) and sign-out.

use super::error::{AuthError, AuthResult};
use super::secrets::{random_token, sha256_hex, unix_now};
use super::users::{self, User};
use crate::keys;
use axum::http::StatusCode;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

/// What signs access tokens and how long they live.
#[derive(Clone)]
pub struct Signer {
    pub secret: String,
    pub issuer: String,
    pub expiry: i64,
    pub reuse_interval: i64,
}

/// A stored session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub aal: String,
    pub amr: Vec<Value>,
}

/// Tokens handed to the client, with the user they belong to.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub expires_at: i64,
    pub user: Value,
}

impl Issued {
    /// GoTrue's session response.
    pub fn to_json(&self) -> Value {
        json!({
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "expires_at": self.expires_at,
            "refresh_token": self.refresh_token,
            "user": self.user,
        })
    }

    /// The session as URL fragment or query parameters, for redirects back to the app.
    pub fn to_params(&self, kind: &str) -> Vec<(String, String)> {
        vec![
            ("access_token".into(), self.access_token.clone()),
            ("expires_at".into(), self.expires_at.to_string()),
            ("expires_in".into(), self.expires_in.to_string()),
            ("refresh_token".into(), self.refresh_token.clone()),
            ("token_type".into(), "bearer".into()),
            ("type".into(), kind.into()),
        ]
    }
}

/// Start a session for `user` signed in with `method` (`password`, `otp`, `oauth`, …).
pub fn start(conn: &Connection, signer: &Signer, user: &User, method: &str) -> AuthResult<Issued> {
    let id = uuid::Uuid::new_v4().to_string();
    let amr = vec![json!({"method": method, "timestamp": unix_now()})];
    conn.prepare_cached(
        "INSERT INTO _outpost_auth_sessions (id, user_id, aal, amr) VALUES (?1, ?2, 'aal1', ?3)",
    )?
    .execute(params![id, user.id, Value::Array(amr.clone()).to_string()])?;
    users::touch_sign_in(conn, &user.id)?;
    let session = Session {
        id,
        user_id: user.id.clone(),
        aal: "aal1".into(),
        amr,
    };
    let refresh = new_refresh_token(conn, &session.id, None)?;
    issue(conn, signer, &session, refresh)
}

/// Sign a fresh access token for `session` and pair it with `refresh_token`.
pub fn issue(
    conn: &Connection,
    signer: &Signer,
    session: &Session,
    refresh_token: String,
) -> AuthResult<Issued> {
    let user = users::by_id(conn, &session.user_id)?.ok_or_else(AuthError::user_not_found)?;
    let now = unix_now();
    let exp = now + signer.expiry;
    let claims = json!({
        "iss": signer.issuer,
        "sub": user.id,
        "aud": user.aud,
        "exp": exp,
        "iat": now,
        "email": user.email.clone().unwrap_or_default(),
        "phone": user.phone.clone().unwrap_or_default(),
        "app_metadata": user.app_metadata,
        "user_metadata": user.user_metadata,
        "role": user.role,
        "aal": session.aal,
        "amr": session.amr,
        "session_id": session.id,
        "is_anonymous": user.is_anonymous,
    });
    let access_token = keys::sign(&signer.secret, &claims).map_err(AuthError::internal)?;
    Ok(Issued {
        access_token,
        refresh_token,
        expires_in: signer.expiry,
        expires_at: exp,
        user: user.to_json(conn)?,
    })
}

fn new_refresh_token(
    conn: &Connection,
    session_id: &str,
    parent: Option<&str>,
) -> AuthResult<String> {
    let token = random_token(24);
    conn.prepare_cached(
        "INSERT INTO _outpost_auth_refresh_tokens (token_hash, session_id, parent, created_at) \
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![sha256_hex(&token), session_id, parent, unix_now()])?;
    Ok(token)
}

/// The session with `id`.
pub fn by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<Session>> {
    conn.prepare_cached("SELECT id, user_id, aal, amr FROM _outpost_auth_sessions WHERE id = ?1")?
        .query_row([id], |r| {
            let amr: String = r.get(3)?;
            Ok(Session {
                id: r.get(0)?,
                user_id: r.get(1)?,
                aal: r.get(2)?,
                amr: serde_json::from_str(&amr).unwrap_or_default(),
            })
        })
        .optional()
}

fn not_found() -> AuthError {
    AuthError::new(
        StatusCode::BAD_REQUEST,
        "refresh_token_not_found",
        "Invalid Refresh Token: Refresh Token Not Found",
    )
}

/// Exchange a refresh token for a new pair. The used token is revoked; using it again within
/// the reuse interval (a second tab refreshing at the same moment) gets a sibling token, later
/// reuse is taken as theft and ends the whole session.
///
/// The inner error is a refusal whose changes (the ended session) must still commit; the outer
/// one undoes everything.
pub fn refresh(conn: &Connection, signer: &Signer, token: &str) -> AuthResult<AuthResult<Issued>> {
    let hash = sha256_hex(token);
    let row: Option<(String, Option<i64>, Option<String>)> = conn
        .prepare_cached(
            "SELECT session_id, revoked_at, parent FROM _outpost_auth_refresh_tokens \
             WHERE token_hash = ?1",
        )?
        .query_row([&hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((session_id, revoked_at, _parent)) = row else {
        return Ok(Err(not_found()));
    };
    let now = unix_now();
    if let Some(revoked_at) = revoked_at {
        if now - revoked_at > signer.reuse_interval {
            conn.prepare_cached("DELETE FROM _outpost_auth_sessions WHERE id = ?1")?
                .execute([&session_id])?;
            tracing::warn!(session = %session_id, "refresh token reused; session revoked");
            return Ok(Err(AuthError::new(
                StatusCode::BAD_REQUEST,
                "refresh_token_already_used",
                "Invalid Refresh Token: Already Used",
            )));
        }
    } else {
        conn.prepare_cached(
            "UPDATE _outpost_auth_refresh_tokens SET revoked_at = ?2 WHERE token_hash = ?1",
        )?
        .execute(params![hash, now])?;
    }
    let Some(session) = by_id(conn, &session_id)? else {
        return Ok(Err(not_found()));
    };
    let Some(user) = users::by_id(conn, &session.user_id)? else {
        return Ok(Err(not_found()));
    };
    if user.is_banned() {
        return Ok(Err(banned()));
    }
    conn.prepare_cached("UPDATE _outpost_auth_sessions SET updated_at = now() WHERE id = ?1")?
        .execute([&session.id])?;
    let refresh = new_refresh_token(conn, &session.id, Some(&hash))?;
    issue(conn, signer, &session, refresh).map(Ok)
}

/// 400 `user_banned`.
pub fn banned() -> AuthError {
    AuthError::new(StatusCode::BAD_REQUEST, "user_banned", "User is banned")
}

/// Which sessions a sign-out ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Local,
    Others,
}

/// End sessions of `user_id` relative to the caller's `session_id`; their refresh tokens go too.
pub fn sign_out(
    conn: &Connection,
    user_id: &str,
    session_id: &str,
    scope: Scope,
) -> rusqlite::Result<()> {
    let sql = match scope {
        Scope::Global => "DELETE FROM _outpost_auth_sessions WHERE user_id = ?1 AND ?2 IS NOT NULL",
        Scope::Local => "DELETE FROM _outpost_auth_sessions WHERE user_id = ?1 AND id = ?2",
        Scope::Others => "DELETE FROM _outpost_auth_sessions WHERE user_id = ?1 AND id <> ?2",
    };
    conn.prepare_cached(sql)?.execute([user_id, session_id])?;
    Ok(())
}

/// End every session of a user (password reset by an admin, ban, deletion).
pub fn end_all(conn: &Connection, user_id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM _outpost_auth_sessions WHERE user_id = ?1")?
        .execute([user_id])?;
    Ok(())
}

/// Lower the sessions that were raised with `factor_id` back to `aal1` (the factor is gone).
pub fn downgrade_factor(conn: &Connection, factor_id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE _outpost_auth_sessions SET aal = 'aal1', factor_id = NULL, updated_at = now(), \
         amr = (SELECT coalesce(json_group_array(json(value)), '[]') FROM json_each(amr) \
                WHERE value ->> 'method' <> 'totp') \
         WHERE factor_id = ?1",
    )?
    .execute([factor_id])?;
    Ok(())
}

/// Raise a session to `aal2` after a verified second factor, and reissue its tokens.
pub fn upgrade_aal2(
    conn: &Connection,
    signer: &Signer,
    session_id: &str,
    factor_id: &str,
) -> AuthResult<Issued> {
    let mut session = by_id(conn, session_id)?.ok_or_else(|| {
        AuthError::new(
            StatusCode::FORBIDDEN,
            "session_not_found",
            "Session not found",
        )
    })?;
    session.aal = "aal2".into();
    session
        .amr
        .insert(0, json!({"method": "totp", "timestamp": unix_now()}));
    conn.prepare_cached(
        "UPDATE _outpost_auth_sessions SET aal = 'aal2', amr = ?2, factor_id = ?3, \
         updated_at = now() WHERE id = ?1",
    )?
    .execute(params![
        session_id,
        Value::Array(session.amr.clone()).to_string(),
        factor_id
    ])?;
    let refresh = new_refresh_token(conn, session_id, None)?;
    issue(conn, signer, &session, refresh)
}
