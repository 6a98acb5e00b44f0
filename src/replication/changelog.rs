//! Row changes carried to read replicas inside the replicated database itself.
//!
//! A replica applies pages, not statements, so it cannot see row changes the way the
//! primary's pre-update hook does. While replicating, the primary writes each transaction's
//! changes of published tables into `_outpost_realtime_log`, in that same transaction; a
//! replica reads the rows that appear after each apply and publishes them to its own realtime
//! subscribers, in commit order.

use crate::realtime::capture::{Committed, Op, RowChange};
use base64::Engine;
use rusqlite::types::Value;
use rusqlite::Connection;
use serde_json::{json, Value as Json};

fn value_to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Integer(i) => json!(i),
        Value::Real(f) => json!(f),
        Value::Text(t) => json!(t),
        // Blobs are tagged so they come back as blobs, not text.
        Value::Blob(b) => json!({ "b": base64::engine::general_purpose::STANDARD.encode(b) }),
    }
}

fn json_to_value(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Integer(i64::from(*b)),
        Json::Number(n) => match n.as_i64() {
            Some(i) if !n.is_f64() => Value::Integer(i),
            _ => Value::Real(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => Value::Text(s.clone()),
        Json::Object(o) => o
            .get("b")
            .and_then(Json::as_str)
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .map_or(Value::Null, Value::Blob),
        Json::Array(_) => Value::Null,
    }
}

fn row_to_json(row: &Option<Vec<Value>>) -> Json {
    row.as_ref().map_or(Json::Null, |r| {
        Json::Array(r.iter().map(value_to_json).collect())
    })
}

fn row_from_json(j: Option<&Json>) -> Option<Vec<Value>> {
    j.and_then(Json::as_array)
        .map(|a| a.iter().map(json_to_value).collect())
}

/// Record a transaction's changes (on the writer, inside the transaction).
pub fn record(conn: &Connection, changes: &[RowChange]) -> rusqlite::Result<()> {
    let list: Vec<Json> = changes
        .iter()
        .map(|c| {
            json!({
                "t": c.table,
                "op": c.op.as_str(),
                "old": row_to_json(&c.old),
                "new": row_to_json(&c.new),
            })
        })
        .collect();
    conn.prepare_cached(
        "INSERT INTO _outpost_realtime_log (created_at, commit_timestamp, changes)
         VALUES (?1, ?2, ?3)",
    )?
    .execute(rusqlite::params![
        super::status::now_ms(),
        crate::db::functions::now_iso(),
        Json::Array(list).to_string()
    ])?;
    Ok(())
}

/// The newest log row id (a replica starts publishing after it).
pub fn newest(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT coalesce(max(id), 0) FROM _outpost_realtime_log",
        [],
        |r| r.get(0),
    )
}

/// The transactions logged after row `after`, oldest first, with the last id read.
pub fn since(conn: &Connection, after: i64) -> rusqlite::Result<(Vec<Committed>, i64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, commit_timestamp, changes FROM _outpost_realtime_log WHERE id > ?1 ORDER BY id",
    )?;
    let mut rows = stmt.query([after])?;
    let mut out = Vec::new();
    let mut last = after;
    while let Some(r) = rows.next()? {
        last = r.get(0)?;
        let ts: String = r.get(1)?;
        let text: String = r.get(2)?;
        let Ok(Json::Array(list)) = serde_json::from_str::<Json>(&text) else {
            continue;
        };
        let changes = list
            .iter()
            .filter_map(|c| {
                let op = match c.get("op")?.as_str()? {
                    "INSERT" => Op::Insert,
                    "UPDATE" => Op::Update,
                    "DELETE" => Op::Delete,
                    _ => return None,
                };
                Some(RowChange {
                    table: c.get("t")?.as_str()?.to_string(),
                    op,
                    old: row_from_json(c.get("old")),
                    new: row_from_json(c.get("new")),
                })
            })
            .collect();
        out.push(Committed {
            changes,
            commit_timestamp: ts,
        });
    }
    Ok((out, last))
}

/// Delete log rows older than `max_age_ms` (on the primary).
pub fn prune(conn: &Connection, max_age_ms: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM _outpost_realtime_log WHERE created_at < ?1",
        [super::status::now_ms() - max_age_ms],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_the_round_trip() {
        let values = vec![
            Value::Null,
            Value::Integer(42),
            Value::Real(1.0),
            Value::Real(2.5),
            Value::Text("x".into()),
            Value::Blob(vec![0, 1, 255]),
        ];
        let back: Vec<Value> = values
            .iter()
            .map(|v| json_to_value(&value_to_json(v)))
            .collect();
        assert_eq!(back, values);
    }
}
