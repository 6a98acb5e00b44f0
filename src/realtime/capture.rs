//! Row changes captured inside SQLite, on the writer connection, by the pre-update hook.
//!
//! Every write path goes through the one writer connection, so the hook sees REST, RPC, auth,
//! storage and SQL alike. Changes collect per transaction; the writer forgets those of a job it
//! rolls back (its SAVEPOINT) and hands the rest over only after COMMIT succeeded, so a
//! subscriber never hears of a write that did not happen, and hears of them in commit order.

use rusqlite::hooks::PreUpdateCase;
use rusqlite::types::Value;
use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    /// The name realtime clients use.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "INSERT",
            Op::Update => "UPDATE",
            Op::Delete => "DELETE",
        }
    }
}

/// One captured row change; values in the table's column order.
#[derive(Debug, Clone)]
pub struct RowChange {
    pub table: String,
    pub op: Op,
    pub old: Option<Vec<Value>>,
    pub new: Option<Vec<Value>>,
}

/// A committed transaction's changes.
#[derive(Debug, Clone)]
pub struct Committed {
    pub changes: Vec<RowChange>,
    /// ISO 8601, as Postgres renders `commit_timestamp`.
    pub commit_timestamp: String,
}

/// How a published table's old rows are sent (Postgres `REPLICA IDENTITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// Old rows carry the primary key only.
    Default,
    /// Old rows are sent whole.
    Full,
}

/// The tables whose changes are published, and the current transaction's changes.
#[derive(Clone, Default)]
pub struct Capture {
    pending: Arc<Mutex<Vec<RowChange>>>,
    published: Arc<RwLock<HashMap<String, Identity>>>,
    /// Tables with database webhooks: captured too, but not published.
    hooked: Arc<RwLock<std::collections::HashSet<String>>>,
}

fn values(count: i32, get: impl Fn(i32) -> Option<Value>) -> Vec<Value> {
    (0..count).map(|i| get(i).unwrap_or(Value::Null)).collect()
}

impl Capture {
    /// Watch `conn` (the writer) for changes to published tables.
    pub fn install(&self, conn: &Connection) {
        let pending = self.pending.clone();
        let published = self.published.clone();
        let hooked = self.hooked.clone();
        conn.preupdate_hook(Some(
            move |_action, db: &str, table: &str, case: &PreUpdateCase| {
                if db != "main" {
                    return;
                }
                let wanted = published
                    .read()
                    .map(|p| p.contains_key(table))
                    .unwrap_or(false)
                    || hooked.read().map(|h| h.contains(table)).unwrap_or(false);
                if !wanted {
                    return;
                }
                let change = match case {
                    PreUpdateCase::Insert(new) => RowChange {
                        table: table.to_string(),
                        op: Op::Insert,
                        old: None,
                        new: Some(values(new.get_column_count(), |i| {
                            new.get_new_column_value(i).ok().map(Value::from)
                        })),
                    },
                    PreUpdateCase::Delete(old) => RowChange {
                        table: table.to_string(),
                        op: Op::Delete,
                        old: Some(values(old.get_column_count(), |i| {
                            old.get_old_column_value(i).ok().map(Value::from)
                        })),
                        new: None,
                    },
                    PreUpdateCase::Update {
                        old_value_accessor: old,
                        new_value_accessor: new,
                    } => RowChange {
                        table: table.to_string(),
                        op: Op::Update,
                        old: Some(values(old.get_column_count(), |i| {
                            old.get_old_column_value(i).ok().map(Value::from)
                        })),
                        new: Some(values(new.get_column_count(), |i| {
                            new.get_new_column_value(i).ok().map(Value::from)
                        })),
                    },
                    PreUpdateCase::Unknown => return,
                };
                if let Ok(mut p) = pending.lock() {
                    p.push(change);
                }
            },
        ));
    }

    /// Where the current job's changes start.
    pub fn mark(&self) -> usize {
        self.pending.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// Forget the changes after `mark` (the job was rolled back).
    pub fn rollback_to(&self, mark: usize) {
        if let Ok(mut p) = self.pending.lock() {
            p.truncate(mark);
        }
    }

    /// Take the transaction's changes (after COMMIT) or drop them (after ROLLBACK).
    pub fn take(&self) -> Vec<RowChange> {
        self.pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }

    /// Replace the set of published tables.
    pub fn set_published(&self, tables: HashMap<String, Identity>) {
        if let Ok(mut p) = self.published.write() {
            *p = tables;
        }
    }

    /// Replace the set of tables with webhooks.
    pub fn set_hooked(&self, tables: std::collections::HashSet<String>) {
        if let Ok(mut h) = self.hooked.write() {
            *h = tables;
        }
    }

    /// How `table`'s old rows are sent, if it is published.
    pub fn identity(&self, table: &str) -> Option<Identity> {
        self.published
            .read()
            .ok()
            .and_then(|p| p.get(table).copied())
    }

    /// Read the published tables from `_outpost_realtime`.
    pub fn load(&self, conn: &Connection) -> rusqlite::Result<()> {
        let exists: bool = conn
            .prepare("SELECT 1 FROM sqlite_schema WHERE name = '_outpost_realtime'")?
            .exists([])?;
        if !exists {
            return Ok(());
        }
        let mut stmt = conn.prepare(
            "SELECT r.table_name, coalesce(i.full_identity, r.full_identity) FROM _outpost_realtime r \
             LEFT JOIN _outpost_realtime_identity i ON i.table_name = r.table_name",
        )?;
        let tables = stmt
            .query_map([], |r| {
                let full: bool = r.get(1)?;
                Ok((
                    r.get::<_, String>(0)?,
                    if full {
                        Identity::Full
                    } else {
                        Identity::Default
                    },
                ))
            })?
            .collect::<rusqlite::Result<HashMap<_, _>>>()?;
        self.set_published(tables);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_published_tables_and_forgets_rolled_back_jobs() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE other (x);",
        )
        .unwrap();
        let cap = Capture::default();
        cap.set_published([("t".to_string(), Identity::Default)].into_iter().collect());
        cap.install(&conn);
        conn.execute_batch("BEGIN; INSERT INTO t (v) VALUES ('a'); INSERT INTO other VALUES (1);")
            .unwrap();
        let mark = cap.mark();
        conn.execute_batch("SAVEPOINT job; UPDATE t SET v = 'b'; ROLLBACK TO job; RELEASE job;")
            .unwrap();
        cap.rollback_to(mark);
        conn.execute_batch("DELETE FROM t; COMMIT;").unwrap();
        let changes = cap.take();
        let ops: Vec<Op> = changes.iter().map(|c| c.op).collect();
        assert_eq!(ops, vec![Op::Insert, Op::Delete]);
        assert_eq!(changes[0].new.as_ref().unwrap()[1], Value::Text("a".into()));
        assert_eq!(changes[1].old.as_ref().unwrap()[0], Value::Integer(1));
        assert!(cap.take().is_empty());
    }
}
