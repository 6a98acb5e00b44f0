//! The email flows: magic links and codes (`/otp`), recovery, resend, verification (link and
//! code forms), and email change.

use super::account::{user_gone, RedirectQuery};
use super::config::AuthConfig;
use super::error::{json_ok, AuthError, AuthResult};
use super::mailer::{Template, Vars};
use super::otp::{self, Kind};
use super::ratelimit::Bucket;
use super::redirect;
use super::secrets::otp_token_hash;
use super::sessions::{self, Issued as SessionIssued, Signer};
use super::users::{self, NewUser, User};
use super::{normalize_email, parse_body, require_key, ClientIp};
use crate::app::AppState;
use crate::db::Mode;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Mails to send once the transaction that issued their tokens has committed.
#[derive(Debug, Default)]
pub struct Outbox(pub Vec<Mail>);

/// One mail: the token it carries and, for email changes, the address moved to.
#[derive(Debug)]
pub struct Mail {
    pub issued: otp::Issued,
    pub new_email: String,
    pub current_email: String,
}

impl Outbox {
    /// An outbox of one mail.
    pub fn one(issued: otp::Issued) -> Outbox {
        let email = issued.email.clone();
        Outbox(vec![Mail {
            issued,
            new_email: String::new(),
            current_email: email,
        }])
    }
}

/// The link a mail carries: `/verify` with the token hash, its type and the redirect target.
pub fn action_link(config: &AuthConfig, issued: &otp::Issued) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", &issued.token_hash)
        .append_pair("type", issued.kind.link_type())
        .append_pair("redirect_to", &issued.redirect_to)
        .finish();
    format!("{}/auth/v1/verify?{query}", config.public_url)
}

fn template_for(kind: Kind) -> Template {
    match kind {
        Kind::Signup => Template::Confirmation,
        Kind::Invite => Template::Invite,
        Kind::MagicLink => Template::MagicLink,
        Kind::Recovery => Template::Recovery,
        Kind::EmailChangeCurrent | Kind::EmailChangeNew => Template::EmailChange,
    }
}

/// Send every mail in `outbox`. Without SMTP nothing is sent (the links stay available through
/// the admin API's `generate_link`).
pub async fn send(state: &AppState, outbox: Outbox) -> AuthResult<()> {
    let config = &state.auth.config;
    let Some(mailer) = &state.auth.mailer else {
        if !outbox.0.is_empty() {
            tracing::warn!("an auth mail was not sent: SMTP is not configured (OUTPOST_SMTP_HOST)");
        }
        return Ok(());
    };
    for mail in outbox.0 {
        let vars = Vars {
            confirmation_url: action_link(config, &mail.issued),
            token: mail.issued.code.clone(),
            token_hash: mail.issued.token_hash.clone(),
            site_url: config.site_url.clone(),
            email: mail.current_email.clone(),
            new_email: mail.new_email.clone(),
            redirect_to: mail.issued.redirect_to.clone(),
        };
        mailer
            .send(&mail.issued.email, template_for(mail.issued.kind), &vars)
            .await?;
    }
    Ok(())
}

fn require_mailer(state: &AppState) -> AuthResult<()> {
    if state.auth.mailer.is_none() {
        return Err(AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email_provider_disabled",
            "Sending email is not configured on this server (OUTPOST_SMTP_HOST)",
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize, Default)]
struct OtpBody {
    email: Option<String>,
    phone: Option<String>,
    data: Option<Map<String, Value>>,
    create_user: Option<bool>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// `POST /otp` (and the older `/magiclink`): mail a sign-in link and code. The answer is the
/// same whether or not the address belongs to a user.
pub async fn otp(
    State(state): State<AppState>,
    ip: ClientIp,
    Query(q): Query<RedirectQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> AuthResult<Response> {
    require_key(&state, &headers)?;
    let body: OtpBody = parse_body(&body)?;
    if body.phone.is_some() && body.email.is_none() {
        return Err(AuthError::phone_disabled());
    }
    let email = normalize_email(body.email.as_deref().unwrap_or_default())?;
    require_mailer(&state)?;
    let config = state.auth.config.clone();
    let ip = ip.resolve(&config, &headers);
    state.auth.limit_both(Bucket::Otp, &ip, &email)?;
    let pkce = otp::pkce_params(
        body.code_challenge.as_deref(),
        body.code_challenge_method.as_deref(),
    )?;
    let redirect_to = redirect::resolve(&config, q.redirect_to.as_deref());
    let create = body.create_user.unwrap_or(true) && !config.disable_signup;
    let metadata = body.data.unwrap_or_default();
    let outbox = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            let user = match users::by_email(conn, &email)? {
                Some(u) => u,
                None if create => users::insert(
                    conn,
                    NewUser {
                        email: Some(email.clone()),
                        provider: "email".into(),
                        user_metadata: metadata,
                        ..NewUser::default()
                    },
                )?,
                None => return Ok(Outbox::default()),
            };
            if user.is_banned() {
                return Ok(Outbox::default());
            }
            let kind = if user.email_confirmed_at.is_some() {
                Kind::MagicLink
            } else {
                Kind::Signup
            };
            let flow = pkce
                .as_ref()
                .map(|p| otp::new_flow_state(conn, Some(&user.id), p, "magiclink"))
                .transpose()?;
            let issued = otp::issue(
                conn,
                &user.id,
                kind,
                &email,
                &redirect_to,
                flow.as_deref(),
                config.otp_expiry,
            )?;
            Ok::<_, AuthError>(Outbox::one(issued))
        })
        .await?;
    send(&state, outbox).await?;
    Ok(json_ok(StatusCode::OK, json!({})))
}

#[derive(Debug, Deserialize, Default)]
struct RecoverBody {
    email: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// `POST /recover`: mail a password-recovery link; `{}` whether or not the address is known.
pub async fn recover(
    State(state): State<AppState>,
    ip: ClientIp,
    Query(q): Query<RedirectQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> AuthResult<Response> {
    require_key(&state, &headers)?;
    let body: RecoverBody = parse_body(&body)?;
    let email = normalize_email(body.email.as_deref().unwrap_or_default())?;
    require_mailer(&state)?;
    let config = state.auth.config.clone();
    let ip = ip.resolve(&config, &headers);
    state.auth.limit_both(Bucket::Otp, &ip, &email)?;
    let pkce = otp::pkce_params(
        body.code_challenge.as_deref(),
        body.code_challenge_method.as_deref(),
    )?;
    let redirect_to = redirect::resolve(&config, q.redirect_to.as_deref());
    let outbox = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            let Some(user) = users::by_email(conn, &email)?.filter(|u| !u.is_banned()) else {
                return Ok(Outbox::default());
            };
            let flow = pkce
                .as_ref()
                .map(|p| otp::new_flow_state(conn, Some(&user.id), p, "recovery"))
                .transpose()?;
            let issued = otp::issue(
                conn,
                &user.id,
                Kind::Recovery,
                &email,
                &redirect_to,
                flow.as_deref(),
                config.otp_expiry,
            )?;
            Ok::<_, AuthError>(Outbox::one(issued))
        })
        .await?;
    send(&state, outbox).await?;
    Ok(json_ok(StatusCode::OK, json!({})))
}

#[derive(Debug, Deserialize, Default)]
struct ResendBody {
    email: Option<String>,
    phone: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// `POST /resend`: send the sign-up confirmation or the email-change mails again.
pub async fn resend(
    State(state): State<AppState>,
    ip: ClientIp,
    Query(q): Query<RedirectQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> AuthResult<Response> {
    require_key(&state, &headers)?;
    let body: ResendBody = parse_body(&body)?;
    if body.phone.is_some() && body.email.is_none() {
        return Err(AuthError::phone_disabled());
    }
    let kind = body.kind.unwrap_or_default();
    if kind != "signup" && kind != "email_change" {
        return Err(AuthError::validation(format!(
            "Missing one of these types: signup, email_change, sms, phone_change (got `{kind}`)"
        )));
    }
    let email = normalize_email(body.email.as_deref().unwrap_or_default())?;
    require_mailer(&state)?;
    let config = state.auth.config.clone();
    let ip = ip.resolve(&config, &headers);
    state.auth.limit_both(Bucket::Otp, &ip, &email)?;
    let redirect_to = redirect::resolve(&config, q.redirect_to.as_deref());
    let outbox = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            if kind == "signup" {
                let Some(user) = users::by_email(conn, &email)?
                    .filter(|u| u.email_confirmed_at.is_none() && !u.is_banned())
                else {
                    return Ok(Outbox::default());
                };
                let issued = otp::issue(
                    conn,
                    &user.id,
                    Kind::Signup,
                    &email,
                    &redirect_to,
                    None,
                    config.otp_expiry,
                )?;
                return Ok(Outbox::one(issued));
            }
            let user = match users::by_email(conn, &email)? {
                Some(u) => Some(u),
                None => pending_change_of(conn, &email)?,
            };
            match user {
                Some(user) if user.email_change.is_some() => {
                    let new_email = user.email_change.clone().unwrap_or_default();
                    email_change_mails(conn, &config, &user, &new_email, &redirect_to, None)
                }
                _ => Ok(Outbox::default()),
            }
        })
        .await?;
    send(&state, outbox).await?;
    Ok(json_ok(StatusCode::OK, json!({})))
}

fn pending_change_of(conn: &Connection, new_email: &str) -> AuthResult<Option<User>> {
    let id: Option<String> = conn
        .prepare_cached(
            "SELECT id FROM _outpost_auth_users WHERE email_change = ?1 AND deleted_at IS NULL",
        )?
        .query_row([new_email], |r| r.get(0))
        .optional()?;
    match id {
        Some(id) => Ok(users::by_id(conn, &id)?),
        None => Ok(None),
    }
}

fn email_taken(conn: &Connection, email: &str, by_other_than: &str) -> AuthResult<()> {
    if users::by_email(conn, email)?.is_some_and(|u| u.id != by_other_than) {
        return Err(AuthError::email_exists());
    }
    Ok(())
}

/// Begin changing `user`'s address to `new_email`: at once when mail confirmation is off,
/// else by mailing the new address (and, with secure email change, the current one too).
pub fn start_email_change(
    conn: &Connection,
    config: &AuthConfig,
    user: &User,
    new_email: &str,
    redirect_to: &str,
    pkce: Option<&(String, String)>,
) -> AuthResult<Outbox> {
    email_taken(conn, new_email, &user.id)?;
    if config.mailer_autoconfirm {
        apply_email(conn, user, new_email)?;
        return Ok(Outbox::default());
    }
    conn.prepare_cached(
        "UPDATE _outpost_auth_users SET email_change = ?2, email_change_confirm = 0, \
         updated_at = now() WHERE id = ?1",
    )?
    .execute(params![user.id, new_email])?;
    email_change_mails(conn, config, user, new_email, redirect_to, pkce)
}

fn email_change_mails(
    conn: &Connection,
    config: &AuthConfig,
    user: &User,
    new_email: &str,
    redirect_to: &str,
    pkce: Option<&(String, String)>,
) -> AuthResult<Outbox> {
    let flow = pkce
        .map(|p| otp::new_flow_state(conn, Some(&user.id), p, "email_change"))
        .transpose()?;
    let current = user.email.clone().unwrap_or_default();
    let mut mails = vec![Mail {
        issued: otp::issue(
            conn,
            &user.id,
            Kind::EmailChangeNew,
            new_email,
            redirect_to,
            flow.as_deref(),
            config.otp_expiry,
        )?,
        new_email: new_email.to_string(),
        current_email: current.clone(),
    }];
    if config.secure_email_change && !current.is_empty() {
        mails.push(Mail {
            issued: otp::issue(
                conn,
                &user.id,
                Kind::EmailChangeCurrent,
                &current,
                redirect_to,
                flow.as_deref(),
                config.otp_expiry,
            )?,
            new_email: new_email.to_string(),
            current_email: current,
        });
    }
    Ok(Outbox(mails))
}

/// Make `new_email` the user's confirmed address (and its email identity's).
fn apply_email(conn: &Connection, user: &User, new_email: &str) -> AuthResult<()> {
    email_taken(conn, new_email, &user.id)?;
    conn.prepare_cached(
        "UPDATE _outpost_auth_users SET email = ?2, email_change = NULL, email_change_confirm = 0, \
         email_confirmed_at = now(), is_anonymous = 0, updated_at = now() WHERE id = ?1",
    )?
    .execute(params![user.id, new_email])?;
    let has_identity: bool = conn
        .prepare_cached(
            "SELECT 1 FROM _outpost_auth_identities WHERE user_id = ?1 AND provider = 'email'",
        )?
        .exists([&user.id])?;
    if has_identity {
        conn.prepare_cached(
            "UPDATE _outpost_auth_identities SET email = ?2, identity_data = \
             json_set(identity_data, '$.email', ?2, '$.email_verified', json('true')), \
             updated_at = now() WHERE user_id = ?1 AND provider = 'email'",
        )?
        .execute(params![user.id, new_email])?;
    } else {
        let data = json!({"sub": user.id, "email": new_email, "email_verified": true, "phone_verified": false});
        users::insert_identity(conn, &user.id, "email", &user.id, Some(new_email), data)?;
        if user.is_anonymous {
            let mut app = user.app_metadata.clone();
            app.insert("provider".into(), json!("email"));
            users::set_metadata(conn, &user.id, "raw_app_meta_data", &app)?;
        }
    }
    Ok(())
}

/// What a verified token leads to.
pub enum Verified {
    Session(SessionIssued, &'static str),
    /// PKCE: the app exchanges this code for the session.
    Code(String),
    /// The first half of a secure email change.
    Pending(String),
}

/// Apply a redeemed token: confirm the address, finish an email change, then sign in.
fn apply(
    conn: &Connection,
    config: &AuthConfig,
    signer: &Signer,
    r: otp::Redeemed,
    pkce: bool,
) -> AuthResult<Verified> {
    let user = users::by_id(conn, &r.user_id)?.ok_or_else(AuthError::otp_expired)?;
    if user.is_banned() {
        return Err(sessions::banned());
    }
    let method = match r.kind {
        Kind::Signup | Kind::MagicLink | Kind::Invite | Kind::Recovery => {
            if user.email.as_deref() != Some(r.email.as_str()) {
                return Err(AuthError::otp_expired());
            }
            users::confirm_email(conn, &user.id)?;
            match r.kind {
                Kind::Invite => "invite",
                Kind::Recovery => "recovery",
                _ => "otp",
            }
        }
        Kind::EmailChangeCurrent | Kind::EmailChangeNew => {
            let Some(new_email) = user.email_change.clone() else {
                return Err(AuthError::otp_expired());
            };
            let bit = if r.kind == Kind::EmailChangeNew { 2 } else { 1 };
            let confirmed = user.email_change_confirm | bit;
            let needed = if config.secure_email_change && user.email.is_some() {
                3
            } else {
                2
            };
            if confirmed & needed != needed {
                conn.prepare_cached(
                    "UPDATE _outpost_auth_users SET email_change_confirm = ?2 WHERE id = ?1",
                )?
                .execute(params![user.id, confirmed])?;
                return Ok(Verified::Pending(
                    "Confirmation link accepted. Please proceed to confirm link sent to the other email".into(),
                ));
            }
            apply_email(conn, &user, &new_email)?;
            "email_change"
        }
    };
    if let (true, Some(flow)) = (pkce, r.flow_state_id.as_deref()) {
        let code = otp::grant_code(conn, flow, &user.id, None)?;
        return Ok(Verified::Code(code));
    }
    let user = users::by_id(conn, &user.id)?.ok_or_else(user_gone)?;
    let issued = sessions::start(conn, signer, &user, method)?;
    Ok(Verified::Session(issued, r.kind.link_type()))
}

#[derive(Debug, Deserialize, Default)]
struct VerifyBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    token: Option<String>,
    token_hash: Option<String>,
    email: Option<String>,
    phone: Option<String>,
}

/// `POST /verify`: a code with its address, or a token hash; answers with a session.
pub async fn verify(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> AuthResult<Response> {
    require_key(&state, &headers)?;
    let body: VerifyBody = parse_body(&body)?;
    let config = state.auth.config.clone();
    state
        .auth
        .limit(Bucket::Verify, &ip.resolve(&config, &headers))?;
    let kinds = Kind::accepted_by(body.kind.as_deref().unwrap_or_default())?;
    if body.phone.is_some() && body.email.is_none() && body.token_hash.is_none() {
        return Err(AuthError::phone_disabled());
    }
    let hash = match (body.token_hash, body.email, body.token) {
        (Some(h), _, _) if !h.is_empty() => h,
        (_, Some(email), Some(token)) => otp_token_hash(&normalize_email(&email)?, token.trim()),
        _ => {
            return Err(AuthError::validation(
                "Verify requires either a token and an email, or a token_hash",
            ))
        }
    };
    let signer = state.auth.signer.clone();
    let outcome = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            let redeemed = otp::redeem(conn, &hash, kinds)?;
            apply(conn, &config, &signer, redeemed, false)
        })
        .await?;
    match outcome {
        Verified::Session(issued, _) => Ok(json_ok(StatusCode::OK, issued.to_json())),
        Verified::Pending(msg) => Ok(json_ok(StatusCode::OK, json!({ "msg": msg }))),
        Verified::Code(_) => Err(AuthError::internal("a code answer to POST /verify")),
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct VerifyQuery {
    token: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    redirect_to: Option<String>,
}

/// `GET /verify?token=…&type=…&redirect_to=…`: the link in a mail. Verifies and redirects to the
/// app with the session in the fragment, a PKCE `?code=`, or the error.
pub async fn verify_link(
    State(state): State<AppState>,
    ip: ClientIp,
    Query(q): Query<VerifyQuery>,
    headers: HeaderMap,
) -> Response {
    let config = state.auth.config.clone();
    let mut target = redirect::resolve(&config, q.redirect_to.as_deref());
    let result: AuthResult<Verified> = async {
        state
            .auth
            .limit(Bucket::Verify, &ip.resolve(&config, &headers))?;
        let kinds = Kind::accepted_by(q.kind.as_deref().unwrap_or_default())?;
        let hash = q.token.clone().unwrap_or_default();
        let signer = state.auth.signer.clone();
        let config = config.clone();
        let (outcome, stored_redirect) = state
            .db
            .writer
            .write(Mode::Commit, None, move |conn| {
                let redeemed = otp::redeem(conn, &hash, kinds)?;
                let stored = redeemed.redirect_to.clone();
                Ok::<_, AuthError>((apply(conn, &config, &signer, redeemed, true)?, stored))
            })
            .await?;
        if q.redirect_to.is_none() {
            target = redirect::resolve(&state.auth.config, stored_redirect.as_deref());
        }
        Ok(outcome)
    }
    .await;
    let location = match result {
        Ok(Verified::Session(issued, kind)) => {
            redirect::with_params(&target, &issued.to_params(kind), true)
        }
        Ok(Verified::Code(code)) => redirect::with_params(&target, &[("code".into(), code)], false),
        Ok(Verified::Pending(msg)) => {
            redirect::with_params(&target, &[("message".into(), msg)], true)
        }
        Err(e) => redirect::with_params(&target, &error_params(&e), true),
    };
    see_other(&location)
}

/// `error`, `error_code`, `error_description` for a redirect back to the app.
pub fn error_params(e: &AuthError) -> Vec<(String, String)> {
    let error = match e.status {
        StatusCode::INTERNAL_SERVER_ERROR => "server_error",
        StatusCode::BAD_REQUEST => "invalid_request",
        _ => "access_denied",
    };
    let description = if e.code == "otp_expired" {
        "Email link is invalid or has expired".to_string()
    } else {
        e.msg.clone()
    };
    vec![
        ("error".into(), error.into()),
        ("error_code".into(), e.code.into()),
        ("error_description".into(), description),
    ]
}

/// A 303 to `location`.
pub fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    super::error::with_api_version(&mut r);
    r
}
