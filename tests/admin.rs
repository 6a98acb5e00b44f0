//! Admin sessions and the admin UI's server side, through the real binary: the one-time setup
//! link, sign-in and sign-out with the session cookie, the admin API refusing everyone else,
//! accounts from `outpost admin create`, the overview, and the UI's files at `/_/`.

mod common;
use common::{expect_json, Server};
use reqwest::Method;
use serde_json::{json, Value};

/// The `outpost_admin=…` pair from a response's `Set-Cookie`, and the whole header.
fn session_cookie(res: &reqwest::Response) -> (String, String) {
    let header = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a Set-Cookie header")
        .to_string();
    let pair = header.split(';').next().unwrap_or_default().to_string();
    (pair, header)
}

/// Assert the admin API's error shape, `{code, message}`, with `status`.
async fn expect_error(res: reqwest::Response, status: u16, code: &str) {
    assert_eq!(res.status().as_u16(), status);
    let body: Value = res.json().await.expect("a JSON error");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn with_cookie(s: &Server, method: Method, path: &str, cookie: &str) -> reqwest::Response {
    s.client
        .request(method, format!("{}{}", s.url, path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn the_setup_link_makes_the_first_admin_once_and_sessions_guard_the_admin_api() {
    let s = Server::start(&[]);
    let link = s
        .banner("admin setup:")
        .expect("a setup link on a fresh server");
    let token = link
        .split("#setup=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .expect("a token in the link")
        .to_string();
    assert!(link.starts_with(&format!("{}/_/#setup=", s.url)), "{link}");
    let state = expect_json(
        s.bare(Method::GET, "/_/api/admin/setup")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(state, json!({"needed": true}));

    // Nobody is signed in: the admin API refuses, with the admin API's error shape.
    expect_error(
        s.bare(Method::GET, "/_/api/overview").send().await.unwrap(),
        401,
        "not_signed_in",
    )
    .await;
    let anon = s
        .bare(Method::GET, "/_/api/functions")
        .bearer_auth(&s.anon_key)
        .send()
        .await
        .unwrap();
    expect_error(anon, 403, "not_admin").await;

    // A wrong token, a weak password, a bad email: refused, and nothing is created.
    let setup = |body: Value| {
        s.bare(Method::POST, "/_/api/admin/setup")
            .json(&body)
            .send()
    };
    let refusals = [
        (
            json!({"token": "00", "email": "a@b.co", "password": "long enough pw"}),
            403,
            "bad_setup_token",
        ),
        (
            json!({"token": token, "email": "a@b.co", "password": "short"}),
            400,
            "invalid_request",
        ),
        (
            json!({"token": token, "email": "nope", "password": "long enough pw"}),
            400,
            "invalid_request",
        ),
        (
            json!({"token": token, "email": "a@b.co"}),
            400,
            "invalid_request",
        ),
    ];
    for (body, status, code) in refusals {
        expect_error(setup(body).await.unwrap(), status, code).await;
    }

    let res =
        setup(json!({"token": token, "email": "Admin@Example.com", "password": "long enough pw"}))
            .await
            .unwrap();
    let (cookie, header) = session_cookie(&res);
    assert!(
        header.contains("HttpOnly")
            && header.contains("SameSite=Strict")
            && header.contains("Path=/_/"),
        "{header}"
    );
    let body = expect_json(res, 200).await;
    assert_eq!(body["admin"]["email"], "admin@example.com");

    // The link works once.
    expect_error(
        setup(json!({"token": token, "email": "second@example.com", "password": "long enough pw"}))
            .await
            .unwrap(),
        410,
        "setup_done",
    )
    .await;
    let state = expect_json(
        s.bare(Method::GET, "/_/api/admin/setup")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(state, json!({"needed": false}));

    // The session opens the admin API.
    let me = expect_json(
        with_cookie(&s, Method::GET, "/_/api/admin/me", &cookie).await,
        200,
    )
    .await;
    assert_eq!(me["admin"]["email"], "admin@example.com");
    let overview = expect_json(
        with_cookie(&s, Method::GET, "/_/api/overview", &cookie).await,
        200,
    )
    .await;
    assert_eq!(overview["status"], "ok");
    assert_eq!(overview["version"], env!("CARGO_PKG_VERSION"));
    assert!(overview["database_bytes"].as_i64().unwrap_or(0) > 0);
    assert!(overview["requests"].as_u64().unwrap_or(0) > 0);
    assert_eq!(overview["replication"]["role"], "standalone");
    expect_json(
        with_cookie(&s, Method::GET, "/_/api/functions", &cookie).await,
        200,
    )
    .await;

    // Sign out: the cookie is cleared and no longer opens anything.
    let res = with_cookie(&s, Method::POST, "/_/api/admin/logout", &cookie).await;
    assert_eq!(res.status(), 204);
    let (_, cleared) = session_cookie(&res);
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    expect_error(
        with_cookie(&s, Method::GET, "/_/api/overview", &cookie).await,
        401,
        "not_signed_in",
    )
    .await;
    expect_error(
        with_cookie(&s, Method::GET, "/_/api/overview", "outpost_admin=forged").await,
        401,
        "not_signed_in",
    )
    .await;

    // Signing in again with the account the link made.
    let login = |email: &str, password: &str| {
        s.bare(Method::POST, "/_/api/admin/login")
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    expect_error(
        login("admin@example.com", "wrong password").await.unwrap(),
        400,
        "invalid_credentials",
    )
    .await;
    expect_error(
        login("ghost@example.com", "long enough pw").await.unwrap(),
        400,
        "invalid_credentials",
    )
    .await;
    let res = login("ADMIN@example.com", "long enough pw").await.unwrap();
    let (cookie, _) = session_cookie(&res);
    expect_json(res, 200).await;
    expect_json(
        with_cookie(&s, Method::GET, "/_/api/overview", &cookie).await,
        200,
    )
    .await;
    // The service_role key still works for scripts.
    expect_json(
        s.req(Method::GET, "/_/api/overview").send().await.unwrap(),
        200,
    )
    .await;
}

#[tokio::test]
async fn accounts_from_the_command_line_sign_in_and_no_setup_link_is_printed() {
    let first = Server::start(&[]);
    let dir = first.terminate().1;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args([
            "admin",
            "create",
            "ops@example.com",
            "correct horse battery",
            "--data-dir",
        ])
        .arg(dir.0.join("data"))
        .output()
        .expect("outpost admin create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = Server::start_in(dir);
    assert!(s.banner("admin UI:").is_some());
    assert_eq!(s.banner("admin setup:"), None);
    let res = s
        .bare(Method::POST, "/_/api/admin/login")
        .json(&json!({"email": "ops@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    let (cookie, _) = session_cookie(&res);
    expect_json(res, 200).await;
    let me = expect_json(
        with_cookie(&s, Method::GET, "/_/api/admin/me", &cookie).await,
        200,
    )
    .await;
    assert_eq!(me["admin"]["email"], "ops@example.com");
    let setup = s
        .bare(Method::POST, "/_/api/admin/setup")
        .json(&json!({"token": "ab", "email": "x@example.com", "password": "long enough pw"}))
        .send()
        .await
        .unwrap();
    expect_error(setup, 410, "setup_done").await;
}

#[tokio::test]
async fn the_ui_is_served_from_the_binary() {
    let s = Server::start(&[]);
    let res = s.bare(Method::GET, "/_/").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    let html = res.text().await.unwrap();
    assert!(html.contains("<script type=\"module\" src=\"/_/app.js\">"));
    let js = s.bare(Method::GET, "/_/app.js").send().await.unwrap();
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let css = s.bare(Method::GET, "/_/style.css").send().await.unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    // A page of the app (the UI routes by hash, but a deep link still gets the app).
    let deep = s.bare(Method::GET, "/_/tables/todos").send().await.unwrap();
    assert_eq!(deep.status(), 200);
    assert!(deep.text().await.unwrap().contains("app.js"));
    // The API is not the app: an unknown admin API path is a 404, not the HTML page.
    let missing = s.bare(Method::GET, "/_/api/nope").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let bare = s.bare(Method::GET, "/_").send().await.unwrap();
    assert_eq!(bare.url().path(), "/_/");
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_address() {
    let s = Server::start_env(&[], &[("OUTPOST_AUTH_RATE_LIMIT_SIGNIN", "3")]);
    let attempt = || {
        s.bare(Method::POST, "/_/api/admin/login")
            .json(&json!({"email": "who@example.com", "password": "guess guess guess"}))
            .send()
    };
    for _ in 0..3 {
        expect_error(attempt().await.unwrap(), 400, "invalid_credentials").await;
    }
    expect_error(attempt().await.unwrap(), 429, "too_many_requests").await;
}
