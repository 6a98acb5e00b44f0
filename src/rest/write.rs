//! POST (insert and upsert), PATCH (update) and DELETE on a table.
//!
//! Each request is planned here, then run as one job on the writer: every statement of the
//! request shares one savepoint, so a failure anywhere (a constraint, a row-level security
//! check, a singular-response or max-affected check) undoes all of it: nothing is half-written.
//!
//! Writes always name `main.<table>`. Under row-level security the rows an UPDATE or DELETE may
//! touch are those passing the SELECT and the command's USING policies (inlined into the target
//! selection), and every row an INSERT or UPDATE leaves behind must pass WITH CHECK, verified
//! after the statement and before the savepoint is released.

use super::error::{RestError, RestResult};
use super::plan::{ident, key_expr, Planner};
use super::prefer::{Media, Resolution, Return};
use super::read::{bind_leading, query_number, query_strings};
use super::{access, response, value, Ctx};
use crate::app::AppState;
use crate::db::schema::{Column, Schema, Table};
use crate::db::Mode;
use crate::policy::predicate::{self, Command};
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// A statement and its parameters.
type Stmt = (String, Vec<SqlValue>);

/// What a write job hands back.
struct Outcome {
    affected: usize,
    rows: Option<Vec<String>>,
    location: Option<String>,
}

/// The statement rendering the written rows, with the index of its keys parameter.
struct Representation {
    sql: String,
    params: Vec<SqlValue>,
    keys_param: usize,
}

/// Row-level security of one write: the table's name and the WITH CHECK predicates to verify.
#[derive(Clone)]
struct Guard {
    table: String,
    authenticated: bool,
    /// Counts rows among the keys bound at ?1 that fail the check.
    insert_check: String,
    update_check: String,
    /// The predicates themselves, for checking proposed rows before they are written.
    insert_predicate: String,
    update_predicate: String,
}

impl Guard {
    fn new(table: &Table, ctx: &Ctx) -> Option<Guard> {
        if !ctx.rls() || !table.rls {
            return None;
        }
        let failing = |check: String| {
            let t = ident(&table.name);
            format!(
                "SELECT count(*) FROM json_each(?1) AS k JOIN main.{t} AS {t} ON {} = k.value WHERE NOT {check}",
                key_expr(table, &t)
            )
        };
        Some(Guard {
            table: table.name.clone(),
            authenticated: access::is_authenticated(&ctx.caller),
            insert_check: failing(predicate::check(table, Command::Insert)),
            update_check: failing(predicate::check(table, Command::Update)),
            insert_predicate: predicate::check(table, Command::Insert),
            update_predicate: predicate::check(table, Command::Update),
        })
    }

    fn violation(&self) -> RestError {
        RestError::rls_violation(&self.table, self.authenticated)
    }

    /// Fail unless every row whose key is in `keys` passes `check_sql`.
    fn verify(&self, conn: &Connection, check_sql: &str, keys: &[Value]) -> RestResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let failing: i64 = conn
            .prepare_cached(check_sql)?
            .query_row([Value::Array(keys.to_vec()).to_string()], |r| r.get(0))?;
        if failing > 0 {
            return Err(self.violation());
        }
        Ok(())
    }
}

/// The SELECT list of a row as it would be written: `given` columns (quoted name → SQL), the
/// rest from `otherwise` (their default for inserts, their current value for updates).
fn proposed_row(
    table: &Table,
    given: &[(String, String)],
    otherwise: impl Fn(&Column) -> String,
) -> String {
    table
        .columns
        .iter()
        .filter(|c| !c.generated)
        .map(|c| {
            let q = ident(&c.name);
            let v = given
                .iter()
                .find(|(name, _)| *name == q)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| otherwise(c));
            format!("{v} AS {q}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn default_or_null(c: &Column) -> String {
    c.default
        .as_ref()
        .map_or_else(|| "NULL".to_string(), |d| format!("({d})"))
}

fn lookup<'s>(schema: &'s Schema, ctx: &Ctx) -> RestResult<&'s Table> {
    let table = schema
        .table(&ctx.table)
        .ok_or_else(|| RestError::no_table(&ctx.table))?;
    if table.is_view {
        return Err(RestError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "55000",
            format!("cannot write to view \"{}\"", table.name),
        )
        .hint("Views are read-only; write to their base tables."));
    }
    Ok(table)
}

fn check_content_type(headers: &HeaderMap) -> RestResult<()> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
    let mime = ct.split(';').next().unwrap_or_default().trim();
    if mime.is_empty() || mime == "application/json" || mime.ends_with("+json") {
        Ok(())
    } else {
        Err(RestError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "PGRST107",
            format!("Content-Type not acceptable: {mime}"),
        ))
    }
}

fn parse_json(body: &[u8]) -> RestResult<Value> {
    serde_json::from_slice(body)
        .map_err(|e| RestError::body("Empty or invalid json").details(e.to_string()))
}

/// The statement rendering rows by key, if the client wants them back. Under RLS it renders
/// only rows the caller may SELECT.
fn representation(schema: &Schema, ctx: &Ctx, table: &Table) -> RestResult<Option<Representation>> {
    if ctx.prefer.return_ != Some(Return::Representation) {
        return Ok(None);
    }
    let mut planner = Planner::new(schema, &ctx.query).with_rls(ctx.rls());
    planner.check_paths()?;
    let keys = planner.sql.bind(SqlValue::Text("[]".into()));
    let keys_param = planner.sql.params.len() - 1;
    let visible = (ctx.rls() && table.rls).then(|| predicate::using(table, Command::Select));
    let sql = planner.select_by_keys(table, &keys, visible.as_deref())?;
    Ok(Some(Representation {
        sql,
        params: planner.sql.params,
        keys_param,
    }))
}

/// The `RETURNING` expression naming a row (unqualified: RETURNING sees the target table only).
fn returning_key(table: &Table) -> String {
    key_expr(table, "")
}

fn key_value(v: SqlValue) -> Value {
    match v {
        SqlValue::Integer(i) => Value::from(i),
        SqlValue::Text(t) => serde_json::from_str(&t).unwrap_or(Value::String(t)),
        SqlValue::Real(r) => Value::from(r),
        _ => Value::Null,
    }
}

/// Run statements that each return row keys; gather the keys.
fn collect_keys(conn: &Connection, stmts: &[Stmt], keys: &mut Vec<Value>) -> RestResult<()> {
    for (sql, params) in stmts {
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params_from_iter(params.iter()))?;
        while let Some(row) = rows.next()? {
            keys.push(key_value(row.get::<_, SqlValue>(0)?));
        }
    }
    Ok(())
}

fn finish(
    conn: &Connection,
    single: bool,
    max_affected: Option<i64>,
    keys: &[Value],
    repr: Option<Representation>,
    guard: Option<&Guard>,
) -> RestResult<Option<Vec<String>>> {
    if let Some(max) = max_affected {
        if keys.len() as i64 > max {
            return Err(RestError::new(
                StatusCode::BAD_REQUEST,
                "PGRST124",
                "Query result exceeds max-affected preference constraint",
            )
            .details(format!("The query affects {} rows", keys.len())));
        }
    }
    if single && keys.len() != 1 {
        return Err(RestError::not_single(keys.len()));
    }
    match repr {
        None => Ok(None),
        Some(mut r) => {
            r.params[r.keys_param] = SqlValue::Text(Value::Array(keys.to_vec()).to_string());
            let rows = query_strings(conn, &r.sql, &r.params)?;
            // Returning a row needs the right to see it, as in Postgres.
            if let Some(g) = guard {
                if rows.len() < keys.len() {
                    return Err(g.violation());
                }
            }
            Ok(Some(rows))
        }
    }
}

fn mode(ctx: &Ctx) -> Mode {
    if ctx.prefer.rollback {
        Mode::Rollback
    } else {
        Mode::Commit
    }
}

// ---------------------------------------------------------------- POST
/// One row of an insert: its statement and, under RLS, the checks made before it runs (they use
/// the statement's parameters): does the proposed row fail WITH CHECK, and (merge upserts) which
/// existing row would it replace, and may the caller update that one?
struct InsertRow {
    stmt: Stmt,
    fails_check: Option<String>,
    existing: Option<String>,
}

/// Insert (or upsert) the body's rows.
pub async fn insert(state: &AppState, ctx: Ctx, body: bytes::Bytes) -> RestResult<Response> {
    check_content_type(&ctx.headers)?;
    let schema = state.db.schema.get();
    let table = lookup(&schema, &ctx)?;
    let json = parse_json(&body)?;
    let (objects, single_object) = match json {
        Value::Object(o) => (vec![o], true),
        Value::Array(items) => {
            let mut objects = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::Object(o) => objects.push(o),
                    _ => {
                        return Err(RestError::body(
                            "All elements of the array must be JSON objects",
                        ))
                    }
                }
            }
            (objects, false)
        }
        _ => {
            return Err(RestError::body(
                "The body must be a JSON object or an array of objects",
            ))
        }
    };
    let columns = insert_columns(table, &ctx, &objects)?;
    let conflict = conflict_clause(table, &ctx)?;
    let guard = Guard::new(table, &ctx);
    // No INSERT policy for this role: refuse before any constraint is even looked at, as
    // Postgres checks RLS before constraints.
    if let Some(g) = &guard {
        if !objects.is_empty() && !predicate::may(table, Command::Insert, ctx.caller.role.name()) {
            return Err(g.violation());
        }
    }
    let returning = returning_key(table);
    let t = ident(&table.name);
    // Under RLS a merge may only replace rows the caller may update.
    let replaceable = match (&guard, &conflict) {
        (Some(_), Some(c)) if c.resolution == Resolution::MergeDuplicates => Some(format!(
            "coalesce({} AND {}, 0)",
            predicate::using(table, Command::Select),
            predicate::using(table, Command::Update)
        )),
        _ => None,
    };

    let mut rows: Vec<InsertRow> = Vec::with_capacity(objects.len());
    for obj in &objects {
        let mut cols = Vec::new();
        let mut params = Vec::new();
        for name in &columns {
            let Some(col) = table.column(name) else {
                return Err(RestError::no_column_in_body(&table.name, name));
            };
            match obj.get(name) {
                Some(v) => {
                    cols.push(ident(name));
                    params.push(value::from_json(col.ty, v)?);
                }
                None if ctx.prefer.missing_default => {}
                None => {
                    cols.push(ident(name));
                    params.push(SqlValue::Null);
                }
            }
        }
        let sql = if cols.is_empty() {
            format!("INSERT INTO main.{t} DEFAULT VALUES RETURNING {returning}")
        } else {
            let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
            let upsert = conflict
                .as_ref()
                .map(|c| c.render(&cols))
                .unwrap_or_default();
            format!(
                "INSERT INTO main.{t} ({}) VALUES ({}){upsert} RETURNING {returning}",
                cols.join(", "),
                marks.join(", ")
            )
        };
        let given: Vec<(String, String)> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), format!("?{}", i + 1)))
            .collect();
        let proposed = proposed_row(table, &given, default_or_null);
        let fails_check = guard.as_ref().map(|g| {
            format!(
                "SELECT NOT {} FROM (SELECT {proposed}) AS {t}",
                g.insert_predicate
            )
        });
        let existing = match (&replaceable, &conflict) {
            (Some(allowed), Some(c)) => {
                let mine: Vec<String> = c
                    .target
                    .iter()
                    .map(|col| format!("{t}.{}", ident(col)))
                    .collect();
                let theirs: Vec<String> = c.target.iter().map(|col| ident(col)).collect();
                Some(format!(
                    "SELECT {}, {allowed} FROM main.{t} AS {t} WHERE ({}) = (SELECT {} FROM (SELECT {proposed}) AS proposed)",
                    key_expr(table, &t),
                    mine.join(", "),
                    theirs.join(", ")
                ))
            }
            _ => None,
        };
        rows.push(InsertRow {
            stmt: (sql, params),
            fails_check,
            existing,
        });
    }

    let repr = representation(&schema, &ctx, table)?;
    let single = ctx.accept.media == Media::Single;
    let location_sql = (single_object && !table.primary_key.is_empty()).then(|| {
        let cols: Vec<String> = table.primary_key.iter().map(|c| ident(c)).collect();
        // An INTEGER PRIMARY KEY is the rowid itself: the returned key is the value (no query).
        let rowid_alias = table.has_rowid()
            && table.primary_key.len() == 1
            && table
                .column(&table.primary_key[0])
                .is_some_and(|c| c.declared.eq_ignore_ascii_case("integer"));
        let sql = if rowid_alias {
            String::new()
        } else {
            format!(
                "SELECT {} FROM main.{t} AS t WHERE {} = ?1",
                cols.join(", "),
                key_expr(table, "t")
            )
        };
        (sql, table.primary_key.clone(), table.name.clone())
    });
    let max = ctx.prefer.max_affected;
    let outcome = state
        .db
        .writer
        .write(
            mode(&ctx),
            Some(ctx.request.clone()),
            move |conn| -> RestResult<Outcome> {
                let mut keys = Vec::with_capacity(rows.len());
                let mut replaced: HashSet<String> = HashSet::new();
                for row in &rows {
                    // Row-level security first, as Postgres does: a refusal must not be preceded
                    // (and given away) by a constraint error about a row the caller cannot see.
                    if let (Some(sql), Some(g)) = (&row.fails_check, &guard) {
                        if query_number(conn, sql, &row.stmt.1)? != 0 {
                            return Err(g.violation());
                        }
                    }
                    if let (Some(sql), Some(g)) = (&row.existing, &guard) {
                        let mut stmt = conn.prepare_cached(sql)?;
                        bind_leading(&mut stmt, &row.stmt.1)?;
                        let found: Option<(SqlValue, bool)> = stmt
                            .raw_query()
                            .next()?
                            .map(|r| Ok::<_, rusqlite::Error>((r.get(0)?, r.get(1)?)))
                            .transpose()?;
                        if let Some((key, allowed)) = found {
                            if !allowed {
                                return Err(g.violation());
                            }
                            replaced.insert(key_value(key).to_string());
                        }
                    }
                    collect_keys(conn, std::slice::from_ref(&row.stmt), &mut keys)?;
                }
                if let Some(g) = &guard {
                    let (updated, inserted): (Vec<Value>, Vec<Value>) = keys
                        .iter()
                        .cloned()
                        .partition(|k| replaced.contains(&k.to_string()));
                    g.verify(conn, &g.insert_check, &inserted)?;
                    g.verify(conn, &g.update_check, &updated)?;
                }
                let location = match (&location_sql, keys.first()) {
                    (Some((sql, pk, name)), Some(key)) if keys.len() == 1 => {
                        Some(location(conn, sql, pk, name, key)?)
                    }
                    _ => None,
                };
                let rows = finish(conn, single, max, &keys, repr, guard.as_ref())?;
                Ok(Outcome {
                    affected: keys.len(),
                    rows,
                    location,
                })
            },
        )
        .await?;
    respond(&ctx, StatusCode::CREATED, outcome)
}

fn insert_columns(
    table: &Table,
    ctx: &Ctx,
    objects: &[Map<String, Value>],
) -> RestResult<Vec<String>> {
    if let Some(cols) = &ctx.query.columns {
        for c in cols {
            if table.column(c).is_none() {
                return Err(RestError::no_column_in_body(&table.name, c));
            }
        }
        return Ok(cols.clone());
    }
    let Some(first) = objects.first() else {
        return Ok(Vec::new());
    };
    let cols: Vec<String> = first.keys().cloned().collect();
    for c in &cols {
        if table.column(c).is_none() {
            return Err(RestError::no_column_in_body(&table.name, c));
        }
    }
    for obj in &objects[1..] {
        if obj.len() != cols.len() || !cols.iter().all(|c| obj.contains_key(c)) {
            return Err(RestError::body("All object keys must match"));
        }
    }
    Ok(cols)
}

/// `ON CONFLICT (…) DO UPDATE SET …` or `DO NOTHING` for upserts.
#[derive(Clone)]
struct Conflict {
    target: Vec<String>,
    resolution: Resolution,
}

impl Conflict {
    fn render(&self, cols: &[String]) -> String {
        let target: Vec<String> = self.target.iter().map(|c| ident(c)).collect();
        match self.resolution {
            Resolution::IgnoreDuplicates => {
                format!(" ON CONFLICT ({}) DO NOTHING", target.join(", "))
            }
            Resolution::MergeDuplicates => {
                let mut sets: Vec<String> = cols
                    .iter()
                    .filter(|c| !target.contains(c))
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect();
                if sets.is_empty() {
                    // Nothing to change, but the row must still be returned.
                    sets.push(format!("{0} = excluded.{0}", target[0]));
                }
                format!(
                    " ON CONFLICT ({}) DO UPDATE SET {}",
                    target.join(", "),
                    sets.join(", ")
                )
            }
        }
    }
}

fn conflict_clause(table: &Table, ctx: &Ctx) -> RestResult<Option<Conflict>> {
    let Some(resolution) = ctx.prefer.resolution else {
        return Ok(None);
    };
    let target = match &ctx.query.on_conflict {
        Some(cols) => {
            for c in cols {
                if table.column(c).is_none() {
                    return Err(RestError::no_column(&table.name, c));
                }
            }
            cols.clone()
        }
        None => table.primary_key.clone(),
    };
    if target.is_empty() {
        return Err(RestError::new(
            StatusCode::BAD_REQUEST,
            "42P10",
            "there is no unique or exclusion constraint matching the ON CONFLICT specification",
        )
        .hint("Name the conflict columns with on_conflict=."));
    }
    Ok(Some(Conflict { target, resolution }))
}

fn location(
    conn: &Connection,
    sql: &str,
    pk: &[String],
    table: &str,
    key: &Value,
) -> RestResult<String> {
    let key = match key {
        Value::Number(n) => SqlValue::Integer(n.as_i64().unwrap_or_default()),
        other => SqlValue::Text(other.to_string()),
    };
    let values: Vec<SqlValue> = if sql.is_empty() {
        vec![key]
    } else {
        conn.prepare_cached(sql)?.query_row([key], |r| {
            (0..pk.len()).map(|i| r.get::<_, SqlValue>(i)).collect()
        })?
    };
    let mut parts = Vec::new();
    for (col, v) in pk.iter().zip(values) {
        let text = match v {
            SqlValue::Integer(i) => i.to_string(),
            SqlValue::Real(r) => r.to_string(),
            SqlValue::Text(t) => t,
            SqlValue::Null => "null".into(),
            SqlValue::Blob(b) => format!("\\x{}", hex::encode(b)),
        };
        let enc: String = form_urlencoded::byte_serialize(text.as_bytes()).collect();
        parts.push(format!("{col}=eq.{enc}"));
    }
    Ok(format!("/{table}?{}", parts.join("&")))
}

// ---------------------------------------------------------------- PATCH

/// Update the rows the filters select with the body's values.
pub async fn update(state: &AppState, ctx: Ctx, body: bytes::Bytes) -> RestResult<Response> {
    check_content_type(&ctx.headers)?;
    let schema = state.db.schema.get();
    let table = lookup(&schema, &ctx)?;
    let Value::Object(obj) = parse_json(&body)? else {
        return Err(RestError::body("PATCH takes one JSON object"));
    };
    let guard = Guard::new(table, &ctx);
    let mut planner = Planner::new(&schema, &ctx.query).with_rls(ctx.rls());
    planner.check_paths()?;
    let mut sets = Vec::new();
    let mut set_values: Vec<(String, String)> = Vec::new();
    for (name, v) in &obj {
        if ctx
            .query
            .columns
            .as_ref()
            .is_some_and(|cols| !cols.contains(name))
        {
            continue;
        }
        let col = table
            .column(name)
            .ok_or_else(|| RestError::no_column_in_body(&table.name, name))?;
        let p = planner.sql.bind(value::from_json(col.ty, v)?);
        sets.push(format!("{} = {p}", ident(name)));
        set_values.push((ident(name), p));
    }
    let (offset, limit) = super::read::paging(&ctx)?;
    let allowed = guard.as_ref().map(|_| {
        format!(
            "{} AND {}",
            predicate::using(table, Command::Select),
            predicate::using(table, Command::Update)
        )
    });
    let returning = returning_key(table);
    let t = ident(&table.name);
    // Which rows the update targets, as a WHERE clause over `main.<table> AS <table>`.
    let target = if sets.is_empty() {
        None
    } else if limit.is_some() || offset > 0 || ctx.query.order.contains_key(&Vec::new()) {
        let keys = planner.select_keys(table, limit, offset, allowed.as_deref())?;
        Some(format!("{} IN ({keys})", key_expr(table, &t)))
    } else {
        let (_, cond) = planner.top_conditions(table)?;
        let allowed = allowed.map(|a| format!(" AND {a}")).unwrap_or_default();
        Some(format!("{cond}{allowed}"))
    };
    let stmt = target.as_ref().map(|w| {
        format!(
            "UPDATE main.{t} AS {t} SET {} WHERE {w} RETURNING {returning}",
            sets.join(", ")
        )
    });
    // The new version of each targeted row must pass WITH CHECK before anything is written.
    let fails_check = match (&guard, &target) {
        (Some(g), Some(w)) => {
            let proposed = proposed_row(table, &set_values, |c| format!("{t}.{}", ident(&c.name)));
            Some(format!(
                "SELECT count(*) FROM (SELECT {proposed} FROM main.{t} AS {t} WHERE {w}) AS {t} WHERE NOT {}",
                g.update_predicate
            ))
        }
        _ => None,
    };
    let stmts: Vec<Stmt> = stmt.map(|s| (s, planner.sql.params)).into_iter().collect();
    let repr = representation(&schema, &ctx, table)?;
    let single = ctx.accept.media == Media::Single;
    let max = ctx.prefer.max_affected;
    let outcome = state
        .db
        .writer
        .write(
            mode(&ctx),
            Some(ctx.request.clone()),
            move |conn| -> RestResult<Outcome> {
                if let (Some(sql), Some(g), Some((_, params))) =
                    (&fails_check, &guard, stmts.first())
                {
                    if query_number(conn, sql, params)? != 0 {
                        return Err(g.violation());
                    }
                }
                let mut keys = Vec::new();
                collect_keys(conn, &stmts, &mut keys)?;
                if let Some(g) = &guard {
                    // Triggers may still change rows: check what was actually written too.
                    g.verify(conn, &g.update_check, &keys)?;
                }
                let rows = finish(conn, single, max, &keys, repr, guard.as_ref())?;
                Ok(Outcome {
                    affected: keys.len(),
                    rows,
                    location: None,
                })
            },
        )
        .await?;
    respond(&ctx, StatusCode::NO_CONTENT, outcome)
}

// ---------------------------------------------------------------- DELETE

/// Delete the rows the filters select.
pub async fn delete(state: &AppState, ctx: Ctx) -> RestResult<Response> {
    let schema = state.db.schema.get();
    let table = lookup(&schema, &ctx)?;
    let guard = Guard::new(table, &ctx);
    let mut planner = Planner::new(&schema, &ctx.query).with_rls(ctx.rls());
    planner.check_paths()?;
    let (offset, limit) = super::read::paging(&ctx)?;
    let repr = representation(&schema, &ctx, table)?;
    let allowed = guard.as_ref().map(|_| {
        format!(
            "{} AND {}",
            predicate::using(table, Command::Select),
            predicate::using(table, Command::Delete)
        )
    });
    // Rows are rendered before they are deleted, so select their keys first.
    let select_keys = planner.select_keys(table, limit, offset, allowed.as_deref())?;
    let keys_stmt: Stmt = (select_keys, planner.sql.params);
    let delete_sql = format!(
        "DELETE FROM main.{} WHERE {} IN (SELECT value FROM json_each(?1))",
        ident(&table.name),
        returning_key(table)
    );
    let single = ctx.accept.media == Media::Single;
    let max = ctx.prefer.max_affected;
    let outcome = state
        .db
        .writer
        .write(
            mode(&ctx),
            Some(ctx.request.clone()),
            move |conn| -> RestResult<Outcome> {
                let mut keys = Vec::new();
                collect_keys(conn, std::slice::from_ref(&keys_stmt), &mut keys)?;
                let rows = finish(conn, single, max, &keys, repr, guard.as_ref())?;
                if !keys.is_empty() {
                    conn.prepare_cached(&delete_sql)?
                        .execute([Value::Array(keys.clone()).to_string()])?;
                }
                Ok(Outcome {
                    affected: keys.len(),
                    rows,
                    location: None,
                })
            },
        )
        .await?;
    respond(&ctx, StatusCode::NO_CONTENT, outcome)
}

// ---------------------------------------------------------------- response

fn respond(ctx: &Ctx, no_body_status: StatusCode, outcome: Outcome) -> RestResult<Response> {
    let total = ctx.prefer.count.then_some(outcome.affected as i64);
    let mut res = Response::builder();
    if let Some(loc) = &outcome.location {
        res = res.header(header::LOCATION, loc);
    }
    if !ctx.prefer.applied.is_empty() {
        res = res.header("preference-applied", ctx.prefer.applied.join(", "));
    }
    let built = match outcome.rows {
        Some(rows) => {
            let body = response::render(&rows, ctx.accept)?;
            let status = if no_body_status == StatusCode::CREATED {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            res.status(status)
                .header(header::CONTENT_TYPE, body.content_type)
                .header(
                    "content-range",
                    response::content_range(0, rows.len(), total),
                )
                .body(Body::from(body.bytes))
        }
        None => res
            .status(no_body_status)
            .header("content-range", response::content_range(0, 0, total))
            .body(Body::empty()),
    };
    built.map_err(|e| RestError::new(StatusCode::INTERNAL_SERVER_ERROR, "XX000", e.to_string()))
}
