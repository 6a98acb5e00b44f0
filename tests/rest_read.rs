//! `/rest/v1` reads in the PostgREST dialect: select lists, embeds, every filter operator,
//! ordering, paging, counts, media types, the OpenAPI document and CORS preflight.

mod common;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// The schema every test here reads from (see the seed rows for the expected answers).
/// Tables and rows beyond `common::BLOG_TABLES`.
const SCHEMA: &str = r#"
CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE post_tags (
    post_id INTEGER NOT NULL REFERENCES posts(id),
    tag_id INTEGER NOT NULL REFERENCES tags(id),
    PRIMARY KEY (post_id, tag_id)
);
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY,
    writer_id INTEGER REFERENCES authors(id),
    reviewer_id INTEGER REFERENCES authors(id),
    note TEXT
);
CREATE VIEW published_posts AS SELECT id, title, author_id FROM posts WHERE published;
CREATE TABLE "odd names" ("the id" INTEGER PRIMARY KEY, "first name" TEXT, "a.b" TEXT);

INSERT INTO authors (id, name, bio) VALUES (1, 'Ada', 'math'), (2, 'Grace', NULL), (3, 'Linus', 'kernel');
INSERT INTO posts (id, title, published, meta, author_id, score, data) VALUES
    (1, 'Hello World', 1, '{"a":"x","n":1,"tags":["rust","sql"],"flag":true}', 1, 4.5, X'DEADBEEF'),
    (2, 'hello again', 0, '{"a":"y","n":2,"tags":["sql"],"flag":false}', 1, 3.0, NULL),
    (3, 'Rust tips', 1, '{"a":"x","n":3,"tags":["rust"],"nested":{"k":"v"}}', 2, NULL, NULL),
    (4, 'Drafts, and more', 0, NULL, NULL, 1.25, NULL),
    (5, 'Percent 100%', 1, '{"a":"z","n":5,"tags":[]}', 2, 2.0, NULL);
INSERT INTO comments (id, post_id, body) VALUES (1, 1, 'first!'), (2, 1, 'nice post'), (3, 3, 'great tips'), (4, 2, NULL);
INSERT INTO tags (id, name) VALUES (1, 'rust'), (2, 'sql'), (3, 'unused');
INSERT INTO post_tags (post_id, tag_id) VALUES (1, 1), (1, 2), (2, 2), (3, 1);
INSERT INTO reviews (id, writer_id, reviewer_id, note) VALUES (1, 1, 2, 'ok');
INSERT INTO "odd names" ("the id", "first name", "a.b") VALUES (1, 'x', 'dot'), (2, 'y', NULL), (3, 'z', 'dot');
"#;

fn start() -> Server {
    Server::start(&[("001_blog.sql", BLOG_TABLES), ("002_extra.sql", SCHEMA)])
}

/// The `id`s of the posts a set of filters selects, in id order.
async fn post_ids(s: &Server, filters: &[(&str, &str)]) -> Vec<i64> {
    let mut params = vec![("select", "id"), ("order", "id")];
    params.extend_from_slice(filters);
    ids(&s.rows("posts", &params).await)
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|r| r["id"].as_i64().unwrap_or_else(|| panic!("no id in {r}")))
        .collect()
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_string()
}

// ------------------------------------------------------------------ select lists

#[tokio::test]
async fn select_named_columns() {
    let s = start();
    let v = s
        .rows(
            "posts",
            &[("select", "id,title"), ("order", "id"), ("limit", "2")],
        )
        .await;
    assert_eq!(
        v,
        json!([{"id": 1, "title": "Hello World"}, {"id": 2, "title": "hello again"}])
    );
    // Whitespace outside quotes is ignored.
    let v = s
        .rows("authors", &[("select", " id , name "), ("id", "eq.2")])
        .await;
    assert_eq!(v, json!([{"id": 2, "name": "Grace"}]));
}

#[tokio::test]
async fn select_star_has_every_column_in_table_order() {
    let s = start();
    let v = s.rows("posts", &[("id", "eq.1")]).await;
    let row = v[0].as_object().unwrap().clone();
    let keys: Vec<&str> = row.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "title",
            "published",
            "meta",
            "author_id",
            "score",
            "data",
            "created_at",
            "uid"
        ]
    );
    let mut fixed = row.clone();
    let created = fixed.remove("created_at").unwrap();
    let uid = fixed.remove("uid").unwrap();
    assert_eq!(
        Value::Object(fixed),
        json!({
            "id": 1,
            "title": "Hello World",
            "published": true,
            "meta": {"a": "x", "n": 1, "tags": ["rust", "sql"], "flag": true},
            "author_id": 1,
            "score": 4.5,
            "data": "\\xdeadbeef",
        })
    );
    // Defaults computed by SQL functions at seed time.
    let created = created.as_str().expect("created_at is text");
    assert!(
        created.len() >= 19 && created.as_bytes()[4] == b'-' && created.contains('T'),
        "{created}"
    );
    let uid = uid.as_str().expect("uid is text");
    assert_eq!(uid.len(), 36, "{uid}");
    assert_eq!(uid.matches('-').count(), 4, "{uid}");
    // Unset columns are JSON null, not absent.
    let v = s.rows("posts", &[("id", "eq.4"), ("select", "*")]).await;
    assert_eq!(v[0]["meta"], Value::Null);
    assert_eq!(v[0]["author_id"], Value::Null);
    assert_eq!(v[0]["data"], Value::Null);
    assert_eq!(v[0]["published"], false);
    assert_eq!(v[0]["score"], 1.25);
}

#[tokio::test]
async fn select_aliases_and_casts() {
    let s = start();
    let v = s.rows("posts",
        &[
            (
                "select",
                "ident:id,heading:title,id_text:id::text,published::int,n:meta->>n::int,score::int",
            ),
            ("id", "eq.2"),
        ],
    )
    .await;
    assert_eq!(
        v,
        json!([{
            "ident": 2,
            "heading": "hello again",
            "id_text": "2",
            "published": 0,
            "n": 2,
            "score": 3,
        }])
    );
    // A cast keeps the column's name as the key.
    let v = s
        .rows("posts", &[("select", "id::text"), ("id", "eq.5")])
        .await;
    assert_eq!(v, json!([{"id": "5"}]));
}

#[tokio::test]
async fn select_json_paths() {
    let s = start();
    let v = s.rows("posts",
        &[
            (
                "select",
                "id,meta->a,meta->n,n_text:meta->>n,meta->nested->>k,flag:meta->>flag,first_tag:meta->tags->>0,tags:meta->tags",
            ),
            ("id", "in.(1,3,4)"),
            ("order", "id"),
        ],
    )
    .await;
    assert_eq!(
        v,
        json!([
            {"id": 1, "a": "x", "n": 1, "n_text": "1", "k": null, "flag": "true", "first_tag": "rust", "tags": ["rust", "sql"]},
            {"id": 3, "a": "x", "n": 3, "n_text": "3", "k": "v", "flag": null, "first_tag": "rust", "tags": ["rust"]},
            {"id": 4, "a": null, "n": null, "n_text": null, "k": null, "flag": null, "first_tag": null, "tags": null},
        ])
    );
    // ->> yields text even for JSON numbers and booleans; -> keeps the JSON type.
    assert!(v[0]["n"].is_i64());
    assert!(v[0]["n_text"].is_string());
    assert!(v[0]["flag"].is_string());
}

#[tokio::test]
async fn select_from_a_view() {
    let s = start();
    let v = s.rows("published_posts", &[("order", "id")]).await;
    assert_eq!(
        v,
        json!([
            {"id": 1, "title": "Hello World", "author_id": 1},
            {"id": 3, "title": "Rust tips", "author_id": 2},
            {"id": 5, "title": "Percent 100%", "author_id": 2},
        ])
    );
}

#[tokio::test]
async fn quoted_identifiers_in_select_filters_and_order() {
    let s = start();
    let v = s
        .rows(
            "odd%20names",
            &[
                ("select", "\"the id\",first:\"first name\",\"a.b\""),
                ("\"a.b\"", "eq.dot"),
                ("order", "\"first name\".desc"),
            ],
        )
        .await;
    assert_eq!(
        v,
        json!([
            {"the id": 3, "first": "z", "a.b": "dot"},
            {"the id": 1, "first": "x", "a.b": "dot"},
        ])
    );
    let v = s
        .rows(
            "odd%20names",
            &[
                ("select", "\"the id\""),
                ("or", "(\"first name\".eq.y,\"the id\".eq.1)"),
                ("order", "\"the id\""),
            ],
        )
        .await;
    assert_eq!(v, json!([{"the id": 1}, {"the id": 2}]));
}

// ------------------------------------------------------------------ embeds

#[tokio::test]
async fn embed_many_to_one_is_an_object() {
    let s = start();
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id,authors(name)"),
                ("id", "in.(1,3,4)"),
                ("order", "id"),
            ],
        )
        .await;
    assert_eq!(
        v,
        json!([
            {"id": 1, "authors": {"name": "Ada"}},
            {"id": 3, "authors": {"name": "Grace"}},
            {"id": 4, "authors": null},
        ])
    );
    // With an alias and all columns.
    let v = s
        .rows(
            "posts",
            &[("select", "id,writer:authors(*)"), ("id", "eq.1")],
        )
        .await;
    assert_eq!(
        v,
        json!([{"id": 1, "writer": {"id": 1, "name": "Ada", "bio": "math"}}])
    );
}

#[tokio::test]
async fn embed_one_to_many_is_an_array() {
    let s = start();
    let v = s
        .rows(
            "authors",
            &[
                ("select", "name,posts(id)"),
                ("order", "id"),
                ("posts.order", "id"),
            ],
        )
        .await;
    assert_eq!(
        v,
        json!([
            {"name": "Ada", "posts": [{"id": 1}, {"id": 2}]},
            {"name": "Grace", "posts": [{"id": 3}, {"id": 5}]},
            {"name": "Linus", "posts": []},
        ])
    );
}

#[tokio::test]
async fn embed_nested_two_levels() {
    let s = start();
    let v = s
        .rows(
            "authors",
            &[
                ("select", "name,posts(title,comments(id,body))"),
                ("id", "eq.1"),
                ("posts.order", "id"),
                ("posts.comments.order", "id"),
            ],
        )
        .await;
    assert_eq!(
        v,
        json!([{
            "name": "Ada",
            "posts": [
                {"title": "Hello World", "comments": [{"id": 1, "body": "first!"}, {"id": 2, "body": "nice post"}]},
                {"title": "hello again", "comments": [{"id": 4, "body": null}]},
            ]
        }])
    );
    // Down then up: comment → post → author.
    let v = s
        .rows(
            "comments",
            &[("select", "id,posts(title,authors(name))"), ("id", "eq.3")],
        )
        .await;
    assert_eq!(
        v,
        json!([{"id": 3, "posts": {"title": "Rust tips", "authors": {"name": "Grace"}}}])
    );
}

#[tokio::test]
async fn embed_many_to_many_through_junction() {
    let s = start();
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id,tags(name)"),
                ("order", "id"),
                ("tags.order", "name"),
            ],
        )
        .await;
    assert_eq!(
        v,
        json!([
            {"id": 1, "tags": [{"name": "rust"}, {"name": "sql"}]},
            {"id": 2, "tags": [{"name": "sql"}]},
            {"id": 3, "tags": [{"name": "rust"}]},
            {"id": 4, "tags": []},
            {"id": 5, "tags": []},
        ])
    );
    let v = s
        .rows(
            "tags",
            &[
                ("select", "name,posts(id)"),
                ("order", "id"),
                ("posts.order", "id.desc"),
            ],
        )
        .await;
    assert_eq!(
        v,
        json!([
            {"name": "rust", "posts": [{"id": 3}, {"id": 1}]},
            {"name": "sql", "posts": [{"id": 2}, {"id": 1}]},
            {"name": "unused", "posts": []},
        ])
    );
    // Inner join through the junction, filtered on the far table.
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id,tags!inner(name)"),
                ("tags.name", "eq.sql"),
                ("order", "id"),
            ],
        )
        .await;
    assert_eq!(
        v,
        json!([
            {"id": 1, "tags": [{"name": "sql"}]},
            {"id": 2, "tags": [{"name": "sql"}]},
        ])
    );
}

#[tokio::test]
async fn embed_inner_drops_parents_without_match_and_left_keeps_them() {
    let s = start();
    let inner = s
        .rows(
            "posts",
            &[
                ("select", "id,comments!inner(id)"),
                ("order", "id"),
                ("comments.order", "id"),
            ],
        )
        .await;
    assert_eq!(
        inner,
        json!([
            {"id": 1, "comments": [{"id": 1}, {"id": 2}]},
            {"id": 2, "comments": [{"id": 4}]},
            {"id": 3, "comments": [{"id": 3}]},
        ])
    );
    let left = s
        .rows(
            "posts",
            &[
                ("select", "id,comments!left(id)"),
                ("order", "id"),
                ("comments.order", "id"),
            ],
        )
        .await;
    assert_eq!(ids(&left), [1, 2, 3, 4, 5]);
    assert_eq!(left[3]["comments"], json!([]));
    // Many-to-one inner: the post without an author is dropped.
    let v = s
        .rows(
            "posts",
            &[("select", "id,authors!inner(name)"), ("order", "id")],
        )
        .await;
    assert_eq!(ids(&v), [1, 2, 3, 5]);
    // Inner join with a filter on the embed filters the parents too.
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id,comments!inner(body)"),
                ("comments.body", "eq.first!"),
                ("order", "id"),
            ],
        )
        .await;
    assert_eq!(v, json!([{"id": 1, "comments": [{"body": "first!"}]}]));
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id,authors!inner(name)"),
                ("authors.name", "eq.Grace"),
                ("order", "id"),
            ],
        )
        .await;
    assert_eq!(
        v,
        json!([
            {"id": 3, "authors": {"name": "Grace"}},
            {"id": 5, "authors": {"name": "Grace"}},
        ])
    );
}

#[tokio::test]
async fn embed_hints_by_column_and_constraint_name() {
    let s = start();
    for select in [
        "id,authors!author_id(name)",
        "id,authors!posts_author_id_fkey(name)",
    ] {
        let v = s.rows("posts", &[("select", select), ("id", "eq.3")]).await;
        assert_eq!(
            v,
            json!([{"id": 3, "authors": {"name": "Grace"}}]),
            "{select}"
        );
    }
    // Embedding by the foreign-key column itself.
    let v = s
        .rows(
            "posts",
            &[("select", "id,writer:author_id(name)"), ("id", "eq.1")],
        )
        .await;
    assert_eq!(v, json!([{"id": 1, "writer": {"name": "Ada"}}]));
    // Two keys to the same table: hints pick each one.
    let v = s
        .rows(
            "reviews",
            &[(
                "select",
                "id,writer:authors!writer_id(name),reviewer:authors!reviews_reviewer_id_fkey(name)",
            )],
        )
        .await;
    assert_eq!(
        v,
        json!([{"id": 1, "writer": {"name": "Ada"}, "reviewer": {"name": "Grace"}}])
    );
    let v = s
        .rows(
            "authors",
            &[
                ("select", "name,reviews!reviewer_id(note)"),
                ("order", "id"),
            ],
        )
        .await;
    assert_eq!(
        v,
        json!([
            {"name": "Ada", "reviews": []},
            {"name": "Grace", "reviews": [{"note": "ok"}]},
            {"name": "Linus", "reviews": []},
        ])
    );
}

#[tokio::test]
async fn embed_spread_flattens_columns() {
    let s = start();
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id,...authors(name,author_bio:bio)"),
                ("id", "in.(1,3,4)"),
                ("order", "id"),
            ],
        )
        .await;
    assert_eq!(
        v,
        json!([
            {"id": 1, "name": "Ada", "author_bio": "math"},
            {"id": 3, "name": "Grace", "author_bio": null},
            {"id": 4, "name": null, "author_bio": null},
        ])
    );
}

#[tokio::test]
async fn embed_filters_order_and_limit_apply_to_the_embed_only() {
    let s = start();
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id,comments(body)"),
                ("comments.body", "eq.nice post"),
                ("id", "lte.3"),
                ("order", "id"),
            ],
        )
        .await;
    assert_eq!(
        v,
        json!([
            {"id": 1, "comments": [{"body": "nice post"}]},
            {"id": 2, "comments": []},
            {"id": 3, "comments": []},
        ])
    );
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id,comments(id)"),
                ("id", "eq.1"),
                ("comments.order", "id.desc"),
            ],
        )
        .await;
    assert_eq!(v, json!([{"id": 1, "comments": [{"id": 2}, {"id": 1}]}]));
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id,comments(id)"),
                ("id", "eq.1"),
                ("comments.order", "id.desc"),
                ("comments.limit", "1"),
            ],
        )
        .await;
    assert_eq!(v, json!([{"id": 1, "comments": [{"id": 2}]}]));
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id,comments(id)"),
                ("id", "eq.1"),
                ("comments.order", "id"),
                ("comments.limit", "1"),
                ("comments.offset", "1"),
            ],
        )
        .await;
    assert_eq!(v, json!([{"id": 1, "comments": [{"id": 2}]}]));
    // A logic tree on an embed.
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id,comments(id)"),
                ("id", "eq.1"),
                ("comments.or", "(id.eq.2,body.eq.nope)"),
            ],
        )
        .await;
    assert_eq!(v, json!([{"id": 1, "comments": [{"id": 2}]}]));
}

#[tokio::test]
async fn embed_null_filters_test_for_related_rows() {
    let s = start();
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id,comments(id)"),
                ("comments", "not.is.null"),
                ("order", "id"),
            ],
        )
        .await;
    assert_eq!(ids(&v), [1, 2, 3]);
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id,comments(id)"),
                ("comments", "is.null"),
                ("order", "id"),
            ],
        )
        .await;
    assert_eq!(
        v,
        json!([{"id": 4, "comments": []}, {"id": 5, "comments": []}])
    );
    // Combined with a filter on the embed, only parents with a matching child remain.
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id,comments(body)"),
                ("comments.body", "eq.great tips"),
                ("comments", "not.is.null"),
                ("order", "id"),
            ],
        )
        .await;
    assert_eq!(v, json!([{"id": 3, "comments": [{"body": "great tips"}]}]));
    // On a many-to-one embed: the post without an author.
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id,authors(name)"),
                ("authors", "is.null"),
                ("order", "id"),
            ],
        )
        .await;
    assert_eq!(v, json!([{"id": 4, "authors": null}]));
    // By alias, with a filter on the aliased embed.
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id,writer:authors(name)"),
                ("writer.name", "eq.Grace"),
                ("writer", "not.is.null"),
                ("order", "id"),
            ],
        )
        .await;
    assert_eq!(
        v,
        json!([
            {"id": 3, "writer": {"name": "Grace"}},
            {"id": 5, "writer": {"name": "Grace"}},
        ])
    );
}

/// PostgREST infers a view's relationships from the foreign keys of its base tables.
#[tokio::test]
async fn embed_through_a_view() {
    let s = start();
    let v = s
        .rows(
            "published_posts",
            &[("select", "id,authors(name)"), ("order", "id")],
        )
        .await;
    assert_eq!(
        v,
        json!([
            {"id": 1, "authors": {"name": "Ada"}},
            {"id": 3, "authors": {"name": "Grace"}},
            {"id": 5, "authors": {"name": "Grace"}},
        ])
    );
    let v = s
        .rows(
            "authors",
            &[
                ("select", "name,published_posts(id)"),
                ("order", "id"),
                ("published_posts.order", "id"),
            ],
        )
        .await;
    assert_eq!(
        v,
        json!([
            {"name": "Ada", "published_posts": [{"id": 1}]},
            {"name": "Grace", "published_posts": [{"id": 3}, {"id": 5}]},
            {"name": "Linus", "published_posts": []},
        ])
    );
}

#[tokio::test]
async fn aggregates_count_and_sum() {
    let s = start();
    // The Supabase docs' "query referenced tables with count": `select('*, cities(count)')`.
    let v = s
        .rows(
            "posts",
            &[("select", "id,comments(count)"), ("order", "id")],
        )
        .await;
    assert_eq!(
        v,
        json!([
            {"id": 1, "comments": [{"count": 2}]},
            {"id": 2, "comments": [{"count": 1}]},
            {"id": 3, "comments": [{"count": 1}]},
            {"id": 4, "comments": [{"count": 0}]},
            {"id": 5, "comments": [{"count": 0}]},
        ])
    );
    let v = s.rows("posts", &[("select", "count()")]).await;
    assert_eq!(v, json!([{"count": 5}]));
    let v = s
        .rows(
            "posts",
            &[("select", "published,count()"), ("order", "published")],
        )
        .await;
    assert_eq!(
        v,
        json!([{"published": false, "count": 2}, {"published": true, "count": 3}])
    );
    let v = s
        .rows("posts", &[("select", "score.sum(),score.max()")])
        .await;
    assert_eq!(v, json!([{"sum": 10.75, "max": 4.5}]));
}

// ------------------------------------------------------------------ filters

#[tokio::test]
async fn comparison_operators() {
    let s = start();
    assert_eq!(post_ids(&s, &[("title", "eq.Rust tips")]).await, [3]);
    assert_eq!(post_ids(&s, &[("id", "eq.2")]).await, [2]);
    // neq: NULL is neither equal nor unequal.
    assert_eq!(post_ids(&s, &[("author_id", "neq.1")]).await, [3, 5]);
    assert_eq!(post_ids(&s, &[("score", "gt.2")]).await, [1, 2]);
    assert_eq!(post_ids(&s, &[("score", "gte.2")]).await, [1, 2, 5]);
    assert_eq!(post_ids(&s, &[("score", "lt.2")]).await, [4]);
    assert_eq!(post_ids(&s, &[("score", "lte.2")]).await, [4, 5]);
    assert_eq!(
        post_ids(&s, &[("id", "gt.2"), ("id", "lt.5")]).await,
        [3, 4]
    );
    assert_eq!(post_ids(&s, &[("published", "eq.true")]).await, [1, 3, 5]);
    assert_eq!(post_ids(&s, &[("published", "eq.false")]).await, [2, 4]);
}

#[tokio::test]
async fn like_is_case_sensitive_and_ilike_is_not() {
    let s = start();
    assert_eq!(post_ids(&s, &[("title", "like.*ello*")]).await, [1, 2]);
    assert_eq!(post_ids(&s, &[("title", "like.Hello*")]).await, [1]);
    assert_eq!(post_ids(&s, &[("title", "like.hello*")]).await, [2]);
    assert_eq!(
        post_ids(&s, &[("title", "like.HELLO*")]).await,
        Vec::<i64>::new()
    );
    assert_eq!(post_ids(&s, &[("title", "ilike.HELLO*")]).await, [1, 2]);
    assert_eq!(post_ids(&s, &[("title", "ilike.*TIPS")]).await, [3]);
    // The pattern is anchored.
    assert_eq!(
        post_ids(&s, &[("title", "like.ello")]).await,
        Vec::<i64>::new()
    );
    assert_eq!(post_ids(&s, &[("title", "like.Rust tips")]).await, [3]);
}

#[tokio::test]
async fn is_and_isdistinct() {
    let s = start();
    assert_eq!(post_ids(&s, &[("score", "is.null")]).await, [3]);
    assert_eq!(post_ids(&s, &[("author_id", "is.null")]).await, [4]);
    assert_eq!(
        post_ids(&s, &[("score", "not.is.null")]).await,
        [1, 2, 4, 5]
    );
    assert_eq!(post_ids(&s, &[("published", "is.true")]).await, [1, 3, 5]);
    assert_eq!(post_ids(&s, &[("published", "is.false")]).await, [2, 4]);
    assert_eq!(post_ids(&s, &[("published", "not.is.true")]).await, [2, 4]);
    // IS DISTINCT FROM counts NULL as different.
    assert_eq!(
        post_ids(&s, &[("author_id", "isdistinct.1")]).await,
        [3, 4, 5]
    );
    assert_eq!(
        post_ids(&s, &[("author_id", "not.isdistinct.2")]).await,
        [3, 5]
    );
}

#[tokio::test]
async fn in_with_quoted_values() {
    let s = start();
    assert_eq!(post_ids(&s, &[("id", "in.(1,3,99)")]).await, [1, 3]);
    assert_eq!(
        post_ids(&s, &[("title", "in.(\"Drafts, and more\",Rust tips)")]).await,
        [3, 4]
    );
    assert_eq!(post_ids(&s, &[("id", "not.in.(1,2)")]).await, [3, 4, 5]);
    assert_eq!(post_ids(&s, &[("id", "in.()")]).await, Vec::<i64>::new());
}

#[tokio::test]
async fn regex_match_and_imatch() {
    let s = start();
    assert_eq!(
        post_ids(&s, &[("title", "match.^[A-Z]")]).await,
        [1, 3, 4, 5]
    );
    assert_eq!(post_ids(&s, &[("title", "match.^h")]).await, [2]);
    assert_eq!(post_ids(&s, &[("title", "imatch.^h")]).await, [1, 2]);
    assert_eq!(post_ids(&s, &[("title", "match.[0-9]+%$")]).await, [5]);
    assert_eq!(post_ids(&s, &[("title", "not.imatch.^h")]).await, [3, 4, 5]);
}

#[tokio::test]
async fn containment_and_overlap_on_json() {
    let s = start();
    assert_eq!(
        post_ids(&s, &[("meta->tags", "cs.[\"rust\"]")]).await,
        [1, 3]
    );
    assert_eq!(post_ids(&s, &[("meta->tags", "cs.{rust,sql}")]).await, [1]);
    assert_eq!(post_ids(&s, &[("meta", "cs.{\"a\":\"x\"}")]).await, [1, 3]);
    assert_eq!(
        post_ids(&s, &[("meta", "cs.{\"nested\":{\"k\":\"v\"}}")]).await,
        [3]
    );
    assert_eq!(
        post_ids(&s, &[("meta->tags", "cd.[\"rust\",\"sql\"]")]).await,
        [1, 2, 3, 5]
    );
    assert_eq!(post_ids(&s, &[("meta->tags", "cd.{sql}")]).await, [2, 5]);
    assert_eq!(
        post_ids(
            &s,
            &[("meta", "cd.{\"a\":\"z\",\"n\":5,\"tags\":[],\"extra\":1}")]
        )
        .await,
        [5]
    );
    assert_eq!(post_ids(&s, &[("meta->tags", "ov.{sql,go}")]).await, [1, 2]);
    assert_eq!(
        post_ids(&s, &[("meta->tags", "ov.[\"go\"]")]).await,
        Vec::<i64>::new()
    );
    assert_eq!(
        post_ids(&s, &[("meta->tags", "not.cs.{rust}")]).await,
        [2, 5]
    );
}

#[tokio::test]
async fn not_on_several_operators() {
    let s = start();
    assert_eq!(post_ids(&s, &[("id", "not.eq.1")]).await, [2, 3, 4, 5]);
    assert_eq!(
        post_ids(&s, &[("title", "not.like.*ello*")]).await,
        [3, 4, 5]
    );
    assert_eq!(post_ids(&s, &[("title", "not.ilike.*E*")]).await, [3]);
    // NOT (NULL > 2) is NULL: post 3 stays out.
    assert_eq!(post_ids(&s, &[("score", "not.gt.2")]).await, [4, 5]);
    assert_eq!(post_ids(&s, &[("published", "not.eq.true")]).await, [2, 4]);
}

#[tokio::test]
async fn logic_trees() {
    let s = start();
    assert_eq!(
        post_ids(&s, &[("or", "(id.eq.1,score.is.null)")]).await,
        [1, 3]
    );
    assert_eq!(
        post_ids(&s, &[("and", "(published.is.true,score.gt.2)")]).await,
        [1]
    );
    assert_eq!(
        post_ids(
            &s,
            &[(
                "or",
                "(id.eq.4,and(published.is.true,not.and(score.gt.3,author_id.eq.1)))"
            )]
        )
        .await,
        [3, 4, 5]
    );
    assert_eq!(
        post_ids(&s, &[("not.or", "(id.eq.1,id.eq.2)")]).await,
        [3, 4, 5]
    );
    assert_eq!(
        post_ids(&s, &[("not.and", "(published.is.true,id.gt.1)")]).await,
        [1, 2, 4]
    );
    // A quoted value may hold a comma; operators inside trees take not. and lists.
    assert_eq!(
        post_ids(&s, &[("or", "(title.eq.\"Drafts, and more\",id.eq.1)")]).await,
        [1, 4]
    );
    assert_eq!(
        post_ids(&s, &[("or", "(id.in.(2,3),title.not.like.*e*)")]).await,
        [2, 3]
    );
    // Trees combine with plain filters by AND.
    assert_eq!(
        post_ids(
            &s,
            &[
                ("or", "(id.eq.1,id.eq.2,id.eq.3)"),
                ("published", "is.true")
            ]
        )
        .await,
        [1, 3]
    );
    // JSON paths inside a tree.
    assert_eq!(
        post_ids(&s, &[("or", "(meta->>a.eq.y,meta->>a.eq.z)")]).await,
        [2, 5]
    );
}

#[tokio::test]
async fn quantified_pattern_lists() {
    let s = start();
    assert_eq!(
        post_ids(&s, &[("title", "like(all).{*e*,*o*}")]).await,
        [1, 2, 4]
    );
    assert_eq!(
        post_ids(&s, &[("title", "like(any).{Rust*,Percent*}")]).await,
        [3, 5]
    );
    assert_eq!(
        post_ids(&s, &[("title", "ilike(any).{hello*,rust*}")]).await,
        [1, 2, 3]
    );
    assert_eq!(post_ids(&s, &[("title", "ilike(all).{h*,*D}")]).await, [1]);
    assert_eq!(
        post_ids(&s, &[("title", "not.like(any).{Rust*,Percent*}")]).await,
        [1, 2, 4]
    );
    assert_eq!(post_ids(&s, &[("id", "eq(any).{2,4}")]).await, [2, 4]);
}

#[tokio::test]
async fn json_path_filters() {
    let s = start();
    assert_eq!(post_ids(&s, &[("meta->>a", "eq.x")]).await, [1, 3]);
    assert_eq!(post_ids(&s, &[("meta->>n", "eq.3")]).await, [3]);
    assert_eq!(post_ids(&s, &[("meta->nested->>k", "eq.v")]).await, [3]);
    assert_eq!(post_ids(&s, &[("meta->>flag", "eq.true")]).await, [1]);
    assert_eq!(post_ids(&s, &[("meta->>a", "in.(y,z)")]).await, [2, 5]);
    assert_eq!(post_ids(&s, &[("meta->>a", "is.null")]).await, [4]);
    assert_eq!(post_ids(&s, &[("meta->>a", "neq.x")]).await, [2, 5]);
}

/// `->` yields JSON, which compares and sorts as jsonb does in Postgres (numbers numerically);
/// `->>` yields text, which compares as text. (Outpost treats JSON and JSONB columns alike, and
/// Supabase schemas use jsonb.)
#[tokio::test]
async fn json_arrow_values_compare_and_sort_as_jsonb() {
    let s = start();
    let res = s
        .req(Method::PATCH, "/rest/v1/posts?id=eq.4")
        .json(&json!({"meta": {"a": "w", "n": 10, "tags": []}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let v = s
        .rows("posts", &[("select", "id"), ("order", "meta->n.desc")])
        .await;
    assert_eq!(ids(&v), [4, 5, 3, 2, 1]);
    let v = s
        .rows("posts", &[("select", "id"), ("order", "meta->n.asc")])
        .await;
    assert_eq!(ids(&v), [1, 2, 3, 5, 4]);
    assert_eq!(post_ids(&s, &[("meta->n", "gt.2")]).await, [3, 4, 5]);
    assert_eq!(post_ids(&s, &[("meta->n", "lt.10")]).await, [1, 2, 3, 5]);
    // Text semantics for ->>: '10' < '2'.
    assert_eq!(post_ids(&s, &[("meta->>n", "gt.2")]).await, [3, 5]);
}

// ------------------------------------------------------------------ order and paging

#[tokio::test]
async fn order_directions_and_nulls() {
    let s = start();
    let cases: [(&str, &[i64]); 7] = [
        // Postgres defaults: NULLs last ascending, first descending.
        ("score.asc", &[4, 5, 2, 1, 3]),
        ("score", &[4, 5, 2, 1, 3]),
        ("score.desc", &[3, 1, 2, 5, 4]),
        ("score.asc.nullsfirst", &[3, 4, 5, 2, 1]),
        ("score.desc.nullslast", &[1, 2, 5, 4, 3]),
        ("published.desc,id.desc", &[5, 3, 1, 4, 2]),
        ("meta->>a.desc,id.asc", &[4, 5, 2, 1, 3]),
    ];
    for (order, expected) in cases {
        let v = s.rows("posts", &[("select", "id"), ("order", order)]).await;
        assert_eq!(ids(&v), expected, "order={order}");
    }
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id"),
                ("order", "author_id.asc.nullsfirst,score.desc"),
            ],
        )
        .await;
    assert_eq!(ids(&v), [4, 1, 2, 3, 5]);
    let v = s
        .rows("authors", &[("select", "name"), ("order", "name.desc")])
        .await;
    assert_eq!(
        v,
        json!([{"name": "Linus"}, {"name": "Grace"}, {"name": "Ada"}])
    );
}

#[tokio::test]
async fn limit_offset_and_range_header() {
    let s = start();
    let v = s
        .rows(
            "posts",
            &[
                ("select", "id"),
                ("order", "id"),
                ("limit", "2"),
                ("offset", "1"),
            ],
        )
        .await;
    assert_eq!(ids(&v), [2, 3]);
    let v = s
        .rows(
            "posts",
            &[("select", "id"), ("order", "id"), ("offset", "3")],
        )
        .await;
    assert_eq!(ids(&v), [4, 5]);
    let v = s
        .rows(
            "posts",
            &[("select", "id"), ("order", "id"), ("limit", "0")],
        )
        .await;
    assert_eq!(v, json!([]));

    let res = s
        .req(Method::GET, "/rest/v1/posts?select=id&order=id")
        .header("range", "0-1")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "content-range"), "0-1/*");
    assert_eq!(ids(&expect_json(res, 200).await), [1, 2]);
    let res = s
        .req(Method::GET, "/rest/v1/posts?select=id&order=id")
        .header("range-unit", "items")
        .header("range", "2-3")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "content-range"), "2-3/*");
    assert_eq!(ids(&expect_json(res, 200).await), [3, 4]);
}

#[tokio::test]
async fn exact_count_in_content_range() {
    let s = start();
    let res = s
        .req(Method::GET, "/rest/v1/posts?select=id&order=id&limit=2")
        .header("prefer", "count=exact")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "content-range"), "0-1/5");
    assert_eq!(ids(&expect_json(res, 206).await), [1, 2]);

    let res = s
        .req(Method::GET, "/rest/v1/posts?select=id&order=id&offset=3")
        .header("prefer", "count=exact")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "content-range"), "3-4/5");
    assert_eq!(ids(&expect_json(res, 206).await), [4, 5]);

    let res = s
        .req(Method::GET, "/rest/v1/posts?select=id&published=is.true")
        .header("prefer", "count=exact")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "content-range"), "0-2/3");
    assert_eq!(expect_json(res, 200).await.as_array().unwrap().len(), 3);

    let res = s
        .req(Method::GET, "/rest/v1/posts?id=eq.999")
        .header("prefer", "count=exact")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "content-range"), "*/0");
    assert_eq!(expect_json(res, 200).await, json!([]));

    // The count ignores paging but honours filters, including !inner embeds.
    let res = s
        .req(
            Method::GET,
            "/rest/v1/posts?select=id,comments!inner(id)&limit=1&order=id",
        )
        .header("prefer", "count=exact")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "content-range"), "0-0/3");
    assert_eq!(ids(&expect_json(res, 206).await), [1]);

    // Without a count the total is *.
    let res = s.get("/rest/v1/posts?select=id&limit=2").await;
    assert_eq!(header(&res, "content-range"), "0-1/*");
}

#[tokio::test]
async fn head_returns_headers_without_a_body() {
    let s = start();
    let res = s
        .req(Method::HEAD, "/rest/v1/posts?select=id")
        .header("prefer", "count=exact")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-range"), "0-4/5");
    assert!(header(&res, "content-type").starts_with("application/json"));
    assert_eq!(res.bytes().await.unwrap().len(), 0);
    let res = s
        .req(Method::HEAD, "/rest/v1/posts?published=is.false")
        .header("prefer", "count=exact")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "content-range"), "0-1/2");
    assert_eq!(res.bytes().await.unwrap().len(), 0);
}

// ------------------------------------------------------------------ media types

#[tokio::test]
async fn single_object_accept() {
    let s = start();
    let single = "application/vnd.pgrst.object+json";
    let res = s
        .req(Method::GET, "/rest/v1/posts?select=id,title&id=eq.3")
        .header("accept", single)
        .send()
        .await
        .unwrap();
    assert!(header(&res, "content-type").starts_with(single));
    assert_eq!(
        expect_json(res, 200).await,
        json!({"id": 3, "title": "Rust tips"})
    );
    for (query, n) in [
        ("id=eq.999", 0),
        ("select=id", 5),
        ("published=is.false", 2),
    ] {
        let res = s
            .req(Method::GET, &format!("/rest/v1/posts?{query}"))
            .header("accept", single)
            .send()
            .await
            .unwrap();
        let body = expect_error(res, 406, "PGRST116").await;
        assert_eq!(
            body["message"],
            "Cannot coerce the result to a single JSON object"
        );
        assert_eq!(body["details"], format!("The result contains {n} rows"));
    }
}

#[tokio::test]
async fn csv_accept() {
    let s = start();
    let res = s
        .req(Method::GET, "/rest/v1/authors?select=id,name&order=id")
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with("text/csv"));
    let text = res.text().await.unwrap();
    assert_eq!(
        text.trim_end_matches('\n'),
        "id,name\n1,Ada\n2,Grace\n3,Linus"
    );
    // A field with a comma is quoted; NULL is an empty field.
    let res = s
        .req(
            Method::GET,
            "/rest/v1/posts?select=id,title,score&id=in.(3,4)&order=id",
        )
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    let lines: Vec<&str> = text.trim_end_matches('\n').split('\n').collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], "id,title,score");
    assert!(
        lines[1].starts_with("3,") && lines[1].ends_with(','),
        "{text}"
    );
    assert_eq!(lines[2], "4,\"Drafts, and more\",1.25");
}

#[tokio::test]
async fn nulls_stripped_accept() {
    let s = start();
    let res = s
        .req(
            Method::GET,
            "/rest/v1/posts?select=id,score,authors(name,bio)&id=in.(3,4)&order=id",
        )
        .header("accept", "application/vnd.pgrst.array+json;nulls=stripped")
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(res, 200).await,
        json!([{"id": 3, "authors": {"name": "Grace"}}, {"id": 4, "score": 1.25}])
    );
    let res = s
        .req(Method::GET, "/rest/v1/authors?id=eq.2")
        .header("accept", "application/vnd.pgrst.object+json;nulls=stripped")
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(res, 200).await,
        json!({"id": 2, "name": "Grace"})
    );
}

// ------------------------------------------------------------------ OpenAPI and CORS

#[tokio::test]
async fn openapi_document_describes_tables() {
    let s = start();
    let res = s
        .req(Method::GET, "/rest/v1/")
        .header("accept", "application/openapi+json")
        .send()
        .await
        .unwrap();
    assert!(header(&res, "content-type").starts_with("application/openapi+json"));
    let doc = expect_json(res, 200).await;
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    for t in [
        "/authors",
        "/posts",
        "/comments",
        "/tags",
        "/post_tags",
        "/reviews",
        "/published_posts",
    ] {
        assert!(paths.contains_key(t), "missing {t} in {paths:?}");
    }
    assert!(!paths.keys().any(|k| k.contains("_outpost")), "{paths:?}");
    assert!(paths["/posts"].get("get").is_some());
    assert!(paths["/posts"].get("post").is_some());
    assert!(paths["/posts"].get("patch").is_some());
    assert!(paths["/posts"].get("delete").is_some());
    assert!(paths["/published_posts"].get("get").is_some());
    assert!(paths["/published_posts"].get("post").is_none());
    let posts = &doc["components"]["schemas"]["posts"];
    let props = posts["properties"].as_object().unwrap();
    let names: Vec<&str> = props.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "id",
            "title",
            "published",
            "meta",
            "author_id",
            "score",
            "data",
            "created_at",
            "uid"
        ]
    );
    assert_eq!(props["id"]["type"], "integer");
    assert_eq!(props["title"]["type"], "string");
    assert_eq!(props["published"]["type"], "boolean");
    assert_eq!(props["score"]["type"], "number");
    let required: Vec<&str> = posts["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["title"]);
}

#[tokio::test]
async fn cors_preflight_allows_supabase_headers() {
    let s = start();
    let res = s
        .bare(Method::OPTIONS, "/rest/v1/posts")
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "apikey,authorization,content-type,prefer,x-client-info",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "access-control-allow-origin"), "*");
    let allowed = header(&res, "access-control-allow-headers").to_ascii_lowercase();
    for h in [
        "apikey",
        "authorization",
        "content-type",
        "prefer",
        "x-client-info",
        "accept-profile",
        "content-profile",
    ] {
        assert!(
            allowed.split(',').any(|a| a.trim() == h),
            "{h} not in {allowed}"
        );
    }
    let methods = header(&res, "access-control-allow-methods").to_ascii_uppercase();
    for m in ["GET", "POST", "PATCH", "DELETE"] {
        assert!(methods.contains(m), "{m} not in {methods}");
    }
    // An actual cross-origin read exposes Content-Range.
    let res = s
        .req(Method::GET, "/rest/v1/posts?select=id")
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "access-control-allow-origin"), "*");
    let exposed = header(&res, "access-control-expose-headers").to_ascii_lowercase();
    assert!(exposed.contains("content-range"), "{exposed}");
}
