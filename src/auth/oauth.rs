//! OAuth sign-in: `/authorize` sends the browser to the provider, `/callback` takes it back,
//! finds or creates the user (linking by verified email) and returns to the app with a
//! session (implicit flow) or a PKCE code.

use super::config::{ProviderConfig, ProviderKind};
use super::email::error_params;
use super::error::{json_ok, AuthError, AuthResult};
use super::otp;
use super::redirect;
use super::secrets::{random_token, unix_now};
use super::sessions;
use super::users::{self, NewUser};
use crate::app::AppState;
use crate::db::Mode;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rusqlite::{params, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Seconds between `/authorize` and `/callback` before the sign-in is abandoned.
const STATE_LIFETIME: i64 = 600;

/// The parts of an OpenID Connect discovery document Outpost uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

fn provider_error(msg: impl Into<String>) -> AuthError {
    AuthError::new(StatusCode::BAD_GATEWAY, "provider_error", msg)
}

fn provider<'a>(state: &'a AppState, name: &str) -> AuthResult<&'a ProviderConfig> {
    state
        .auth
        .config
        .providers
        .get(&name.to_ascii_lowercase())
        .ok_or_else(|| {
            AuthError::new(
                StatusCode::BAD_REQUEST,
                "validation_failed",
                format!(
                    "Unsupported provider: Provider {name} could not be found or is not enabled"
                ),
            )
        })
}

async fn discover(state: &AppState, p: &ProviderConfig, url: &str) -> AuthResult<Arc<Discovery>> {
    if let Some(d) = state
        .auth
        .discovered
        .lock()
        .ok()
        .and_then(|m| m.get(&p.name).cloned())
    {
        return Ok(d);
    }
    let doc: Discovery = state
        .auth
        .http
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| {
            provider_error(format!(
                "cannot read the discovery document of {}: {e}",
                p.name
            ))
        })?
        .json()
        .await
        .map_err(|e| provider_error(format!("bad discovery document from {}: {e}", p.name)))?;
    let doc = Arc::new(doc);
    if let Ok(mut m) = state.auth.discovered.lock() {
        m.insert(p.name.clone(), doc.clone());
    }
    Ok(doc)
}

fn callback_url(state: &AppState) -> String {
    format!("{}/auth/v1/callback", state.auth.config.public_url)
}

#[derive(Debug, Deserialize, Default)]
pub struct AuthorizeQuery {
    provider: Option<String>,
    redirect_to: Option<String>,
    scopes: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    skip_http_redirect: Option<bool>,
}

/// `GET /authorize?provider=…`: redirect to the provider's consent page.
pub async fn authorize(
    State(state): State<AppState>,
    Query(q): Query<AuthorizeQuery>,
) -> AuthResult<Response> {
    let name = q
        .provider
        .clone()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| AuthError::validation("Unsupported provider: missing provider"))?;
    let p = provider(&state, &name)?.clone();
    let pkce = otp::pkce_params(
        q.code_challenge.as_deref(),
        q.code_challenge_method.as_deref(),
    )?;
    let redirect_to = redirect::resolve(&state.auth.config, q.redirect_to.as_deref());
    let endpoint = match &p.kind {
        ProviderKind::Oidc { discovery_url } => discover(&state, &p, discovery_url)
            .await?
            .authorization_endpoint
            .clone(),
        ProviderKind::GitHub { web_url, .. } => format!("{web_url}/login/oauth/authorize"),
    };
    let id = random_token(24);
    let nonce = random_token(16);
    {
        let (id, nonce, provider) = (id.clone(), nonce.clone(), p.name.clone());
        state
            .db
            .writer
            .write(Mode::Commit, None, move |conn| {
                conn.execute(
                    "DELETE FROM _outpost_auth_oauth_states WHERE created_at < ?1",
                    [unix_now() - STATE_LIFETIME],
                )?;
                conn.execute(
                    "INSERT INTO _outpost_auth_oauth_states (id, provider, redirect_to, nonce, \
                     code_challenge, code_challenge_method, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        id,
                        provider,
                        redirect_to,
                        nonce,
                        pkce.as_ref().map(|p| p.0.clone()),
                        pkce.as_ref().map(|p| p.1.clone()),
                        unix_now()
                    ],
                )?;
                Ok::<_, AuthError>(())
            })
            .await?;
    }
    let mut scopes: Vec<String> = p.scopes.split_whitespace().map(str::to_string).collect();
    for s in q.scopes.as_deref().unwrap_or_default().split([' ', ',']) {
        if !s.is_empty() && !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    let mut url_params = vec![
        ("client_id".to_string(), p.client_id.clone()),
        ("redirect_uri".to_string(), callback_url(&state)),
        ("response_type".to_string(), "code".to_string()),
        ("scope".to_string(), scopes.join(" ")),
        ("state".to_string(), id),
    ];
    if matches!(p.kind, ProviderKind::Oidc { .. }) {
        url_params.push(("nonce".to_string(), nonce));
    }
    let url = redirect::with_params(&endpoint, &url_params, false);
    if q.skip_http_redirect == Some(true) {
        return Ok(json_ok(StatusCode::OK, json!({ "url": url })));
    }
    Ok(found(&url))
}

fn found(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    super::error::with_api_version(&mut r);
    r
}

#[derive(Debug, Deserialize, Default)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

struct Pending {
    provider: String,
    redirect_to: String,
    nonce: String,
    pkce: Option<(String, String)>,
}

/// `GET /callback`: the provider sends the browser back here with a code.
pub async fn callback(State(state): State<AppState>, Query(q): Query<CallbackQuery>) -> Response {
    let site = state.auth.config.site_url.clone();
    let pending = match take_state(&state, q.state.clone()).await {
        Ok(p) => p,
        Err(e) => return found(&redirect::with_params(&site, &error_params(&e), false)),
    };
    // PKCE apps read errors and codes from the query, implicit ones from the fragment.
    let fragment = pending.pkce.is_none();
    if let Some(error) = q.error.clone() {
        let params = vec![
            ("error".to_string(), error),
            ("error_code".to_string(), "provider_error".to_string()),
            (
                "error_description".to_string(),
                q.error_description
                    .clone()
                    .unwrap_or_else(|| "The provider refused the sign-in".into()),
            ),
        ];
        return found(&redirect::with_params(
            &pending.redirect_to,
            &params,
            fragment,
        ));
    }
    match finish(&state, &pending, q.code.unwrap_or_default()).await {
        Ok(params) => found(&redirect::with_params(
            &pending.redirect_to,
            &params,
            fragment,
        )),
        Err(e) => found(&redirect::with_params(
            &pending.redirect_to,
            &error_params(&e),
            fragment,
        )),
    }
}

async fn take_state(state: &AppState, id: Option<String>) -> AuthResult<Pending> {
    let bad_state = || {
        AuthError::new(
            StatusCode::BAD_REQUEST,
            "bad_oauth_state",
            "OAuth state parameter missing, invalid or expired",
        )
    };
    let id = id.filter(|s| !s.is_empty()).ok_or_else(bad_state)?;
    type Row = (String, String, String, Option<String>, Option<String>, i64);
    let row: Option<Row> = state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            let row = conn
                .query_row(
                    "SELECT provider, redirect_to, nonce, code_challenge, code_challenge_method, created_at \
                     FROM _outpost_auth_oauth_states WHERE id = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )
                .optional()?;
            conn.execute("DELETE FROM _outpost_auth_oauth_states WHERE id = ?1", [&id])?;
            Ok::<_, AuthError>(row)
        })
        .await?;
    let (provider, redirect_to, nonce, challenge, method, created) = row.ok_or_else(bad_state)?;
    if created + STATE_LIFETIME < unix_now() {
        return Err(bad_state());
    }
    Ok(Pending {
        provider,
        redirect_to,
        nonce,
        pkce: challenge.zip(method),
    })
}

/// Who the provider says the user is.
struct ProviderUser {
    id: String,
    email: Option<String>,
    email_verified: bool,
    data: Map<String, Value>,
    access_token: String,
    refresh_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    refresh_token: Option<String>,
    id_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn finish(
    state: &AppState,
    pending: &Pending,
    code: String,
) -> AuthResult<Vec<(String, String)>> {
    if code.is_empty() {
        return Err(AuthError::validation(
            "the provider sent no authorization code",
        ));
    }
    let p = provider(state, &pending.provider)?.clone();
    let who = match &p.kind {
        ProviderKind::Oidc { discovery_url } => {
            let d = discover(state, &p, discovery_url).await?;
            oidc_user(state, &p, &d, &code, &pending.nonce).await?
        }
        ProviderKind::GitHub { web_url, api_url } => {
            let token_url = format!("{web_url}/login/oauth/access_token");
            let tokens = exchange(state, &p, &token_url, &code, false).await?;
            github_user(state, api_url, tokens).await?
        }
    };
    let signer = state.auth.signer.clone();
    let disable_signup = state.auth.config.disable_signup;
    let provider = p.name.clone();
    let pkce = pending.pkce.clone();
    state
        .db
        .writer
        .write(Mode::Commit, None, move |conn| {
            let mut data = who.data.clone();
            data.insert("sub".into(), json!(who.id));
            data.insert("provider_id".into(), json!(who.id));
            if let Some(e) = &who.email {
                data.insert("email".into(), json!(e));
            }
            data.insert("email_verified".into(), json!(who.email_verified));
            let email = who.email.as_deref().map(str::to_lowercase);
            let user = match users::by_identity(conn, &provider, &who.id)? {
                Some(u) => u,
                None => {
                    let existing = match &email {
                        Some(e) => users::by_email(conn, e)?,
                        None => None,
                    };
                    match existing {
                        Some(u) if who.email_verified => {
                            if u.email_confirmed_at.is_none() {
                                users::confirm_email(conn, &u.id)?;
                            }
                            u
                        }
                        Some(_) => {
                            return Err(AuthError::new(
                                StatusCode::UNPROCESSABLE_ENTITY,
                                "email_exists",
                                "A user with this email address is already registered; the provider has not verified it",
                            ))
                        }
                        None if disable_signup => {
                            return Err(AuthError::new(
                                StatusCode::UNPROCESSABLE_ENTITY,
                                "signup_disabled",
                                "Signups not allowed for this instance",
                            ))
                        }
                        None => users::insert(
                            conn,
                            NewUser {
                                email: email.clone(),
                                confirmed: who.email_verified && email.is_some(),
                                provider: provider.clone(),
                                user_metadata: data.clone(),
                                ..NewUser::default()
                            },
                        )?,
                    }
                }
            };
            if user.is_banned() {
                return Err(sessions::banned());
            }
            users::insert_identity(conn, &user.id, &provider, &who.id, email.as_deref(), Value::Object(data))?;
            let user = users::by_id(conn, &user.id)?.ok_or_else(AuthError::user_not_found)?;
            if let Some(pkce) = &pkce {
                let flow = otp::new_flow_state(conn, Some(&user.id), pkce, "oauth")?;
                let code = otp::grant_code(
                    conn,
                    &flow,
                    &user.id,
                    Some((&who.access_token, who.refresh_token.as_deref())),
                )?;
                return Ok(vec![("code".to_string(), code)]);
            }
            let issued = sessions::start(conn, &signer, &user, "oauth")?;
            let mut params = issued.to_params("");
            params.retain(|(k, _)| k != "type");
            params.push(("provider_token".into(), who.access_token.clone()));
            if let Some(r) = &who.refresh_token {
                params.push(("provider_refresh_token".into(), r.clone()));
            }
            Ok(params)
        })
        .await
}

async fn exchange(
    state: &AppState,
    p: &ProviderConfig,
    token_url: &str,
    code: &str,
    basic_auth: bool,
) -> AuthResult<TokenResponse> {
    let mut form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code.to_string()),
        ("redirect_uri", callback_url(state)),
    ];
    let mut request = state
        .auth
        .http
        .post(token_url)
        .header(header::ACCEPT, "application/json");
    if basic_auth {
        request = request.basic_auth(
            form_urlencoded::byte_serialize(p.client_id.as_bytes()).collect::<String>(),
            Some(form_urlencoded::byte_serialize(p.client_secret.as_bytes()).collect::<String>()),
        );
    } else {
        form.push(("client_id", p.client_id.clone()));
        form.push(("client_secret", p.client_secret.clone()));
    }
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let tokens: TokenResponse = request
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| provider_error(format!("token request to {} failed: {e}", p.name)))?
        .json()
        .await
        .map_err(|e| provider_error(format!("bad token response from {}: {e}", p.name)))?;
    if let Some(err) = &tokens.error {
        return Err(provider_error(format!(
            "{} refused the code: {err} {}",
            p.name,
            tokens.error_description.clone().unwrap_or_default()
        )));
    }
    Ok(tokens)
}

async fn oidc_user(
    state: &AppState,
    p: &ProviderConfig,
    d: &Discovery,
    code: &str,
    nonce: &str,
) -> AuthResult<ProviderUser> {
    // client_secret_basic is the OpenID Connect default when the provider lists nothing.
    let basic = d.token_endpoint_auth_methods_supported.is_empty()
        || d.token_endpoint_auth_methods_supported
            .iter()
            .any(|m| m == "client_secret_basic");
    let tokens = exchange(state, p, &d.token_endpoint, code, basic).await?;
    let access_token = tokens
        .access_token
        .clone()
        .ok_or_else(|| provider_error("the provider returned no access token"))?;
    let mut claims = Map::new();
    if let Some(id_token) = &tokens.id_token {
        claims = verify_id_token(state, p, d, id_token).await?;
        if claims
            .get("nonce")
            .and_then(Value::as_str)
            .is_some_and(|n| n != nonce)
        {
            return Err(provider_error("the ID token's nonce does not match"));
        }
        claims.remove("nonce");
    }
    if let Some(userinfo) = &d.userinfo_endpoint {
        let info: Map<String, Value> = state
            .auth
            .http
            .get(userinfo)
            .bearer_auth(&access_token)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| provider_error(format!("userinfo request failed: {e}")))?
            .json()
            .await
            .map_err(|e| provider_error(format!("bad userinfo response: {e}")))?;
        if claims.get("sub").is_some() && info.get("sub") != claims.get("sub") {
            return Err(provider_error(
                "userinfo is about another subject than the ID token",
            ));
        }
        for (k, v) in info {
            claims.entry(k).or_insert(v);
        }
    }
    for k in [
        "aud",
        "exp",
        "iat",
        "auth_time",
        "at_hash",
        "azp",
        "sid",
        "c_hash",
    ] {
        claims.remove(k);
    }
    let id = claims
        .get("sub")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| provider_error("the provider did not name the user (no `sub`)"))?;
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_string);
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    if let Some(name) = claims.get("name").cloned() {
        claims.entry("full_name").or_insert(name);
    }
    if let Some(picture) = claims.get("picture").cloned() {
        claims.entry("avatar_url").or_insert(picture);
    }
    Ok(ProviderUser {
        id,
        email,
        email_verified,
        data: claims,
        access_token,
        refresh_token: tokens.refresh_token,
    })
}

async fn verify_id_token(
    state: &AppState,
    p: &ProviderConfig,
    d: &Discovery,
    id_token: &str,
) -> AuthResult<Map<String, Value>> {
    use jsonwebtoken::jwk::JwkSet;
    let jwks_uri = d
        .jwks_uri
        .as_deref()
        .ok_or_else(|| provider_error("the provider publishes no jwks_uri"))?;
    let header = jsonwebtoken::decode_header(id_token)
        .map_err(|e| provider_error(format!("bad ID token: {e}")))?;
    let keys: JwkSet = state
        .auth
        .http
        .get(jwks_uri)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| provider_error(format!("cannot fetch the provider's keys: {e}")))?
        .json()
        .await
        .map_err(|e| provider_error(format!("bad key set from the provider: {e}")))?;
    let jwk = match &header.kid {
        Some(kid) => keys.find(kid),
        None => keys.keys.first(),
    }
    .ok_or_else(|| provider_error("the ID token is signed with an unknown key"))?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk)
        .map_err(|e| provider_error(format!("unusable provider key: {e}")))?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[&p.client_id]);
    validation.set_issuer(&[&d.issuer]);
    validation.leeway = 60;
    jsonwebtoken::decode::<Map<String, Value>>(id_token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| provider_error(format!("the ID token does not verify: {e}")))
}

#[derive(Debug, Deserialize)]
struct GitHubEmail {
    email: String,
    primary: bool,
    verified: bool,
}

async fn github_user(
    state: &AppState,
    api_url: &str,
    tokens: TokenResponse,
) -> AuthResult<ProviderUser> {
    let access_token = tokens
        .access_token
        .ok_or_else(|| provider_error("GitHub returned no access token"))?;
    let get = |path: &str| {
        state
            .auth
            .http
            .get(format!("{api_url}{path}"))
            .bearer_auth(&access_token)
            .header(header::ACCEPT, "application/vnd.github+json")
            .send()
    };
    let profile: Map<String, Value> = get("/user")
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| provider_error(format!("GitHub user request failed: {e}")))?
        .json()
        .await
        .map_err(|e| provider_error(format!("bad GitHub user: {e}")))?;
    let emails: Vec<GitHubEmail> =
        match get("/user/emails").await.and_then(|r| r.error_for_status()) {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
    let id = match profile.get("id") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => return Err(provider_error("GitHub did not name the user")),
    };
    let primary = emails
        .iter()
        .find(|e| e.primary && e.verified)
        .or_else(|| emails.iter().find(|e| e.verified));
    let mut data = Map::new();
    for (from, to) in [
        ("login", "user_name"),
        ("login", "preferred_username"),
        ("name", "full_name"),
        ("name", "name"),
        ("avatar_url", "avatar_url"),
    ] {
        if let Some(v) = profile.get(from).filter(|v| !v.is_null()) {
            data.insert(to.to_string(), v.clone());
        }
    }
    data.insert("iss".into(), json!(api_url));
    Ok(ProviderUser {
        id,
        email: primary.map(|e| e.email.clone()),
        email_verified: primary.is_some(),
        data,
        access_token,
        refresh_token: tokens.refresh_token,
    })
}
