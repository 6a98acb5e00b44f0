//! From committed row changes to `postgres_changes` messages: row JSON, column types, filters,
//! and row-level security evaluated once per distinct caller per change.

use super::capture::{Committed, Identity, Op, RowChange};
use super::hub::{Hub, Member};
use super::protocol::Message;
use crate::db::schema::{ColType, Column, Schema, Table};
use crate::db::Db;
use crate::policy::predicate::{self, Command};
use rusqlite::types::Value as SqlValue;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Postgres's type name for a column, as realtime clients convert values by it.
pub fn pg_type(c: &Column) -> &'static str {
    let d = c.declared.to_ascii_lowercase();
    if d.contains("timestamptz") || d.contains("with time zone") {
        return "timestamptz";
    }
    if d.contains("timestamp") {
        return "timestamp";
    }
    if d.contains("uuid") {
        return "uuid";
    }
    if d == "date" {
        return "date";
    }
    if d.contains("numeric") || d.contains("decimal") {
        return "numeric";
    }
    match c.ty {
        ColType::Bool => "bool",
        ColType::Integer if d.contains("small") || d == "int2" => "int2",
        ColType::Integer if d == "int4" || d == "integer" || d == "int" => "int4",
        ColType::Integer => "int8",
        ColType::Real if d.contains("real") || d == "float4" => "float4",
        ColType::Real => "float8",
        ColType::Json if d.contains("jsonb") => "jsonb",
        ColType::Json => "json",
        ColType::Blob => "bytea",
        ColType::Text | ColType::Any => "text",
    }
}

/// A row as JSON, typed by its columns (only the primary key with `only_pk`).
pub fn row_json(table: &Table, values: &[SqlValue], only_pk: bool) -> Value {
    let mut row = Map::new();
    for (c, v) in table.columns.iter().zip(values) {
        if only_pk && c.pk == 0 {
            continue;
        }
        row.insert(c.name.clone(), crate::rest::value::to_json(c.ty, v.clone()));
    }
    Value::Object(row)
}

/// Run the dispatcher: every committed transaction's changes, in commit order.
pub async fn run(db: Db, hub: Arc<Hub>, mut rx: mpsc::UnboundedReceiver<Committed>) {
    while let Some(committed) = rx.recv().await {
        let schema = db.schema.get();
        for change in &committed.changes {
            deliver(&db, &hub, &schema, change, &committed.commit_timestamp).await;
        }
    }
}

/// The schema and table name clients use for one of Outpost's tables.
fn public_name(table: &str) -> (&'static str, &str) {
    match table.strip_prefix("_outpost_storage_") {
        Some(rest) => ("storage", rest),
        None => ("public", table),
    }
}

async fn deliver(db: &Db, hub: &Hub, schema: &Schema, change: &RowChange, at: &str) {
    // App tables, and storage's tables (whose policies live apart) when published.
    let Some(table) = schema
        .tables
        .get(&change.table)
        .or_else(|| schema.storage.get(&change.table))
    else {
        return;
    };
    let (schema_name, table_name) = public_name(&change.table);
    let listeners = hub.change_listeners();
    if listeners.is_empty() {
        return;
    }
    let full_identity = db.capture.identity(&change.table) == Some(Identity::Full);
    let record = change.new.as_ref().map(|v| row_json(table, v, false));
    // The row filters are matched against: the new row, or for a delete the old one.
    let full_old = change.old.as_ref().map(|v| row_json(table, v, false));
    let filter_row = record.clone().or(full_old.clone()).unwrap_or(Value::Null);
    let kind = change.op.as_str();
    let mut wanted: Vec<(String, Arc<Member>, Vec<u64>)> = Vec::new();
    for (topic, member) in listeners {
        let ids: Vec<u64> = member
            .bindings
            .iter()
            .filter(|b| b.wants(kind, schema_name, table_name, &filter_row))
            .map(|b| b.id)
            .collect();
        if !ids.is_empty() {
            wanted.push((topic, member, ids));
        }
    }
    if wanted.is_empty() {
        return;
    }
    // Row-level security: one check per distinct caller (role and claims), not per socket.
    // Deletes carry only the primary key and are not checked, as Supabase does.
    let mut allowed: HashMap<String, bool> = HashMap::new();
    if change.op != Op::Delete && table.rls {
        let using = predicate::using(table, Command::Select);
        for (_, member, _) in &wanted {
            let key = format!("{}|{}", member.ctx.role, member.ctx.claims);
            if allowed.contains_key(&key) {
                continue;
            }
            let ok = if member.ctx.bypass_rls {
                true
            } else {
                can_see(
                    db,
                    member,
                    table,
                    &using,
                    change.new.clone().unwrap_or_default(),
                )
                .await
            };
            allowed.insert(key, ok);
        }
    }
    let columns: Vec<Value> = table
        .columns
        .iter()
        .map(|c| json!({"name": c.name, "type": pg_type(c)}))
        .collect();
    for (topic, member, ids) in wanted {
        if change.op != Op::Delete && table.rls {
            let key = format!("{}|{}", member.ctx.role, member.ctx.claims);
            if !allowed.get(&key).copied().unwrap_or(false) {
                continue;
            }
        }
        // Old rows go whole only with REPLICA IDENTITY FULL and when policies cannot hide them.
        let whole_old = full_identity && (!table.rls || member.ctx.bypass_rls);
        let old_record = change
            .old
            .as_ref()
            .map(|v| row_json(table, v, !whole_old))
            .unwrap_or_else(|| json!({}));
        let m = Message {
            join_ref: member.join_ref.clone(),
            msg_ref: None,
            topic,
            event: "postgres_changes".into(),
            payload: json!({
                "ids": ids,
                "data": {
                    "schema": schema_name,
                    "table": table_name,
                    "commit_timestamp": at,
                    "type": kind,
                    "columns": columns,
                    "record": record.clone().unwrap_or_else(|| json!({})),
                    "old_record": old_record,
                    "errors": null,
                },
            }),
        };
        member.out.push(&m);
    }
}

/// Whether the member's caller could SELECT the row `values` of `table`.
async fn can_see(
    db: &Db,
    member: &Member,
    table: &Table,
    using: &str,
    values: Vec<SqlValue>,
) -> bool {
    let cols: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("?{} AS \"{}\"", i + 1, c.name.replace('"', "\"\"")))
        .collect();
    let name = table.name.replace('"', "\"\"");
    let sql = format!(
        "SELECT ({using}) FROM (SELECT {}) AS \"{name}\"",
        cols.join(", ")
    );
    let result = db
        .read(Some(member.ctx.clone()), move |conn| {
            conn.query_row(&sql, rusqlite::params_from_iter(values), |r| {
                r.get::<_, Option<bool>>(0)
            })
            .map_err(crate::db::DbError::from)
        })
        .await;
    match result {
        Ok(v) => v.unwrap_or(false),
        Err(e) => {
            tracing::warn!(error = %e, table = %table.name, "realtime policy check failed; not delivered");
            false
        }
    }
}
