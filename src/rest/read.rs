//! GET and HEAD on a table or view.

use super::error::{RestError, RestResult};
use super::plan::Planner;
use super::prefer::Media;
use super::{response, Ctx};
use crate::app::AppState;
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};

/// Answer a read: rows as JSON (or CSV, or one object), with `Content-Range`.
pub async fn read(state: &AppState, ctx: Ctx, head: bool) -> RestResult<Response> {
    let schema = state.db.schema.get();
    let table = schema
        .table(&ctx.table)
        .ok_or_else(|| RestError::no_table(&ctx.table))?;
    if ctx.accept.media == Media::OpenApi {
        return Err(RestError::new(
            StatusCode::NOT_ACCEPTABLE,
            "PGRST107",
            "application/openapi+json is only available at /rest/v1/",
        ));
    }
    let (offset, limit) = paging(&ctx)?;

    let mut planner = Planner::new(&schema, &ctx.query).with_rls(ctx.rls());
    planner.check_paths()?;
    let rows_sql = planner.select_rows(table, limit, offset)?;
    let rows_params = planner.sql.params;
    let count = if ctx.prefer.count {
        let mut counter = Planner::new(&schema, &ctx.query).with_rls(ctx.rls());
        let sql = counter.count_rows(table)?;
        Some((sql, counter.sql.params))
    } else {
        None
    };

    let (rows, total) = state
        .db
        .read(
            Some(ctx.request.clone()),
            move |conn| -> RestResult<(Vec<String>, Option<i64>)> {
                let rows = query_strings(conn, &rows_sql, &rows_params)?;
                let total = match count {
                    Some((sql, params)) => {
                        Some(conn.query_row(&sql, params_from_iter(params.iter()), |r| r.get(0))?)
                    }
                    None => None,
                };
                Ok((rows, total))
            },
        )
        .await?;

    if let Some(total) = total {
        if offset > 0 && offset >= total && total > 0 {
            return Err(RestError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "PGRST103",
                "Requested range not satisfiable",
            )
            .details(format!(
                "An offset of {offset} was requested, but there are only {total} rows."
            )));
        }
    }

    let body = response::render(&rows, ctx.accept)?;
    let partial =
        total.is_some_and(|t| (offset > 0 || (rows.len() as i64) < t) && !rows.is_empty());
    let status = if partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut res = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, body.content_type)
        .header(
            "content-range",
            response::content_range(offset, rows.len(), total),
        );
    if !ctx.prefer.applied.is_empty() {
        res = res.header("preference-applied", ctx.prefer.applied.join(", "));
    }
    let body = if head {
        Body::empty()
    } else {
        Body::from(body.bytes)
    };
    res.body(body)
        .map_err(|e| RestError::new(StatusCode::INTERNAL_SERVER_ERROR, "XX000", e.to_string()))
}
/// Bind the leading `params` a statement uses: checks and counts share the parameter list of the
/// statement they accompany but may not use all of it (no LIMIT/OFFSET, say).
pub fn bind_leading(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: &[SqlValue],
) -> RestResult<()> {
    for (i, v) in params.iter().enumerate().take(stmt.parameter_count()) {
        stmt.raw_bind_parameter(i + 1, v)?;
    }
    Ok(())
}

/// The integer a one-row query returns (0 for no row or NULL), binding the leading `params`.
pub fn query_number(conn: &Connection, sql: &str, params: &[SqlValue]) -> RestResult<i64> {
    let mut stmt = conn.prepare_cached(sql)?;
    bind_leading(&mut stmt, params)?;
    let mut rows = stmt.raw_query();
    Ok(match rows.next()? {
        Some(r) => r.get::<_, Option<i64>>(0)?.unwrap_or(0),
        None => 0,
    })
}

/// Run a statement whose single column is text, collecting every row.
pub fn query_strings(conn: &Connection, sql: &str, params: &[SqlValue]) -> RestResult<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Offset and limit of the top level, from `offset`/`limit` and the `Range` header.
pub fn paging(ctx: &Ctx) -> RestResult<(i64, Option<i64>)> {
    let top = Vec::new();
    let mut offset = ctx.query.offset.get(&top).copied().unwrap_or(0);
    let mut limit = ctx.query.limit.get(&top).copied();
    if let Some((start, end)) = range_header(&ctx.headers)? {
        offset += start;
        if let Some(end) = end {
            let span = end - start + 1;
            limit = Some(limit.map_or(span, |l| l.min(span)));
        }
    }
    Ok((offset, limit))
}

/// `Range: 0-9` (items). A malformed header is ignored, as PostgREST does; an inverted one is 416.
fn range_header(headers: &HeaderMap) -> RestResult<Option<(i64, Option<i64>)>> {
    let Some(raw) = headers.get("range").and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let raw = raw.trim().trim_start_matches("items=");
    let Some((a, b)) = raw.split_once('-') else {
        return Ok(None);
    };
    let Ok(start) = a.trim().parse::<i64>() else {
        return Ok(None);
    };
    let end = match b.trim() {
        "" => None,
        s => match s.parse::<i64>() {
            Ok(e) => Some(e),
            Err(_) => return Ok(None),
        },
    };
    if start < 0 || end.is_some_and(|e| e < start) {
        return Err(RestError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "PGRST103",
            "Requested range not satisfiable",
        ));
    }
    Ok(Some((start, end)))
}
