//! `/rest/v1/rpc/{name}`: calling the SQL functions defined with `CREATE FUNCTION`.
//!
//! Arguments come from the JSON body (POST) or the query string (GET/HEAD) and are bound by the
//! parameter's declared type. A function whose body is a SELECT and that returns rows is read
//! through the planner, as a subquery, so `select=`, filters, order, paging, embedding and counts
//! apply to its result; other bodies run as they are and their result is converted by the
//! declared return type. Stable functions run on a reader, volatile ones on the writer.
//! Everything runs as the caller, under row-level security, unless the function is
//! SECURITY DEFINER. A function run for a caller under RLS may not write to tables with RLS
//! (its writes cannot be checked against USING), unless it is SECURITY DEFINER.

use super::error::{RestError, RestResult};
use super::plan::Planner;
use super::prefer::{Accept, Media, Prefer};
use super::query::ApiQuery;
use super::read::{paging, query_number, query_strings};
use super::{access, response, value, Ctx};
use crate::app::AppState;
use crate::db::schema::{ColType, Column, Function, FunctionReturns, Schema, Table};
use crate::db::{script, Mode};
use crate::policy::context::RequestContext;
use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use axum::response::Response;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// A call's result, before it becomes a response.
enum Output {
    /// Row objects rendered by SQLite, and the total when counted.
    Rows {
        rows: Vec<String>,
        total: Option<i64>,
        offset: i64,
    },
    /// One JSON value (scalar, single row, or rows converted in Rust).
    Value(Value),
    Void,
}

fn not_found(name: &str) -> RestError {
    RestError::new(
        StatusCode::NOT_FOUND,
        "PGRST202",
        format!("Could not find the function public.{name} in the schema cache"),
    )
    .hint("Define it in a migration with CREATE FUNCTION.")
}

fn bad_args(f: &Function, message: String) -> RestError {
    let sig: Vec<String> = f
        .params
        .iter()
        .map(|p| match &p.default {
            Some(d) => format!("{} {} DEFAULT {d}", p.name, p.declared),
            None => format!("{} {}", p.name, p.declared),
        })
        .collect();
    RestError::new(StatusCode::BAD_REQUEST, "22023", message).hint(format!(
        "The function is {}({})",
        f.name,
        sig.join(", ")
    ))
}

/// Arguments as given: JSON values (POST) or query-string text (GET).
enum Args {
    Json(Map<String, Value>),
    Text(Vec<(String, String)>),
}

/// Handle one call.
pub async fn call(
    state: &AppState,
    ctx_base: CallBase,
    name: String,
    method: Method,
    raw_query: String,
    body: bytes::Bytes,
) -> RestResult<Response> {
    let schema = state.db.schema.get();
    let f = schema
        .functions
        .get(&name)
        .cloned()
        .ok_or_else(|| not_found(&name))?;
    let read_only = matches!(method, Method::GET | Method::HEAD);
    if read_only && f.volatile {
        return Err(RestError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "PGRST101",
            format!("{name}() is volatile and may write: call it with POST"),
        ));
    }
    // Split the query string into arguments (GET) and the grammar (select, filters, …).
    let param_names: HashSet<&str> = f.params.iter().map(|p| p.name.as_str()).collect();
    let (arg_pairs, grammar) = {
        let mut arg_pairs = Vec::new();
        let mut rest = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
            let is_arg = read_only
                && !is_grammar_key(&k)
                && (param_names.contains(k.as_ref()) || !k.contains('.'))
                && !looks_like_filter(&v);
            if is_arg {
                arg_pairs.push((k.into_owned(), v.into_owned()));
            } else {
                rest.append_pair(&k, &v);
            }
        }
        (arg_pairs, rest.finish())
    };
    let query = ApiQuery::parse(&grammar)?;
    query.require_grammar()?;
    let args = if read_only {
        Args::Text(arg_pairs)
    } else if body.iter().all(u8::is_ascii_whitespace) {
        Args::Json(Map::new())
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) if ctx_base.prefer.single_object_params && f.params.len() == 1 => {
                let mut m = Map::new();
                m.insert(f.params[0].name.clone(), v);
                Args::Json(m)
            }
            Ok(Value::Object(m)) => Args::Json(m),
            Ok(_) => return Err(RestError::body("RPC arguments are a JSON object")),
            Err(e) => return Err(RestError::body("Empty or invalid json").details(e.to_string())),
        }
    };
    let ctx = Ctx {
        caller: ctx_base.caller,
        request: ctx_base.request,
        table: name.clone(),
        query,
        prefer: ctx_base.prefer,
        accept: ctx_base.accept,
        headers: ctx_base.headers,
    };
    let mut planner = Planner::new(&schema, &ctx.query).with_rls(ctx.rls());
    let body_sql = bind_args(&f, &args, &mut planner)?;
    let request = ctx.request.clone();
    if let Some(table) = refused_write(&schema, &ctx, &f) {
        return Err(write_refusal(
            &f.name,
            &table,
            access::is_authenticated(&ctx.caller),
        ));
    }
    let shape = result_table(&schema, &f);
    let selects = is_select(&body_sql);
    let output = match (&shape, selects) {
        (Some((table, single)), true) => {
            run_planned(state, &ctx, &f, table, *single, planner, &body_sql, request).await?
        }
        _ => {
            if !ctx.query.conds.is_empty() || !ctx.query.order.is_empty() {
                return Err(RestError::parse(
                    format!(
                        "filters and order apply to functions whose body is a SELECT; {}() is not",
                        f.name
                    ),
                    "remove the filters, or return rows from a SELECT",
                ));
            }
            run_direct(
                state,
                &ctx,
                &f,
                shape,
                planner.sql.params,
                body_sql,
                request,
            )
            .await?
        }
    };
    respond(&ctx, output, method == Method::HEAD)
}

/// The parts of a request the RPC handler takes over from the table handler.
pub struct CallBase {
    pub caller: Arc<crate::keys::Caller>,
    pub request: Arc<RequestContext>,
    pub prefer: Prefer,
    pub accept: Accept,
    pub headers: axum::http::HeaderMap,
}

fn is_grammar_key(k: &str) -> bool {
    matches!(
        k,
        "select"
            | "order"
            | "limit"
            | "offset"
            | "or"
            | "and"
            | "not.or"
            | "not.and"
            | "columns"
            | "on_conflict"
    )
}

/// `eq.5`-style values are filters on the result, not arguments.
fn looks_like_filter(v: &str) -> bool {
    let v = v.strip_prefix("not.").unwrap_or(v);
    let op = v.split('.').next().unwrap_or_default();
    v.contains('.')
        && matches!(
            op,
            "eq" | "neq"
                | "gt"
                | "gte"
                | "lt"
                | "lte"
                | "like"
                | "ilike"
                | "match"
                | "imatch"
                | "in"
                | "is"
                | "isdistinct"
                | "cs"
                | "cd"
                | "ov"
        )
}

fn is_select(body: &str) -> bool {
    script::significant(body)
        .first()
        .is_some_and(|t| t.is_kw("select") || t.is_kw("with") || t.is_kw("values"))
}

/// The shape of the rows a function returns, and whether it returns just one.
fn result_table(schema: &Schema, f: &Function) -> Option<(Table, bool)> {
    let from_table = |name: &str| schema.table(name).cloned();
    match &f.returns {
        FunctionReturns::SetOf { table } => from_table(table).map(|t| (t, false)),
        FunctionReturns::Row { table } => from_table(table).map(|t| (t, true)),
        FunctionReturns::Table { columns } => Some((
            Table {
                name: f.name.clone(),
                is_view: true,
                without_rowid: false,
                columns: columns
                    .iter()
                    .map(|(name, declared)| Column {
                        name: name.clone(),
                        declared: declared.clone(),
                        ty: ColType::from_declared(declared),
                        not_null: false,
                        default: None,
                        pk: 0,
                        generated: false,
                    })
                    .collect(),
                primary_key: Vec::new(),
                foreign_keys: Vec::new(),
                indexes: Vec::new(),
                rls: false,
                policies: Vec::new(),
            },
            false,
        )),
        FunctionReturns::Scalar { .. } | FunctionReturns::Void => None,
    }
}

/// Bind every argument in the planner's parameters and substitute them into the body.
fn bind_args(f: &Function, args: &Args, planner: &mut Planner) -> RestResult<String> {
    let given: Vec<String> = match args {
        Args::Json(m) => m.keys().cloned().collect(),
        Args::Text(pairs) => pairs.iter().map(|(k, _)| k.clone()).collect(),
    };
    let unknown: Vec<&String> = given
        .iter()
        .filter(|g| !f.params.iter().any(|p| &p.name == *g))
        .collect();
    if !unknown.is_empty() {
        let list: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
        return Err(bad_args(
            f,
            format!("{}() has no parameter named {}", f.name, list.join(", ")),
        ));
    }
    let mut placeholders = Vec::new();
    for p in &f.params {
        let ty = ColType::from_declared(&p.declared);
        let bound = match args {
            Args::Json(m) => m.get(&p.name).map(|v| value::from_json(ty, v)).transpose(),
            Args::Text(pairs) => pairs
                .iter()
                .find(|(k, _)| *k == p.name)
                .map(|(_, v)| match ty {
                    ColType::Json => value::json_operand(v)
                        .or_else(|_| Ok(serde_json::to_string(v).unwrap_or_default()))
                        .map(SqlValue::Text),
                    _ => value::from_text(ty, v),
                })
                .transpose(),
        }
        .map_err(|e| bad_args(f, format!("argument {}: {}", p.name, e.message)))?;
        let placeholder = match (bound, &p.default) {
            (Some(v), _) => planner.sql.bind(v),
            (None, Some(default)) => format!("({default})"),
            (None, None) => {
                return Err(bad_args(
                    f,
                    format!("{}() is missing the argument {}", f.name, p.name),
                ))
            }
        };
        placeholders.push((p.name.clone(), placeholder));
    }
    script::substitute_params(&f.body, |n| {
        placeholders
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    })
    .map_err(|unknown| {
        bad_args(
            f,
            format!("the body uses unknown parameters: {}", unknown.join(", ")),
        )
    })
}

/// Rows from a SELECT body, shaped and filtered by the planner.
#[allow(clippy::too_many_arguments)]
async fn run_planned(
    state: &AppState,
    ctx: &Ctx,
    f: &Function,
    table: &Table,
    single: bool,
    mut planner: Planner<'_>,
    body: &str,
    request: Arc<RequestContext>,
) -> RestResult<Output> {
    planner.check_paths()?;
    let (offset, limit) = paging(ctx)?;
    let limit = if single { Some(1) } else { limit };
    let source = format!("({body})");
    let rows_sql = planner.select_rows_from(table, &source, limit, offset)?;
    let count_sql = if ctx.prefer.count {
        Some(planner.count_rows_from(table, &source)?)
    } else {
        None
    };
    let params = planner.sql.params;
    let work = move |conn: &Connection| -> RestResult<(Vec<String>, Option<i64>)> {
        let rows = query_strings(conn, &rows_sql, &params)?;
        let total = match &count_sql {
            Some(sql) => Some(query_number(conn, sql, &params)?),
            None => None,
        };
        Ok((rows, total))
    };
    let (rows, total) = execute(state, ctx, f, request, work).await?;
    if single {
        return Ok(Output::Value(match rows.first() {
            Some(r) => serde_json::from_str(r).unwrap_or(Value::Null),
            None => Value::Null,
        }));
    }
    Ok(Output::Rows {
        rows,
        total,
        offset,
    })
}

/// Any other body: run it and convert what it returns by the declared types.
async fn run_direct(
    state: &AppState,
    ctx: &Ctx,
    f: &Function,
    shape: Option<(Table, bool)>,
    params: Vec<SqlValue>,
    body: String,
    request: Arc<RequestContext>,
) -> RestResult<Output> {
    let returns = f.returns.clone();
    let work = move |conn: &Connection| -> RestResult<Output> {
        let mut stmt = conn.prepare(&body)?;
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let mut rows = stmt.query(params_from_iter(params.iter()))?;
        let mut out: Vec<Vec<SqlValue>> = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(
                (0..names.len())
                    .map(|i| r.get::<_, SqlValue>(i))
                    .collect::<Result<_, _>>()?,
            );
        }
        Ok(match (&returns, &shape) {
            (FunctionReturns::Void, _) => Output::Void,
            (FunctionReturns::Scalar { declared }, _) => {
                let ty = ColType::from_declared(declared);
                Output::Value(
                    out.into_iter()
                        .next()
                        .and_then(|r| r.into_iter().next())
                        .map_or(Value::Null, |v| value::to_json(ty, v)),
                )
            }
            (_, Some((table, single))) => {
                let objects: Vec<Value> = out
                    .into_iter()
                    .map(|r| {
                        let mut obj = Map::new();
                        for (name, v) in names.iter().zip(r) {
                            let ty = table.column(name).map_or(ColType::Any, |c| c.ty);
                            obj.insert(name.clone(), value::to_json(ty, v));
                        }
                        Value::Object(obj)
                    })
                    .collect();
                if *single {
                    Output::Value(objects.into_iter().next().unwrap_or(Value::Null))
                } else {
                    Output::Value(Value::Array(objects))
                }
            }
            (_, None) => Output::Value(Value::Null),
        })
    };
    execute(state, ctx, f, request, work).await
}

/// Run a call's statements: volatile functions on the writer (guarded), others on a reader.
async fn execute<T: Send + 'static>(
    state: &AppState,
    ctx: &Ctx,
    f: &Function,
    request: Arc<RequestContext>,
    work: impl FnOnce(&Connection) -> RestResult<T> + Send + 'static,
) -> RestResult<T> {
    if f.volatile {
        let guard = WriteGuard::new(state, ctx, f);
        state
            .db
            .writer
            .write(write_mode(ctx), Some(request), move |conn| {
                guard.run(conn, work)
            })
            .await
    } else {
        state.db.read(Some(request), work).await
    }
}

fn write_mode(ctx: &Ctx) -> Mode {
    if ctx.prefer.rollback {
        Mode::Rollback
    } else {
        Mode::Commit
    }
}

/// Refuses, after the fact, writes an invoker function made to tables under row-level security.
struct WriteGuard {
    /// Tables with RLS, when the call is subject to RLS.
    protected: Option<HashSet<String>>,
    function: String,
    authenticated: bool,
}

impl WriteGuard {
    fn new(state: &AppState, ctx: &Ctx, f: &Function) -> WriteGuard {
        let protected = (ctx.rls() && !f.definer).then(|| {
            state
                .db
                .schema
                .get()
                .tables
                .values()
                .filter(|t| t.rls)
                .map(|t| t.name.clone())
                .collect()
        });
        WriteGuard {
            protected,
            function: f.name.clone(),
            authenticated: access::is_authenticated(&ctx.caller),
        }
    }

    fn run<T>(
        &self,
        conn: &Connection,
        work: impl FnOnce(&Connection) -> RestResult<T>,
    ) -> RestResult<T> {
        let Some(protected) = &self.protected else {
            return work(conn);
        };
        let written: Arc<Mutex<HashSet<String>>> = Arc::default();
        let sink = written.clone();
        conn.update_hook(Some(
            move |_: rusqlite::hooks::Action, _: &str, table: &str, _: i64| {
                if let Ok(mut w) = sink.lock() {
                    w.insert(table.to_string());
                }
            },
        ));
        let result = work(conn);
        conn.update_hook(None::<fn(rusqlite::hooks::Action, &str, &str, i64)>);
        let result = result?;
        let written = written.lock().map(|w| w.clone()).unwrap_or_default();
        if let Some(table) = written.iter().find(|t| protected.contains(*t)) {
            // Returning an error rolls the job's savepoint back: nothing the function wrote stays.
            return Err(write_refusal(&self.function, table, self.authenticated));
        }
        Ok(result)
    }
}

/// An invoker function called under RLS whose body writes to a table with RLS.
fn refused_write(schema: &Schema, ctx: &Ctx, f: &Function) -> Option<String> {
    if !ctx.rls() || f.definer {
        return None;
    }
    f.writes
        .iter()
        .find(|t| schema.table(t).is_some_and(|t| t.rls))
        .cloned()
}

fn write_refusal(function: &str, table: &str, authenticated: bool) -> RestError {
    let mut e = RestError::permission_denied(table, authenticated);
    e.message = format!(
        "{function}() writes to table \"{table}\", which has row-level security; only SECURITY DEFINER functions may write there"
    );
    e
}

fn respond(ctx: &Ctx, output: Output, head: bool) -> RestResult<Response> {
    let mut res = Response::builder();
    if !ctx.prefer.applied.is_empty() {
        res = res.header("preference-applied", ctx.prefer.applied.join(", "));
    }
    let built = match output {
        Output::Void => res.status(StatusCode::NO_CONTENT).body(Body::empty()),
        Output::Rows {
            rows,
            total,
            offset,
        } => {
            let body = response::render(&rows, ctx.accept)?;
            res.status(StatusCode::OK)
                .header(header::CONTENT_TYPE, body.content_type)
                .header(
                    "content-range",
                    response::content_range(offset, rows.len(), total),
                )
                .body(if head {
                    Body::empty()
                } else {
                    Body::from(body.bytes)
                })
        }
        Output::Value(v) => {
            let (ct, text) = match (ctx.accept.media, &v) {
                (Media::Single, Value::Array(a)) if a.len() != 1 => {
                    return Err(RestError::not_single(a.len()))
                }
                (Media::Single, Value::Array(a)) => (
                    "application/vnd.pgrst.object+json; charset=utf-8",
                    a[0].to_string(),
                ),
                _ => ("application/json; charset=utf-8", v.to_string()),
            };
            res.status(StatusCode::OK)
                .header(header::CONTENT_TYPE, ct)
                .body(if head {
                    Body::empty()
                } else {
                    Body::from(text)
                })
        }
    };
    built.map_err(|e| RestError::new(StatusCode::INTERNAL_SERVER_ERROR, "XX000", e.to_string()))
}
