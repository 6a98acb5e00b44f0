//! `GET /rest/v1/`: an OpenAPI 3 description of the tables the caller may use.

use super::access;
use super::error::{RestError, RestResult};
use crate::app::AppState;
use crate::db::schema::Table;
use crate::keys::Caller;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// Build the document for `caller`.
pub fn document(state: &AppState, caller: &Caller, headers: &HeaderMap) -> RestResult<Response> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    let acceptable = accept.split(',').any(|m| {
        let m = m.split(';').next().unwrap_or_default().trim();
        matches!(
            m,
            "application/openapi+json" | "application/json" | "*/*" | "application/*" | ""
        )
    });
    if !acceptable {
        return Err(RestError::new(
            StatusCode::NOT_ACCEPTABLE,
            "PGRST107",
            format!("None of these media types are available: {accept}"),
        ));
    }
    let schema = state.db.schema.get();
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for table in schema
        .tables
        .values()
        .filter(|t| access::can_list(caller, t))
    {
        schemas.insert(table.name.clone(), table_schema(table));
        paths.insert(format!("/{}", table.name), table_path(table));
    }
    let doc = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Outpost data API",
            "description": "PostgREST-compatible REST API over the project's SQLite tables",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apikey": {"type": "apiKey", "in": "header", "name": "apikey"},
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
        "security": [{"apikey": []}, {"bearer": []}],
    });
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openapi+json; charset=utf-8",
        )],
        doc.to_string(),
    )
        .into_response())
}

fn table_schema(table: &Table) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for col in &table.columns {
        let (ty, format) = col.ty.openapi();
        let mut p = json!({"type": ty, "format": col.declared.to_ascii_lowercase()});
        if let Some(f) = format {
            p["format"] = json!(f);
        }
        if col.pk > 0 {
            p["description"] = json!("Primary key");
        }
        if let Some(fk) = table
            .foreign_keys
            .iter()
            .find(|fk| fk.columns.contains(&col.name))
        {
            p["description"] = json!(format!("Foreign key to {}", fk.ref_table));
        }
        if let Some(d) = &col.default {
            p["default"] = json!(d);
        }
        if col.not_null && col.default.is_none() && col.pk == 0 {
            required.push(col.name.clone());
        }
        props.insert(col.name.clone(), p);
    }
    json!({"type": "object", "required": required, "properties": props})
}

fn table_path(table: &Table) -> Value {
    let reference = json!({"$ref": format!("#/components/schemas/{}", table.name)});
    let rows = json!({"type": "array", "items": reference});
    let ok = json!({"description": "OK", "content": {"application/json": {"schema": rows}}});
    let mut path = json!({
        "get": {
            "tags": [table.name],
            "summary": format!("Read rows of {}", table.name),
            "responses": {"200": ok, "206": {"description": "Partial Content"}},
        }
    });
    if !table.is_view {
        let body =
            json!({"content": {"application/json": {"schema": {"oneOf": [reference, rows]}}}});
        path["post"] = json!({"tags": [table.name], "requestBody": body, "responses": {"201": {"description": "Created"}}});
        path["patch"] = json!({"tags": [table.name], "requestBody": {"content": {"application/json": {"schema": reference}}}, "responses": {"204": {"description": "No Content"}, "200": ok}});
        path["delete"] = json!({"tags": [table.name], "responses": {"204": {"description": "No Content"}, "200": ok}});
    }
    path
}
