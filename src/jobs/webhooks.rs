//! Database webhooks: which table changes call which URL, and turning a committed change into
//! queued deliveries inside the transaction that made it.

use crate::db::schema::Schema;
use crate::realtime::capture::{Op, RowChange};
use crate::realtime::filter::{parse_filter, Filter};
use hmac::{Hmac, Mac};
use rusqlite::Connection;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::HashSet;
use std::sync::{Arc, RwLock};

/// One webhook definition.
#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    pub name: String,
    pub table: String,
    pub events: Vec<String>,
    pub filter: Option<String>,
    #[serde(skip)]
    pub parsed_filter: Option<Filter>,
    /// Empty when the webhook calls a function.
    pub url: String,
    /// The function called instead of a URL.
    pub function: Option<String>,
    pub headers: serde_json::Map<String, Value>,
    #[serde(skip)]
    pub secret: String,
    pub timeout_ms: u64,
    pub max_attempts: u32,
    pub enabled: bool,
    pub created_at: String,
}

/// The enabled webhooks, shared by the writer (to enqueue) and the admin API (to reload).
#[derive(Clone, Default)]
pub struct Hooks(Arc<RwLock<Arc<Vec<Webhook>>>>);

impl Hooks {
    /// The current definitions.
    pub fn get(&self) -> Arc<Vec<Webhook>> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replace the definitions.
    pub fn replace(&self, hooks: Vec<Webhook>) {
        let hooks = Arc::new(hooks);
        match self.0.write() {
            Ok(mut g) => *g = hooks,
            Err(p) => *p.into_inner() = hooks,
        }
    }

    /// The tables whose changes must be captured.
    pub fn tables(&self) -> HashSet<String> {
        self.get()
            .iter()
            .filter(|h| h.enabled)
            .map(|h| h.table.clone())
            .collect()
    }
}

/// Every webhook stored in the database.
pub fn load(conn: &Connection) -> rusqlite::Result<Vec<Webhook>> {
    let exists = conn
        .prepare("SELECT 1 FROM sqlite_schema WHERE name = '_outpost_webhooks'")?
        .exists([])?;
    if !exists {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT name, table_name, events, filter, url, headers, secret, timeout_ms, max_attempts,
                enabled, created_at, function_name
         FROM _outpost_webhooks ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| {
        let filter: Option<String> = r.get(3)?;
        let headers: String = r.get(5)?;
        let events: String = r.get(2)?;
        Ok(Webhook {
            name: r.get(0)?,
            table: r.get(1)?,
            events: events.split(',').map(str::to_string).collect(),
            parsed_filter: filter.as_deref().and_then(|f| parse_filter(f).ok()),
            filter,
            url: r.get(4)?,
            headers: serde_json::from_str(&headers).unwrap_or_default(),
            secret: r.get(6)?,
            timeout_ms: r.get::<_, i64>(7)?.max(1) as u64,
            max_attempts: r.get::<_, i64>(8)?.max(1) as u32,
            enabled: r.get(9)?,
            created_at: r.get(10)?,
            function: r.get(11)?,
        })
    })?;
    rows.collect()
}

/// The body Supabase's database webhooks send.
pub fn payload(schema: &Schema, change: &RowChange) -> Option<Value> {
    let table = schema.tables.get(&change.table)?;
    let row = |v: &Option<Vec<rusqlite::types::Value>>| {
        v.as_ref().map_or(Value::Null, |v| {
            crate::realtime::changes::row_json(table, v, false)
        })
    };
    Some(json!({
        "type": change.op.as_str(),
        "table": change.table,
        "schema": "public",
        "record": row(&change.new),
        "old_record": row(&change.old),
    }))
}

fn wants(hook: &Webhook, change: &RowChange, body: &Value) -> bool {
    if !hook.enabled || hook.table != change.table {
        return false;
    }
    if !hook.events.iter().any(|e| e == change.op.as_str()) {
        return false;
    }
    match &hook.parsed_filter {
        None => true,
        Some(f) => {
            let row = if change.op == Op::Delete {
                &body["old_record"]
            } else {
                &body["record"]
            };
            f.matches(row)
        }
    }
}

/// Queue a delivery for every webhook that wants one of `changes` (on the writer, inside the
/// transaction that made them: committed together, or rolled back together).
pub fn enqueue(
    conn: &Connection,
    schema: &Schema,
    hooks: &[Webhook],
    changes: &[RowChange],
) -> rusqlite::Result<usize> {
    let mut queued = 0;
    for change in changes {
        if !hooks.iter().any(|h| h.enabled && h.table == change.table) {
            continue;
        }
        let Some(body) = payload(schema, change) else {
            continue;
        };
        for hook in hooks.iter().filter(|h| wants(h, change, &body)) {
            super::queue::enqueue(
                conn,
                "webhook",
                &hook.name,
                &body.to_string(),
                hook.max_attempts,
            )?;
            queued += 1;
        }
    }
    Ok(queued)
}

/// The signature header's value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, the
/// scheme Stripe uses, so receivers can check both origin and freshness.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error case cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={timestamp},v1={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_stripe_shaped_and_keyed() {
        let a = signature("k1", 1_700_000_000, b"{}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, signature("k2", 1_700_000_000, b"{}"));
        assert_ne!(a, signature("k1", 1_700_000_001, b"{}"));
        assert_eq!(a, signature("k1", 1_700_000_000, b"{}"));
    }
}
