//! App schemas that build on `auth.users`, and the admin accounts of `outpost admin create`.

mod common;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const PROFILES: &str = r#"
CREATE TABLE profiles (
    id TEXT PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    full_name TEXT
);
ALTER TABLE profiles ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_profile ON profiles FOR SELECT TO authenticated USING (id = auth.uid());
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users
BEGIN
    INSERT INTO profiles (id, full_name) VALUES (new.id, new.raw_user_meta_data ->> 'full_name');
END;
"#;

async fn sign_up(s: &Server, email: &str, name: &str) -> Value {
    let res = s
        .bare(Method::POST, "/auth/v1/signup")
        .header("apikey", &s.anon_key)
        .json(&json!({"email": email, "password": "secret-123", "data": {"full_name": name}}))
        .send()
        .await
        .expect("send");
    expect_json(res, 200).await
}

#[tokio::test]
async fn triggers_and_foreign_keys_on_auth_users() {
    let s = Server::start(&[("001_profiles.sql", PROFILES)]);
    let ada = sign_up(&s, "ada@example.com", "Ada").await;
    let bob = sign_up(&s, "bob@example.com", "Bob").await;
    let token = ada["access_token"].as_str().expect("token");
    let res = s
        .bare(Method::GET, "/rest/v1/profiles?select=id,full_name")
        .header("apikey", &s.anon_key)
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("send");
    let rows = expect_json(res, 200).await;
    assert_eq!(
        rows,
        json!([{"id": ada["user"]["id"], "full_name": "Ada"}]),
        "the trigger made a profile per user and the policy shows only one's own"
    );
    // The reference holds: a profile for a user that does not exist is refused.
    let res = s
        .post_json(
            "/rest/v1/profiles",
            json!({"id": "nobody", "full_name": "x"}),
            "",
        )
        .await;
    expect_error(res, 409, "23503").await;
    // Deleting the user cascades to the profile.
    let bob_id = bob["user"]["id"].as_str().expect("id");
    let res = s
        .req(Method::DELETE, &format!("/auth/v1/admin/users/{bob_id}"))
        .send()
        .await
        .expect("send");
    expect_json(res, 200).await;
    let all = s.rows("profiles", &[("select", "full_name")]).await;
    assert_eq!(all, json!([{"full_name": "Ada"}]));
    // The reference into Outpost's table is no relationship the data API offers.
    let res = s.get("/rest/v1/profiles?select=*,users(*)").await;
    expect_error(res, 400, "PGRST200").await;
}

#[test]
fn admin_create_stores_an_argon2_hash_and_refuses_duplicates() {
    let dir = TempDir::new();
    let data = dir.0.join("data");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
            .args(["admin", "create"])
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .expect("run outpost")
    };
    let ok = run(&["Root@Example.com", "a-long-password"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let again = run(&["root@example.com", "another-password"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let weak = run(&["other@example.com", "short"]);
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least"));
    let conn = rusqlite::Connection::open(data.join("data.db")).expect("open");
    let (email, hash): (String, String) = conn
        .query_row(
            "SELECT email, password_hash FROM _outpost_admins",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("one admin");
    assert_eq!(email, "root@example.com");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    // Admins are not app users: nobody can sign in to /auth/v1 with that account.
    let users: i64 = conn
        .query_row("SELECT count(*) FROM _outpost_auth_users", [], |r| r.get(0))
        .expect("count");
    assert_eq!(users, 0);
}

#[tokio::test]
async fn imported_bcrypt_hashes_are_rehashed_with_argon2id_on_sign_in() {
    let s = Server::start(&[]);
    let imported = bcrypt::hash("hunter2hunter2", 4).expect("bcrypt");
    let res = s
        .req(Method::POST, "/auth/v1/admin/users")
        .json(
            &json!({"email": "old@example.com", "password_hash": imported, "email_confirm": true}),
        )
        .send()
        .await
        .expect("send");
    expect_json(res, 200).await;
    let stored = |s: &Server| -> String {
        let conn = rusqlite::Connection::open(s.db_path()).expect("open");
        conn.query_row(
            "SELECT encrypted_password FROM _outpost_auth_users WHERE email = 'old@example.com'",
            [],
            |r| r.get(0),
        )
        .expect("user")
    };
    assert!(stored(&s).starts_with("$2"), "kept as imported until used");
    for _ in 0..2 {
        let res = s
            .bare(Method::POST, "/auth/v1/token?grant_type=password")
            .header("apikey", &s.anon_key)
            .json(&json!({"email": "old@example.com", "password": "hunter2hunter2"}))
            .send()
            .await
            .expect("send");
        expect_json(res, 200).await;
        assert!(stored(&s).starts_with("$argon2id$"), "{}", stored(&s));
    }
    let res = s
        .bare(Method::POST, "/auth/v1/token?grant_type=password")
        .header("apikey", &s.anon_key)
        .json(&json!({"email": "old@example.com", "password": "hunter3"}))
        .send()
        .await
        .expect("send");
    let err = expect_json(res, 400).await;
    assert_eq!(err["error_code"], "invalid_credentials");
}
