//! The GitHub preset of OAuth sign-in.
//!
//! GitHub itself cannot be reached from the test machines, so a stand-in serves the three
//! endpoints Outpost calls (token exchange, `/user`, `/user/emails`) with the shapes GitHub's
//! REST API documents, at the addresses `OUTPOST_AUTH_GITHUB_URL`/`_API_URL` point to (the
//! settings GitHub Enterprise users set). The generic OpenID Connect flow is tested against a
//! real provider in `tests/js/test/auth-oauth.test.js`.

mod common;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;

const ACCESS_TOKEN: &str = "gho_standin_token";

async fn access_token(body: axum::body::Bytes) -> Json<Value> {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let ok = form.get("code").map(String::as_str) == Some("good-code")
        && form.get("client_id").map(String::as_str) == Some("gh-client")
        && form.get("client_secret").map(String::as_str) == Some("gh-secret")
        && form
            .get("redirect_uri")
            .is_some_and(|u| u.ends_with("/auth/v1/callback"));
    if ok {
        Json(
            json!({"access_token": ACCESS_TOKEN, "token_type": "bearer", "scope": "read:user,user:email"}),
        )
    } else {
        Json(
            json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}),
        )
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {ACCESS_TOKEN}"))
}

async fn user(headers: HeaderMap) -> (axum::http::StatusCode, Json<Value>) {
    if !authorized(&headers) {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        );
    }
    (
        axum::http::StatusCode::OK,
        Json(
            json!({"id": 583231, "login": "octocat", "name": "The Octocat",
                    "avatar_url": "https://avatars.example/u/583231", "email": null}),
        ),
    )
}

async fn emails(headers: HeaderMap) -> (axum::http::StatusCode, Json<Value>) {
    if !authorized(&headers) {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        );
    }
    (
        axum::http::StatusCode::OK,
        Json(json!([
            {"email": "octo-old@example.com", "primary": false, "verified": false},
            {"email": "Octocat@Example.com", "primary": true, "verified": true}
        ])),
    )
}

async fn stand_in() -> String {
    let app = Router::new()
        .route("/login/oauth/access_token", post(access_token))
        .route("/api/user", get(user))
        .route("/api/user/emails", get(emails));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn fragment(location: &str) -> HashMap<String, String> {
    let frag = location.split_once('#').map_or("", |(_, f)| f);
    form_urlencoded::parse(frag.as_bytes())
        .into_owned()
        .collect()
}

/// Start a sign-in at Outpost; returns where it sends the browser and that URL's query.
async fn authorize(http: &reqwest::Client, url: &str) -> (String, HashMap<String, String>) {
    let res = http.get(url).send().await.expect("authorize");
    assert_eq!(res.status(), 302);
    let to = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let query = form_urlencoded::parse(to.split_once('?').expect("query").1.as_bytes())
        .into_owned()
        .collect();
    (to, query)
}

/// Follow the provider's redirect back to Outpost; returns where Outpost sends the browser.
async fn callback(http: &reqwest::Client, url: &str) -> String {
    let res = http.get(url).send().await.expect("callback");
    assert_eq!(res.status(), 302);
    res.headers()["location"]
        .to_str()
        .expect("location")
        .to_string()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn github_sign_in_links_by_verified_primary_email() {
    let github = stand_in().await;
    let s = Server::start_env(
        &[],
        &[
            ("OUTPOST_AUTH_PROVIDERS", "github"),
            ("OUTPOST_AUTH_GITHUB_CLIENT_ID", "gh-client"),
            ("OUTPOST_AUTH_GITHUB_CLIENT_SECRET", "gh-secret"),
            ("OUTPOST_AUTH_GITHUB_URL", &github),
            ("OUTPOST_AUTH_GITHUB_API_URL", &format!("{github}/api")),
            ("OUTPOST_SITE_URL", "http://app.test"),
        ],
    );
    // An existing, confirmed user with the address GitHub has verified.
    let res = s
        .req(Method::POST, "/auth/v1/admin/users")
        .json(&json!({"email": "octocat@example.com", "password": "secret-123", "email_confirm": true}))
        .send()
        .await
        .expect("send");
    let existing = expect_json(res, 200).await;

    let http = no_redirects();
    let (to_github, query) = authorize(
        &http,
        &format!(
            "{}/auth/v1/authorize?provider=github&redirect_to=http://app.test/cb",
            s.url
        ),
    )
    .await;
    assert!(
        to_github.starts_with(&format!("{github}/login/oauth/authorize?")),
        "{to_github}"
    );
    assert_eq!(query["client_id"], "gh-client");
    assert_eq!(query["scope"], "read:user user:email");
    assert_eq!(query["redirect_uri"], format!("{}/auth/v1/callback", s.url));
    let state = &query["state"];

    // GitHub sends the browser back with a code.
    let back = callback(
        &http,
        &format!("{}/auth/v1/callback?code=good-code&state={state}", s.url),
    )
    .await;
    assert!(back.starts_with("http://app.test/cb#"), "{back}");
    let session = fragment(&back);
    assert_eq!(session["provider_token"], ACCESS_TOKEN);
    let res = s
        .bare(Method::GET, "/auth/v1/user")
        .header("apikey", &s.anon_key)
        .header(
            "authorization",
            format!("Bearer {}", session["access_token"]),
        )
        .send()
        .await
        .expect("user");
    let user = expect_json(res, 200).await;
    assert_eq!(
        user["id"], existing["id"],
        "linked to the user with the verified email"
    );
    assert_eq!(
        user["app_metadata"]["providers"],
        json!(["email", "github"])
    );
    let github_identity = user["identities"]
        .as_array()
        .expect("identities")
        .iter()
        .find(|i| i["provider"] == "github")
        .expect("a github identity")
        .clone();
    assert_eq!(github_identity["id"], "583231");
    assert_eq!(github_identity["identity_data"]["user_name"], "octocat");
    // identity_data keeps what GitHub said; the identity's address is normalized.
    assert_eq!(
        github_identity["identity_data"]["email"],
        "Octocat@Example.com"
    );
    assert_eq!(github_identity["email"], "octocat@example.com");

    // A state is good for one callback only.
    let replay = callback(
        &http,
        &format!("{}/auth/v1/callback?code=good-code&state={state}", s.url),
    )
    .await;
    assert!(replay.starts_with("http://app.test"), "{replay}");
    assert!(replay.contains("error_code=bad_oauth_state"), "{replay}");

    // A code GitHub refuses ends in an error for the app, not a session.
    let (_, query) = authorize(
        &http,
        &format!("{}/auth/v1/authorize?provider=github", s.url),
    )
    .await;
    let back = callback(
        &http,
        &format!(
            "{}/auth/v1/callback?code=bad-code&state={}",
            s.url, query["state"]
        ),
    )
    .await;
    let params = fragment(&back);
    assert_eq!(
        params.get("error_code").map(String::as_str),
        Some("provider_error"),
        "{back}"
    );
    assert!(!params.contains_key("access_token"));
}
