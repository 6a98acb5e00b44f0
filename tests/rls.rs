//! Row-level security over `/rest/v1`: policies written in migrations in Postgres syntax decide
//! which rows `anon` and `authenticated` callers may read and write; `service_role` bypasses
//! them. Semantics are Postgres's: permissive policies OR-ed, restrictive ones AND-ed, policies
//! scoped to roles and commands, WITH CHECK on every row written, and nothing leaks through
//! filters, embeds, counts, ordering, upserts, RPC or error messages.

mod common;
use common::*;
use reqwest::{Method, Response};
use serde_json::{json, Value};
use std::sync::Arc;

/// Send a request as `who`, with an optional JSON body and `Prefer` header.
async fn call(
    s: &Server,
    who: Who,
    method: Method,
    path: &str,
    body: Option<Value>,
    prefer: &str,
) -> Response {
    let mut r = as_who(s, who, method, path);
    if let Some(b) = body {
        r = r.json(&b);
    }
    if !prefer.is_empty() {
        r = r.header("prefer", prefer);
    }
    r.send().await.expect("send")
}

/// GET as `who`, expecting 200 and a JSON body.
async fn get_as(s: &Server, who: Who, path: &str) -> Value {
    expect_json(call(s, who, Method::GET, path, None, "").await, 200).await
}

/// The `id`s of an array of rows, as returned.
fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|r| r["id"].as_i64().unwrap_or_else(|| panic!("no id in {r}")))
        .collect()
}

/// The `id`s of an array of rows, sorted.
fn sorted_ids(v: &Value) -> Vec<i64> {
    let mut i = ids(v);
    i.sort_unstable();
    i
}

/// Every row of `table` in id order, read with the service key.
async fn all_rows(s: &Server, table: &str) -> Value {
    s.get_json(&format!("/rest/v1/{table}?order=id"), 200).await
}

fn header(res: &Response, name: &str) -> String {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_string()
}

/// The total after the `/` of a Content-Range header.
fn total(res: &Response) -> String {
    let cr = header(res, "content-range");
    cr.rsplit('/').next().unwrap().to_string()
}

/// Assert a 42501 row-level security violation on `table` with the given status.
async fn expect_rls_violation(res: Response, status: u16, table: &str) -> Value {
    let body = expect_error(res, status, "42501").await;
    assert_eq!(
        body["message"],
        format!("new row violates row-level security policy for table \"{table}\""),
        "{body}"
    );
    body
}

/// Row data of users B and C, which user A must never see.
const NOT_A: &[&str] = &[
    "b-secret-3",
    "b-secret-4",
    "c-secret-5",
    "b: write report",
    "b: call mom",
    "c: hidden",
    "b note",
];

fn assert_no_leak(text: &str, context: &str) {
    for needle in NOT_A {
        assert!(
            !text.contains(needle),
            "{context}: response leaks {needle:?}: {text}"
        );
    }
}

const MAIN: &str = r#"
CREATE TABLE todos (
    id INTEGER PRIMARY KEY,
    user_id TEXT DEFAULT (auth.uid()),
    title TEXT NOT NULL,
    secret TEXT,
    done BOOLEAN NOT NULL DEFAULT 0
);
CREATE POLICY "read own" ON todos FOR SELECT USING (todos.user_id = auth.uid());
CREATE POLICY "insert own" ON todos FOR INSERT TO authenticated WITH CHECK (todos.user_id = auth.uid());
CREATE POLICY "update own" ON todos FOR UPDATE TO authenticated
    USING (todos.user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY "delete own" ON todos FOR DELETE TO authenticated USING (user_id = auth.uid());

CREATE TABLE notes (
    id INTEGER PRIMARY KEY,
    todo_id INTEGER NOT NULL REFERENCES todos(id),
    user_id TEXT,
    body TEXT
);
CREATE POLICY "read own notes" ON notes FOR SELECT USING (user_id = auth.uid());

-- RLS is on by default: no policy, no access.
CREATE TABLE locked (id INTEGER PRIMARY KEY, value TEXT);

CREATE TABLE open_board (id INTEGER PRIMARY KEY, msg TEXT);
ALTER TABLE open_board DISABLE ROW LEVEL SECURITY;

-- Signed-in users may drop rows in, but nobody may read them back.
CREATE TABLE drop_box (id INTEGER PRIMARY KEY, msg TEXT);
CREATE POLICY "anyone signed in may drop" ON drop_box FOR INSERT TO authenticated WITH CHECK (true);

CREATE TABLE diary (id INTEGER PRIMARY KEY, user_id TEXT DEFAULT (auth.uid()), entry TEXT);
CREATE POLICY "own diary" ON diary TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());

-- Upserts: the proposed row must pass INSERT's check even when it ends up updating.
CREATE TABLE drafts (id INTEGER PRIMARY KEY, owner TEXT, status TEXT NOT NULL);
CREATE POLICY d_select ON drafts FOR SELECT USING (owner = auth.uid());
CREATE POLICY d_insert ON drafts FOR INSERT WITH CHECK (owner = auth.uid() AND status = 'draft');
CREATE POLICY d_update ON drafts FOR UPDATE USING (owner = auth.uid());

CREATE VIEW todo_titles AS SELECT id, title, user_id FROM todos;

CREATE FUNCTION todo_count() RETURNS integer STABLE AS $$ SELECT count(*) FROM todos $$;
CREATE FUNCTION todos_with_secret(s text) RETURNS SETOF todos STABLE AS $$
    SELECT * FROM todos WHERE secret = :s
$$;
CREATE FUNCTION secret_of(todo integer) RETURNS text STABLE AS $$
    SELECT secret FROM todos WHERE id = :todo
$$;

INSERT INTO todos (id, user_id, title, secret, done) VALUES
    (1, 'USER_A', 'a: buy milk', 'a-secret-1', 0),
    (2, 'USER_A', 'a: walk dog', 'a-secret-2', 1),
    (3, 'USER_B', 'b: write report', 'b-secret-3', 0),
    (4, 'USER_B', 'b: call mom', 'b-secret-4', 1),
    (5, 'USER_C', 'c: hidden', 'c-secret-5', 0);
INSERT INTO notes (id, todo_id, user_id, body) VALUES
    (1, 1, 'USER_A', 'a note on a todo'),
    (2, 1, 'USER_B', 'b note on a todo'),
    (3, 3, 'USER_B', 'b note on b todo');
INSERT INTO locked (id, value) VALUES (1, 'locked-value');
INSERT INTO open_board (id, msg) VALUES (1, 'hello');
INSERT INTO drop_box (id, msg) VALUES (1, 'first');
INSERT INTO drafts (id, owner, status) VALUES (1, 'USER_A', 'draft');
"#;

fn with_users(sql: &str) -> String {
    sql.replace("USER_A", USER_A)
        .replace("USER_B", USER_B)
        .replace("USER_C", USER_C)
}

fn start() -> Server {
    Server::start(&[("001_todos.sql", &with_users(MAIN))])
}

// ------------------------------------------------------------------ defaults

#[tokio::test]
async fn rls_is_on_by_default_and_closed_without_policies() {
    let s = start();
    for who in [Who::Anon, Who::A] {
        assert_eq!(get_as(&s, who, "locked").await, json!([]), "{who:?}");
        let res = call(&s, who, Method::GET, "locked", None, "count=exact").await;
        assert_eq!(header(&res, "content-range"), "*/0", "{who:?}");
        assert_eq!(expect_json(res, 200).await, json!([]));
    }
    let res = call(
        &s,
        Who::Anon,
        Method::POST,
        "locked",
        Some(json!({"id": 2, "value": "anon"})),
        "",
    )
    .await;
    expect_rls_violation(res, 401, "locked").await;
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "locked",
        Some(json!({"id": 2, "value": "user"})),
        "",
    )
    .await;
    expect_rls_violation(res, 403, "locked").await;
    for who in [Who::Anon, Who::A] {
        let res = call(
            &s,
            who,
            Method::PATCH,
            "locked",
            Some(json!({"value": "changed"})),
            "return=representation",
        )
        .await;
        assert_eq!(expect_json(res, 200).await, json!([]), "{who:?} PATCH");
        let res = call(
            &s,
            who,
            Method::PATCH,
            "locked?id=eq.1",
            Some(json!({"value": "x"})),
            "",
        )
        .await;
        assert_eq!(res.status(), 204, "{who:?} PATCH minimal");
        let res = call(
            &s,
            who,
            Method::DELETE,
            "locked",
            None,
            "return=representation",
        )
        .await;
        assert_eq!(expect_json(res, 200).await, json!([]), "{who:?} DELETE");
        let res = call(&s, who, Method::DELETE, "locked?id=eq.1", None, "").await;
        assert_eq!(res.status(), 204, "{who:?} DELETE minimal");
    }
    assert_eq!(
        all_rows(&s, "locked").await,
        json!([{"id": 1, "value": "locked-value"}])
    );

    // service_role bypasses row-level security entirely.
    let res = call(
        &s,
        Who::Service,
        Method::POST,
        "locked",
        Some(json!({"id": 2, "value": "service"})),
        "return=representation",
    )
    .await;
    assert_eq!(
        expect_json(res, 201).await,
        json!([{"id": 2, "value": "service"}])
    );
    let res = call(
        &s,
        Who::Service,
        Method::PATCH,
        "locked?id=eq.1",
        Some(json!({"value": "edited"})),
        "",
    )
    .await;
    assert_eq!(res.status(), 204);
    let res = call(&s, Who::Service, Method::DELETE, "locked?id=eq.2", None, "").await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        all_rows(&s, "locked").await,
        json!([{"id": 1, "value": "edited"}])
    );
}

#[tokio::test]
async fn disabled_rls_opens_the_table_to_every_role() {
    let s = start();
    for who in [Who::Anon, Who::A, Who::B] {
        assert_eq!(
            get_as(&s, who, "open_board?select=id,msg").await,
            json!([{"id": 1, "msg": "hello"}]),
            "{who:?}"
        );
    }
    let res = call(
        &s,
        Who::Anon,
        Method::POST,
        "open_board",
        Some(json!({"id": 2, "msg": "from anon"})),
        "return=representation",
    )
    .await;
    assert_eq!(
        expect_json(res, 201).await,
        json!([{"id": 2, "msg": "from anon"}])
    );
    let res = call(
        &s,
        Who::A,
        Method::PATCH,
        "open_board?id=eq.2",
        Some(json!({"msg": "edited by a"})),
        "return=representation",
    )
    .await;
    assert_eq!(
        expect_json(res, 200).await,
        json!([{"id": 2, "msg": "edited by a"}])
    );
    let res = call(
        &s,
        Who::B,
        Method::DELETE,
        "open_board?id=eq.1",
        None,
        "return=representation",
    )
    .await;
    assert_eq!(
        expect_json(res, 200).await,
        json!([{"id": 1, "msg": "hello"}])
    );
    assert_eq!(
        all_rows(&s, "open_board").await,
        json!([{"id": 2, "msg": "edited by a"}])
    );
}

// ------------------------------------------------------------------ reads

#[tokio::test]
async fn users_see_only_their_own_rows() {
    let s = start();
    let cases = [
        (Who::Anon, vec![]),
        (Who::A, vec![1, 2]),
        (Who::B, vec![3, 4]),
        (Who::C, vec![5]),
        (Who::Service, vec![1, 2, 3, 4, 5]),
    ];
    for (who, expected) in &cases {
        let v = get_as(&s, *who, "todos?order=id").await;
        assert_eq!(ids(&v), *expected, "{who:?}: {v}");
        if let Some(uid) = who.uid() {
            assert!(
                v.as_array().unwrap().iter().all(|r| r["user_id"] == uid),
                "{who:?}: {v}"
            );
        }
    }
    let v = get_as(&s, Who::A, "todos?select=id,title,secret,done&order=id").await;
    assert_eq!(
        v,
        json!([
            {"id": 1, "title": "a: buy milk", "secret": "a-secret-1", "done": false},
            {"id": 2, "title": "a: walk dog", "secret": "a-secret-2", "done": true},
        ])
    );
    // A row that exists but is not visible is simply not there.
    let res = as_who(&s, Who::A, Method::GET, "todos?id=eq.3")
        .header("accept", "application/vnd.pgrst.object+json")
        .send()
        .await
        .unwrap();
    let text = {
        let body = expect_error(res, 406, "PGRST116").await;
        body.to_string()
    };
    assert_no_leak(&text, "singular GET of a hidden row");
}

#[tokio::test]
async fn column_default_auth_uid_fills_the_owner() {
    let s = start();
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "todos",
        Some(json!({"id": 10, "title": "a: new"})),
        "return=representation",
    )
    .await;
    let v = expect_json(res, 201).await;
    assert_eq!(v[0]["user_id"], USER_A, "{v}");
    let res = call(
        &s,
        Who::B,
        Method::POST,
        "todos?columns=title",
        Some(json!([{"title": "b: one"}, {"title": "b: two"}])),
        "return=representation,missing=default",
    )
    .await;
    let v = expect_json(res, 201).await;
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    assert!(
        v.as_array().unwrap().iter().all(|r| r["user_id"] == USER_B),
        "{v}"
    );
    assert_eq!(ids(&get_as(&s, Who::A, "todos?order=id").await), [1, 2, 10]);
    assert_eq!(
        get_as(&s, Who::B, "todos?order=id")
            .await
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

// ------------------------------------------------------------------ writes

#[tokio::test]
async fn inserts_must_pass_with_check_or_write_nothing() {
    let s = start();
    let before = all_rows(&s, "todos").await;

    // A row owned by someone else.
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "todos",
        Some(json!({"id": 10, "title": "forged", "user_id": USER_B})),
        "",
    )
    .await;
    let body = expect_rls_violation(res, 403, "todos").await;
    assert_no_leak(&body.to_string(), "forged insert");

    // An array whose third row violates the check: none of the three is written.
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "todos",
        Some(json!([
            {"id": 11, "title": "ok 1", "user_id": USER_A},
            {"id": 12, "title": "ok 2", "user_id": USER_A},
            {"id": 13, "title": "forged", "user_id": USER_B},
        ])),
        "return=representation",
    )
    .await;
    expect_rls_violation(res, 403, "todos").await;

    // NULL owner: the check is not true, so it fails.
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "todos",
        Some(json!({"id": 14, "title": "orphan", "user_id": null})),
        "",
    )
    .await;
    expect_rls_violation(res, 403, "todos").await;

    // anon has no INSERT policy at all.
    let res = call(
        &s,
        Who::Anon,
        Method::POST,
        "todos",
        Some(json!({"id": 15, "title": "anon"})),
        "",
    )
    .await;
    expect_rls_violation(res, 401, "todos").await;
    assert_eq!(all_rows(&s, "todos").await, before);

    // The same rows, all owned by the caller, go in.
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "todos",
        Some(json!([
            {"id": 11, "title": "ok 1", "user_id": USER_A},
            {"id": 12, "title": "ok 2", "user_id": USER_A},
        ])),
        "return=representation",
    )
    .await;
    assert_eq!(ids(&expect_json(res, 201).await), [11, 12]);
    assert_eq!(
        ids(&get_as(&s, Who::A, "todos?order=id").await),
        [1, 2, 11, 12]
    );
}

#[tokio::test]
async fn updates_touch_only_visible_rows_and_new_rows_must_pass_with_check() {
    let s = start();
    // Another user's row: nothing to update.
    let res = call(
        &s,
        Who::A,
        Method::PATCH,
        "todos?id=eq.3",
        Some(json!({"title": "pwned"})),
        "return=representation",
    )
    .await;
    assert_eq!(expect_json(res, 200).await, json!([]));
    // No filter: only the caller's rows.
    let res = call(
        &s,
        Who::A,
        Method::PATCH,
        "todos",
        Some(json!({"done": true})),
        "return=representation",
    )
    .await;
    assert_eq!(sorted_ids(&expect_json(res, 200).await), [1, 2]);
    let all = all_rows(&s, "todos").await;
    let done: Vec<bool> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["done"].as_bool().unwrap())
        .collect();
    assert_eq!(done, [true, true, false, true, false], "{all}");
    assert_eq!(all[2]["title"], "b: write report");

    let before = all_rows(&s, "todos").await;
    // Giving a row away fails WITH CHECK and changes nothing.
    let res = call(
        &s,
        Who::A,
        Method::PATCH,
        "todos?id=eq.1",
        Some(json!({"user_id": USER_B, "title": "gift"})),
        "",
    )
    .await;
    expect_rls_violation(res, 403, "todos").await;
    let res = call(
        &s,
        Who::A,
        Method::PATCH,
        "todos",
        Some(json!({"user_id": USER_B})),
        "return=representation",
    )
    .await;
    expect_rls_violation(res, 403, "todos").await;
    // anon has no UPDATE policy: nothing matches.
    let res = call(
        &s,
        Who::Anon,
        Method::PATCH,
        "todos",
        Some(json!({"title": "anon was here"})),
        "",
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(all_rows(&s, "todos").await, before);
}

#[tokio::test]
async fn deletes_remove_only_visible_rows() {
    let s = start();
    let res = call(
        &s,
        Who::B,
        Method::DELETE,
        "todos?id=eq.1",
        None,
        "return=representation",
    )
    .await;
    assert_eq!(expect_json(res, 200).await, json!([]));
    let res = call(&s, Who::Anon, Method::DELETE, "todos", None, "").await;
    assert_eq!(res.status(), 204);
    assert_eq!(all_rows(&s, "todos").await.as_array().unwrap().len(), 5);
    // Without filters: the caller's rows only. Notes first (foreign keys).
    let res = call(
        &s,
        Who::Service,
        Method::DELETE,
        "notes?todo_id=eq.1",
        None,
        "",
    )
    .await;
    assert_eq!(res.status(), 204);
    let res = call(
        &s,
        Who::A,
        Method::DELETE,
        "todos",
        None,
        "return=representation",
    )
    .await;
    assert_eq!(sorted_ids(&expect_json(res, 200).await), [1, 2]);
    assert_eq!(ids(&all_rows(&s, "todos").await), [3, 4, 5]);
}

#[tokio::test]
async fn returning_rows_the_caller_cannot_select_fails() {
    let s = start();
    // Minimal return: the row goes in, unseen.
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "drop_box",
        Some(json!({"id": 2, "msg": "secret drop"})),
        "",
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    // Asking for it back needs SELECT: the whole request fails.
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "drop_box",
        Some(json!({"id": 3, "msg": "want it back"})),
        "return=representation",
    )
    .await;
    expect_error(res, 403, "42501").await;
    assert_eq!(get_as(&s, Who::A, "drop_box").await, json!([]));
    assert_eq!(
        all_rows(&s, "drop_box").await,
        json!([{"id": 1, "msg": "first"}, {"id": 2, "msg": "secret drop"}])
    );
}

#[tokio::test]
async fn upserts_respect_update_policies() {
    let s = start();
    let before = all_rows(&s, "todos").await;
    // Merging onto another user's row: refused, nothing changes.
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "todos",
        Some(json!({"id": 3, "title": "stolen", "user_id": USER_A})),
        "resolution=merge-duplicates",
    )
    .await;
    let body = expect_error(res, 403, "42501").await;
    assert_no_leak(&body.to_string(), "merge onto another user's row");
    // An array where only the last row hits someone else's: nothing is written.
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "todos",
        Some(json!([
            {"id": 1, "title": "renamed", "user_id": USER_A},
            {"id": 20, "title": "brand new", "user_id": USER_A},
            {"id": 3, "title": "stolen", "user_id": USER_A},
        ])),
        "resolution=merge-duplicates,return=representation",
    )
    .await;
    let body = expect_error(res, 403, "42501").await;
    assert_no_leak(&body.to_string(), "array merge onto another user's row");
    // Ignoring duplicates leaves the other user's row untouched.
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "todos",
        Some(json!({"id": 3, "title": "stolen", "user_id": USER_A})),
        "resolution=ignore-duplicates",
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    // Merging the caller's own row into someone else's hands fails WITH CHECK.
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "todos",
        Some(json!({"id": 1, "title": "gift", "user_id": USER_B})),
        "resolution=merge-duplicates",
    )
    .await;
    expect_rls_violation(res, 403, "todos").await;
    assert_eq!(all_rows(&s, "todos").await, before);

    // Merging onto one's own row works.
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "todos",
        Some(json!({"id": 1, "title": "renamed", "user_id": USER_A})),
        "resolution=merge-duplicates,return=representation",
    )
    .await;
    let v = expect_json(res, 201).await;
    assert_eq!(v[0]["title"], "renamed", "{v}");
    let res = call(
        &s,
        Who::B,
        Method::POST,
        "todos",
        Some(json!({"id": 3, "title": "b: edited", "user_id": USER_B})),
        "resolution=merge-duplicates",
    )
    .await;
    assert_eq!(res.status(), 201);
    let after = all_rows(&s, "todos").await;
    assert_eq!(after[0]["title"], "renamed");
    assert_eq!(after[2]["title"], "b: edited");
    assert_eq!(after[2]["user_id"], USER_B);
}

#[tokio::test]
async fn upserts_check_the_proposed_row_against_insert_policies() {
    let s = start();
    let before = all_rows(&s, "todos").await;
    let drafts = all_rows(&s, "drafts").await;
    // As in Postgres, INSERT policies apply to the proposed row before ON CONFLICT decides;
    // otherwise 201-versus-42501 tells a caller which hidden keys exist.
    let mut wrong = Vec::new();
    for (who, table, body, resolution, status) in [
        (
            Who::B,
            "todos",
            json!({"id": 1, "title": "forged", "user_id": USER_A}),
            "ignore-duplicates",
            403,
        ),
        (
            Who::Anon,
            "todos",
            json!({"id": 1, "title": "anon"}),
            "ignore-duplicates",
            401,
        ),
        (
            Who::Anon,
            "todos",
            json!({"id": 99, "title": "anon"}),
            "ignore-duplicates",
            401,
        ),
        // A may update its draft to published, but not propose a published row.
        (
            Who::A,
            "drafts",
            json!({"id": 1, "owner": USER_A, "status": "published"}),
            "merge-duplicates",
            403,
        ),
    ] {
        let res = call(
            &s,
            who,
            Method::POST,
            table,
            Some(body.clone()),
            &format!("resolution={resolution}"),
        )
        .await;
        let got = res.status().as_u16();
        let text = res.text().await.unwrap();
        if got != status || !text.contains("42501") {
            wrong.push(format!(
                "{who:?} POST {table} {body} ({resolution}): expected {status} 42501, got {got} {text}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(all_rows(&s, "todos").await, before);
    assert_eq!(all_rows(&s, "drafts").await, drafts);
    // The UPDATE path itself is allowed.
    let res = call(
        &s,
        Who::A,
        Method::PATCH,
        "drafts?id=eq.1",
        Some(json!({"status": "published"})),
        "",
    )
    .await;
    assert_eq!(res.status(), 204);
}

#[tokio::test]
async fn views_over_protected_tables_show_only_visible_rows() {
    let s = start();
    for (who, expected) in [
        (Who::Anon, vec![]),
        (Who::A, vec![1, 2]),
        (Who::B, vec![3, 4]),
        (Who::Service, vec![1, 2, 3, 4, 5]),
    ] {
        let res = call(&s, who, Method::GET, "todo_titles?order=id", None, "").await;
        let text = res.text().await.unwrap();
        if who == Who::A {
            assert_no_leak(&text, "view todo_titles");
        }
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(ids(&v), expected, "{who:?} through a view: {v}");
    }
    let v = get_as(&s, Who::A, &format!("todo_titles?user_id=eq.{USER_B}")).await;
    assert_eq!(v, json!([]));
}

// ------------------------------------------------------------------ embeds and counts

#[tokio::test]
async fn embedded_resources_are_filtered_by_their_own_policies() {
    let s = start();
    // Note 2 (B's) hangs off A's todo 1: A does not see it.
    let v = get_as(&s, Who::A, "todos?select=id,notes(id,body)&order=id").await;
    assert_eq!(
        v,
        json!([
            {"id": 1, "notes": [{"id": 1, "body": "a note on a todo"}]},
            {"id": 2, "notes": []},
        ])
    );
    // B sees its note on A's todo, but not A's todo.
    let v = get_as(&s, Who::B, "notes?select=id,todos(id,title)&order=id").await;
    assert_eq!(
        v,
        json!([
            {"id": 2, "todos": null},
            {"id": 3, "todos": {"id": 3, "title": "b: write report"}},
        ])
    );
    // `!inner` on a protected table drops the parents whose child is hidden.
    let v = get_as(&s, Who::B, "notes?select=id,todos!inner(id)&order=id").await;
    assert_eq!(v, json!([{"id": 3, "todos": {"id": 3}}]));
    let v = get_as(&s, Who::A, "todos?select=id,notes!inner(id)&order=id").await;
    assert_eq!(v, json!([{"id": 1, "notes": [{"id": 1}]}]));
    // Embedded counts count visible rows only.
    let v = get_as(&s, Who::A, "todos?select=id,notes(count)&order=id").await;
    assert_eq!(
        v,
        json!([{"id": 1, "notes": [{"count": 1}]}, {"id": 2, "notes": [{"count": 0}]}])
    );
    let v = get_as(&s, Who::Service, "todos?select=id,notes(count)&id=eq.1").await;
    assert_eq!(v, json!([{"id": 1, "notes": [{"count": 2}]}]));
    // anon sees nothing, embedded or not.
    assert_eq!(
        get_as(&s, Who::Anon, "notes?select=id,todos(id)").await,
        json!([])
    );
}

#[tokio::test]
async fn counts_count_only_visible_rows() {
    let s = start();
    for (who, n) in [
        (Who::Anon, 0),
        (Who::A, 2),
        (Who::B, 2),
        (Who::C, 1),
        (Who::Service, 5),
    ] {
        let res = call(&s, who, Method::GET, "todos?select=id", None, "count=exact").await;
        assert_eq!(total(&res), n.to_string(), "{who:?} GET count");
        let res = call(&s, who, Method::HEAD, "todos", None, "count=exact").await;
        assert_eq!(total(&res), n.to_string(), "{who:?} HEAD count");
        let v = get_as(&s, who, "todos?select=count()").await;
        assert_eq!(v, json!([{"count": n}]), "{who:?} count()");
    }
    let res = call(
        &s,
        Who::A,
        Method::GET,
        "todos?limit=1&order=id",
        None,
        "count=exact",
    )
    .await;
    assert_eq!(header(&res, "content-range"), "0-0/2");
    assert_eq!(res.status(), 206);
    let res = call(&s, Who::A, Method::GET, "notes", None, "count=exact").await;
    assert_eq!(header(&res, "content-range"), "0-0/1");
}

// ------------------------------------------------------------------ escape attempts

#[tokio::test]
async fn escape_attempts_leak_nothing() {
    let s = start();
    let reads: &[(&str, Vec<i64>)] = &[
        ("todos?secret=eq.b-secret-3", vec![]),
        ("todos?user_id=eq.USER_B", vec![]),
        ("todos?id=in.(3,4,5)", vec![]),
        ("todos?order=id&offset=1&limit=1", vec![2]),
        ("todos?order=id.desc&limit=1", vec![2]),
        ("todos?or=(user_id.eq.USER_B,secret.like.b*)", vec![]),
        ("todos?or=(id.eq.3,id.gt.0)", vec![1, 2]),
        ("todos?not.and=(user_id.eq.USER_A,id.gt.0)", vec![]),
        ("todos?or=(secret.is.null,secret.not.is.null)", vec![1, 2]),
        ("todos?select=id,secret&order=secret.desc", vec![2, 1]),
        ("todos?select=id&order=user_id.desc,id", vec![1, 2]),
        ("todos?title=ilike.*B:*", vec![]),
        ("todos?secret=match.^c-", vec![]),
        (
            "todos?select=id,notes(body)&notes.user_id=eq.USER_B&order=id",
            vec![1, 2],
        ),
        (
            "todos?select=id,notes!inner(body)&notes.user_id=eq.USER_B",
            vec![],
        ),
    ];
    for (path, expected) in reads {
        let path = with_users(path);
        let res = call(&s, Who::A, Method::GET, &path, None, "").await;
        let text = res.text().await.unwrap();
        assert_no_leak(&text, &path);
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
        assert_eq!(ids(&v), *expected, "{path}: {v}");
    }
    // Aggregates see only the caller's rows.
    let v = get_as(&s, Who::A, "todos?select=secret.max(),id.count()").await;
    assert_eq!(v, json!([{"max": "a-secret-2", "count": 2}]));
    // HEAD with a count tells nothing about hidden rows.
    let res = call(
        &s,
        Who::A,
        Method::HEAD,
        "todos?secret=eq.b-secret-3",
        None,
        "count=exact",
    )
    .await;
    assert_eq!(total(&res), "0");
    // Embedding a protected table from a row the caller can see.
    let v = get_as(&s, Who::B, "notes?select=body,todos(title,secret)&order=id").await;
    assert_eq!(
        v,
        json!([
            {"body": "b note on a todo", "todos": null},
            {"body": "b note on b todo", "todos": {"title": "b: write report", "secret": "b-secret-3"}},
        ])
    );
    let v = get_as(
        &s,
        Who::B,
        "notes?select=id,todos!inner(secret)&todos.secret=eq.a-secret-1",
    )
    .await;
    assert_eq!(v, json!([]));
    // RPC reading the protected table runs under the caller's policies.
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "rpc/todo_count",
        Some(json!({})),
        "",
    )
    .await;
    assert_eq!(expect_json(res, 200).await, json!(2));
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "rpc/todos_with_secret",
        Some(json!({"s": "b-secret-3"})),
        "",
    )
    .await;
    assert_eq!(expect_json(res, 200).await, json!([]));
    let res = call(&s, Who::A, Method::GET, "rpc/secret_of?todo=3", None, "").await;
    assert_eq!(expect_json(res, 200).await, Value::Null);
    // Tables named through another schema are not reachable.
    let res = call(&s, Who::A, Method::GET, "main.todos", None, "").await;
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    assert_no_leak(&text, "main.todos");
    assert!((400..500).contains(&status), "main.todos: {status} {text}");

    // Writes aimed at hidden rows change nothing and say nothing.
    let before = all_rows(&s, "todos").await;
    let writes: &[(Method, &str, Option<Value>, &str)] = &[
        (
            Method::PATCH,
            "todos?secret=eq.b-secret-3",
            Some(json!({"title": "x"})),
            "return=representation",
        ),
        (
            Method::PATCH,
            "todos?or=(user_id.eq.USER_B,id.eq.5)",
            Some(json!({"title": "x"})),
            "return=representation",
        ),
        (
            Method::DELETE,
            "todos?user_id=eq.USER_B",
            None,
            "return=representation",
        ),
        (
            Method::DELETE,
            "todos?id=gte.3",
            None,
            "return=representation",
        ),
    ];
    for (method, path, body, prefer) in writes {
        let path = with_users(path);
        let res = call(&s, Who::A, method.clone(), &path, body.clone(), prefer).await;
        let v = expect_json(res, 200).await;
        assert_eq!(v, json!([]), "{method} {path}");
    }
    // Errors carry no row data: a duplicate key, a forged owner, an upsert onto a hidden row.
    let errors: &[(Method, &str, Value, &str)] = &[
        (
            Method::POST,
            "todos",
            json!({"id": 3, "title": "dup", "user_id": USER_A}),
            "return=representation",
        ),
        (
            Method::POST,
            "todos",
            json!({"id": 4, "title": "mine", "user_id": USER_A}),
            "resolution=merge-duplicates,return=representation",
        ),
        (
            Method::PATCH,
            "todos?id=eq.1",
            json!({"user_id": USER_B}),
            "return=representation",
        ),
    ];
    for (method, path, body, prefer) in errors {
        let res = call(&s, Who::A, method.clone(), path, Some(body.clone()), prefer).await;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        assert!(
            (400..500).contains(&status),
            "{method} {path}: {status} {text}"
        );
        assert_no_leak(&text, &format!("{method} {path}"));
    }
    assert_eq!(all_rows(&s, "todos").await, before);

    // Paged writes pick their rows among the visible ones only.
    let res = call(
        &s,
        Who::A,
        Method::PATCH,
        "todos?order=id.desc&limit=1",
        Some(json!({"title": "last"})),
        "return=representation,tx=rollback",
    )
    .await;
    assert_eq!(ids(&expect_json(res, 200).await), [2]);
    let res = call(
        &s,
        Who::A,
        Method::DELETE,
        "todos?order=id.desc&limit=1",
        None,
        "return=representation,tx=rollback",
    )
    .await;
    assert_eq!(ids(&expect_json(res, 200).await), [2]);
    // A write's representation embeds only visible rows.
    let res = call(
        &s,
        Who::A,
        Method::PATCH,
        "todos?id=eq.1&select=id,notes(body)",
        Some(json!({"done": false})),
        "return=representation,tx=rollback",
    )
    .await;
    assert_eq!(
        expect_json(res, 200).await,
        json!([{"id": 1, "notes": [{"body": "a note on a todo"}]}])
    );
    // CSV shows the same rows as JSON.
    let res = as_who(&s, Who::A, Method::GET, "todos?order=id")
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let csv = res.text().await.unwrap();
    assert_no_leak(&csv, "CSV");
    assert!(
        csv.contains("a-secret-1") && csv.contains("a-secret-2"),
        "{csv}"
    );
    assert_eq!(all_rows(&s, "todos").await, before);
}

// ------------------------------------------------------------------ interleaved callers

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interleaved_users_never_see_each_others_rows() {
    let s = Arc::new(start());
    let mut handles = Vec::new();
    for i in 0..60usize {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let who = if i % 2 == 0 { Who::A } else { Who::B };
            let uid = who.uid().unwrap();
            let (mine, mine_notes): (Vec<i64>, Vec<i64>) = match who {
                Who::A => (vec![1, 2], vec![1]),
                _ => (vec![3, 4], vec![2, 3]),
            };
            let ctx = format!("request {i} as {who:?}");
            match (i / 2) % 5 {
                0 => {
                    let v = get_as(&s, who, "todos?select=id,user_id&order=id").await;
                    assert_eq!(ids(&v), mine, "{ctx}: {v}");
                    assert!(
                        v.as_array().unwrap().iter().all(|r| r["user_id"] == uid),
                        "{ctx}: {v}"
                    );
                }
                1 => {
                    let res = call(
                        &s,
                        who,
                        Method::GET,
                        "notes?select=id,user_id,todos(user_id)&order=id",
                        None,
                        "count=exact",
                    )
                    .await;
                    assert_eq!(total(&res), mine_notes.len().to_string(), "{ctx}");
                    let v = expect_json(res, 200).await;
                    assert_eq!(ids(&v), mine_notes, "{ctx}: {v}");
                    for r in v.as_array().unwrap() {
                        assert_eq!(r["user_id"], uid, "{ctx}: {v}");
                        assert!(
                            r["todos"].is_null() || r["todos"]["user_id"] == uid,
                            "{ctx}: {v}"
                        );
                    }
                }
                2 => {
                    let res =
                        call(&s, who, Method::POST, "rpc/todo_count", Some(json!({})), "").await;
                    assert_eq!(expect_json(res, 200).await, json!(2), "{ctx}");
                }
                3 => {
                    let res = call(
                        &s,
                        who,
                        Method::POST,
                        "diary",
                        Some(json!({"entry": format!("{uid} #{i}")})),
                        "return=representation",
                    )
                    .await;
                    let v = expect_json(res, 201).await;
                    assert_eq!(v.as_array().unwrap().len(), 1, "{ctx}: {v}");
                    assert_eq!(v[0]["user_id"], uid, "{ctx}: {v}");
                }
                _ => {
                    let res = call(
                        &s,
                        who,
                        Method::PATCH,
                        "todos",
                        Some(json!({"done": i % 4 == 0})),
                        "return=representation",
                    )
                    .await;
                    let v = expect_json(res, 200).await;
                    assert_eq!(sorted_ids(&v), mine, "{ctx}: {v}");
                    let v = get_as(&s, who, "diary?select=user_id").await;
                    assert!(
                        v.as_array().unwrap().iter().all(|r| r["user_id"] == uid),
                        "{ctx}: {v}"
                    );
                }
            }
        }));
    }
    for h in handles {
        h.await.expect("request task");
    }
    // Every diary entry was written for the user who sent it.
    let diary = all_rows(&s, "diary").await;
    assert_eq!(diary.as_array().unwrap().len(), 12, "{diary}");
    for r in diary.as_array().unwrap() {
        let uid = r["user_id"].as_str().unwrap();
        assert!(r["entry"].as_str().unwrap().starts_with(uid), "{diary}");
    }
    // The other users' rows were never touched.
    let todos = all_rows(&s, "todos").await;
    assert_eq!(todos[4]["done"], false);
    assert_eq!(todos[4]["title"], "c: hidden");
}

// ------------------------------------------------------------------ the reference table

/// One request of the reference table and what it must answer.
struct Case {
    who: Who,
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    status: u16,
    /// The ids returned (sorted), or `None` for an error.
    rows: Option<Vec<i64>>,
}

fn case(
    who: Who,
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    status: u16,
    rows: Option<&[i64]>,
) -> Case {
    Case {
        who,
        method,
        path,
        body,
        status,
        rows: rows.map(<[i64]>::to_vec),
    }
}

/// The same request for anon, A, B and service_role: (status, rows) each.
type Expect = (u16, Option<&'static [i64]>);

fn per_role(
    cases: &mut Vec<Case>,
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    expect: [Expect; 4],
) {
    for (who, (status, rows)) in [Who::Anon, Who::A, Who::B, Who::Service]
        .into_iter()
        .zip(expect)
    {
        cases.push(case(who, method, path, body.clone(), status, rows));
    }
}

const NONE: Option<&[i64]> = Some(&[]);
const DENIED_ANON: Expect = (401, None);
const DENIED_USER: Expect = (403, None);

#[tokio::test]
async fn reference_table_of_cases() {
    let s = start();
    let ua = json!(USER_A);
    let ub = json!(USER_B);
    let mut cases = Vec::new();
    let all: &'static [i64] = &[1, 2, 3, 4, 5];
    let ok = |rows: &'static [i64]| -> Expect { (200, Some(rows)) };
    let created = |rows: &'static [i64]| -> Expect { (201, Some(rows)) };

    // todos: SELECT own for every role, writes own for authenticated.
    per_role(
        &mut cases,
        "GET",
        "todos",
        None,
        [(200, NONE), ok(&[1, 2]), ok(&[3, 4]), ok(&[1, 2, 3, 4, 5])],
    );
    per_role(
        &mut cases,
        "GET",
        "todos?id=eq.3",
        None,
        [(200, NONE), (200, NONE), ok(&[3]), ok(&[3])],
    );
    per_role(
        &mut cases,
        "GET",
        "todos?secret=like.*secret*",
        None,
        [(200, NONE), ok(&[1, 2]), ok(&[3, 4]), ok(&[1, 2, 3, 4, 5])],
    );
    per_role(
        &mut cases,
        "GET",
        "todos?or=(user_id.is.null,done.is.false)",
        None,
        [(200, NONE), ok(&[1]), ok(&[3]), ok(&[1, 3, 5])],
    );
    per_role(
        &mut cases,
        "POST",
        "todos",
        Some(json!({"id": 10, "title": "new", "user_id": ua})),
        [DENIED_ANON, created(&[10]), DENIED_USER, created(&[10])],
    );
    per_role(
        &mut cases,
        "POST",
        "todos",
        Some(json!({"id": 10, "title": "owner from auth.uid()"})),
        [DENIED_ANON, created(&[10]), created(&[10]), created(&[10])],
    );
    per_role(
        &mut cases,
        "POST",
        "todos",
        Some(json!([
            {"id": 10, "title": "x", "user_id": ua},
            {"id": 11, "title": "y", "user_id": ua},
            {"id": 12, "title": "z", "user_id": ub},
        ])),
        [
            DENIED_ANON,
            DENIED_USER,
            DENIED_USER,
            created(&[10, 11, 12]),
        ],
    );
    per_role(
        &mut cases,
        "POST",
        "todos?on_conflict=id",
        Some(json!({"id": 3, "title": "taken over", "user_id": ua})),
        [DENIED_ANON, DENIED_USER, DENIED_USER, created(&[3])],
    );
    per_role(
        &mut cases,
        "POST",
        "todos?on_conflict=id",
        Some(json!({"id": 3, "title": "edited", "user_id": ub})),
        [DENIED_ANON, DENIED_USER, created(&[3]), created(&[3])],
    );
    per_role(
        &mut cases,
        "PATCH",
        "todos?id=eq.1",
        Some(json!({"title": "edited"})),
        [(200, NONE), ok(&[1]), (200, NONE), ok(&[1])],
    );
    per_role(
        &mut cases,
        "PATCH",
        "todos",
        Some(json!({"done": true})),
        [(200, NONE), ok(&[1, 2]), ok(&[3, 4]), ok(all)],
    );
    per_role(
        &mut cases,
        "PATCH",
        "todos?id=eq.1",
        Some(json!({"user_id": ub})),
        [(200, NONE), DENIED_USER, (200, NONE), ok(&[1])],
    );
    per_role(
        &mut cases,
        "PATCH",
        "todos?id=eq.3",
        Some(json!({"user_id": ua})),
        [(200, NONE), (200, NONE), DENIED_USER, ok(&[3])],
    );
    per_role(
        &mut cases,
        "DELETE",
        "todos?id=eq.4",
        None,
        [(200, NONE), (200, NONE), ok(&[4]), ok(&[4])],
    );
    per_role(
        &mut cases,
        "DELETE",
        "todos?done=is.true",
        None,
        [(200, NONE), ok(&[2]), ok(&[4]), ok(&[2, 4])],
    );
    per_role(
        &mut cases,
        "DELETE",
        "todos?secret=eq.b-secret-4",
        None,
        [(200, NONE), (200, NONE), ok(&[4]), ok(&[4])],
    );

    // locked: RLS on, no policy.
    per_role(
        &mut cases,
        "GET",
        "locked",
        None,
        [(200, NONE), (200, NONE), (200, NONE), ok(&[1])],
    );
    per_role(
        &mut cases,
        "POST",
        "locked",
        Some(json!({"id": 2, "value": "x"})),
        [DENIED_ANON, DENIED_USER, DENIED_USER, created(&[2])],
    );
    per_role(
        &mut cases,
        "PATCH",
        "locked",
        Some(json!({"value": "x"})),
        [(200, NONE), (200, NONE), (200, NONE), ok(&[1])],
    );
    per_role(
        &mut cases,
        "DELETE",
        "locked",
        None,
        [(200, NONE), (200, NONE), (200, NONE), ok(&[1])],
    );

    // open_board: RLS disabled.
    per_role(
        &mut cases,
        "GET",
        "open_board",
        None,
        [ok(&[1]), ok(&[1]), ok(&[1]), ok(&[1])],
    );
    per_role(
        &mut cases,
        "POST",
        "open_board",
        Some(json!({"id": 2, "msg": "x"})),
        [created(&[2]), created(&[2]), created(&[2]), created(&[2])],
    );
    per_role(
        &mut cases,
        "PATCH",
        "open_board",
        Some(json!({"msg": "x"})),
        [ok(&[1]), ok(&[1]), ok(&[1]), ok(&[1])],
    );
    per_role(
        &mut cases,
        "DELETE",
        "open_board",
        None,
        [ok(&[1]), ok(&[1]), ok(&[1]), ok(&[1])],
    );

    // drop_box: INSERT for authenticated, nothing readable (so no representation).
    per_role(
        &mut cases,
        "GET",
        "drop_box",
        None,
        [(200, NONE), (200, NONE), (200, NONE), ok(&[1])],
    );
    per_role(
        &mut cases,
        "POST",
        "drop_box",
        Some(json!({"id": 2, "msg": "x"})),
        [DENIED_ANON, DENIED_USER, DENIED_USER, created(&[2])],
    );
    per_role(
        &mut cases,
        "DELETE",
        "drop_box",
        None,
        [(200, NONE), (200, NONE), (200, NONE), ok(&[1])],
    );

    // notes: read own.
    per_role(
        &mut cases,
        "GET",
        "notes",
        None,
        [(200, NONE), ok(&[1]), ok(&[2, 3]), ok(&[1, 2, 3])],
    );

    let tables = ["todos", "notes", "locked", "open_board", "drop_box"];
    let mut snapshot = Vec::new();
    for t in tables {
        snapshot.push(all_rows(&s, t).await);
    }
    let mut failures = Vec::new();
    for (n, c) in cases.iter().enumerate() {
        let method = Method::from_bytes(c.method.as_bytes()).unwrap();
        let upsert = c.path.contains("on_conflict");
        let prefer = match (c.method, upsert) {
            ("GET", _) => String::new(),
            (_, true) => "return=representation,tx=rollback,resolution=merge-duplicates".into(),
            _ => "return=representation,tx=rollback".into(),
        };
        let res = call(&s, c.who, method, c.path, c.body.clone(), &prefer).await;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let label = format!(
            "case {n}: {:?} {} {} {}",
            c.who,
            c.method,
            c.path,
            c.body.as_ref().map(Value::to_string).unwrap_or_default()
        );
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let got_rows = body.as_array().and_then(|a| {
            let mut i: Vec<i64> = a.iter().filter_map(|r| r["id"].as_i64()).collect();
            i.sort_unstable();
            (i.len() == a.len()).then_some(i)
        });
        let good = match &c.rows {
            Some(rows) => status == c.status && got_rows.as_ref() == Some(rows),
            None => status == c.status && body["code"] == "42501",
        };
        if !good {
            failures.push(format!(
                "{label}\n    expected {} {:?}\n    got      {status} {text}",
                c.status,
                c.rows
                    .as_ref()
                    .map_or("42501".to_string(), |r| format!("{r:?}")),
            ));
        }
        for (t, before) in tables.iter().zip(&snapshot) {
            let now = all_rows(&s, t).await;
            if now != *before {
                panic!("{label}\n    changed table {t} (tx=rollback or a failed write left rows behind): {now}");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// ------------------------------------------------------------------ policy combinations

const POLICIES: &str = r#"
CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    author_id TEXT,
    title TEXT NOT NULL,
    published BOOLEAN NOT NULL DEFAULT 0,
    flagged BOOLEAN NOT NULL DEFAULT 0
);
CREATE POLICY "published are public" ON posts AS PERMISSIVE FOR SELECT USING (published = 1);
CREATE POLICY "authors see drafts" ON posts FOR SELECT TO authenticated USING (author_id = auth.uid());
CREATE POLICY "hide flagged" ON posts AS RESTRICTIVE FOR SELECT USING (flagged = 0);
CREATE POLICY "authors write" ON posts FOR INSERT TO authenticated WITH CHECK (author_id = auth.uid());
CREATE POLICY "short titles" ON posts AS RESTRICTIVE FOR INSERT TO authenticated WITH CHECK (length(title) <= 20);
CREATE POLICY "authors edit" ON posts FOR UPDATE TO authenticated USING (author_id = auth.uid());
CREATE POLICY "flagged are frozen" ON posts AS RESTRICTIVE FOR UPDATE USING (flagged = 0);

CREATE TABLE gated (id INTEGER PRIMARY KEY, v TEXT);
CREATE POLICY "restrictive alone allows nothing" ON gated AS RESTRICTIVE USING (true) WITH CHECK (true);

CREATE TABLE announcements (id INTEGER PRIMARY KEY, audience TEXT NOT NULL, body TEXT);
CREATE POLICY "anon sees public" ON announcements FOR SELECT TO anon USING (audience = 'public');
CREATE POLICY "members see all but staff" ON announcements FOR SELECT TO authenticated USING (audience <> 'staff');
CREATE POLICY "both see everyone" ON announcements FOR SELECT TO anon, authenticated USING (audience = 'everyone');

CREATE TABLE shared (id INTEGER PRIMARY KEY, owner TEXT, v TEXT);
CREATE POLICY s_select ON shared FOR SELECT USING (owner = auth.uid());
CREATE POLICY s_update ON shared FOR UPDATE USING (true);
CREATE POLICY s_delete ON shared FOR DELETE USING (true);

CREATE TABLE readonly_t (id INTEGER PRIMARY KEY, v TEXT);
CREATE POLICY r_select ON readonly_t FOR SELECT USING (true);

CREATE TABLE invites (id INTEGER PRIMARY KEY, email TEXT NOT NULL, code TEXT);
CREATE POLICY "by jwt email" ON invites FOR SELECT USING (email = auth.jwt() ->> 'email');
CREATE TABLE profiles (id INTEGER PRIMARY KEY, email TEXT, role_seen TEXT);
CREATE POLICY "by auth.email()" ON profiles FOR SELECT USING (email = auth.email());
CREATE POLICY "role in check" ON profiles FOR INSERT
    WITH CHECK (auth.role() = 'authenticated' AND role_seen = auth.role() AND email = auth.email());

CREATE TABLE prefs (owner TEXT NOT NULL, k TEXT NOT NULL, v TEXT, PRIMARY KEY (owner, k)) WITHOUT ROWID;
CREATE POLICY prefs_own ON prefs TO authenticated
    USING (owner = auth.uid()) WITH CHECK (owner = auth.uid());
CREATE TABLE events (user_id TEXT, what TEXT);
CREATE POLICY events_own ON events TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());

-- A conflict column the body may leave to its default.
CREATE TABLE slots (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE DEFAULT 'default', owner TEXT, v TEXT);
CREATE POLICY slots_select ON slots FOR SELECT USING (owner = auth.uid());
CREATE POLICY slots_insert ON slots FOR INSERT WITH CHECK (owner = auth.uid());
CREATE POLICY slots_update ON slots FOR UPDATE USING (owner = auth.uid());
INSERT INTO slots (id, code, owner, v) VALUES (1, 'default', 'USER_B', 'b');

INSERT INTO prefs (owner, k, v) VALUES ('USER_A', 'theme', 'dark'), ('USER_B', 'theme', 'light');
INSERT INTO events (user_id, what) VALUES ('USER_A', 'login'), ('USER_B', 'login');
INSERT INTO posts (id, author_id, title, published, flagged) VALUES
    (1, 'USER_A', 'a published', 1, 0),
    (2, 'USER_A', 'a draft', 0, 0),
    (3, 'USER_B', 'b published flagged', 1, 1),
    (4, 'USER_B', 'b draft', 0, 0),
    (5, 'USER_A', 'a published flagged', 1, 1),
    (6, 'USER_C', 'c published', 1, 0);
INSERT INTO gated (id, v) VALUES (1, 'x');
INSERT INTO announcements (id, audience, body) VALUES
    (1, 'public', 'p'), (2, 'members', 'm'), (3, 'staff', 's'), (4, 'everyone', 'e');
INSERT INTO shared (id, owner, v) VALUES (1, 'USER_A', 'a'), (2, 'USER_B', 'b');
INSERT INTO readonly_t (id, v) VALUES (1, 'r');
INSERT INTO invites (id, email, code) VALUES (1, 'a@x', 'ca'), (2, 'b@x', 'cb'), (3, 'A@X', 'upper');
INSERT INTO profiles (id, email, role_seen) VALUES (1, 'a@x', 'x'), (2, 'b@x', 'y');
"#;

fn start_policies() -> Server {
    Server::start(&[("001_policies.sql", &with_users(POLICIES))])
}

#[tokio::test]
async fn permissive_policies_or_and_restrictive_policies_and() {
    let s = start_policies();
    for (who, expected) in [
        (Who::Anon, vec![1, 6]),
        (Who::A, vec![1, 2, 6]),
        (Who::B, vec![4, 1, 6]),
        (Who::C, vec![1, 6]),
        (Who::Service, vec![1, 2, 3, 4, 5, 6]),
    ] {
        let v = get_as(&s, who, "posts?select=id").await;
        let mut expected = expected;
        expected.sort_unstable();
        assert_eq!(sorted_ids(&v), expected, "{who:?}");
    }
    // A restrictive policy alone grants nothing.
    for who in [Who::Anon, Who::A] {
        assert_eq!(get_as(&s, who, "gated").await, json!([]), "{who:?}");
    }
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "gated",
        Some(json!({"id": 2, "v": "y"})),
        "",
    )
    .await;
    expect_rls_violation(res, 403, "gated").await;

    // INSERT: the permissive check and every restrictive check must pass.
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "posts",
        Some(json!({"id": 10, "author_id": USER_A, "title": "short"})),
        "",
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "posts",
        Some(json!({"id": 11, "author_id": USER_A, "title": "a title that is far too long"})),
        "",
    )
    .await;
    expect_rls_violation(res, 403, "posts").await;
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "posts",
        Some(json!({"id": 12, "author_id": USER_B, "title": "short"})),
        "",
    )
    .await;
    expect_rls_violation(res, 403, "posts").await;

    // UPDATE: A's rows pass "authors edit", but the flagged one is frozen (and not visible).
    let res = call(
        &s,
        Who::A,
        Method::PATCH,
        "posts",
        Some(json!({"title": "edited"})),
        "return=representation",
    )
    .await;
    assert_eq!(sorted_ids(&expect_json(res, 200).await), [1, 2, 10]);
    // Published posts of others are visible but not editable.
    let res = call(
        &s,
        Who::A,
        Method::PATCH,
        "posts?id=eq.6",
        Some(json!({"title": "mine"})),
        "return=representation",
    )
    .await;
    assert_eq!(expect_json(res, 200).await, json!([]));
    // Without WITH CHECK, USING checks the new row: giving a post away fails, so does flagging.
    let res = call(
        &s,
        Who::A,
        Method::PATCH,
        "posts?id=eq.2",
        Some(json!({"author_id": USER_B})),
        "",
    )
    .await;
    expect_rls_violation(res, 403, "posts").await;
    let res = call(
        &s,
        Who::A,
        Method::PATCH,
        "posts?id=eq.2",
        Some(json!({"flagged": true})),
        "",
    )
    .await;
    expect_rls_violation(res, 403, "posts").await;
    // No DELETE policy: nothing is deleted.
    let res = call(
        &s,
        Who::A,
        Method::DELETE,
        "posts",
        None,
        "return=representation",
    )
    .await;
    assert_eq!(expect_json(res, 200).await, json!([]));
    let all = all_rows(&s, "posts").await;
    let titles: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "edited",
            "edited",
            "b published flagged",
            "b draft",
            "a published flagged",
            "c published",
            "edited"
        ]
    );
    assert_eq!(all[1]["author_id"], USER_A);
    assert_eq!(all[1]["flagged"], false);
}

#[tokio::test]
async fn policies_apply_only_to_their_roles() {
    let s = start_policies();
    for (who, expected) in [
        (Who::Anon, vec![1, 4]),
        (Who::A, vec![1, 2, 4]),
        (Who::B, vec![1, 2, 4]),
        (Who::Service, vec![1, 2, 3, 4]),
    ] {
        let v = get_as(&s, who, "announcements?order=id").await;
        assert_eq!(ids(&v), expected, "{who:?}");
    }
    // "authors see drafts" is TO authenticated: anon sees no draft even when author_id is NULL
    // and auth.uid() is NULL.
    let res = call(
        &s,
        Who::Service,
        Method::POST,
        "posts",
        Some(json!({"id": 20, "title": "ownerless draft"})),
        "",
    )
    .await;
    assert_eq!(res.status(), 201);
    assert_eq!(ids(&get_as(&s, Who::Anon, "posts?order=id").await), [1, 6]);
    // anon has no INSERT policy ("authors write" is TO authenticated).
    let res = call(
        &s,
        Who::Anon,
        Method::POST,
        "posts",
        Some(json!({"id": 21, "title": "anon"})),
        "",
    )
    .await;
    expect_rls_violation(res, 401, "posts").await;
}

#[tokio::test]
async fn update_and_delete_need_the_select_policy_too() {
    let s = start_policies();
    let res = call(
        &s,
        Who::A,
        Method::PATCH,
        "shared",
        Some(json!({"v": "changed"})),
        "return=representation",
    )
    .await;
    assert_eq!(
        expect_json(res, 200).await,
        json!([{"id": 1, "owner": USER_A, "v": "changed"}])
    );
    let res = call(
        &s,
        Who::A,
        Method::PATCH,
        "shared?id=eq.2",
        Some(json!({"v": "x"})),
        "",
    )
    .await;
    assert_eq!(res.status(), 204);
    let res = call(
        &s,
        Who::A,
        Method::DELETE,
        "shared",
        None,
        "return=representation",
    )
    .await;
    assert_eq!(ids(&expect_json(res, 200).await), [1]);
    assert_eq!(
        all_rows(&s, "shared").await,
        json!([{"id": 2, "owner": USER_B, "v": "b"}])
    );

    // SELECT alone allows neither UPDATE, DELETE nor INSERT.
    assert_eq!(ids(&get_as(&s, Who::A, "readonly_t").await), [1]);
    let res = call(
        &s,
        Who::A,
        Method::PATCH,
        "readonly_t",
        Some(json!({"v": "x"})),
        "return=representation",
    )
    .await;
    assert_eq!(expect_json(res, 200).await, json!([]));
    let res = call(
        &s,
        Who::A,
        Method::DELETE,
        "readonly_t",
        None,
        "return=representation",
    )
    .await;
    assert_eq!(expect_json(res, 200).await, json!([]));
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "readonly_t",
        Some(json!({"id": 2, "v": "x"})),
        "",
    )
    .await;
    expect_rls_violation(res, 403, "readonly_t").await;
    assert_eq!(
        all_rows(&s, "readonly_t").await,
        json!([{"id": 1, "v": "r"}])
    );
}

#[tokio::test]
async fn policies_can_read_the_jwt_email_and_role() {
    let s = start_policies();
    assert_eq!(ids(&get_as(&s, Who::A, "invites").await), [1]);
    assert_eq!(ids(&get_as(&s, Who::B, "invites").await), [2]);
    assert_eq!(get_as(&s, Who::Anon, "invites").await, json!([]));
    assert_eq!(ids(&get_as(&s, Who::A, "profiles").await), [1]);
    assert_eq!(ids(&get_as(&s, Who::B, "profiles").await), [2]);
    assert_eq!(get_as(&s, Who::Anon, "profiles").await, json!([]));

    let res = call(
        &s,
        Who::A,
        Method::POST,
        "profiles",
        Some(json!({"id": 3, "email": "a@x", "role_seen": "authenticated"})),
        "",
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "profiles",
        Some(json!({"id": 4, "email": "b@x", "role_seen": "authenticated"})),
        "",
    )
    .await;
    expect_rls_violation(res, 403, "profiles").await;
    let res = call(
        &s,
        Who::Anon,
        Method::POST,
        "profiles",
        Some(json!({"id": 5, "email": null, "role_seen": "anon"})),
        "",
    )
    .await;
    expect_rls_violation(res, 401, "profiles").await;
    assert_eq!(ids(&all_rows(&s, "profiles").await), [1, 2, 3]);
}

#[tokio::test]
async fn rls_works_without_rowid_and_without_primary_key() {
    let s = start_policies();
    assert_eq!(
        get_as(&s, Who::A, "prefs").await,
        json!([{"owner": USER_A, "k": "theme", "v": "dark"}])
    );
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "prefs",
        Some(json!({"owner": USER_A, "k": "lang", "v": "en"})),
        "return=representation",
    )
    .await;
    assert_eq!(
        expect_json(res, 201).await,
        json!([{"owner": USER_A, "k": "lang", "v": "en"}])
    );
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "prefs",
        Some(json!({"owner": USER_B, "k": "lang", "v": "en"})),
        "",
    )
    .await;
    expect_rls_violation(res, 403, "prefs").await;
    // Upsert onto B's key: refused.
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "prefs",
        Some(json!({"owner": USER_B, "k": "theme", "v": "pink"})),
        "resolution=merge-duplicates",
    )
    .await;
    expect_error(res, 403, "42501").await;
    // Upsert onto A's own key: merged.
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "prefs",
        Some(json!({"owner": USER_A, "k": "theme", "v": "solarized"})),
        "resolution=merge-duplicates",
    )
    .await;
    assert_eq!(res.status(), 201);
    let res = call(
        &s,
        Who::A,
        Method::PATCH,
        "prefs?k=eq.lang",
        Some(json!({"owner": USER_B})),
        "",
    )
    .await;
    expect_rls_violation(res, 403, "prefs").await;
    let res = call(
        &s,
        Who::A,
        Method::PATCH,
        "prefs",
        Some(json!({"v": "x"})),
        "return=representation",
    )
    .await;
    assert_eq!(expect_json(res, 200).await.as_array().unwrap().len(), 2);
    let res = call(&s, Who::A, Method::DELETE, "prefs?k=eq.lang", None, "").await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        s.get_json("/rest/v1/prefs?order=owner,k", 200).await,
        json!([
            {"owner": USER_A, "k": "theme", "v": "x"},
            {"owner": USER_B, "k": "theme", "v": "light"},
        ])
    );

    // No primary key at all.
    assert_eq!(
        get_as(&s, Who::B, "events").await,
        json!([{"user_id": USER_B, "what": "login"}])
    );
    let res = call(
        &s,
        Who::B,
        Method::POST,
        "events",
        Some(json!([{"user_id": USER_B, "what": "a"}, {"user_id": USER_A, "what": "b"}])),
        "",
    )
    .await;
    expect_rls_violation(res, 403, "events").await;
    let res = call(
        &s,
        Who::B,
        Method::PATCH,
        "events",
        Some(json!({"what": "edited"})),
        "return=representation",
    )
    .await;
    assert_eq!(
        expect_json(res, 200).await,
        json!([{"user_id": USER_B, "what": "edited"}])
    );
    let res = call(&s, Who::B, Method::DELETE, "events", None, "").await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        s.get_json("/rest/v1/events", 200).await,
        json!([{"user_id": USER_A, "what": "login"}])
    );
}

#[tokio::test]
async fn upserts_cannot_take_over_rows_through_a_defaulted_conflict_column() {
    let s = start_policies();
    let before = all_rows(&s, "slots").await;
    // `code` is left to its default, which collides with B's row: updating it needs B's rights.
    let res = call(
        &s,
        Who::A,
        Method::POST,
        "slots?on_conflict=code",
        Some(json!({"owner": USER_A, "v": "mine"})),
        "resolution=merge-duplicates",
    )
    .await;
    expect_error(res, 403, "42501").await;
    assert_eq!(all_rows(&s, "slots").await, before);
}

#[tokio::test]
async fn with_check_fails_before_constraints_and_tells_nothing() {
    // Postgres checks WITH CHECK before constraints: a write that violates the policy is a
    // 42501 whatever else is wrong with it, so a conflict can never reveal a hidden row.
    let s = start_policies();
    let before = s.get_json("/rest/v1/prefs?order=owner,k", 200).await;
    let mut wrong = Vec::new();
    for (method, path, body) in [
        // B's key exists: inserting it for B must not answer "duplicate key".
        (
            Method::POST,
            "prefs",
            json!({"owner": USER_B, "k": "theme", "v": "x"}),
        ),
        // Moving A's row onto B's existing key.
        (Method::PATCH, "prefs?k=eq.theme", json!({"owner": USER_B})),
        // A NOT NULL violation in a row that fails the policy anyway.
        (
            Method::POST,
            "prefs",
            json!({"owner": USER_B, "k": null, "v": "x"}),
        ),
    ] {
        let res = call(&s, Who::A, method.clone(), path, Some(body.clone()), "").await;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        if status != 403 || !text.contains("42501") {
            wrong.push(format!(
                "{method} {path} {body}: expected 403 42501, got {status} {text}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        s.get_json("/rest/v1/prefs?order=owner,k", 200).await,
        before
    );
}

// ------------------------------------------------------------------ subqueries

const TEAMS: &str = r#"
CREATE TABLE teams (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE members (
    team_id INTEGER NOT NULL REFERENCES teams(id),
    user_id TEXT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE TABLE projects (id INTEGER PRIMARY KEY, team_id INTEGER NOT NULL REFERENCES teams(id), name TEXT NOT NULL);

CREATE POLICY p ON projects FOR SELECT USING (
    EXISTS (SELECT 1 FROM members m WHERE m.team_id = projects.team_id AND m.user_id = auth.uid())
);
CREATE POLICY "members see their memberships" ON members FOR SELECT USING (user_id = auth.uid());
CREATE POLICY "teams of mine" ON teams FOR SELECT USING (
    id IN (SELECT team_id FROM members WHERE user_id = auth.uid())
);
CREATE POLICY "members add projects" ON projects FOR INSERT TO authenticated WITH CHECK (
    team_id IN (SELECT team_id FROM members WHERE user_id = auth.uid())
);

INSERT INTO teams (id, name) VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma');
INSERT INTO members (team_id, user_id) VALUES (1, 'USER_A'), (2, 'USER_A'), (2, 'USER_B');
INSERT INTO projects (id, team_id, name) VALUES
    (1, 1, 'alpha one'), (2, 2, 'beta one'), (3, 3, 'gamma one'), (4, 2, 'beta two');
"#;

#[tokio::test]
async fn team_membership_policy_uses_subqueries() {
    let s = Server::start(&[("001_teams.sql", &with_users(TEAMS))]);
    for (who, expected) in [
        (Who::Anon, vec![]),
        (Who::A, vec![1, 2, 4]),
        (Who::B, vec![2, 4]),
        (Who::C, vec![]),
        (Who::Service, vec![1, 2, 3, 4]),
    ] {
        let v = get_as(&s, who, "projects?order=id").await;
        assert_eq!(ids(&v), expected, "{who:?}");
    }
    // B reads only its own membership, even though A is in the same team.
    assert_eq!(
        get_as(&s, Who::B, "members").await,
        json!([{"team_id": 2, "user_id": USER_B}])
    );
    // Embeds follow each table's policy.
    let v = get_as(&s, Who::B, "projects?select=name,teams(name)&order=id").await;
    assert_eq!(
        v,
        json!([
            {"name": "beta one", "teams": {"name": "beta"}},
            {"name": "beta two", "teams": {"name": "beta"}},
        ])
    );
    let v = get_as(
        &s,
        Who::A,
        "teams?select=name,projects(name)&order=id&projects.order=id",
    )
    .await;
    assert_eq!(
        v,
        json!([
            {"name": "alpha", "projects": [{"name": "alpha one"}]},
            {"name": "beta", "projects": [{"name": "beta one"}, {"name": "beta two"}]},
        ])
    );
    // Inserting into a team one is not in fails; into one's own team works.
    let res = call(
        &s,
        Who::B,
        Method::POST,
        "projects",
        Some(json!({"id": 5, "team_id": 1, "name": "sneaky"})),
        "",
    )
    .await;
    expect_rls_violation(res, 403, "projects").await;
    let res = call(
        &s,
        Who::B,
        Method::POST,
        "projects",
        Some(json!({"id": 5, "team_id": 2, "name": "beta three"})),
        "return=representation",
    )
    .await;
    assert_eq!(
        expect_json(res, 201).await,
        json!([{"id": 5, "team_id": 2, "name": "beta three"}])
    );
    // Membership changes take effect on the next request.
    let res = call(
        &s,
        Who::Service,
        Method::POST,
        "members",
        Some(json!({"team_id": 1, "user_id": USER_B})),
        "",
    )
    .await;
    assert_eq!(res.status(), 201);
    assert_eq!(
        ids(&get_as(&s, Who::B, "projects?order=id").await),
        [1, 2, 4, 5]
    );
    let res = call(
        &s,
        Who::Service,
        Method::DELETE,
        &format!("members?team_id=eq.2&user_id=eq.{USER_B}"),
        None,
        "",
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(ids(&get_as(&s, Who::B, "projects?order=id").await), [1]);
}

// ------------------------------------------------------------------ migrations

const ITEMS_001: &str = r#"
CREATE TABLE items (id INTEGER PRIMARY KEY, owner TEXT, tag TEXT);
CREATE POLICY read_own ON items FOR SELECT USING (owner = auth.uid());
CREATE POLICY read_tag ON items FOR SELECT TO anon USING (tag = 'public');
CREATE POLICY everything ON items FOR SELECT USING (1);
INSERT INTO items (id, owner, tag) VALUES
    (1, 'USER_A', 'private'), (2, 'USER_B', 'team'), (3, 'USER_B', 'public'), (4, 'USER_B', 'private');
"#;

const ITEMS_002: &str = r#"
ALTER POLICY read_own ON items RENAME TO read_mine;
ALTER POLICY read_mine ON items USING (owner = auth.uid() OR tag = 'team');
ALTER POLICY read_tag ON items TO authenticated;
DROP POLICY everything ON items;
DROP POLICY IF EXISTS never_existed ON items;
"#;

#[tokio::test]
async fn alter_and_drop_policy_change_access() {
    let s = Server::start(&[("001_items.sql", &with_users(ITEMS_001))]);
    // "everything" lets everyone read everything.
    assert_eq!(
        ids(&get_as(&s, Who::Anon, "items?order=id").await),
        [1, 2, 3, 4]
    );
    let (_, dir) = s.terminate();
    std::fs::write(dir.0.join("migrations").join("002_alter.sql"), ITEMS_002).unwrap();
    let s = Server::start_in(dir);
    // read_mine still applies to every role; read_tag is now for authenticated only.
    assert_eq!(ids(&get_as(&s, Who::Anon, "items?order=id").await), [2]);
    assert_eq!(ids(&get_as(&s, Who::A, "items?order=id").await), [1, 2, 3]);
    assert_eq!(ids(&get_as(&s, Who::B, "items?order=id").await), [2, 3, 4]);
    assert_eq!(ids(&get_as(&s, Who::C, "items?order=id").await), [2, 3]);

    // The old name is gone: altering it fails the migration.
    let (_, dir) = s.terminate();
    std::fs::write(
        dir.0.join("migrations").join("003_bad.sql"),
        "ALTER POLICY read_own ON items USING (1);",
    )
    .unwrap();
    let stderr = run_until_exit(&dir);
    assert!(stderr.contains("003_bad.sql"), "{stderr}");
    std::fs::remove_file(dir.0.join("migrations").join("003_bad.sql")).unwrap();

    // Disabling RLS opens the table; enabling it again closes it with the same policies.
    std::fs::write(
        dir.0.join("migrations").join("003_disable.sql"),
        "ALTER TABLE items DISABLE ROW LEVEL SECURITY;",
    )
    .unwrap();
    let s = Server::start_in(dir);
    assert_eq!(
        ids(&get_as(&s, Who::Anon, "items?order=id").await),
        [1, 2, 3, 4]
    );
    let (_, dir) = s.terminate();
    std::fs::write(
        dir.0.join("migrations").join("004_enable.sql"),
        "ALTER TABLE public.items ENABLE ROW LEVEL SECURITY;",
    )
    .unwrap();
    let s = Server::start_in(dir);
    assert_eq!(ids(&get_as(&s, Who::Anon, "items?order=id").await), [2]);
    assert_eq!(ids(&get_as(&s, Who::A, "items?order=id").await), [1, 2, 3]);
}

/// Run the server on `dir` and expect it to exit with a failure; return its stderr.
fn run_until_exit(dir: &TempDir) -> String {
    use std::io::Read;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["serve", "--http", "127.0.0.1:0", "--data-dir"])
        .arg(dir.0.join("data"))
        .arg("--migrations-dir")
        .arg(dir.0.join("migrations"))
        .env("OUTPOST_JWT_SECRET", SECRET)
        .env("OUTPOST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn outpost");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            assert!(!status.success(), "server exited successfully: {err}");
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server started despite a bad migration");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bad_policies_stop_the_server_with_the_file_name() {
    let base = "CREATE TABLE t (id INTEGER PRIMARY KEY, owner TEXT);\n\
                CREATE POLICY existing ON t FOR SELECT USING (owner = auth.uid());";
    let bad = [
        (
            "unknown table",
            "CREATE POLICY p ON nope FOR SELECT USING (true);",
        ),
        (
            "unknown column",
            "CREATE POLICY p ON t FOR SELECT USING (nope = auth.uid());",
        ),
        (
            "unknown table in a subquery",
            "CREATE POLICY p ON t USING (EXISTS (SELECT 1 FROM ghosts));",
        ),
        ("syntax error", "CREATE POLICY p ON t USING (owner = );"),
        (
            "unknown function",
            "CREATE POLICY p ON t USING (no_such_fn(owner));",
        ),
        (
            "SELECT with WITH CHECK",
            "CREATE POLICY p ON t FOR SELECT WITH CHECK (true);",
        ),
        (
            "DELETE with WITH CHECK",
            "CREATE POLICY p ON t FOR DELETE WITH CHECK (true);",
        ),
        (
            "INSERT with USING",
            "CREATE POLICY p ON t FOR INSERT USING (true);",
        ),
        (
            "unknown command",
            "CREATE POLICY p ON t FOR TRUNCATE USING (true);",
        ),
        (
            "duplicate name",
            "CREATE POLICY existing ON t USING (true);",
        ),
        (
            "alter unknown policy",
            "ALTER POLICY nope ON t USING (true);",
        ),
        (
            "alter with bad expression",
            "ALTER POLICY existing ON t USING (nope = 1);",
        ),
        ("drop unknown policy", "DROP POLICY nope ON t;"),
        (
            "rls on unknown table",
            "ALTER TABLE nope ENABLE ROW LEVEL SECURITY;",
        ),
        (
            "bad check expression",
            "CREATE POLICY p ON t FOR INSERT WITH CHECK (owner = ghost.id);",
        ),
    ];
    for (what, sql) in bad {
        let dir = TempDir::new();
        let mig = dir.0.join("migrations");
        std::fs::create_dir_all(&mig).unwrap();
        std::fs::write(mig.join("001_base.sql"), base).unwrap();
        std::fs::write(mig.join("002_policy.sql"), sql).unwrap();
        let stderr = run_until_exit(&dir);
        assert!(
            stderr.contains("002_policy.sql"),
            "{what}: stderr does not name the file: {stderr}"
        );
    }
}
