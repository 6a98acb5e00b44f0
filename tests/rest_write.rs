//! `/rest/v1` writes in the PostgREST dialect: inserts, upserts, updates, deletes, the Prefer
//! header (return, missing, resolution, tx, handling/max-affected), singular responses, and how
//! each column type goes in and comes back out.

mod common;
use common::*;
use reqwest::{Method, Response};
use serde_json::{json, Value};

/// Tables and rows beyond `common::BLOG_TABLES`.
const SCHEMA: &str = r#"
CREATE TABLE settings (scope TEXT NOT NULL, k TEXT NOT NULL, v TEXT, PRIMARY KEY (scope, k)) WITHOUT ROWID;
CREATE TABLE votes (post_id INTEGER NOT NULL REFERENCES posts(id), voter TEXT NOT NULL, up BOOLEAN, PRIMARY KEY (post_id, voter));

INSERT INTO authors (id, name, bio) VALUES (1, 'Ada', 'math'), (2, 'Grace', NULL), (3, 'Linus', 'kernel');
INSERT INTO posts (id, title, published, meta, author_id, score, data) VALUES
    (1, 'Hello World', 1, '{"a":"x"}', 1, 4.5, X'DEADBEEF'),
    (2, 'hello again', 0, NULL, 1, 3.0, NULL),
    (3, 'Rust tips', 1, NULL, 2, NULL, NULL),
    (4, 'Drafts, and more', 0, NULL, NULL, 1.25, NULL),
    (5, 'Percent 100%', 1, NULL, 2, 2.0, NULL);
INSERT INTO comments (id, post_id, body) VALUES (1, 1, 'first!'), (2, 1, 'nice post'), (3, 3, 'great tips');
"#;

fn start() -> Server {
    Server::start(&[("001_blog.sql", BLOG_TABLES), ("002_extra.sql", SCHEMA)])
}

/// `select=id,title&order=id` over posts: the whole table's titles.
async fn titles(s: &Server) -> Value {
    s.rows("posts", &[("select", "id,title"), ("order", "id")])
        .await
}

fn header(res: &Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

async fn expect_empty(res: Response, status: u16) {
    let got = res.status().as_u16();
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "body: {text}");
    assert_eq!(text, "", "expected an empty body");
}

fn sorted_by_id(v: Value) -> Vec<Value> {
    let mut rows = v.as_array().unwrap_or_else(|| panic!("{v}")).clone();
    rows.sort_by_key(|r| r["id"].as_i64());
    rows
}

// ------------------------------------------------------------------ POST

#[tokio::test]
async fn insert_one_answers_201_with_location_and_no_body() {
    let s = start();
    let res = s
        .post_json("/rest/v1/posts", json!({"title": "New post"}), "")
        .await;
    assert_eq!(header(&res, "location").as_deref(), Some("/posts?id=eq.6"));
    assert_eq!(header(&res, "content-range").as_deref(), Some("*/*"));
    expect_empty(res, 201).await;
    let v = s.rows("posts", &[("id", "eq.6")]).await;
    let row = &v[0];
    assert_eq!(row["title"], "New post");
    // Defaults of the columns the body did not name.
    assert_eq!(row["published"], false);
    assert_eq!(row["meta"], Value::Null);
    assert!(
        row["created_at"].as_str().is_some_and(|c| c.contains('T')),
        "{row}"
    );
    assert_eq!(row["uid"].as_str().map(str::len), Some(36), "{row}");
    // The next insert gets the next key.
    let res = s
        .post_json(
            "/rest/v1/posts",
            json!({"title": "Another"}),
            "return=minimal",
        )
        .await;
    assert_eq!(header(&res, "location").as_deref(), Some("/posts?id=eq.7"));
    expect_empty(res, 201).await;
}

#[tokio::test]
async fn insert_array_with_columns() {
    let s = start();
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts?columns=title,score&select=title,score,published",
            json!([
                {"title": "A", "score": 1.5, "ignored": "not a column, but not in columns= either"},
                {"title": "B"},
            ]),
            "return=representation",
        )
        .await;
    assert_eq!(
        header(&res, "location"),
        None,
        "no Location for a bulk insert"
    );
    assert_eq!(
        expect_json(res, 201).await,
        json!([
            {"title": "A", "score": 1.5, "published": false},
            {"title": "B", "score": null, "published": false},
        ])
    );
    // Quoted column names as supabase-js sends them.
    let res = s
        .send(
            Method::POST,
            &format!(
                "/rest/v1/authors?{}",
                qs(&[("columns", "\"name\",\"bio\"")])
            ),
            json!([{"name": "Zed", "bio": "z"}, {"name": "Yan"}]),
            "return=representation",
        )
        .await;
    assert_eq!(
        expect_json(res, 201).await,
        json!([
            {"id": 4, "name": "Zed", "bio": "z"},
            {"id": 5, "name": "Yan", "bio": null},
        ])
    );
    // Without columns=, an array of objects with the same keys.
    let res = s
        .send(
            Method::POST,
            "/rest/v1/comments",
            json!([{"post_id": 2, "body": "x"}, {"post_id": 2, "body": "y"}]),
            "",
        )
        .await;
    expect_empty(res, 201).await;
    let v = s
        .rows(
            "comments",
            &[("post_id", "eq.2"), ("select", "body"), ("order", "id")],
        )
        .await;
    assert_eq!(v, json!([{"body": "x"}, {"body": "y"}]));
}

#[tokio::test]
async fn insert_return_representation_with_select_and_embeds() {
    let s = start();
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts?select=id,title,authors(name)",
            json!({"title": "Embedded", "author_id": 2}),
            "return=representation",
        )
        .await;
    assert_eq!(header(&res, "location").as_deref(), Some("/posts?id=eq.6"));
    assert!(header(&res, "content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(
        expect_json(res, 201).await,
        json!([{"id": 6, "title": "Embedded", "authors": {"name": "Grace"}}])
    );
    // One-to-many embed in the representation of a new parent.
    let res = s
        .send(
            Method::POST,
            "/rest/v1/authors?select=name,posts(id)",
            json!({"name": "Newcomer"}),
            "return=representation",
        )
        .await;
    assert_eq!(
        expect_json(res, 201).await,
        json!([{"name": "Newcomer", "posts": []}])
    );
    // Single-object Accept turns the one-row representation into an object.
    let res = s
        .req(Method::POST, "/rest/v1/posts?select=id,title")
        .header("prefer", "return=representation")
        .header("accept", "application/vnd.pgrst.object+json")
        .json(&json!({"title": "Solo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(res, 201).await,
        json!({"id": 7, "title": "Solo"})
    );
}

#[tokio::test]
async fn insert_return_headers_only() {
    let s = start();
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts",
            json!({"title": "Headers"}),
            "return=headers-only",
        )
        .await;
    assert_eq!(header(&res, "location").as_deref(), Some("/posts?id=eq.6"));
    expect_empty(res, 201).await;
    assert_eq!(
        s.rows("posts", &[("id", "eq.6"), ("select", "title")])
            .await,
        json!([{"title": "Headers"}])
    );
}

#[tokio::test]
async fn missing_default_applies_defaults_for_absent_keys() {
    let s = start();
    // columns= names created_at; the object lacks it. Without missing=default it is NULL.
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts?columns=title,created_at,published&select=title,created_at,published",
            json!([{"title": "nulls", "published": true}]),
            "return=representation",
        )
        .await;
    assert_eq!(
        expect_json(res, 201).await,
        json!([{"title": "nulls", "created_at": null, "published": true}])
    );
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts?columns=title,created_at,published&select=title,created_at,published",
            json!([{"title": "defaults"}]),
            "return=representation, missing=default",
        )
        .await;
    let v = expect_json(res, 201).await;
    assert_eq!(v[0]["title"], "defaults");
    assert_eq!(v[0]["published"], false, "DEFAULT 0 applied: {v}");
    assert!(
        v[0]["created_at"].as_str().is_some_and(|c| c.contains('T')),
        "{v}"
    );
    // Without missing=default a NOT NULL column named but absent fails.
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts?columns=title,published",
            json!([{"title": "no published"}]),
            "",
        )
        .await;
    expect_error(res, 400, "23502").await;
    // Mixed keys with missing=default: each row gets defaults for what it lacks.
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts?columns=title,published,score&select=title,published,score",
            json!([{"title": "m1", "score": 9.5}, {"title": "m2", "published": true}]),
            "return=representation,missing=default",
        )
        .await;
    assert_eq!(
        expect_json(res, 201).await,
        json!([
            {"title": "m1", "published": false, "score": 9.5},
            {"title": "m2", "published": true, "score": null},
        ])
    );
}

#[tokio::test]
async fn upsert_merge_duplicates() {
    let s = start();
    // By primary key: only the columns in the body change.
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts?select=id,title,published,score",
            json!({"id": 1, "title": "Merged"}),
            "resolution=merge-duplicates, return=representation",
        )
        .await;
    assert_eq!(
        expect_json(res, 201).await,
        json!([{"id": 1, "title": "Merged", "published": true, "score": 4.5}])
    );
    // By a unique column, mixing an update and an insert.
    let res = s
        .send(
            Method::POST,
            "/rest/v1/authors?on_conflict=name",
            json!([{"name": "Ada", "bio": "analyst"}, {"name": "Zed", "bio": "new"}]),
            "resolution=merge-duplicates,return=representation",
        )
        .await;
    assert_eq!(
        expect_json(res, 201).await,
        json!([
            {"id": 1, "name": "Ada", "bio": "analyst"},
            {"id": 4, "name": "Zed", "bio": "new"},
        ])
    );
    assert_eq!(
        s.rows("authors", &[("order", "id")]).await,
        json!([
            {"id": 1, "name": "Ada", "bio": "analyst"},
            {"id": 2, "name": "Grace", "bio": null},
            {"id": 3, "name": "Linus", "bio": "kernel"},
            {"id": 4, "name": "Zed", "bio": "new"},
        ])
    );
    // Without resolution the same insert is a conflict.
    let res = s
        .send(Method::POST, "/rest/v1/authors", json!({"name": "Ada"}), "")
        .await;
    expect_error(res, 409, "23505").await;
}

#[tokio::test]
async fn upsert_ignore_duplicates() {
    let s = start();
    let res = s
        .send(
            Method::POST,
            "/rest/v1/authors?on_conflict=name",
            json!([{"name": "Ada", "bio": "changed"}, {"name": "Yan", "bio": null}]),
            "resolution=ignore-duplicates, return=representation",
        )
        .await;
    // Only the inserted row comes back; the duplicate is left alone.
    assert_eq!(
        expect_json(res, 201).await,
        json!([{"id": 4, "name": "Yan", "bio": null}])
    );
    assert_eq!(
        s.rows("authors", &[("id", "eq.1")]).await,
        json!([{"id": 1, "name": "Ada", "bio": "math"}])
    );
    // By primary key (the default conflict target).
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts",
            json!({"id": 2, "title": "ignored"}),
            "resolution=ignore-duplicates",
        )
        .await;
    expect_empty(res, 201).await;
    assert_eq!(
        titles(&s).await[1],
        json!({"id": 2, "title": "hello again"})
    );
}

// ------------------------------------------------------------------ PATCH

#[tokio::test]
async fn update_with_filters() {
    let s = start();
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/posts?id=in.(2,4)&select=id,title,published",
            json!({"published": true}),
            "return=representation",
        )
        .await;
    assert_eq!(
        sorted_by_id(expect_json(res, 200).await),
        [
            json!({"id": 2, "title": "hello again", "published": true}),
            json!({"id": 4, "title": "Drafts, and more", "published": true}),
        ]
    );
    let v = s
        .rows(
            "posts",
            &[("select", "id"), ("published", "is.true"), ("order", "id")],
        )
        .await;
    assert_eq!(
        v,
        json!([{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}, {"id": 5}])
    );

    // Default return is minimal: 204, no body.
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/posts?title=like.Rust*",
            json!({"title": "Rust tricks", "score": 7}),
            "",
        )
        .await;
    expect_empty(res, 204).await;
    assert_eq!(
        s.rows("posts", &[("id", "eq.3"), ("select", "title,score")])
            .await,
        json!([{"title": "Rust tricks", "score": 7}])
    );

    // No row matches: still a success, and nothing changes.
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/posts?id=eq.999",
            json!({"title": "nobody"}),
            "return=representation",
        )
        .await;
    assert_eq!(expect_json(res, 200).await, json!([]));

    // Setting a column to NULL, with an embed in the representation.
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/posts?id=eq.1&select=id,author_id,authors(name)",
            json!({"author_id": null}),
            "return=representation",
        )
        .await;
    assert_eq!(
        expect_json(res, 200).await,
        json!([{"id": 1, "author_id": null, "authors": null}])
    );
}

#[tokio::test]
async fn update_with_count_reports_affected_rows() {
    let s = start();
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/posts?published=is.true",
            json!({"score": 0}),
            "count=exact",
        )
        .await;
    // Clients read the total after the slash.
    let range = header(&res, "content-range").unwrap_or_default();
    assert!(range.ends_with("/3"), "Content-Range: {range}");
    expect_empty(res, 204).await;
    let res = s
        .send(
            Method::DELETE,
            "/rest/v1/comments?post_id=eq.1",
            Value::Null,
            "count=exact, return=representation",
        )
        .await;
    let range = header(&res, "content-range").unwrap_or_default();
    assert!(range.ends_with("/2"), "Content-Range: {range}");
    assert_eq!(expect_json(res, 200).await.as_array().unwrap().len(), 2);
}

// ------------------------------------------------------------------ DELETE

#[tokio::test]
async fn delete_with_return_representation() {
    let s = start();
    let res = s
        .send(
            Method::DELETE,
            "/rest/v1/comments?post_id=eq.1",
            Value::Null,
            "return=representation",
        )
        .await;
    assert_eq!(
        sorted_by_id(expect_json(res, 200).await),
        [
            json!({"id": 1, "post_id": 1, "body": "first!"}),
            json!({"id": 2, "post_id": 1, "body": "nice post"}),
        ]
    );
    assert_eq!(
        s.rows("comments", &[("select", "id")]).await,
        json!([{"id": 3}])
    );
    // Minimal: 204, and the row is gone.
    let res = s
        .req(Method::DELETE, "/rest/v1/comments?id=eq.3")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    expect_empty(res, 204).await;
    assert_eq!(s.rows("comments", &[]).await, json!([]));
    // A representation with select and an embed, rendered before the row is gone.
    let res = s
        .send(
            Method::DELETE,
            "/rest/v1/posts?id=eq.4&select=title,authors(name)",
            Value::Null,
            "return=representation",
        )
        .await;
    assert_eq!(
        expect_json(res, 200).await,
        json!([{"title": "Drafts, and more", "authors": null}])
    );
    let res = s
        .send(
            Method::DELETE,
            "/rest/v1/posts?id=eq.5&select=title,authors(name)",
            Value::Null,
            "return=representation",
        )
        .await;
    assert_eq!(
        expect_json(res, 200).await,
        json!([{"title": "Percent 100%", "authors": {"name": "Grace"}}])
    );
    assert_eq!(
        titles(&s).await,
        json!([
            {"id": 1, "title": "Hello World"},
            {"id": 2, "title": "hello again"},
            {"id": 3, "title": "Rust tips"},
        ])
    );
}

#[tokio::test]
async fn limited_update_and_delete_follow_order() {
    let s = start();
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/posts?order=id.desc&limit=2&select=id,score",
            json!({"score": 9}),
            "return=representation",
        )
        .await;
    assert_eq!(
        sorted_by_id(expect_json(res, 200).await),
        [json!({"id": 4, "score": 9}), json!({"id": 5, "score": 9})]
    );
    let v = s
        .rows(
            "posts",
            &[("select", "id"), ("score", "eq.9"), ("order", "id")],
        )
        .await;
    assert_eq!(v, json!([{"id": 4}, {"id": 5}]));
    let res = s
        .send(
            Method::DELETE,
            "/rest/v1/comments?order=id.desc&limit=1",
            Value::Null,
            "",
        )
        .await;
    expect_empty(res, 204).await;
    let v = s
        .rows("comments", &[("select", "id"), ("order", "id")])
        .await;
    assert_eq!(v, json!([{"id": 1}, {"id": 2}]));
}

// ------------------------------------------------------------------ transactions and limits

#[tokio::test]
async fn tx_rollback_answers_but_leaves_the_database_unchanged() {
    let s = start();
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts?select=id,title",
            json!({"title": "Ghost"}),
            "return=representation, tx=rollback",
        )
        .await;
    let applied = header(&res, "preference-applied").unwrap_or_default();
    assert!(
        applied.contains("tx=rollback"),
        "Preference-Applied: {applied}"
    );
    assert_eq!(
        expect_json(res, 201).await,
        json!([{"id": 6, "title": "Ghost"}])
    );
    assert_eq!(s.rows("posts", &[("title", "eq.Ghost")]).await, json!([]));

    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/posts?id=eq.1&select=title",
            json!({"title": "Temporary"}),
            "return=representation,tx=rollback",
        )
        .await;
    assert_eq!(expect_json(res, 200).await, json!([{"title": "Temporary"}]));

    let res = s
        .send(
            Method::DELETE,
            "/rest/v1/comments?select=id",
            Value::Null,
            "return=representation,tx=rollback",
        )
        .await;
    assert_eq!(expect_json(res, 200).await.as_array().unwrap().len(), 3);

    assert_eq!(
        titles(&s).await,
        json!([
            {"id": 1, "title": "Hello World"},
            {"id": 2, "title": "hello again"},
            {"id": 3, "title": "Rust tips"},
            {"id": 4, "title": "Drafts, and more"},
            {"id": 5, "title": "Percent 100%"},
        ])
    );
    assert_eq!(
        s.rows("comments", &[("select", "id"), ("order", "id")])
            .await,
        json!([{"id": 1}, {"id": 2}, {"id": 3}])
    );
    // A later real insert is unaffected by the rolled-back one.
    let res = s
        .post_json("/rest/v1/posts", json!({"title": "Real"}), "")
        .await;
    expect_empty(res, 201).await;
    assert_eq!(
        s.rows("posts", &[("title", "eq.Real"), ("select", "title")])
            .await,
        json!([{"title": "Real"}])
    );
}

#[tokio::test]
async fn strict_max_affected_refuses_and_changes_nothing() {
    let s = start();
    let before = titles(&s).await;
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/posts?published=is.false",
            json!({"title": "Too many"}),
            "handling=strict, max-affected=1",
        )
        .await;
    expect_error(res, 400, "PGRST124").await;
    assert_eq!(titles(&s).await, before);

    let res = s
        .send(
            Method::DELETE,
            "/rest/v1/comments?post_id=eq.1",
            Value::Null,
            "handling=strict, max-affected=1",
        )
        .await;
    expect_error(res, 400, "PGRST124").await;
    assert_eq!(
        s.rows("comments", &[("select", "id")])
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Within the limit the update goes through.
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/posts?published=is.false",
            json!({"title": "Two"}),
            "handling=strict, max-affected=2",
        )
        .await;
    expect_empty(res, 204).await;
    let v = s
        .rows(
            "posts",
            &[("select", "id"), ("title", "eq.Two"), ("order", "id")],
        )
        .await;
    assert_eq!(v, json!([{"id": 2}, {"id": 4}]));
}

#[tokio::test]
async fn single_object_accept_on_writes_touching_two_rows_is_406() {
    let s = start();
    let before = titles(&s).await;
    let res = s
        .req(Method::PATCH, "/rest/v1/posts?published=is.false")
        .header("accept", "application/vnd.pgrst.object+json")
        .header("prefer", "return=representation")
        .json(&json!({"title": "Only one"}))
        .send()
        .await
        .unwrap();
    let body = expect_error(res, 406, "PGRST116").await;
    assert_eq!(body["details"], "The result contains 2 rows");
    assert_eq!(titles(&s).await, before);

    let res = s
        .req(Method::DELETE, "/rest/v1/comments?post_id=eq.1")
        .header("accept", "application/vnd.pgrst.object+json")
        .send()
        .await
        .unwrap();
    expect_error(res, 406, "PGRST116").await;
    assert_eq!(
        s.rows("comments", &[("select", "id")])
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let res = s
        .req(Method::POST, "/rest/v1/authors")
        .header("accept", "application/vnd.pgrst.object+json")
        .header("prefer", "return=representation")
        .json(&json!([{"name": "P"}, {"name": "Q"}]))
        .send()
        .await
        .unwrap();
    expect_error(res, 406, "PGRST116").await;
    assert_eq!(
        s.rows("authors", &[("select", "id")])
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Exactly one row: an object.
    let res = s
        .req(Method::PATCH, "/rest/v1/posts?id=eq.2&select=id,title")
        .header("accept", "application/vnd.pgrst.object+json")
        .header("prefer", "return=representation")
        .json(&json!({"title": "Just one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(res, 200).await,
        json!({"id": 2, "title": "Just one"})
    );
}

// ------------------------------------------------------------------ types in and out

#[tokio::test]
async fn booleans_in_and_out() {
    let s = start();
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts?select=title,published",
            json!([{"title": "T", "published": true}, {"title": "F", "published": false}]),
            "return=representation",
        )
        .await;
    assert_eq!(
        expect_json(res, 201).await,
        json!([{"title": "T", "published": true}, {"title": "F", "published": false}])
    );
    let v = s
        .rows(
            "posts",
            &[
                ("select", "title"),
                ("published", "is.true"),
                ("title", "in.(T,F)"),
            ],
        )
        .await;
    assert_eq!(v, json!([{"title": "T"}]));
    let v = s
        .rows(
            "posts",
            &[
                ("select", "title"),
                ("published", "eq.false"),
                ("title", "in.(T,F)"),
            ],
        )
        .await;
    assert_eq!(v, json!([{"title": "F"}]));
    // Stored as 1/0 in SQLite.
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let stored: i64 = conn
        .query_row("SELECT published FROM posts WHERE title = 'T'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn json_is_stored_and_returned_as_json() {
    let s = start();
    let meta = json!({"x": [1, 2, {"y": null}], "s": "str", "b": false, "f": 1.5});
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts?select=id,meta",
            json!([
                {"title": "J", "meta": meta},
                {"title": "S", "meta": "just text"},
                {"title": "N", "meta": 42},
                {"title": "A", "meta": [1, "two"]},
            ]),
            "return=representation",
        )
        .await;
    assert_eq!(
        expect_json(res, 201).await,
        json!([
            {"id": 6, "meta": meta},
            {"id": 7, "meta": "just text"},
            {"id": 8, "meta": 42},
            {"id": 9, "meta": [1, "two"]},
        ])
    );
    // JSON paths and containment work on what was written.
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id,y:meta->x->2->y,s:meta->>s"),
                ("meta->>s", "eq.str"),
            ],
        )
        .await;
    assert_eq!(v, json!([{"id": 6, "y": null, "s": "str"}]));
    let v = s
        .rows("posts", &[("select", "id"), ("meta", "cs.{\"b\":false}")])
        .await;
    assert_eq!(v, json!([{"id": 6}]));
    // PATCH replaces the document.
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/posts?id=eq.6&select=meta",
            json!({"meta": {"replaced": true}}),
            "return=representation",
        )
        .await;
    assert_eq!(
        expect_json(res, 200).await,
        json!([{"meta": {"replaced": true}}])
    );
}

#[tokio::test]
async fn blobs_are_hex_and_reals_are_numbers() {
    let s = start();
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts?select=id,data,score",
            json!([
                {"title": "B", "data": "\\x0102ff", "score": 2.5},
                {"title": "C", "data": null, "score": 3},
            ]),
            "return=representation",
        )
        .await;
    let v = expect_json(res, 201).await;
    assert_eq!(v[0], json!({"id": 6, "data": "\\x0102ff", "score": 2.5}));
    assert_eq!(v[1]["data"], Value::Null);
    assert!(v[1]["score"].is_number(), "{v}");
    assert_eq!(v[1]["score"].as_f64(), Some(3.0));
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let (blob, score): (Vec<u8>, f64) = conn
        .query_row("SELECT data, score FROM posts WHERE id = 6", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(blob, [1, 2, 255]);
    assert_eq!(score, 2.5);
    // A seeded blob and a filter by blob value.
    let v = s
        .rows(
            "posts",
            &[("select", "id,data"), ("data", "eq.\\xdeadbeef")],
        )
        .await;
    assert_eq!(v, json!([{"id": 1, "data": "\\xdeadbeef"}]));
    // Numbers given as strings are accepted for numeric columns.
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/posts?id=eq.6&select=score,author_id",
            json!({"score": "0.25", "author_id": "3"}),
            "return=representation",
        )
        .await;
    assert_eq!(
        expect_json(res, 200).await,
        json!([{"score": 0.25, "author_id": 3}])
    );
}

#[tokio::test]
async fn reals_round_trip_exactly() {
    let s = start();
    let values = [
        0.30000000000000004,
        123456789.12345678,
        2.0e-308,
        1.7976931348623157e308,
    ];
    let body: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"title": format!("r{i}"), "score": v}))
        .collect();
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts?select=score",
            Value::Array(body),
            "return=representation",
        )
        .await;
    let v = expect_json(res, 201).await;
    // Stored exactly...
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let stored: Vec<f64> = conn
        .prepare("SELECT score FROM posts WHERE id > 5 ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(stored, values);
    // ...and answered exactly, as Postgres's float8 output does.
    let answered: Vec<f64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert_eq!(answered, values);
    let read = s
        .rows(
            "posts",
            &[("select", "score"), ("id", "gt.5"), ("order", "id")],
        )
        .await;
    assert_eq!(read, v);
}

#[tokio::test]
async fn big_integers_and_unicode_round_trip() {
    let s = start();
    let big: i64 = 9_007_199_254_740_993; // not representable as an f64
    let title = "Élan — 東京 🚀 \"quoted\" \\ back";
    let res = s
        .send(
            Method::POST,
            "/rest/v1/posts?select=id,title",
            json!({"id": big, "title": title}),
            "return=representation",
        )
        .await;
    assert_eq!(
        header(&res, "location").as_deref(),
        Some("/posts?id=eq.9007199254740993")
    );
    assert_eq!(
        expect_json(res, 201).await,
        json!([{"id": big, "title": title}])
    );
    let v = s
        .rows(
            "posts",
            &[("select", "id,title"), ("id", "eq.9007199254740993")],
        )
        .await;
    assert_eq!(v, json!([{"id": big, "title": title}]));
    // Case-insensitive matching beyond ASCII.
    let v = s
        .rows("posts", &[("select", "id"), ("title", "ilike.élan*")])
        .await;
    assert_eq!(v, json!([{"id": big}]));
}

#[tokio::test]
async fn max_affected_without_strict_is_ignored() {
    let s = start();
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/posts?published=is.false&select=id",
            json!({"score": 8}),
            "return=representation, max-affected=1",
        )
        .await;
    assert_eq!(
        sorted_by_id(expect_json(res, 200).await),
        [json!({"id": 2}), json!({"id": 4})]
    );
}

#[tokio::test]
async fn composite_primary_key_location_and_upsert() {
    let s = start();
    let res = s
        .send(
            Method::POST,
            "/rest/v1/votes",
            json!({"post_id": 1, "voter": "ann", "up": true}),
            "",
        )
        .await;
    assert_eq!(
        header(&res, "location").as_deref(),
        Some("/votes?post_id=eq.1&voter=eq.ann")
    );
    expect_empty(res, 201).await;
    let res = s.send(Method::POST,
        "/rest/v1/votes?on_conflict=post_id,voter",
        json!([{"post_id": 1, "voter": "ann", "up": false}, {"post_id": 2, "voter": "ann", "up": true}]),
        "resolution=merge-duplicates, return=representation",
    )
    .await;
    assert_eq!(
        expect_json(res, 201).await,
        json!([
            {"post_id": 1, "voter": "ann", "up": false},
            {"post_id": 2, "voter": "ann", "up": true},
        ])
    );
    let res = s
        .send(
            Method::DELETE,
            "/rest/v1/votes?post_id=eq.1&voter=eq.ann",
            Value::Null,
            "return=representation",
        )
        .await;
    assert_eq!(
        expect_json(res, 200).await,
        json!([{"post_id": 1, "voter": "ann", "up": false}])
    );
    assert_eq!(
        s.rows("votes", &[]).await,
        json!([{"post_id": 2, "voter": "ann", "up": true}])
    );
}

#[tokio::test]
async fn without_rowid_tables_are_writable() {
    let s = start();
    let res = s
        .send(
            Method::POST,
            "/rest/v1/settings",
            json!({"scope": "app", "k": "theme", "v": "dark"}),
            "",
        )
        .await;
    assert_eq!(
        header(&res, "location").as_deref(),
        Some("/settings?scope=eq.app&k=eq.theme")
    );
    expect_empty(res, 201).await;
    let res = s.send(Method::POST,
        "/rest/v1/settings",
        json!([{"scope": "app", "k": "lang", "v": "en"}, {"scope": "user", "k": "theme", "v": "light"}]),
        "return=representation",
    )
    .await;
    assert_eq!(
        expect_json(res, 201).await,
        json!([
            {"scope": "app", "k": "lang", "v": "en"},
            {"scope": "user", "k": "theme", "v": "light"},
        ])
    );
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/settings?k=eq.theme&select=scope,v",
            json!({"v": "blue"}),
            "return=representation",
        )
        .await;
    let mut v = expect_json(res, 200).await.as_array().unwrap().clone();
    v.sort_by(|a, b| a["scope"].as_str().cmp(&b["scope"].as_str()));
    assert_eq!(
        v,
        [
            json!({"scope": "app", "v": "blue"}),
            json!({"scope": "user", "v": "blue"})
        ]
    );
    let res = s
        .send(
            Method::POST,
            "/rest/v1/settings",
            json!({"scope": "app", "k": "lang", "v": "fr"}),
            "resolution=merge-duplicates, return=representation",
        )
        .await;
    assert_eq!(
        expect_json(res, 201).await,
        json!([{"scope": "app", "k": "lang", "v": "fr"}])
    );
    let res = s
        .send(
            Method::DELETE,
            "/rest/v1/settings?scope=eq.app",
            Value::Null,
            "return=representation",
        )
        .await;
    assert_eq!(expect_json(res, 200).await.as_array().unwrap().len(), 2);
    assert_eq!(
        s.rows("settings", &[]).await,
        json!([{"scope": "user", "k": "theme", "v": "blue"}])
    );
}
