//! Functions deployed through the admin API and the secrets functions see, in the database
//! (`_outpost_js_functions`, `_outpost_secrets`): plain SQL on a connection the caller holds.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::collections::HashMap;

/// A deployed function.
#[derive(Debug, Clone, Serialize)]
pub struct Stored {
    pub name: String,
    pub source: String,
    pub verify_jwt: bool,
    pub schedule: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A deployed function without its code: what listings show.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub name: String,
    pub verify_jwt: bool,
    pub schedule: Option<String>,
    pub version: i64,
    pub size: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// The version of `name` if it is deployed: enough to tell whether a cached copy is current.
pub fn version(conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT version FROM _outpost_js_functions WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .optional()
}

/// The deployed function `name`, code included.
pub fn get(conn: &Connection, name: &str) -> rusqlite::Result<Option<Stored>> {
    conn.query_row(
        "SELECT name, source, verify_jwt, schedule, version, created_at, updated_at
           FROM _outpost_js_functions WHERE name = ?1",
        [name],
        |r| {
            Ok(Stored {
                name: r.get(0)?,
                source: r.get(1)?,
                verify_jwt: r.get(2)?,
                schedule: r.get(3)?,
                version: r.get(4)?,
                created_at: r.get(5)?,
                updated_at: r.get(6)?,
            })
        },
    )
    .optional()
}

/// Every deployed function, by name.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Summary>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, verify_jwt, schedule, version, length(CAST(source AS BLOB)), created_at,
                updated_at
           FROM _outpost_js_functions ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Summary {
            name: r.get(0)?,
            verify_jwt: r.get(1)?,
            schedule: r.get(2)?,
            version: r.get(3)?,
            size: r.get(4)?,
            created_at: r.get(5)?,
            updated_at: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// Every deployed function with a schedule: `(name, expression)`.
pub fn schedules(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, schedule FROM _outpost_js_functions WHERE schedule IS NOT NULL ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Create or replace `name`; a replacement gets the next version. Returns the stored row.
pub fn deploy(
    conn: &Connection,
    name: &str,
    source: &str,
    verify_jwt: bool,
    schedule: Option<&str>,
) -> rusqlite::Result<Stored> {
    conn.execute(
        "INSERT INTO _outpost_js_functions (name, source, verify_jwt, schedule) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET
             source = excluded.source, verify_jwt = excluded.verify_jwt,
             schedule = excluded.schedule, version = version + 1,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        params![name, source, verify_jwt, schedule],
    )?;
    get(conn, name)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// Remove `name`; whether it was there.
pub fn delete(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM _outpost_js_functions WHERE name = ?1", [name])? > 0)
}

/// Every secret, name → value.
pub fn secrets(conn: &Connection) -> rusqlite::Result<HashMap<String, String>> {
    let mut stmt = conn.prepare_cached("SELECT name, value FROM _outpost_secrets")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// A secret as listings show it: its value only as a SHA-256 digest.
#[derive(Debug, Clone, Serialize)]
pub struct SecretSummary {
    pub name: String,
    pub digest: String,
    pub updated_at: String,
}

/// Every secret's name, digest and time of change.
pub fn secret_list(conn: &Connection) -> rusqlite::Result<Vec<SecretSummary>> {
    use sha2::Digest;
    let mut stmt =
        conn.prepare_cached("SELECT name, value, updated_at FROM _outpost_secrets ORDER BY name")?;
    let rows = stmt.query_map([], |r| {
        let value: String = r.get(1)?;
        Ok(SecretSummary {
            name: r.get(0)?,
            digest: hex::encode(sha2::Sha256::digest(value.as_bytes())),
            updated_at: r.get(2)?,
        })
    })?;
    rows.collect()
}

/// Set each `(name, value)`; all or none (the caller's transaction).
pub fn set_secrets(conn: &Connection, pairs: &[(String, String)]) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO _outpost_secrets (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    )?;
    for (name, value) in pairs {
        stmt.execute([name, value])?;
    }
    Ok(())
}

/// Remove the secret `name`; whether it was there.
pub fn delete_secret(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM _outpost_secrets WHERE name = ?1", [name])? > 0)
}
