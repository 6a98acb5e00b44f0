//! `/rest/v1` errors: every answer carries a status, a PostgREST or SQLSTATE code, and the four
//! keys `code`, `details`, `hint`, `message`. Failed writes leave nothing behind, and nothing a
//! client sends is ever executed as SQL.

mod common;
use common::*;
use reqwest::{Method, Response};
use serde_json::{json, Value};

/// Tables and rows beyond `common::BLOG_TABLES`.
const SCHEMA: &str = r#"
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY,
    writer_id INTEGER REFERENCES authors(id),
    reviewer_id INTEGER REFERENCES authors(id),
    note TEXT
);

INSERT INTO authors (id, name, bio) VALUES (1, 'Ada', 'math'), (2, 'Grace', NULL), (3, 'Linus', 'kernel');
INSERT INTO posts (id, title, published, meta, author_id, score) VALUES
    (1, 'Hello World', 1, '{"a":"x"}', 1, 4.5),
    (2, 'hello again', 0, NULL, 1, 3.0),
    (3, 'Rust tips', 1, NULL, 2, NULL),
    (4, 'Drafts, and more', 0, NULL, NULL, 1.25),
    (5, 'Percent 100%', 1, NULL, 2, 2.0);
INSERT INTO comments (id, post_id, body) VALUES (1, 1, 'first!'), (2, 1, 'nice post'), (3, 3, 'great tips');
INSERT INTO reviews (id, writer_id, reviewer_id, note) VALUES (1, 1, 2, 'ok');
"#;

fn start() -> Server {
    Server::start(&[("001_blog.sql", BLOG_TABLES), ("002_extra.sql", SCHEMA)])
}

/// GET `/rest/v1/{path_and_query}` with the service key.
async fn get(s: &Server, path: &str) -> Response {
    s.get(&format!("/rest/v1/{path}")).await
}

/// GET `/rest/v1/{table}?{form-encoded params}`.
async fn get_qs(s: &Server, table: &str, params: &[(&str, &str)]) -> Response {
    s.get(&format!("/rest/v1/{table}?{}", qs(params))).await
}

/// Every post as `{id, title}`, in id order: to prove a request changed nothing.
async fn posts(s: &Server) -> Value {
    s.get_json("/rest/v1/posts?select=id,title&order=id", 200)
        .await
}

fn seeded_posts() -> Value {
    json!([
        {"id": 1, "title": "Hello World"},
        {"id": 2, "title": "hello again"},
        {"id": 3, "title": "Rust tips"},
        {"id": 4, "title": "Drafts, and more"},
        {"id": 5, "title": "Percent 100%"},
    ])
}

// ------------------------------------------------------------------ query-string grammar

#[tokio::test]
async fn bad_select_is_pgrst100() {
    let s = start();
    for select in [
        "id,",
        "id,authors(name",
        "...title",
        "id,\"unterminated",
        "a!b!c!d(x)",
    ] {
        let res = get_qs(&s, "posts", &[("select", select)]).await;
        let body = expect_error(res, 400, "PGRST100").await;
        assert!(
            body["message"].as_str().unwrap().contains("select"),
            "{select}: {body}"
        );
    }
}

#[tokio::test]
async fn bad_filter_is_pgrst100() {
    let s = start();
    for (k, v) in [
        ("id", "foo.1"),
        ("id", "eq"),
        ("id", "in.(1,2"),
        ("id", "in.1,2"),
        ("title", "is.maybe"),
        ("or", "(id.eq.1"),
        ("or", "id.eq.1"),
        ("and", "()"),
        ("id", "gt(any).1"),
    ] {
        let res = get_qs(&s, "posts", &[(k, v)]).await;
        expect_error(res, 400, "PGRST100").await;
    }
}

#[tokio::test]
async fn bad_order_and_limit_are_pgrst100() {
    let s = start();
    for (k, v) in [
        ("order", "id.sideways"),
        ("order", "id.asc.nullsmiddle"),
        ("order", "id;drop"),
        ("limit", "abc"),
        ("limit", "-1"),
        ("offset", "x"),
        ("comments.limit", "ten"),
    ] {
        let res = get_qs(&s, "posts", &[(k, v)]).await;
        expect_error(res, 400, "PGRST100").await;
    }
}

#[tokio::test]
async fn select_nested_deeper_than_eight_is_pgrst100() {
    let s = start();
    // authors → posts → authors → …: every level is a real relationship.
    let nest = |levels: usize| {
        let mut sel = String::from("id");
        for i in (0..levels).rev() {
            let rel = if i % 2 == 0 { "authors" } else { "posts" };
            sel = format!("id,{rel}({sel})");
        }
        sel
    };
    let res = get_qs(&s, "posts", &[("select", &nest(8)), ("id", "eq.1")]).await;
    let v = expect_json(res, 200).await;
    assert_eq!(v[0]["authors"]["posts"][0]["authors"]["id"], 1, "{v}");
    let res = get_qs(&s, "posts", &[("select", &nest(9)), ("id", "eq.1")]).await;
    expect_error(res, 400, "PGRST100").await;
    let deep = "a(".repeat(50) + "id" + &")".repeat(50);
    let res = get_qs(&s, "posts", &[("select", &deep)]).await;
    expect_error(res, 400, "PGRST100").await;
}

#[tokio::test]
async fn logic_trees_nested_too_deeply_are_pgrst100() {
    let s = start();
    let tree = |depth: usize| {
        let mut t = format!("id.eq.{depth}");
        for i in (1..depth).rev() {
            t = format!("id.eq.{i},or({t})");
        }
        format!("({t})")
    };
    let res = get_qs(
        &s,
        "posts",
        &[("select", "id"), ("or", &tree(3)), ("order", "id")],
    )
    .await;
    assert_eq!(
        expect_json(res, 200).await,
        json!([{"id": 1}, {"id": 2}, {"id": 3}])
    );
    let res = get_qs(&s, "posts", &[("select", "id"), ("or", &tree(12))]).await;
    expect_error(res, 400, "PGRST100").await;
}

#[tokio::test]
async fn a_write_with_a_bad_select_changes_nothing() {
    let s = start();
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts?select=id,nope",
            json!({"title": "never"}),
            "return=representation",
        )
        .await;
    expect_error(res, 400, "42703").await;
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/posts?id=eq.1&select=id,nothing(*)",
            json!({"title": "never"}),
            "return=representation",
        )
        .await;
    expect_error(res, 400, "PGRST200").await;
    let res = s
        .send(
            Method::DELETE,
            "/rest/v1/comments?id=eq.1&select=nope",
            Value::Null,
            "return=representation",
        )
        .await;
    expect_error(res, 400, "42703").await;
    assert_eq!(posts(&s).await, seeded_posts());
    let v = s
        .get_json("/rest/v1/comments?select=id&order=id", 200)
        .await;
    assert_eq!(v, json!([{"id": 1}, {"id": 2}, {"id": 3}]));
}

#[tokio::test]
async fn query_string_over_the_limit_is_414() {
    let s = start();
    let near = "x".repeat(10_000);
    let res = get_qs(&s, "posts", &[("title", &format!("eq.{near}"))]).await;
    assert_eq!(expect_json(res, 200).await, json!([]));
    let long = "x".repeat(20_000);
    let res = get_qs(&s, "posts", &[("title", &format!("eq.{long}"))]).await;
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    assert_eq!(status, 414, "{text}");
}

// ------------------------------------------------------------------ schema lookups

#[tokio::test]
async fn unknown_table_is_pgrst205() {
    let s = start();
    let body = expect_error(get(&s, "nope").await, 404, "PGRST205").await;
    assert!(body["message"].as_str().unwrap().contains("nope"), "{body}");
    let res = s
        .send(Method::POST, "/rest/v1/nope", json!({"a": 1}), "")
        .await;
    expect_error(res, 404, "PGRST205").await;
    let res = s
        .send(Method::PATCH, "/rest/v1/nope?a=eq.1", json!({"a": 1}), "")
        .await;
    expect_error(res, 404, "PGRST205").await;
    let res = s
        .send(Method::DELETE, "/rest/v1/nope?a=eq.1", Value::Null, "")
        .await;
    expect_error(res, 404, "PGRST205").await;
}

#[tokio::test]
async fn system_tables_are_invisible() {
    let s = start();
    for t in ["_outpost_migrations", "sqlite_master", "sqlite_schema"] {
        expect_error(get(&s, t).await, 404, "PGRST205").await;
        let res = s
            .send(
                Method::DELETE,
                &format!("/rest/v1/{t}?id=gt.0"),
                Value::Null,
                "",
            )
            .await;
        expect_error(res, 404, "PGRST205").await;
    }
    let res = s
        .send(
            Method::POST,
            "/rest/v1/_outpost_migrations",
            json!({"name": "x"}),
            "",
        )
        .await;
    expect_error(res, 404, "PGRST205").await;
    let res = get_qs(&s, "posts", &[("select", "id,_outpost_migrations(*)")]).await;
    expect_error(res, 400, "PGRST200").await;
    // Migrations are still recorded (so the table exists and was hidden, not missing).
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM _outpost_migrations", [], |r| r.get(0))
        .unwrap();
    assert!(n >= 1);
}

#[tokio::test]
async fn unknown_column_in_select_filter_and_order_is_42703() {
    let s = start();
    for params in [
        vec![("select", "id,nope")],
        vec![("select", "id,authors(nope)")],
        vec![("select", "nope->>a")],
        vec![("nope", "eq.1")],
        vec![("nope->>a", "eq.1")],
        vec![("or", "(id.eq.1,nope.eq.2)")],
        vec![("order", "nope.desc")],
        vec![("select", "id,authors(name)"), ("authors.nope", "eq.1")],
    ] {
        let res = get_qs(&s, "posts", &params).await;
        let body = expect_error(res, 400, "42703").await;
        assert!(
            body["message"].as_str().unwrap().contains("nope"),
            "{params:?}: {body}"
        );
    }
}

#[tokio::test]
async fn unknown_column_in_body_is_pgrst204() {
    let s = start();
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts",
            json!({"title": "x", "nope": 1}),
            "",
        )
        .await;
    let body = expect_error(res, 400, "PGRST204").await;
    assert!(body["message"].as_str().unwrap().contains("nope"), "{body}");
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/posts?id=eq.1",
            json!({"nope": 1}),
            "",
        )
        .await;
    expect_error(res, 400, "PGRST204").await;
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts?columns=title,nope",
            json!([{"title": "x"}]),
            "",
        )
        .await;
    expect_error(res, 400, "PGRST204").await;
    assert_eq!(posts(&s).await, seeded_posts());
}

#[tokio::test]
async fn unknown_relationship_is_pgrst200() {
    let s = start();
    for select in [
        "name,comments(body)",
        "name,nothing(*)",
        "name,posts!nope(id)",
    ] {
        let res = get_qs(&s, "authors", &[("select", select)]).await;
        let body = expect_error(res, 400, "PGRST200").await;
        assert!(
            body["message"].as_str().unwrap().contains("authors"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn ambiguous_embed_is_pgrst201_with_300() {
    let s = start();
    let res = get_qs(&s, "reviews", &[("select", "id,authors(name)")]).await;
    let body = expect_error(res, 300, "PGRST201").await;
    let all = body.to_string();
    assert!(
        all.contains("reviews_writer_id_fkey") && all.contains("reviews_reviewer_id_fkey"),
        "the candidates are named: {body}"
    );
    let res = get_qs(&s, "authors", &[("select", "name,reviews(id)")]).await;
    expect_error(res, 300, "PGRST201").await;
}

#[tokio::test]
async fn embed_filter_without_embed_is_pgrst108() {
    let s = start();
    let res = get_qs(&s, "posts", &[("select", "id"), ("comments.body", "eq.x")]).await;
    expect_error(res, 400, "PGRST108").await;
    let res = get_qs(&s, "posts", &[("select", "id"), ("comments.order", "id")]).await;
    expect_error(res, 400, "PGRST108").await;
}

#[tokio::test]
async fn singular_response_with_wrong_count_is_pgrst116() {
    let s = start();
    let res = s
        .req(Method::GET, "/rest/v1/posts?id=gt.100")
        .header("accept", "application/vnd.pgrst.object+json")
        .send()
        .await
        .unwrap();
    let body = expect_error(res, 406, "PGRST116").await;
    assert_eq!(
        body["message"],
        "Cannot coerce the result to a single JSON object"
    );
    assert_eq!(body["details"], "The result contains 0 rows");
}

#[tokio::test]
async fn bad_integer_in_filter_is_22p02() {
    let s = start();
    for (k, v) in [
        ("id", "eq.abc"),
        ("id", "in.(1,x)"),
        ("score", "gt.high"),
        ("published", "eq.maybe"),
    ] {
        let res = get_qs(&s, "posts", &[(k, v)]).await;
        expect_error(res, 400, "22P02").await;
    }
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts",
            json!({"title": "x", "author_id": "one"}),
            "",
        )
        .await;
    expect_error(res, 400, "22P02").await;
    assert_eq!(posts(&s).await, seeded_posts());
}

// ------------------------------------------------------------------ constraints

#[tokio::test]
async fn unique_violation_is_23505_409() {
    let s = start();
    let res = s
        .send(Method::POST, "/rest/v1/authors", json!({"name": "Ada"}), "")
        .await;
    let body = expect_error(res, 409, "23505").await;
    assert!(
        body["message"].as_str().unwrap().contains("duplicate key"),
        "{body}"
    );
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts",
            json!({"id": 1, "title": "dup"}),
            "",
        )
        .await;
    expect_error(res, 409, "23505").await;
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/authors?id=eq.2",
            json!({"name": "Ada"}),
            "",
        )
        .await;
    expect_error(res, 409, "23505").await;
    let v = s
        .get_json("/rest/v1/authors?select=name&order=id", 200)
        .await;
    assert_eq!(
        v,
        json!([{"name": "Ada"}, {"name": "Grace"}, {"name": "Linus"}])
    );
}

#[tokio::test]
async fn foreign_key_violation_is_23503_409() {
    let s = start();
    let res = s
        .send(
            Method::POST,
            "/rest/v1/comments",
            json!({"post_id": 999, "body": "x"}),
            "",
        )
        .await;
    expect_error(res, 409, "23503").await;
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/posts?id=eq.1",
            json!({"author_id": 999}),
            "",
        )
        .await;
    expect_error(res, 409, "23503").await;
    // Deleting a parent that still has children.
    let res = s
        .send(Method::DELETE, "/rest/v1/posts?id=eq.1", Value::Null, "")
        .await;
    expect_error(res, 409, "23503").await;
    assert_eq!(posts(&s).await, seeded_posts());
    let v = s
        .get_json("/rest/v1/comments?select=id&order=id", 200)
        .await;
    assert_eq!(v, json!([{"id": 1}, {"id": 2}, {"id": 3}]));
}

#[tokio::test]
async fn not_null_violation_is_23502_400() {
    let s = start();
    let res = s
        .send(Method::POST, "/rest/v1/posts", json!({"title": null}), "")
        .await;
    let body = expect_error(res, 400, "23502").await;
    assert!(
        body["message"].as_str().unwrap().contains("title"),
        "{body}"
    );
    let res = s.send(Method::POST, "/rest/v1/posts", json!({}), "").await;
    expect_error(res, 400, "23502").await;
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/posts?id=eq.2",
            json!({"title": null}),
            "",
        )
        .await;
    expect_error(res, 400, "23502").await;
    assert_eq!(posts(&s).await, seeded_posts());
}

#[tokio::test]
async fn check_violation_is_23514_400() {
    let s = start();
    let res = s
        .send(Method::POST, "/rest/v1/posts", json!({"title": ""}), "")
        .await;
    expect_error(res, 400, "23514").await;
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/posts?id=lte.2",
            json!({"title": ""}),
            "",
        )
        .await;
    expect_error(res, 400, "23514").await;
    assert_eq!(posts(&s).await, seeded_posts());
}

#[tokio::test]
async fn array_insert_with_a_bad_row_inserts_nothing() {
    let s = start();
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts",
            json!([{"title": "first ok"}, {"title": null}, {"title": "third ok"}]),
            "return=representation",
        )
        .await;
    expect_error(res, 400, "23502").await;
    assert_eq!(posts(&s).await, seeded_posts());
    let res = s
        .send(
            Method::POST,
            "/rest/v1/authors",
            json!([{"name": "New one"}, {"name": "Ada"}]),
            "",
        )
        .await;
    expect_error(res, 409, "23505").await;
    let v = s.get_json("/rest/v1/authors?name=eq.New+one", 200).await;
    assert_eq!(v, json!([]));
}

// ------------------------------------------------------------------ bodies and media types

#[tokio::test]
async fn invalid_json_body_is_pgrst102() {
    let s = start();
    for body in [
        "{not json",
        "",
        "[1,2]",
        "\"text\"",
        "[{\"title\":\"a\"},{\"name\":\"b\"}]",
    ] {
        let res = s
            .req(Method::POST, "/rest/v1/posts")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "PGRST102").await;
    }
    let res = s
        .req(Method::PATCH, "/rest/v1/posts?id=eq.1")
        .header("content-type", "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "PGRST102").await;
    assert_eq!(posts(&s).await, seeded_posts());
}

#[tokio::test]
async fn text_plain_write_is_pgrst107_415() {
    let s = start();
    let res = s
        .req(Method::POST, "/rest/v1/posts")
        .header("content-type", "text/plain")
        .body("{\"title\": \"x\"}")
        .send()
        .await
        .unwrap();
    expect_error(res, 415, "PGRST107").await;
    let res = s
        .req(Method::PATCH, "/rest/v1/posts?id=eq.1")
        .header("content-type", "text/plain")
        .body("{\"title\": \"x\"}")
        .send()
        .await
        .unwrap();
    expect_error(res, 415, "PGRST107").await;
    assert_eq!(posts(&s).await, seeded_posts());
}

#[tokio::test]
async fn unknown_schema_profile_is_pgrst106() {
    let s = start();
    let res = s
        .req(Method::GET, "/rest/v1/posts")
        .header("accept-profile", "other")
        .send()
        .await
        .unwrap();
    expect_error(res, 406, "PGRST106").await;
    let res = s
        .req(Method::POST, "/rest/v1/posts")
        .header("content-profile", "other")
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 406, "PGRST106").await;
    assert_eq!(posts(&s).await, seeded_posts());
    // `public` is fine.
    let res = s
        .req(Method::GET, "/rest/v1/posts?select=id&id=eq.1")
        .header("accept-profile", "public")
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(res, 200).await, json!([{"id": 1}]));
}

// ------------------------------------------------------------------ credentials

#[tokio::test]
async fn missing_key_is_401() {
    let s = start();
    let res = s.bare(Method::GET, "/rest/v1/posts").send().await.unwrap();
    expect_error(res, 401, "PGRST302").await;
    let res = s
        .bare(Method::POST, "/rest/v1/posts")
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "PGRST302").await;
    assert_eq!(posts(&s).await, seeded_posts());
}

#[tokio::test]
async fn bad_signature_is_pgrst301() {
    let s = start();
    let forged = outpost::keys::sign(
        "some-other-secret-0123456789abcdef0123456789",
        &json!({"role": "service_role", "iss": "outpost"}),
    )
    .unwrap();
    for (apikey, bearer) in [
        (forged.as_str(), forged.as_str()),
        (s.service_key.as_str(), forged.as_str()),
        (forged.as_str(), s.service_key.as_str()),
        ("not-a-jwt", "not-a-jwt"),
    ] {
        let res = s
            .bare(Method::GET, "/rest/v1/posts")
            .header("apikey", apikey)
            .header("authorization", format!("Bearer {bearer}"))
            .send()
            .await
            .unwrap();
        expect_error(res, 401, "PGRST301").await;
    }
    // A tampered payload with the original signature.
    let parts: Vec<&str> = s.anon_key.split('.').collect();
    let service_parts: Vec<&str> = s.service_key.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], service_parts[1], parts[2]);
    let res = s
        .bare(Method::GET, "/rest/v1/posts")
        .header("apikey", &tampered)
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "PGRST301").await;
}

#[tokio::test]
async fn expired_token_is_pgrst303() {
    let s = start();
    let expired = mint(json!({"role": "service_role", "exp": now() - 60}));
    let res = s
        .bare(Method::GET, "/rest/v1/posts")
        .header("apikey", &expired)
        .header("authorization", format!("Bearer {expired}"))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "PGRST303").await;
    let user = mint(json!({"role": "authenticated", "sub": "u1", "exp": now() - 60}));
    let res = s
        .bare(Method::GET, "/rest/v1/posts")
        .header("apikey", &s.anon_key)
        .header("authorization", format!("Bearer {user}"))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "PGRST303").await;
}

#[tokio::test]
async fn rls_without_policies_reads_nothing_and_refuses_inserts_42501() {
    let s = start();
    // Row-level security is on by default and posts has no policy: anon reads no rows.
    let res = s
        .bare(Method::GET, "/rest/v1/posts")
        .header("apikey", &s.anon_key)
        .header("authorization", format!("Bearer {}", s.anon_key))
        .header("prefer", "count=exact")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["content-range"].to_str().unwrap(),
        "*/0",
        "anon count"
    );
    assert_eq!(expect_json(res, 200).await, json!([]));
    let res = s
        .bare(Method::POST, "/rest/v1/posts")
        .header("apikey", &s.anon_key)
        .json(&json!({"title": "anon"}))
        .send()
        .await
        .unwrap();
    let body = expect_error(res, 401, "42501").await;
    assert_eq!(
        body["message"],
        "new row violates row-level security policy for table \"posts\""
    );

    // The bearer token decides the role, even next to the service key.
    let res = s
        .bare(Method::GET, "/rest/v1/posts")
        .header("apikey", &s.service_key)
        .header("authorization", format!("Bearer {}", s.anon_key))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(res, 200).await, json!([]));

    let user = mint(json!({
        "sub": "8a7f1b2c-0000-4000-8000-000000000001",
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now(),
        "exp": now() + 3600,
    }));
    let res = s
        .bare(Method::GET, "/rest/v1/posts")
        .header("apikey", &s.anon_key)
        .header("authorization", format!("Bearer {user}"))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(res, 200).await, json!([]));
    let res = s
        .bare(Method::POST, "/rest/v1/posts")
        .header("apikey", &s.anon_key)
        .header("authorization", format!("Bearer {user}"))
        .json(&json!({"title": "user"}))
        .send()
        .await
        .unwrap();
    let body = expect_error(res, 403, "42501").await;
    assert_eq!(
        body["message"],
        "new row violates row-level security policy for table \"posts\""
    );
    // UPDATE and DELETE find no row to touch.
    let res = s
        .bare(Method::PATCH, "/rest/v1/posts?id=eq.5")
        .header("apikey", &s.anon_key)
        .header("authorization", format!("Bearer {user}"))
        .json(&json!({"title": "changed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = s
        .bare(Method::DELETE, "/rest/v1/posts?id=eq.5")
        .header("apikey", &s.anon_key)
        .header("authorization", format!("Bearer {user}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(posts(&s).await, seeded_posts());
}

// ------------------------------------------------------------------ SQL injection

#[tokio::test]
async fn sql_injection_is_never_executed() {
    let s = start();
    // A quoted identifier holding SQL in select: an unknown column.
    let res = get_qs(
        &s,
        "posts",
        &[("select", "id,\"x\"\"; DROP TABLE posts; --\"")],
    )
    .await;
    expect_error(res, 400, "42703").await;
    // SQL in a value: bound, so it simply matches nothing.
    for v in [
        "eq.'; DROP TABLE posts; --",
        "like.*' OR '1'='1",
        "in.(\"') OR 1=1 --\")",
    ] {
        let res = get_qs(&s, "posts", &[("title", v)]).await;
        assert_eq!(expect_json(res, 200).await, json!([]), "{v}");
    }
    let res = get_qs(
        &s,
        "posts",
        &[("or", "(title.eq.\"x') OR 1=1 --\",id.eq.999)")],
    )
    .await;
    assert_eq!(expect_json(res, 200).await, json!([]));
    // Unquoted, the stray parenthesis unbalances the tree: a parse error, not SQL.
    let res = get_qs(&s, "posts", &[("or", "(title.eq.x') OR 1=1 --,id.eq.999)")]).await;
    expect_error(res, 400, "PGRST100").await;
    // SQL in order and in a filter's column name.
    let res = get_qs(&s, "posts", &[("order", "id; DROP TABLE posts")]).await;
    expect_error(res, 400, "PGRST100").await;
    let res = get_qs(
        &s,
        "posts",
        &[("order", "\"id\"\"; DROP TABLE posts; --\".desc")],
    )
    .await;
    expect_error(res, 400, "42703").await;
    let res = get_qs(&s, "posts", &[("id) OR 1=1; DROP TABLE posts; --", "eq.1")]).await;
    expect_error(res, 400, "PGRST100").await;
    let res = get_qs(&s, "posts", &[("\"id\"\" = 1 OR 1=1; --\"", "eq.1")]).await;
    expect_error(res, 400, "42703").await;
    // SQL in an embed name and an alias.
    let res = get_qs(
        &s,
        "posts",
        &[("select", "id,\"authors; DROP TABLE posts\"(name)")],
    )
    .await;
    expect_error(res, 400, "PGRST200").await;
    let res = get_qs(
        &s,
        "posts",
        &[
            ("select", "\"a\"\" FROM posts; DROP TABLE posts; --\":id"),
            ("id", "eq.1"),
        ],
    )
    .await;
    assert_eq!(
        expect_json(res, 200).await,
        json!([{"a\" FROM posts; DROP TABLE posts; --": 1}])
    );
    // SQL in a JSON path key.
    let res = get_qs(
        &s,
        "posts",
        &[
            ("select", "id,meta->>\"a'); DROP TABLE posts; --\""),
            ("id", "eq.1"),
        ],
    )
    .await;
    let v = expect_json(res, 200).await;
    assert_eq!(v[0]["id"], 1, "{v}");
    // SQL in a body key and a body value.
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts",
            json!({"title\"); DROP TABLE posts; --": "x"}),
            "",
        )
        .await;
    expect_error(res, 400, "PGRST204").await;
    let evil = "'); DROP TABLE posts; --";
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts?select=id,title",
            json!({"title": evil}),
            "return=representation",
        )
        .await;
    assert_eq!(
        expect_json(res, 201).await,
        json!([{"id": 6, "title": evil}])
    );
    // SQL in on_conflict, columns, a cast and a JSON key of order.
    let res = s
        .send(
            Method::POST,
            &format!(
                "/rest/v1/authors?{}",
                qs(&[("on_conflict", "name) DO NOTHING; DROP TABLE posts; --")])
            ),
            json!({"name": "Ada"}),
            "resolution=ignore-duplicates",
        )
        .await;
    expect_error(res, 400, "42703").await;
    let res = s
        .send(
            Method::POST,
            &format!(
                "/rest/v1/posts?{}",
                qs(&[("columns", "title\"); DROP TABLE posts; --")])
            ),
            json!([{"title": "x"}]),
            "",
        )
        .await;
    expect_error(res, 400, "PGRST204").await;
    let res = get_qs(
        &s,
        "posts",
        &[("select", "id::text); DROP TABLE posts; --")],
    )
    .await;
    expect_error(res, 400, "PGRST100").await;
    let res = get_qs(
        &s,
        "posts",
        &[
            ("select", "id"),
            ("order", "meta->>\"a'); DROP TABLE posts; --\".desc,id"),
        ],
    )
    .await;
    assert_eq!(expect_json(res, 200).await.as_array().unwrap().len(), 6);
    let res = get_qs(
        &s,
        "posts",
        &[("select", "id,authors!\"x; DROP TABLE posts\"(name)")],
    )
    .await;
    expect_error(res, 400, "PGRST200").await;
    // SQL in the table name.
    let res = get(&s, "posts%3B%20DROP%20TABLE%20posts").await;
    expect_error(res, 404, "PGRST205").await;
    // The table and its rows are all still there.
    let mut expected = seeded_posts();
    expected
        .as_array_mut()
        .unwrap()
        .push(json!({"id": 6, "title": evil}));
    assert_eq!(posts(&s).await, expected);
    let v = s
        .get_json("/rest/v1/comments?select=id&order=id", 200)
        .await;
    assert_eq!(v, json!([{"id": 1}, {"id": 2}, {"id": 3}]));
}

// ------------------------------------------------------------------ misc

#[tokio::test]
async fn offset_past_the_end_with_count_is_416() {
    let s = start();
    let res = s
        .req(Method::GET, "/rest/v1/posts?offset=10")
        .header("prefer", "count=exact")
        .send()
        .await
        .unwrap();
    expect_error(res, 416, "PGRST103").await;
}

#[tokio::test]
async fn inverted_range_header_is_416() {
    let s = start();
    let res = s
        .req(Method::GET, "/rest/v1/posts?select=id")
        .header("range", "3-1")
        .send()
        .await
        .unwrap();
    expect_error(res, 416, "PGRST103").await;
}

#[tokio::test]
async fn unknown_function_is_pgrst202() {
    let s = start();
    let res = s
        .send(Method::POST, "/rest/v1/rpc/nope", json!({}), "")
        .await;
    expect_error(res, 404, "PGRST202").await;
}
