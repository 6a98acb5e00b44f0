//! Outpost's embedded schema migrations and the user's migration directory.
//!
//! Each migration runs in its own transaction and is recorded in `_outpost_migrations`, so it runs
//! once; a failing one is rolled back whole and stops the caller with its file name.

use super::{connection, ddl, script, DbError};
use rusqlite::{Connection, OptionalExtension};
use std::path::Path;

/// Outpost's own schema, in order. Never edit an entry once released: add a new one.
const SYSTEM: &[(&str, &str)] = &[
    (
        "0001_outpost.sql",
        include_str!("../../migrations/0001_outpost.sql"),
    ),
    (
        "0002_policies.sql",
        include_str!("../../migrations/0002_policies.sql"),
    ),
    (
        "0003_auth.sql",
        include_str!("../../migrations/0003_auth.sql"),
    ),
    (
        "0004_storage.sql",
        include_str!("../../migrations/0004_storage.sql"),
    ),
    (
        "0005_realtime.sql",
        include_str!("../../migrations/0005_realtime.sql"),
    ),
    (
        "0006_replication.sql",
        include_str!("../../migrations/0006_replication.sql"),
    ),
    (
        "0007_jobs.sql",
        include_str!("../../migrations/0007_jobs.sql"),
    ),
    (
        "0008_webhook_functions.sql",
        include_str!("../../migrations/0008_webhook_functions.sql"),
    ),
    (
        "0009_functions.sql",
        include_str!("../../migrations/0009_functions.sql"),
    ),
    (
        "0010_admin_sessions.sql",
        include_str!("../../migrations/0010_admin_sessions.sql"),
    ),
];

/// Open the database at `path`, apply pending migrations, and return the user files applied.
pub fn migrate_path(path: &Path, user_dir: Option<&Path>) -> Result<Vec<String>, DbError> {
    let conn = connection::open_writer(path)?;
    migrate(&conn, user_dir)
}

/// Apply Outpost's pending migrations, then the user's, on the writer connection.
pub fn migrate(conn: &Connection, user_dir: Option<&Path>) -> Result<Vec<String>, DbError> {
    for (name, sql) in SYSTEM {
        apply(conn, "system", name, sql)?;
    }
    let mut applied = Vec::new();
    if let Some(dir) = user_dir {
        for (name, sql) in read_dir(dir)? {
            if apply(conn, "user", &name, &sql)? {
                tracing::info!(migration = %name, "applied migration");
                applied.push(name);
            }
        }
    }
    Ok(applied)
}

/// The `.sql` files of `dir`, sorted by name.
fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, DbError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DbError::MigrationDir {
        dir: dir.display().to_string(),
        source: std::sync::Arc::new(e),
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(DbError::from)?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("sql") || !path.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let sql = std::fs::read_to_string(&path).map_err(DbError::from)?;
        files.push((name, sql));
    }
    files.sort();
    Ok(files)
}

fn checksum(sql: &str) -> String {
    // FNV-1a: enough to notice an applied file that was edited afterwards.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in sql.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// Apply one migration unless already recorded; returns whether it ran.
fn apply(conn: &Connection, kind: &str, name: &str, sql: &str) -> Result<bool, DbError> {
    let sum = checksum(sql);
    let recorded_table: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE name = '_outpost_migrations'",
        [],
        |r| r.get(0),
    )?;
    if recorded_table {
        let previous: Option<String> = conn
            .query_row(
                "SELECT checksum FROM _outpost_migrations WHERE kind = ?1 AND name = ?2",
                [kind, name],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(previous) = previous {
            if previous != sum {
                tracing::warn!(
                    migration = name,
                    "migration file changed after it was applied; the change is ignored"
                );
            }
            return Ok(false);
        }
    }
    let failed = |e: rusqlite::Error| DbError::MigrationFailed {
        file: name.to_string(),
        message: super::sqlite_message(&e),
    };
    conn.execute_batch("BEGIN IMMEDIATE").map_err(failed)?;
    let result = run_script(conn, sql).and_then(|()| {
        conn.execute(
            "INSERT INTO _outpost_migrations (kind, name, checksum) VALUES (?1, ?2, ?3)",
            [kind, name, &sum],
        )
        .map(|_| ())
        .map_err(|e| super::sqlite_message(&e))
    });
    match result {
        Ok(()) => {
            conn.execute_batch("COMMIT").map_err(failed)?;
            Ok(true)
        }
        Err(message) => {
            // The rollback can only fail if SQLite already rolled back; either way nothing stays.
            let _ = conn.execute_batch("ROLLBACK");
            Err(DbError::MigrationFailed {
                file: name.to_string(),
                message,
            })
        }
    }
}

/// Run a script statement by statement: Outpost's own statements (policies, RLS switches,
/// functions) are stored by [`ddl::apply`], the rest goes to SQLite with `auth.uid()` and
/// friends rewritten.
pub fn run_script(conn: &Connection, sql: &str) -> Result<(), String> {
    for stmt in script::split_statements(sql) {
        let preview: String = stmt.chars().take(60).collect();
        match ddl::parse(&stmt) {
            Ok(Some(d)) => ddl::apply(conn, &d).map_err(|e| format!("{e} (in \"{preview}\")"))?,
            Ok(None) => conn
                .execute_batch(&script::rewrite_auth(&stmt))
                .map_err(|e| super::sqlite_message(&e))?,
            Err(e) => return Err(format!("{e} (in \"{preview}\")")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_migration_leaves_nothing_behind() {
        let dir = std::env::temp_dir().join(format!("outpost-mig-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("m")).unwrap();
        std::fs::write(
            dir.join("m/001_a.sql"),
            "CREATE TABLE a (id INTEGER PRIMARY KEY);",
        )
        .unwrap();
        std::fs::write(
            dir.join("m/002_b.sql"),
            "CREATE TABLE b (id INTEGER); INSERT INTO nope VALUES (1);",
        )
        .unwrap();
        let db = dir.join("data.db");
        let err = migrate_path(&db, Some(&dir.join("m"))).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("002_b.sql") && text.contains("no such table: nope"),
            "{text}"
        );
        let conn = Connection::open(&db).unwrap();
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE '\\_outpost%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(tables, vec!["a"]);
        // Fix the file: it runs once, and a second run applies nothing.
        std::fs::write(dir.join("m/002_b.sql"), "CREATE TABLE b (id INTEGER);").unwrap();
        assert_eq!(
            migrate_path(&db, Some(&dir.join("m"))).unwrap(),
            vec!["002_b.sql"]
        );
        assert!(migrate_path(&db, Some(&dir.join("m"))).unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
