//! One-time email tokens (a six-digit code and the hash its link carries) and PKCE flow states.

use super::error::{AuthError, AuthResult};
use super::secrets::{otp_code, otp_token_hash, pkce_matches, unix_now};
use axum::http::StatusCode;
use rusqlite::{params, Connection, OptionalExtension};

/// What a one-time token proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Signup,
    Invite,
    MagicLink,
    Recovery,
    /// Sent to the address being left behind.
    EmailChangeCurrent,
    /// Sent to the address being moved to.
    EmailChangeNew,
}

impl Kind {
    /// The name stored and shown as `type` in links.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Signup => "signup",
            Kind::Invite => "invite",
            Kind::MagicLink => "magiclink",
            Kind::Recovery => "recovery",
            Kind::EmailChangeCurrent => "email_change_current",
            Kind::EmailChangeNew => "email_change_new",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "signup" => Kind::Signup,
            "invite" => Kind::Invite,
            "magiclink" => Kind::MagicLink,
            "recovery" => Kind::Recovery,
            "email_change_current" => Kind::EmailChangeCurrent,
            "email_change_new" => Kind::EmailChangeNew,
            _ => return None,
        })
    }

    /// The `type` a link for this kind carries.
    pub fn link_type(self) -> &'static str {
        match self {
            Kind::EmailChangeCurrent | Kind::EmailChangeNew => "email_change",
            other => other.as_str(),
        }
    }

    /// The kinds a client's verification `type` accepts.
    pub fn accepted_by(verify_type: &str) -> AuthResult<&'static [Kind]> {
        Ok(match verify_type {
            "email" => &[Kind::Signup, Kind::MagicLink, Kind::Invite],
            "signup" => &[Kind::Signup],
            "magiclink" => &[Kind::MagicLink, Kind::Signup],
            "invite" => &[Kind::Invite],
            "recovery" => &[Kind::Recovery],
            "email_change" => &[Kind::EmailChangeCurrent, Kind::EmailChangeNew],
            "sms" | "phone_change" => return Err(AuthError::phone_disabled()),
            other => {
                return Err(AuthError::validation(format!(
                    "Verify requires a verification type, `{other}` is not one"
                )))
            }
        })
    }
}

/// A token just issued: the code for the mail and the hash for the link.
#[derive(Debug, Clone)]
pub struct Issued {
    pub code: String,
    pub token_hash: String,
    pub kind: Kind,
    pub email: String,
    pub redirect_to: String,
}

/// Issue a token of `kind` for `user_id`, sent to `email`; it replaces any earlier one of the
/// same kind (only the newest link works).
pub fn issue(
    conn: &Connection,
    user_id: &str,
    kind: Kind,
    email: &str,
    redirect_to: &str,
    flow_state_id: Option<&str>,
    lifetime: i64,
) -> rusqlite::Result<Issued> {
    conn.prepare_cached(
        "DELETE FROM _outpost_auth_one_time_tokens WHERE user_id = ?1 AND kind = ?2",
    )?
    .execute([user_id, kind.as_str()])?;
    let code = otp_code();
    let token_hash = otp_token_hash(email, &code);
    let now = unix_now();
    conn.prepare_cached(
        "INSERT OR REPLACE INTO _outpost_auth_one_time_tokens (token_hash, user_id, kind, email, \
         redirect_to, flow_state_id, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        token_hash,
        user_id,
        kind.as_str(),
        email,
        redirect_to,
        flow_state_id,
        now + lifetime,
        now
    ])?;
    let sent_column = match kind {
        Kind::Signup => "confirmation_sent_at",
        Kind::Recovery | Kind::MagicLink => "recovery_sent_at",
        Kind::Invite => "invited_at",
        Kind::EmailChangeCurrent | Kind::EmailChangeNew => "email_change_sent_at",
    };
    super::users::stamp(conn, user_id, sent_column)?;
    Ok(Issued {
        code,
        token_hash,
        kind,
        email: email.to_string(),
        redirect_to: redirect_to.to_string(),
    })
}

/// A token taken for verification.
#[derive(Debug, Clone)]
pub struct Redeemed {
    pub user_id: String,
    pub kind: Kind,
    pub email: String,
    pub redirect_to: Option<String>,
    pub flow_state_id: Option<String>,
}

/// Take (and delete) the token with `token_hash` if it is of one of `kinds` and still fresh.
pub fn redeem(conn: &Connection, token_hash: &str, kinds: &[Kind]) -> AuthResult<Redeemed> {
    let row = conn
        .prepare_cached(
            "SELECT user_id, kind, email, redirect_to, flow_state_id, expires_at \
             FROM _outpost_auth_one_time_tokens WHERE token_hash = ?1",
        )?
        .query_row([token_hash], |r| {
            let kind: String = r.get(1)?;
            let redeemed = Redeemed {
                user_id: r.get(0)?,
                kind: Kind::parse(&kind).unwrap_or(Kind::Signup),
                email: r.get(2)?,
                redirect_to: r.get(3)?,
                flow_state_id: r.get(4)?,
            };
            Ok((redeemed, Kind::parse(&kind).is_some(), r.get::<_, i64>(5)?))
        })
        .optional()?;
    let Some((redeemed, known, expires_at)) = row else {
        return Err(AuthError::otp_expired());
    };
    if !known || !kinds.contains(&redeemed.kind) {
        return Err(AuthError::otp_expired());
    }
    conn.prepare_cached("DELETE FROM _outpost_auth_one_time_tokens WHERE token_hash = ?1")?
        .execute([token_hash])?;
    if expires_at < unix_now() {
        return Err(AuthError::otp_expired());
    }
    Ok(redeemed)
}

/// How long an unexchanged PKCE flow lives, seconds.
const FLOW_STATE_LIFETIME: i64 = 600;

/// Check a client's PKCE pair: both or neither, and a known method.
pub fn pkce_params(
    challenge: Option<&str>,
    method: Option<&str>,
) -> AuthResult<Option<(String, String)>> {
    match (
        challenge.filter(|c| !c.is_empty()),
        method.filter(|m| !m.is_empty()),
    ) {
        (None, None) => Ok(None),
        (Some(c), Some(m)) => {
            let m = m.to_ascii_lowercase();
            if m != "s256" && m != "plain" {
                return Err(AuthError::validation(format!(
                    "code challenge method `{m}` is not supported"
                )));
            }
            if !(43..=128).contains(&c.len()) {
                return Err(AuthError::validation(
                    "code challenge has to be between 43 and 128 characters",
                ));
            }
            Ok(Some((c.to_string(), m)))
        }
        _ => Err(AuthError::validation(
            "PKCE flow requires code_challenge_method and code_challenge",
        )),
    }
}

/// Record a PKCE flow for `user_id` (when known) signing in by `method`.
pub fn new_flow_state(
    conn: &Connection,
    user_id: Option<&str>,
    pkce: &(String, String),
    method: &str,
) -> rusqlite::Result<String> {
    let id = uuid::Uuid::new_v4().to_string();
    conn.prepare_cached(
        "INSERT INTO _outpost_auth_flow_states (id, user_id, code_challenge, \
         code_challenge_method, authentication_method, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![id, user_id, pkce.0, pkce.1, method, unix_now()])?;
    Ok(id)
}

/// Give a flow its one-time auth code once the user is known; returns the code.
pub fn grant_code(
    conn: &Connection,
    flow_state_id: &str,
    user_id: &str,
    provider_tokens: Option<(&str, Option<&str>)>,
) -> rusqlite::Result<String> {
    let code = uuid::Uuid::new_v4().to_string();
    conn.prepare_cached(
        "UPDATE _outpost_auth_flow_states SET auth_code = ?2, user_id = ?3, provider_token = ?4, \
         provider_refresh_token = ?5, created_at = ?6 WHERE id = ?1",
    )?
    .execute(params![
        flow_state_id,
        code,
        user_id,
        provider_tokens.map(|t| t.0),
        provider_tokens.and_then(|t| t.1),
        unix_now()
    ])?;
    Ok(code)
}

/// What a PKCE exchange yields.
pub struct Exchanged {
    pub user_id: String,
    pub method: String,
    pub provider_token: Option<String>,
    pub provider_refresh_token: Option<String>,
}

/// Exchange an auth code and its verifier, once.
pub fn exchange(conn: &Connection, auth_code: &str, verifier: &str) -> AuthResult<Exchanged> {
    type Row = (
        String,
        Option<String>,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        i64,
    );
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT id, user_id, code_challenge, code_challenge_method, authentication_method, \
             provider_token, provider_refresh_token, created_at FROM _outpost_auth_flow_states \
             WHERE auth_code = ?1",
        )?
        .query_row([auth_code], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .optional()?;
    let Some((id, user_id, challenge, method, auth_method, ptoken, prefresh, created)) = row else {
        return Err(AuthError::new(
            StatusCode::NOT_FOUND,
            "flow_state_not_found",
            "invalid flow state, no valid flow state found",
        ));
    };
    if !pkce_matches(&method, &challenge, verifier) {
        return Err(AuthError::new(
            StatusCode::FORBIDDEN,
            "bad_code_verifier",
            "code challenge does not match previously saved code verifier",
        ));
    }
    conn.prepare_cached("DELETE FROM _outpost_auth_flow_states WHERE id = ?1")?
        .execute([&id])?;
    if created + FLOW_STATE_LIFETIME < unix_now() {
        return Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "flow_state_expired",
            "invalid flow state, flow state has expired",
        ));
    }
    let user_id = user_id.ok_or_else(|| {
        AuthError::new(
            StatusCode::NOT_FOUND,
            "flow_state_not_found",
            "invalid flow state, no valid flow state found",
        )
    })?;
    Ok(Exchanged {
        user_id,
        method: auth_method,
        provider_token: ptoken,
        provider_refresh_token: prefresh,
    })
}
