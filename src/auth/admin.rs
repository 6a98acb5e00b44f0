//! The admin API (service_role key): users, invites, generated links, factors.

use super::account::RedirectQuery;
use super::email::{self, Outbox};
use super::error::{json_ok, AuthError, AuthResult};
use super::otp::{self, Kind};
use super::password;
use super::sessions;
use super::users::{self, NewUser};
use super::{blocking, mfa, normalize_email, parse_body, redirect, require_admin};
use crate::app::AppState;
use crate::db::Mode;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use rusqlite::params;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

#[derive(Debug, Deserialize, Default)]
struct CreateBody {
    id: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    password_hash: Option<String>,
    email_confirm: Option<bool>,
    user_metadata: Option<Map<String, Value>>,
    app_metadata: Option<Map<String, Value>>,
    ban_duration: Option<String>,
    role: Option<String>,
}

/// `POST /admin/users`.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AuthResult<Response> {
    require_admin(&state, &headers)?;
    let body: CreateBody = parse_body(&body)?;
    if body.phone.is_some() {
        return Err(AuthError::phone_disabled());
    }
    let email = body.email.as_deref().map(normalize_email).transpose()?;
    if let Some(id) = &body.id {
        uuid::Uuid::parse_str(id).map_err(|_| AuthError::validation("id must be a UUID"))?;
    }
    let hash = password_hash(&state, body.password, body.password_hash).await?;
    let banned_until = body
        .ban_duration
        .as_deref()
        .map(ban_until)
        .transpose()?
        .flatten();
    let user = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            if let Some(email) = &email {
                if users::by_email(conn, email)?.is_some() {
                    return Err(AuthError::email_exists());
                }
            }
            if let Some(id) = &body.id {
                if users::by_id(conn, id)?.is_some() {
                    return Err(AuthError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "user_already_exists",
                        "User already registered",
                    ));
                }
            }
            let user = users::insert(
                conn,
                NewUser {
                    id: body.id,
                    email,
                    password_hash: hash,
                    confirmed: body.email_confirm.unwrap_or(false),
                    provider: "email".into(),
                    role: body.role,
                    app_metadata: body.app_metadata.unwrap_or_default(),
                    user_metadata: body.user_metadata.unwrap_or_default(),
                    ..NewUser::default()
                },
            )?;
            if let Some(until) = banned_until {
                users::set(conn, &user.id, "banned_until", Some(&until))?;
            }
            let user = users::by_id(conn, &user.id)?.ok_or_else(AuthError::user_not_found)?;
            Ok(user.to_json(conn)?)
        })
        .await?;
    Ok(json_ok(StatusCode::OK, user))
}

/// Hash a plain password (checked for strength) or accept an imported hash.
async fn password_hash(
    state: &AppState,
    password: Option<String>,
    hash: Option<String>,
) -> AuthResult<Option<String>> {
    match (password, hash) {
        (Some(_), Some(_)) => Err(AuthError::validation(
            "Only a password or a password hash should be provided",
        )),
        (Some(pw), None) => {
            password::check_strength(&state.auth.config, &pw)?;
            Ok(Some(blocking(move || password::hash(&pw)).await??))
        }
        (None, Some(h)) => {
            if !password::is_supported_hash(&h) {
                return Err(AuthError::validation(
                    "Invalid password hash: only bcrypt and argon2 hashes are supported",
                ));
            }
            Ok(Some(h))
        }
        (None, None) => Ok(None),
    }
}

/// `now + duration` for a Go duration such as `24h` or `1h30m`; `none` lifts a ban.
fn ban_until(duration: &str) -> AuthResult<Option<String>> {
    if duration == "none" {
        return Ok(None);
    }
    let secs = crate::config::parse_go_duration(duration).ok_or_else(|| {
        AuthError::validation(format!("invalid format for ban duration: {duration}"))
    })?;
    let until = time::OffsetDateTime::now_utc() + time::Duration::seconds_f64(secs);
    until
        .format(&time::format_description::well_known::Rfc3339)
        .map(Some)
        .map_err(AuthError::internal)
}

/// `GET /admin/users?page=&per_page=`, with `x-total-count` and a `link` header.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> AuthResult<Response> {
    require_admin(&state, &headers)?;
    let number =
        |k: &str, default: i64| -> AuthResult<i64> {
            match q.get(k).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    AuthError::validation(format!("Bad Pagination Parameters: {k}"))
                }),
            }
        };
    let page = number("page", 1)?;
    let per_page = number("per_page", 50)?.min(1000);
    let (users, total) = state
        .db
        .read(None, move |conn| {
            let (users, total) = users::page(conn, page, per_page)?;
            let users = users
                .iter()
                .map(|u| u.to_json(conn))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok::<_, AuthError>((users, total))
        })
        .await?;
    let mut response = json_ok(
        StatusCode::OK,
        json!({"users": users, "aud": "authenticated"}),
    );
    let last = ((total + per_page - 1) / per_page).max(1);
    let base = format!("{}/auth/v1/admin/users", state.auth.config.public_url);
    let mut links = Vec::new();
    if page < last {
        links.push(format!(
            "<{base}?page={}&per_page={per_page}>; rel=\"next\"",
            page + 1
        ));
    }
    links.push(format!(
        "<{base}?page={last}&per_page={per_page}>; rel=\"last\""
    ));
    let h = response.headers_mut();
    h.insert("x-total-count", HeaderValue::from(total));
    if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
        h.insert("link", v);
    }
    Ok(response)
}

/// `GET /admin/users/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> AuthResult<Response> {
    require_admin(&state, &headers)?;
    let user = state
        .db
        .read(None, move |conn| {
            let user = users::by_id(conn, &id)?.ok_or_else(AuthError::user_not_found)?;
            Ok::<_, AuthError>(user.to_json(conn)?)
        })
        .await?;
    Ok(json_ok(StatusCode::OK, user))
}

/// `PUT /admin/users/{id}`.
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AuthResult<Response> {
    require_admin(&state, &headers)?;
    let body: CreateBody = parse_body(&body)?;
    let email = body.email.as_deref().map(normalize_email).transpose()?;
    let hash = password_hash(&state, body.password, body.password_hash).await?;
    let ban = body.ban_duration.as_deref().map(ban_until).transpose()?;
    let user = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            let user = users::by_id(conn, &id)?.ok_or_else(AuthError::user_not_found)?;
            if let Some(email) = email.filter(|e| Some(e) != user.email.as_ref()) {
                if users::by_email(conn, &email)?.is_some() {
                    return Err(AuthError::email_exists());
                }
                conn.execute(
                    "UPDATE _outpost_auth_users SET email = ?2, email_change = NULL, updated_at = now() WHERE id = ?1",
                    params![id, email],
                )?;
                conn.execute(
                    "UPDATE _outpost_auth_identities SET email = ?2, identity_data = \
                     json_set(identity_data, '$.email', ?2) WHERE user_id = ?1 AND provider = 'email'",
                    params![id, email],
                )?;
            }
            if let Some(hash) = hash {
                users::set(conn, &id, "encrypted_password", Some(&hash))?;
            }
            if body.email_confirm == Some(true) {
                users::confirm_email(conn, &id)?;
            }
            if let Some(role) = body.role {
                users::set(conn, &id, "role", Some(&role))?;
            }
            if let Some(meta) = body.user_metadata {
                let mut merged = user.user_metadata.clone();
                merged.extend(meta);
                users::set_metadata(conn, &id, "raw_user_meta_data", &merged)?;
            }
            if let Some(meta) = body.app_metadata {
                let mut merged = user.app_metadata.clone();
                merged.extend(meta);
                users::set_metadata(conn, &id, "raw_app_meta_data", &merged)?;
            }
            if let Some(until) = ban {
                users::set(conn, &id, "banned_until", until.as_deref())?;
                if until.is_some() {
                    sessions::end_all(conn, &id)?;
                }
            }
            let user = users::by_id(conn, &id)?.ok_or_else(AuthError::user_not_found)?;
            Ok(user.to_json(conn)?)
        })
        .await?;
    Ok(json_ok(StatusCode::OK, user))
}

#[derive(Debug, Deserialize, Default)]
struct DeleteBody {
    should_soft_delete: Option<bool>,
}

/// `DELETE /admin/users/{id}`; a soft delete keeps the row, without its address or sessions.
pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AuthResult<Response> {
    require_admin(&state, &headers)?;
    let body: DeleteBody = parse_body(&body)?;
    let user = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            let user = users::by_id(conn, &id)?.ok_or_else(AuthError::user_not_found)?;
            let json = user.to_json(conn)?;
            if body.should_soft_delete.unwrap_or(false) {
                sessions::end_all(conn, &id)?;
                conn.execute(
                    "UPDATE _outpost_auth_users SET deleted_at = now(), email = NULL, phone = NULL, \
                     encrypted_password = NULL, updated_at = now() WHERE id = ?1",
                    [&id],
                )?;
                conn.execute("DELETE FROM _outpost_auth_identities WHERE user_id = ?1", [&id])?;
                conn.execute("DELETE FROM _outpost_auth_factors WHERE user_id = ?1", [&id])?;
                conn.execute("DELETE FROM _outpost_auth_one_time_tokens WHERE user_id = ?1", [&id])?;
            } else {
                conn.execute("DELETE FROM _outpost_auth_users WHERE id = ?1", [&id])?;
            }
            Ok::<_, AuthError>(json)
        })
        .await?;
    Ok(json_ok(StatusCode::OK, user))
}

/// `GET /admin/users/{id}/factors`.
pub async fn list_factors(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> AuthResult<Response> {
    require_admin(&state, &headers)?;
    let factors = state
        .db
        .read(None, move |conn| {
            users::by_id(conn, &id)?.ok_or_else(AuthError::user_not_found)?;
            Ok::<_, AuthError>(mfa::factors_json(conn, &id)?)
        })
        .await?;
    Ok(json_ok(StatusCode::OK, Value::Array(factors)))
}

/// `DELETE /admin/users/{id}/factors/{factor}`.
pub async fn delete_factor(
    State(state): State<AppState>,
    Path((id, factor)): Path<(String, String)>,
    headers: HeaderMap,
) -> AuthResult<Response> {
    require_admin(&state, &headers)?;
    let removed = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            mfa::delete_factor(conn, &id, &factor)
        })
        .await?;
    Ok(json_ok(StatusCode::OK, removed))
}

#[derive(Debug, Deserialize, Default)]
struct InviteBody {
    email: Option<String>,
    data: Option<Map<String, Value>>,
}

/// `POST /invite`: create an invited user and mail the invite.
pub async fn invite(
    State(state): State<AppState>,
    Query(q): Query<RedirectQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> AuthResult<Response> {
    require_admin(&state, &headers)?;
    let body: InviteBody = parse_body(&body)?;
    let email = normalize_email(body.email.as_deref().unwrap_or_default())?;
    let config = state.auth.config.clone();
    let redirect_to = redirect::resolve(&config, q.redirect_to.as_deref());
    let (user, outbox) = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            let user = match users::by_email(conn, &email)? {
                Some(u) if u.email_confirmed_at.is_some() => return Err(AuthError::email_exists()),
                Some(u) => u,
                None => users::insert(
                    conn,
                    NewUser {
                        email: Some(email.clone()),
                        invited: true,
                        provider: "email".into(),
                        user_metadata: body.data.unwrap_or_default(),
                        ..NewUser::default()
                    },
                )?,
            };
            let issued = otp::issue(
                conn,
                &user.id,
                Kind::Invite,
                &email,
                &redirect_to,
                None,
                config.otp_expiry,
            )?;
            let user = users::by_id(conn, &user.id)?.ok_or_else(AuthError::user_not_found)?;
            Ok((user.to_json(conn)?, Outbox::one(issued)))
        })
        .await?;
    email::send(&state, outbox).await?;
    Ok(json_ok(StatusCode::OK, user))
}

#[derive(Debug, Deserialize, Default)]
struct GenerateLinkBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    email: Option<String>,
    password: Option<String>,
    new_email: Option<String>,
    data: Option<Map<String, Value>>,
    redirect_to: Option<String>,
}

/// `POST /admin/generate_link`: a verification link and code without sending mail.
pub async fn generate_link(
    State(state): State<AppState>,
    Query(q): Query<RedirectQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> AuthResult<Response> {
    require_admin(&state, &headers)?;
    let body: GenerateLinkBody = parse_body(&body)?;
    let email = normalize_email(body.email.as_deref().unwrap_or_default())?;
    let kind = match body.kind.as_deref().unwrap_or_default() {
        "signup" => Kind::Signup,
        "invite" => Kind::Invite,
        "magiclink" => Kind::MagicLink,
        "recovery" => Kind::Recovery,
        "email_change_current" => Kind::EmailChangeCurrent,
        "email_change_new" => Kind::EmailChangeNew,
        other => {
            return Err(AuthError::validation(format!(
                "Invalid link type `{other}`: one of signup, invite, magiclink, recovery, \
                 email_change_current, email_change_new"
            )))
        }
    };
    let new_email = body.new_email.as_deref().map(normalize_email).transpose()?;
    if matches!(kind, Kind::EmailChangeCurrent | Kind::EmailChangeNew) && new_email.is_none() {
        return Err(AuthError::validation(
            "new_email is required for email change links",
        ));
    }
    let hash = match (kind, body.password) {
        (Kind::Signup, Some(pw)) => password_hash(&state, Some(pw), None).await?,
        (Kind::Signup, None) => {
            return Err(AuthError::validation("Signup requires a valid password"));
        }
        _ => None,
    };
    let config = state.auth.config.clone();
    let redirect_to = redirect::resolve(
        &config,
        body.redirect_to.as_deref().or(q.redirect_to.as_deref()),
    );
    let (mut user, issued) = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            let existing = users::by_email(conn, &email)?;
            let user = match (kind, existing) {
                (Kind::Signup, Some(u)) if u.email_confirmed_at.is_some() => {
                    return Err(AuthError::email_exists())
                }
                (Kind::Invite, Some(u)) if u.email_confirmed_at.is_some() => {
                    return Err(AuthError::email_exists())
                }
                (_, Some(u)) => u,
                (Kind::Signup | Kind::Invite | Kind::MagicLink, None) => users::insert(
                    conn,
                    NewUser {
                        email: Some(email.clone()),
                        password_hash: hash,
                        invited: kind == Kind::Invite,
                        provider: "email".into(),
                        user_metadata: body.data.unwrap_or_default(),
                        ..NewUser::default()
                    },
                )?,
                (_, None) => return Err(AuthError::user_not_found()),
            };
            let target = match kind {
                Kind::EmailChangeNew | Kind::EmailChangeCurrent => {
                    let new_email = new_email.unwrap_or_default();
                    if users::by_email(conn, &new_email)?.is_some() {
                        return Err(AuthError::email_exists());
                    }
                    conn.execute(
                        "UPDATE _outpost_auth_users SET email_change = ?2, email_change_confirm = 0 WHERE id = ?1",
                        params![user.id, new_email],
                    )?;
                    if kind == Kind::EmailChangeNew { new_email } else { email.clone() }
                }
                _ => email.clone(),
            };
            let issued = otp::issue(conn, &user.id, kind, &target, &redirect_to, None, config.otp_expiry)?;
            let user = users::by_id(conn, &user.id)?.ok_or_else(AuthError::user_not_found)?;
            Ok::<_, AuthError>((user.to_json(conn)?, issued))
        })
        .await?;
    let link = email::action_link(&state.auth.config, &issued);
    if let Value::Object(map) = &mut user {
        map.insert("action_link".into(), json!(link));
        map.insert("email_otp".into(), json!(issued.code));
        map.insert("hashed_token".into(), json!(issued.token_hash));
        map.insert("redirect_to".into(), json!(issued.redirect_to));
        map.insert("verification_type".into(), json!(issued.kind.link_type()));
    }
    Ok(json_ok(StatusCode::OK, user))
}

#[cfg(test)]
mod tests {

    #[test]
    fn go_durations() {
        assert_eq!(crate::config::parse_go_duration("24h"), Some(86400.0));
        assert_eq!(crate::config::parse_go_duration("1h30m"), Some(5400.0));
        assert_eq!(crate::config::parse_go_duration("1.5h"), Some(5400.0));
        assert_eq!(crate::config::parse_go_duration("300ms"), Some(0.3));
        assert_eq!(crate::config::parse_go_duration("10 days"), None);
        assert_eq!(crate::config::parse_go_duration("h"), None);
        assert_eq!(crate::config::parse_go_duration(""), None);
    }
}
