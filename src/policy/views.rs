//! The TEMP views that enforce row-level security on one connection.

use super::predicate::{self, Command};
use crate::db::schema::Schema;
use crate::db::script;
use rusqlite::Connection;

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Make the connection's views match `schema`; a no-op when they already do (one cheap pragma).
///
/// The connection's `temp.user_version` records the schema generation its views were built for.
pub fn ensure(conn: &Connection, schema: &Schema) -> rusqlite::Result<()> {
    // Cached: this runs before every read, so it must cost a step, not a prepare.
    let built: i64 = conn
        .prepare_cached("PRAGMA temp.user_version")?
        .query_row([], |r| r.get(0))?;
    // user_version is 32 bits; generations only need to differ from the last one built.
    let wanted = (schema.generation % (i32::MAX as u64)) as i64 + 1;
    if built == wanted {
        return Ok(());
    }
    let query_only: bool = conn.query_row("PRAGMA query_only", [], |r| r.get(0))?;
    if query_only {
        conn.execute_batch("PRAGMA query_only = OFF")?;
    }
    let result = rebuild(conn, schema, wanted);
    if query_only {
        conn.execute_batch("PRAGMA query_only = ON")?;
    }
    result
}

fn rebuild(conn: &Connection, schema: &Schema, generation: i64) -> rusqlite::Result<()> {
    let existing: Vec<String> = conn
        .prepare("SELECT name FROM temp.sqlite_schema WHERE type = 'view'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut sql = String::from("BEGIN;");
    for name in existing {
        sql.push_str(&format!("DROP VIEW temp.{};", quote(&name)));
    }
    let any_rls = schema.tables.values().any(|t| t.rls);
    for table in schema.tables.values().filter(|t| t.rls) {
        let t = quote(&table.name);
        let visible = predicate::using(table, Command::Select);
        sql.push_str(&format!(
            "CREATE TEMP VIEW {t} AS SELECT * FROM main.{t} AS {t} WHERE _outpost_bypass_rls() OR {visible};"
        ));
    }
    // A view in `main` resolves the tables it reads in `main`, past the views above; a TEMP copy
    // of it resolves them through them, so user views show only what the caller may see.
    if any_rls {
        let mut stmt = conn.prepare("SELECT sql FROM main.sqlite_schema WHERE type = 'view' AND sql IS NOT NULL ORDER BY rowid")?;
        let defs: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for def in defs {
            if let Some(temp) = script::as_temp_view(&def) {
                sql.push_str(&temp);
                sql.push(';');
            }
        }
    }
    sql.push_str(&format!("PRAGMA temp.user_version = {generation}; COMMIT;"));
    // Within a writer transaction BEGIN/COMMIT are not allowed: run the statements bare there.
    if !conn.is_autocommit() {
        let bare = sql.trim_start_matches("BEGIN;").trim_end_matches("COMMIT;");
        return conn.execute_batch(bare);
    }
    let r = conn.execute_batch(&sql);
    if r.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    r
}
