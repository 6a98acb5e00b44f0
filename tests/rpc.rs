//! `/rest/v1/rpc/{name}`: SQL functions defined in migrations with `CREATE FUNCTION`, called
//! with JSON arguments (POST) or query parameters (GET/HEAD). Scalar results are bare JSON
//! values, row results take the read grammar, and every call runs as the caller under row-level
//! security unless the function is SECURITY DEFINER.

mod common;
use common::*;
use reqwest::{Method, Response};
use serde_json::{json, Value};
use std::sync::Arc;

const SCHEMA: &str = r#"
CREATE TABLE todos (
    id INTEGER PRIMARY KEY,
    user_id TEXT DEFAULT (auth.uid()),
    title TEXT NOT NULL,
    done BOOLEAN NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 1
);
CREATE POLICY own ON todos FOR ALL TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE TABLE notes (id INTEGER PRIMARY KEY, todo_id INTEGER REFERENCES todos(id), body TEXT);
ALTER TABLE notes DISABLE ROW LEVEL SECURITY;
CREATE TABLE comments (id INTEGER PRIMARY KEY, todo_id INTEGER REFERENCES todos(id), user_id TEXT, body TEXT);
CREATE POLICY own_comments ON comments FOR SELECT USING (user_id = auth.uid());
CREATE TABLE logs (id INTEGER PRIMARY KEY, msg TEXT, by_user TEXT);
ALTER TABLE logs DISABLE ROW LEVEL SECURITY;

CREATE FUNCTION add(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT :a + :b
$$;
CREATE FUNCTION greet(name text DEFAULT 'world', punct text DEFAULT '!') RETURNS text STABLE AS $$
    SELECT 'hello ' || :name || :punct
$$;
CREATE FUNCTION is_even(n integer) RETURNS boolean IMMUTABLE AS $$ SELECT :n % 2 = 0 $$;
CREATE FUNCTION half(x double precision) RETURNS double precision IMMUTABLE AS $$ SELECT :x / 2.0 $$;
CREATE FUNCTION echo_json(doc jsonb) RETURNS jsonb IMMUTABLE AS $$ SELECT json(:doc) $$;
CREATE FUNCTION flag(on_off boolean) RETURNS boolean IMMUTABLE AS $$ SELECT :on_off $$;
CREATE FUNCTION version() RETURNS integer IMMUTABLE AS $$ SELECT 1 $$;

CREATE FUNCTION todo_count() RETURNS integer STABLE AS $$ SELECT count(*) FROM todos $$;
CREATE FUNCTION whoami() RETURNS text STABLE AS $$ SELECT auth.uid() $$;
CREATE FUNCTION my_email() RETURNS text STABLE AS $$ SELECT auth.jwt() ->> 'email' $$;
CREATE FUNCTION my_role() RETURNS text STABLE AS $$ SELECT auth.role() $$;
CREATE FUNCTION todos_from(min_priority integer DEFAULT 1) RETURNS SETOF todos STABLE AS $$
    SELECT * FROM todos WHERE priority >= :min_priority
$$;
CREATE FUNCTION first_todo() RETURNS todos STABLE AS $$ SELECT * FROM todos ORDER BY id LIMIT 1 $$;
CREATE FUNCTION todo_summaries() RETURNS TABLE(id integer, title text, done boolean) STABLE AS $$
    SELECT id, title, done FROM todos
$$;
CREATE FUNCTION count_volatile() RETURNS integer AS $$ SELECT count(*) FROM todos $$;

CREATE FUNCTION log_message(msg text) RETURNS void AS $$
    INSERT INTO logs (msg, by_user) VALUES (:msg, auth.uid())
$$;
CREATE FUNCTION log_returning(msg text) RETURNS SETOF logs VOLATILE AS $$
    INSERT INTO logs (msg, by_user) VALUES (:msg, auth.uid()) RETURNING *
$$;
CREATE FUNCTION add_todo(title text, priority integer DEFAULT 1) RETURNS integer AS $$
    INSERT INTO todos (title, priority) VALUES (:title, :priority) RETURNING id
$$;
CREATE FUNCTION complete_todo(todo integer) RETURNS void AS $$
    UPDATE todos SET done = 1 WHERE id = :todo
$$;
CREATE FUNCTION add_todo_as_owner(title text) RETURNS todos SECURITY DEFINER AS $$
    INSERT INTO todos (title, user_id) VALUES (:title, auth.uid()) RETURNING *
$$;
CREATE FUNCTION count_all_todos() RETURNS integer STABLE SECURITY DEFINER AS $$
    SELECT count(*) FROM todos
$$;
CREATE FUNCTION noted_todos() RETURNS SETOF todos STABLE SECURITY DEFINER AS $$
    WITH noted AS (SELECT todo_id FROM notes)
    SELECT t.* FROM todos t JOIN noted n ON n.todo_id = t.id
    WHERE EXISTS (SELECT 1 FROM todos x WHERE x.id = t.id)
$$;
CREATE FUNCTION copy_titles() RETURNS void AS $$
    INSERT INTO logs (msg, by_user) SELECT title, auth.uid() FROM todos
$$;
CREATE FUNCTION every_todo() RETURNS SETOF todos STABLE SECURITY DEFINER AS $$ SELECT * FROM todos $$;
CREATE FUNCTION whoami_definer() RETURNS text STABLE SECURITY DEFINER AS $$ SELECT auth.uid() $$;

INSERT INTO todos (id, user_id, title, done, priority) VALUES
    (1, 'USER_A', 'a one', 0, 1),
    (2, 'USER_A', 'a two', 1, 3),
    (3, 'USER_A', 'a three', 0, 2),
    (4, 'USER_B', 'b one', 0, 1),
    (5, 'USER_B', 'b two', 0, 5),
    (6, 'USER_C', 'c one', 1, 4);
INSERT INTO comments (id, todo_id, user_id, body) VALUES
    (1, 1, 'USER_A', 'a on a one'), (2, 1, 'USER_B', 'b on a one');
INSERT INTO notes (id, todo_id, body) VALUES (1, 2, 'note on a two'), (2, 5, 'note on b two');
"#;

fn start() -> Server {
    let sql = SCHEMA
        .replace("USER_A", USER_A)
        .replace("USER_B", USER_B)
        .replace("USER_C", USER_C);
    Server::start(&[("001_rpc.sql", &sql)])
}

/// POST `/rest/v1/rpc/{name}{query}` as `who` with JSON arguments.
async fn post(s: &Server, who: Who, name_and_query: &str, args: Value, prefer: &str) -> Response {
    let mut r = as_who(s, who, Method::POST, &format!("rpc/{name_and_query}")).json(&args);
    if !prefer.is_empty() {
        r = r.header("prefer", prefer);
    }
    r.send().await.expect("send")
}

/// GET `/rest/v1/rpc/{name}?{query}` as `who`.
async fn get(s: &Server, who: Who, name_and_query: &str, prefer: &str) -> Response {
    let mut r = as_who(s, who, Method::GET, &format!("rpc/{name_and_query}"));
    if !prefer.is_empty() {
        r = r.header("prefer", prefer);
    }
    r.send().await.expect("send")
}

/// POST and expect 200 with a JSON body.
async fn call(s: &Server, who: Who, name: &str, args: Value) -> Value {
    expect_json(post(s, who, name, args, "").await, 200).await
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|r| r["id"].as_i64().unwrap_or_else(|| panic!("no id in {r}")))
        .collect()
}

fn header(res: &Response, name: &str) -> String {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_string()
}

async fn all_rows(s: &Server, table: &str) -> Value {
    s.get_json(&format!("/rest/v1/{table}?order=id"), 200).await
}

// ------------------------------------------------------------------ results

#[tokio::test]
async fn scalar_results_are_bare_json_values() {
    let s = start();
    let res = post(&s, Who::Service, "add", json!({"a": 2, "b": 3}), "").await;
    assert!(
        header(&res, "content-type").starts_with("application/json"),
        "{:?}",
        res.headers()
    );
    assert_eq!(res.text().await.unwrap(), "5");
    assert_eq!(
        call(&s, Who::A, "add", json!({"a": -2, "b": 40})).await,
        json!(38)
    );
    // Booleans are JSON booleans, not 0/1.
    assert_eq!(
        call(&s, Who::A, "is_even", json!({"n": 4})).await,
        json!(true)
    );
    assert_eq!(
        call(&s, Who::A, "is_even", json!({"n": 7})).await,
        json!(false)
    );
    assert_eq!(
        call(&s, Who::A, "flag", json!({"on_off": true})).await,
        json!(true)
    );
    assert_eq!(
        call(&s, Who::A, "flag", json!({"on_off": false})).await,
        json!(false)
    );
    assert_eq!(
        call(&s, Who::Anon, "greet", json!({"name": "bob"})).await,
        json!("hello bob!")
    );
    assert_eq!(call(&s, Who::A, "half", json!({"x": 3})).await, json!(1.5));
    assert_eq!(
        call(
            &s,
            Who::A,
            "echo_json",
            json!({"doc": {"k": [1, "two", null]}})
        )
        .await,
        json!({"k": [1, "two", null]})
    );

    // GET and HEAD take the arguments from the query string.
    let res = get(&s, Who::Anon, "add?a=2&b=3", "").await;
    assert_eq!(expect_json(res, 200).await, json!(5));
    let res = get(&s, Who::Anon, "is_even?n=10", "").await;
    assert_eq!(expect_json(res, 200).await, json!(true));
    let res = get(&s, Who::Anon, "greet?name=x%20y&punct=%3F", "").await;
    assert_eq!(expect_json(res, 200).await, json!("hello x y?"));
    let res = as_who(&s, Who::Anon, Method::HEAD, "rpc/add?a=1&b=2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "");
}

#[tokio::test]
async fn defaults_apply_when_arguments_are_omitted() {
    let s = start();
    assert_eq!(
        call(&s, Who::A, "greet", json!({})).await,
        json!("hello world!")
    );
    assert_eq!(
        call(&s, Who::A, "greet", json!({"punct": "?"})).await,
        json!("hello world?")
    );
    let res = get(&s, Who::A, "greet", "").await;
    assert_eq!(expect_json(res, 200).await, json!("hello world!"));
    // An empty body is no arguments.
    let res = as_who(&s, Who::A, Method::POST, "rpc/greet")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(res, 200).await, json!("hello world!"));
    let v = call(&s, Who::Service, "todos_from?order=id", json!({})).await;
    assert_eq!(ids(&v), [1, 2, 3, 4, 5, 6]);
    let v = call(
        &s,
        Who::Service,
        "todos_from?order=id",
        json!({"min_priority": 3}),
    )
    .await;
    assert_eq!(ids(&v), [2, 5, 6]);
    let res = post(&s, Who::A, "add_todo", json!({"title": "defaulted"}), "").await;
    // (An invoker writing to an RLS table is refused; the service key may.)
    expect_error(res, 403, "42501").await;
    let id = call(&s, Who::Service, "add_todo", json!({"title": "defaulted"})).await;
    let row = s
        .get_json(
            &format!("/rest/v1/todos?id=eq.{id}&select=title,priority"),
            200,
        )
        .await;
    assert_eq!(row, json!([{"title": "defaulted", "priority": 1}]));
}

#[tokio::test]
async fn row_results_take_select_filters_order_paging_and_counts() {
    let s = start();
    let v = call(
        &s,
        Who::Service,
        "todos_from?select=id,title&order=id.desc",
        json!({"min_priority": 2}),
    )
    .await;
    assert_eq!(
        v,
        json!([
            {"id": 6, "title": "c one"},
            {"id": 5, "title": "b two"},
            {"id": 3, "title": "a three"},
            {"id": 2, "title": "a two"},
        ])
    );
    let v = call(
        &s,
        Who::Service,
        "todos_from?done=eq.false&order=id&select=id",
        json!({"min_priority": 2}),
    )
    .await;
    assert_eq!(ids(&v), [3, 5]);
    let v = call(
        &s,
        Who::Service,
        "todos_from?or=(id.eq.1,priority.gte.5)&order=id",
        json!({}),
    )
    .await;
    assert_eq!(ids(&v), [1, 5]);
    // Typed columns: booleans come back as booleans.
    let v = call(
        &s,
        Who::Service,
        "todos_from?select=id,done&id=eq.2",
        json!({}),
    )
    .await;
    assert_eq!(v, json!([{"id": 2, "done": true}]));
    // Embedding through the returned table's foreign keys.
    let v = call(
        &s,
        Who::Service,
        "todos_from?select=id,notes(body)&id=in.(2,4)&order=id",
        json!({}),
    )
    .await;
    assert_eq!(
        v,
        json!([{"id": 2, "notes": [{"body": "note on a two"}]}, {"id": 4, "notes": []}])
    );

    // Paging and counts.
    let res = post(
        &s,
        Who::Service,
        "todos_from?order=id&limit=1&offset=1&select=id",
        json!({"min_priority": 2}),
        "count=exact",
    )
    .await;
    assert_eq!(header(&res, "content-range"), "1-1/4");
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(ids(&expect_json_any(res).await), [3]);
    let res = post(
        &s,
        Who::Service,
        "todos_from?select=id",
        json!({}),
        "count=exact",
    )
    .await;
    assert_eq!(header(&res, "content-range"), "0-5/6");

    // GET: arguments and grammar side by side in the query string.
    let res = get(
        &s,
        Who::Service,
        "todos_from?min_priority=2&select=id&order=id&done=eq.false",
        "",
    )
    .await;
    assert_eq!(ids(&expect_json(res, 200).await), [3, 5]);
    let res = as_who(
        &s,
        Who::Service,
        Method::HEAD,
        "rpc/todos_from?min_priority=3",
    )
    .header("prefer", "count=exact")
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-range"), "0-2/3");
    assert_eq!(res.text().await.unwrap(), "");

    // RETURNS TABLE(...) is an array too, with typed columns, and takes the same grammar.
    let res = post(
        &s,
        Who::A,
        "todo_summaries?order=id.desc&limit=2",
        json!({}),
        "count=exact",
    )
    .await;
    assert_eq!(header(&res, "content-range"), "0-1/3");
    assert_eq!(
        expect_json_any(res).await,
        json!([
            {"id": 3, "title": "a three", "done": false},
            {"id": 2, "title": "a two", "done": true},
        ])
    );
    let v = call(
        &s,
        Who::A,
        "todo_summaries?done=is.true&select=title",
        json!({}),
    )
    .await;
    assert_eq!(v, json!([{"title": "a two"}]));
}

/// Parse a JSON body whatever the success status (200 or 206 for a partial page).
async fn expect_json_any(res: Response) -> Value {
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test]
async fn returning_a_table_type_is_one_object() {
    let s = start();
    let v = call(&s, Who::A, "first_todo", json!({})).await;
    assert_eq!(
        v,
        json!({"id": 1, "user_id": USER_A, "title": "a one", "done": false, "priority": 1})
    );
    let v = call(&s, Who::B, "first_todo?select=id,title", json!({})).await;
    assert_eq!(v, json!({"id": 4, "title": "b one"}));
    let res = get(&s, Who::Service, "first_todo", "").await;
    assert_eq!(expect_json(res, 200).await["id"], 1);
}

#[tokio::test]
async fn void_functions_answer_204() {
    let s = start();
    let res = post(&s, Who::A, "log_message", json!({"msg": "hi"}), "").await;
    assert_eq!(res.status(), 204);
    assert_eq!(res.text().await.unwrap(), "");
    assert_eq!(
        all_rows(&s, "logs").await,
        json!([{"id": 1, "msg": "hi", "by_user": USER_A}])
    );
}

// ------------------------------------------------------------------ row-level security

#[tokio::test]
async fn functions_run_as_the_caller_under_rls() {
    let s = start();
    for (who, n) in [(Who::Anon, 0), (Who::A, 3), (Who::B, 2), (Who::Service, 6)] {
        assert_eq!(
            call(&s, who, "todo_count", json!({})).await,
            json!(n),
            "{who:?}"
        );
        let res = get(&s, who, "todo_count", "").await;
        assert_eq!(expect_json(res, 200).await, json!(n), "{who:?} GET");
        // Volatile functions read under the same rules.
        assert_eq!(
            call(&s, who, "count_volatile", json!({})).await,
            json!(n),
            "{who:?} volatile"
        );
    }
    assert_eq!(call(&s, Who::A, "whoami", json!({})).await, json!(USER_A));
    assert_eq!(call(&s, Who::B, "whoami", json!({})).await, json!(USER_B));
    assert_eq!(call(&s, Who::Anon, "whoami", json!({})).await, Value::Null);
    assert_eq!(call(&s, Who::A, "my_email", json!({})).await, json!("a@x"));
    assert_eq!(
        call(&s, Who::A, "my_role", json!({})).await,
        json!("authenticated")
    );
    assert_eq!(
        call(&s, Who::Anon, "my_role", json!({})).await,
        json!("anon")
    );
    assert_eq!(
        call(&s, Who::Service, "my_role", json!({})).await,
        json!("service_role")
    );
    let v = call(&s, Who::A, "todos_from?order=id", json!({})).await;
    assert_eq!(ids(&v), [1, 2, 3]);
    let v = call(&s, Who::B, "todos_from?order=id", json!({})).await;
    assert_eq!(ids(&v), [4, 5]);
    assert_eq!(
        call(&s, Who::Anon, "todos_from", json!({})).await,
        json!([])
    );
    let v = call(&s, Who::B, "todo_summaries?order=id", json!({})).await;
    assert_eq!(ids(&v), [4, 5]);
    // A filter naming another user's row finds nothing.
    let v = call(&s, Who::A, "todos_from?id=eq.4", json!({})).await;
    assert_eq!(v, json!([]));
    let res = post(&s, Who::A, "todos_from?select=id", json!({}), "count=exact").await;
    assert_eq!(header(&res, "content-range"), "0-2/3");
}

#[tokio::test]
async fn invoker_functions_may_not_write_to_rls_tables() {
    let s = start();
    let before = all_rows(&s, "todos").await;
    let res = post(&s, Who::A, "add_todo", json!({"title": "mine"}), "").await;
    expect_error(res, 403, "42501").await;
    let res = post(&s, Who::Anon, "add_todo", json!({"title": "anon"}), "").await;
    expect_error(res, 401, "42501").await;
    // Even on the caller's own row.
    let res = post(&s, Who::A, "complete_todo", json!({"todo": 1}), "").await;
    expect_error(res, 403, "42501").await;
    // Another user's row: refused, not silently updated.
    let res = post(&s, Who::A, "complete_todo", json!({"todo": 4}), "").await;
    expect_error(res, 403, "42501").await;
    assert_eq!(all_rows(&s, "todos").await, before);

    // Tables without RLS are writable by invoker functions, and what they copy there from a
    // protected table is only what the caller may read.
    let res = post(&s, Who::B, "copy_titles", json!({}), "").await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        all_rows(&s, "logs").await,
        json!([
            {"id": 1, "msg": "b one", "by_user": USER_B},
            {"id": 2, "msg": "b two", "by_user": USER_B},
        ])
    );
    let res = post(&s, Who::Anon, "log_message", json!({"msg": "anon"}), "").await;
    assert_eq!(res.status(), 204);
    // service_role bypasses RLS, so its invoker calls write.
    let id = call(
        &s,
        Who::Service,
        "add_todo",
        json!({"title": "service", "priority": 2}),
    )
    .await;
    assert_eq!(id, json!(7));
    let res = post(&s, Who::Service, "complete_todo", json!({"todo": 1}), "").await;
    assert_eq!(res.status(), 204);
    let rows = all_rows(&s, "todos").await;
    assert_eq!(rows[0]["done"], true);
    assert_eq!(rows[6]["title"], "service");
}

#[tokio::test]
async fn security_definer_functions_see_and_write_everything_as_the_caller() {
    let s = start();
    let v = call(
        &s,
        Who::A,
        "add_todo_as_owner",
        json!({"title": "via definer"}),
    )
    .await;
    assert_eq!(v["title"], "via definer", "{v}");
    assert_eq!(v["user_id"], USER_A, "auth.uid() is still the caller: {v}");
    let id = v["id"].as_i64().unwrap();
    assert_eq!(id, 7);
    assert_eq!(call(&s, Who::A, "todo_count", json!({})).await, json!(4));
    let v = call(
        &s,
        Who::B,
        "add_todo_as_owner",
        json!({"title": "b via definer"}),
    )
    .await;
    assert_eq!(v["user_id"], USER_B, "{v}");
    // Reads inside a definer function see every row.
    assert_eq!(
        call(&s, Who::A, "count_all_todos", json!({})).await,
        json!(8)
    );
    assert_eq!(
        call(&s, Who::Anon, "count_all_todos", json!({})).await,
        json!(8)
    );
    assert_eq!(
        call(&s, Who::B, "whoami_definer", json!({})).await,
        json!(USER_B)
    );
    // The definer's rows are embedded, filtered and counted as the caller.
    let v = call(
        &s,
        Who::B,
        "every_todo?select=id,comments(body)&id=eq.1",
        json!({}),
    )
    .await;
    assert_eq!(v, json!([{"id": 1, "comments": [{"body": "b on a one"}]}]));
    let v = call(
        &s,
        Who::Anon,
        "every_todo?select=id,comments!inner(body)",
        json!({}),
    )
    .await;
    assert_eq!(v, json!([]));
    let res = post(
        &s,
        Who::A,
        "every_todo?select=id&limit=1",
        json!({}),
        "count=exact",
    )
    .await;
    assert_eq!(header(&res, "content-range"), "0-0/8");
    // Joins, CTEs and subqueries in a definer body read every row too.
    let v = call(&s, Who::B, "noted_todos?order=id&select=id", json!({})).await;
    assert_eq!(ids(&v), [2, 5]);
    let path = format!("noted_todos?select=id,user_id&user_id=eq.{USER_A}");
    let v = call(&s, Who::Anon, &path, json!({})).await;
    assert_eq!(ids(&v), [2]);
    let rows = all_rows(&s, "todos").await;
    assert_eq!(rows.as_array().unwrap().len(), 8);
    assert_eq!(rows[6]["user_id"], USER_A);
    assert_eq!(rows[7]["user_id"], USER_B);
}

// ------------------------------------------------------------------ methods and errors

#[tokio::test]
async fn volatile_functions_refuse_get_and_head() {
    let s = start();
    for path in [
        "add_todo?title=x",
        "log_message?msg=x",
        "count_volatile",
        "complete_todo?todo=1",
    ] {
        let res = get(&s, Who::Service, path, "").await;
        expect_error(res, 405, "PGRST101").await;
        let res = as_who(&s, Who::Service, Method::HEAD, &format!("rpc/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "HEAD {path}");
    }
    assert_eq!(all_rows(&s, "logs").await, json!([]));
    assert_eq!(all_rows(&s, "todos").await.as_array().unwrap().len(), 6);
    assert_eq!(all_rows(&s, "todos").await[0]["done"], false);
}

#[tokio::test]
async fn unknown_functions_are_404_pgrst202() {
    let s = start();
    let res = post(&s, Who::Service, "nope", json!({}), "").await;
    expect_error(res, 404, "PGRST202").await;
    let res = get(&s, Who::Anon, "nope?a=1", "").await;
    expect_error(res, 404, "PGRST202").await;
    // Tables are not functions.
    let res = post(&s, Who::Service, "todos", json!({}), "").await;
    expect_error(res, 404, "PGRST202").await;
}

/// Whether `message` names `word` as a whole word.
fn names(message: &str, word: &str) -> bool {
    message
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|w| w == word)
}

#[tokio::test]
async fn bad_arguments_are_400_22023() {
    let s = start();
    let cases: &[(&str, Value, &str)] = &[
        ("add", json!({"a": 1, "b": 2, "c": 3}), "c"),
        ("add", json!({"a": 1}), "b"),
        ("add", json!({}), "a"),
        ("add", json!({"a": "x", "b": 1}), "a"),
        ("add", json!({"a": 1.5, "b": 1}), "a"),
        ("is_even", json!({"n": "two"}), "n"),
        ("flag", json!({"on_off": "maybe"}), "on_off"),
        ("half", json!({"x": "half"}), "x"),
        ("greet", json!({"nme": "typo"}), "nme"),
    ];
    for (name, args, mentions) in cases {
        let res = post(&s, Who::Service, name, args.clone(), "").await;
        let body = expect_error(res, 400, "22023").await;
        let message = body["message"].as_str().unwrap();
        assert!(
            names(message, mentions),
            "{name}({args}): message should name {mentions}: {body}"
        );
    }
    let gets: &[(&str, &str)] = &[
        ("add?a=x&b=1", "a"),
        ("add?a=1", "b"),
        ("add?a=1&b=2&c=3", "c"),
        ("is_even?n=1.5", "n"),
    ];
    for (path, mentions) in gets {
        let res = get(&s, Who::Anon, path, "").await;
        let body = expect_error(res, 400, "22023").await;
        assert!(
            names(body["message"].as_str().unwrap(), mentions),
            "GET {path}: message should name {mentions}: {body}"
        );
    }
    // A bad argument to a volatile function writes nothing.
    let res = post(
        &s,
        Who::Service,
        "add_todo",
        json!({"title": "x", "priority": "high"}),
        "",
    )
    .await;
    expect_error(res, 400, "22023").await;
    assert_eq!(all_rows(&s, "todos").await.as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn tx_rollback_undoes_a_volatile_functions_writes() {
    let s = start();
    let res = post(
        &s,
        Who::A,
        "log_message",
        json!({"msg": "gone"}),
        "tx=rollback",
    )
    .await;
    assert_eq!(res.status(), 204);
    let res = post(
        &s,
        Who::A,
        "log_returning",
        json!({"msg": "gone too"}),
        "tx=rollback",
    )
    .await;
    let v = expect_json(res, 200).await;
    assert_eq!(v, json!([{"id": 1, "msg": "gone too", "by_user": USER_A}]));
    let res = post(
        &s,
        Who::A,
        "add_todo_as_owner",
        json!({"title": "gone"}),
        "tx=rollback",
    )
    .await;
    assert_eq!(expect_json(res, 200).await["title"], "gone");
    assert_eq!(all_rows(&s, "logs").await, json!([]));
    assert_eq!(all_rows(&s, "todos").await.as_array().unwrap().len(), 6);
    // Without it, the writes stay.
    let res = post(&s, Who::A, "log_returning", json!({"msg": "kept"}), "").await;
    assert_eq!(ids(&expect_json(res, 200).await), [1]);
    assert_eq!(all_rows(&s, "logs").await.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn create_or_replace_function_replaces_the_body() {
    let dir_sql = SCHEMA
        .replace("USER_A", USER_A)
        .replace("USER_B", USER_B)
        .replace("USER_C", USER_C);
    let s = Server::start(&[
        ("001_rpc.sql", &dir_sql),
        (
            "002_replace.sql",
            "CREATE OR REPLACE FUNCTION version() RETURNS integer IMMUTABLE AS $$ SELECT 2 $$;",
        ),
    ]);
    assert_eq!(call(&s, Who::Anon, "version", json!({})).await, json!(2));
}

// ------------------------------------------------------------------ interleaved callers

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interleaved_calls_see_only_the_callers_rows() {
    let s = Arc::new(start());
    let mut handles = Vec::new();
    for i in 0..48usize {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let who = [Who::A, Who::B, Who::Anon, Who::Service][i % 4];
            let (count, mine): (i64, Vec<i64>) = match who {
                Who::A => (3, vec![1, 2, 3]),
                Who::B => (2, vec![4, 5]),
                Who::C => (1, vec![6]),
                Who::Anon => (0, vec![]),
                Who::Service => (6, vec![1, 2, 3, 4, 5, 6]),
            };
            match (i / 4) % 4 {
                0 => {
                    let v = call(&s, who, "todo_count", json!({})).await;
                    assert_eq!(v, json!(count), "request {i} as {who:?}");
                }
                1 => {
                    let v = call(&s, who, "todos_from?order=id&select=id", json!({})).await;
                    assert_eq!(ids(&v), mine, "request {i} as {who:?}");
                }
                2 => {
                    let v = call(&s, who, "whoami", json!({})).await;
                    assert_eq!(v, json!(who.uid()), "request {i} as {who:?}");
                }
                _ => {
                    let v = call(&s, who, "count_volatile", json!({})).await;
                    assert_eq!(v, json!(count), "request {i} as {who:?}");
                }
            }
        }));
    }
    for h in handles {
        h.await.expect("request task");
    }
}
