//! Who may do what to buckets and objects: the caller's policies on `storage.objects` and
//! `storage.buckets`, evaluated by SQLite for the caller's request context.
//!
//! Closed by default: with no policy, only `service_role` (which bypasses) gets through.

use crate::db::schema::Schema;
use crate::keys::Caller;
use crate::policy::context::RequestContext;
use crate::policy::predicate::{self, Command};
use rusqlite::{params, Connection};
use std::sync::Arc;

/// The tables policies are written on.
pub const OBJECTS: &str = "_outpost_storage_objects";
pub const BUCKETS: &str = "_outpost_storage_buckets";

/// A verified caller as storage sees it.
#[derive(Clone)]
pub struct Access {
    pub ctx: Arc<RequestContext>,
    /// `auth.uid()`: the owner of what this caller creates.
    pub uid: Option<String>,
}

impl Access {
    /// The access of a verified caller.
    pub fn of(caller: &Caller) -> Access {
        let ctx = RequestContext::for_caller(caller);
        Access {
            uid: ctx.uid.clone(),
            ctx,
        }
    }

    /// Whether policies are skipped (service_role).
    pub fn bypass(&self) -> bool {
        self.ctx.bypass_rls
    }

    /// SQL that is true for the rows `cmd` may see or target in `table` (USING).
    pub fn using(&self, schema: &Schema, table: &str, cmd: Command) -> String {
        if self.bypass() {
            return "1".into();
        }
        schema
            .storage
            .get(table)
            .map_or_else(|| "0".into(), |t| predicate::using(t, cmd))
    }

    /// SQL that is true for the rows `cmd` may leave behind in `table` (WITH CHECK).
    pub fn check(&self, schema: &Schema, table: &str, cmd: Command) -> String {
        if self.bypass() {
            return "1".into();
        }
        schema
            .storage
            .get(table)
            .map_or_else(|| "0".into(), |t| predicate::check(t, cmd))
    }
}

/// An object as a policy sees it.
pub struct ObjectRow<'a> {
    pub id: &'a str,
    pub bucket_id: &'a str,
    pub name: &'a str,
    pub owner: Option<&'a str>,
    pub metadata: &'a str,
    pub user_metadata: Option<&'a str>,
}

/// Whether a proposed object row passes `check` (evaluated without writing it).
pub fn object_passes(conn: &Connection, check: &str, row: &ObjectRow) -> rusqlite::Result<bool> {
    if check == "1" {
        return Ok(true);
    }
    let sql = format!(
        "SELECT ({check}) FROM (SELECT ?1 AS id, ?2 AS bucket_id, ?3 AS name, ?4 AS owner, \
         ?4 AS owner_id, ?5 AS metadata, ?6 AS user_metadata, '' AS version, now() AS created_at, \
         now() AS updated_at, now() AS last_accessed_at) AS {OBJECTS}"
    );
    conn.query_row(
        &sql,
        params![
            row.id,
            row.bucket_id,
            row.name,
            row.owner,
            row.metadata,
            row.user_metadata
        ],
        |r| r.get::<_, Option<bool>>(0),
    )
    .map(|v| v.unwrap_or(false))
}

/// A bucket as a policy sees it.
pub struct BucketRow<'a> {
    pub id: &'a str,
    pub owner: Option<&'a str>,
    pub public: bool,
    pub file_size_limit: Option<i64>,
    pub allowed_mime_types: Option<&'a str>,
}

/// Whether a proposed bucket row passes `check`.
pub fn bucket_passes(conn: &Connection, check: &str, row: &BucketRow) -> rusqlite::Result<bool> {
    if check == "1" {
        return Ok(true);
    }
    let sql = format!(
        "SELECT ({check}) FROM (SELECT ?1 AS id, ?1 AS name, ?2 AS owner, ?2 AS owner_id, \
         ?3 AS public, ?4 AS file_size_limit, ?5 AS allowed_mime_types, now() AS created_at, \
         now() AS updated_at) AS {BUCKETS}"
    );
    conn.query_row(
        &sql,
        params![
            row.id,
            row.owner,
            row.public,
            row.file_size_limit,
            row.allowed_mime_types
        ],
        |r| r.get::<_, Option<bool>>(0),
    )
    .map(|v| v.unwrap_or(false))
}
