//! The schema cache: tables, views, columns with declared types, keys and relationships.
//!
//! Built from SQLite's pragmas on the writer connection after migrations and whenever
//! `PRAGMA schema_version` changes; requests read an immutable snapshot of it.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every load of the schema gets a new generation, so connections know when to rebuild the
/// temporary views that enforce row-level security.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// How a column's values are converted to and from JSON, from its declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Bool,
    Integer,
    Real,
    Text,
    Json,
    Blob,
    /// No declared type: values pass through as SQLite holds them.
    Any,
}

impl ColType {
    /// Classify a declared type the way Postgres users write them (SQLite affinity rules as fallback).
    pub fn from_declared(decl: &str) -> ColType {
        let d = decl.to_ascii_uppercase();
        if d.is_empty() {
            ColType::Any
        } else if d.contains("BOOL") {
            ColType::Bool
        } else if d.contains("JSON") {
            ColType::Json
        } else if d.contains("INT") || d == "SERIAL" || d == "BIGSERIAL" {
            ColType::Integer
        } else if d.contains("CHAR")
            || d.contains("CLOB")
            || d.contains("TEXT")
            || d.contains("UUID")
            || d.contains("DATE")
            || d.contains("TIME")
        {
            ColType::Text
        } else if d.contains("BLOB") || d.contains("BYTEA") {
            ColType::Blob
        } else if d.contains("REAL")
            || d.contains("FLOA")
            || d.contains("DOUB")
            || d.contains("NUMERIC")
            || d.contains("DECIMAL")
        {
            ColType::Real
        } else {
            ColType::Text
        }
    }

    /// The type name reported in the OpenAPI document.
    pub fn openapi(&self) -> (&'static str, Option<&'static str>) {
        match self {
            ColType::Bool => ("boolean", None),
            ColType::Integer => ("integer", Some("int64")),
            ColType::Real => ("number", Some("double")),
            ColType::Text => ("string", None),
            ColType::Json => ("object", None),
            ColType::Blob => ("string", Some("byte")),
            ColType::Any => ("string", None),
        }
    }
}

/// One column of a table or view.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub declared: String,
    pub ty: ColType,
    pub not_null: bool,
    pub default: Option<String>,
    /// 1-based position in the primary key, 0 when not part of it.
    pub pk: u32,
    /// Generated columns cannot be written.
    pub generated: bool,
}

/// A foreign key from `columns` of the owning table to `ref_columns` of `ref_table`.
#[derive(Debug, Clone)]
pub struct ForeignKey {
    /// Postgres-style constraint name `<table>_<col>_fkey`, usable as an embedding hint.
    pub name: String,
    pub table: String,
    pub columns: Vec<String>,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
}

/// One index (unique ones matter for upserts and the OpenAPI document).
#[derive(Debug, Clone)]
pub struct Index {
    pub name: String,
    pub unique: bool,
    pub columns: Vec<String>,
}

/// The command a policy applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyCommand {
    All,
    Select,
    Insert,
    Update,
    Delete,
}

impl PolicyCommand {
    /// Parse `ALL`, `SELECT`, … (case-insensitive).
    pub fn parse(s: &str) -> Option<PolicyCommand> {
        Some(match s.to_ascii_uppercase().as_str() {
            "ALL" => PolicyCommand::All,
            "SELECT" => PolicyCommand::Select,
            "INSERT" => PolicyCommand::Insert,
            "UPDATE" => PolicyCommand::Update,
            "DELETE" => PolicyCommand::Delete,
            _ => return None,
        })
    }

    /// The keyword as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyCommand::All => "ALL",
            PolicyCommand::Select => "SELECT",
            PolicyCommand::Insert => "INSERT",
            PolicyCommand::Update => "UPDATE",
            PolicyCommand::Delete => "DELETE",
        }
    }
}

/// A row-level security policy, as `CREATE POLICY` defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub command: PolicyCommand,
    /// Role names; `public` means every role.
    pub roles: Vec<String>,
    pub permissive: bool,
    /// SQLite expression over the table's columns (`auth_uid()` etc. already rewritten).
    pub using: Option<String>,
    pub check: Option<String>,
}

/// A parameter of an RPC function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionParam {
    pub name: String,
    /// The declared type (`int`, `text`, `boolean`, `jsonb`, …).
    pub declared: String,
    /// Default as SQL text, when the parameter may be omitted.
    pub default: Option<String>,
}

/// What an RPC function returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FunctionReturns {
    Void,
    /// One value of a scalar type.
    Scalar {
        declared: String,
    },
    /// One row of a table's type (`RETURNS todos`).
    Row {
        table: String,
    },
    /// Rows of a table's type (`RETURNS SETOF todos`).
    SetOf {
        table: String,
    },
    /// Rows with their own columns (`RETURNS TABLE (id int, title text)`).
    Table {
        columns: Vec<(String, String)>,
    },
}

/// A function callable through `/rest/v1/rpc/{name}`: one SQLite statement with `:param`s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    pub name: String,
    pub params: Vec<FunctionParam>,
    pub returns: FunctionReturns,
    pub body: String,
    /// Volatile functions may write, so they run on the writer.
    pub volatile: bool,
    /// `SECURITY DEFINER`: runs without row-level security.
    pub definer: bool,
    /// The tables the body writes to.
    #[serde(default)]
    pub writes: Vec<String>,
}

/// A table or a view.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub is_view: bool,
    pub without_rowid: bool,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    pub foreign_keys: Vec<ForeignKey>,
    pub indexes: Vec<Index>,
    /// Row-level security: on for every table unless explicitly disabled. Views follow the
    /// security of the tables they read.
    pub rls: bool,
    pub policies: Vec<Policy>,
}

impl Table {
    /// The column named `name`, if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether rows can be addressed by `rowid`.
    pub fn has_rowid(&self) -> bool {
        !self.is_view && !self.without_rowid
    }
}

/// A snapshot of every table and view a client may reach.
#[derive(Debug, Default, Clone)]
pub struct Schema {
    pub tables: BTreeMap<String, Table>,
    /// `_outpost_storage_objects` and `_outpost_storage_buckets` with their policies: the storage
    /// service checks them; the data API never sees them.
    pub storage: BTreeMap<String, Table>,
    pub functions: BTreeMap<String, Function>,
    /// Distinct for every load; see [`GENERATION`].
    pub generation: u64,
}

/// Outpost's tables that carry policies written on Supabase's service tables: `storage.objects`,
/// `storage.buckets` and `realtime.messages`.
pub const STORAGE_TABLES: [&str; 3] = [
    "_outpost_storage_objects",
    "_outpost_storage_buckets",
    "_outpost_realtime_messages",
];

/// Tables Outpost keeps for itself; never exposed through `/rest/v1`.
pub fn is_system_table(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("_outpost") || lower.starts_with("sqlite_")
}

impl Schema {
    /// Read the schema of the `main` database.
    pub fn load(conn: &Connection) -> rusqlite::Result<Schema> {
        let mut list = conn.prepare(
            "SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main' AND type IN ('table', 'view', 'virtual')",
        )?;
        let entries: Vec<(String, String, bool)> = list
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut tables = BTreeMap::new();
        let mut storage = BTreeMap::new();
        for (name, kind, without_rowid) in entries {
            if STORAGE_TABLES.contains(&name.as_str()) {
                storage.insert(name.clone(), load_table(conn, &name, false, without_rowid)?);
                continue;
            }
            if is_system_table(&name) {
                continue;
            }
            let table = load_table(conn, &name, kind == "view", without_rowid)?;
            tables.insert(name, table);
        }
        let views: Vec<String> = tables
            .values()
            .filter(|t| t.is_view)
            .map(|t| t.name.clone())
            .collect();
        for view in views {
            inherit_relationships(conn, &mut tables, &view)?;
        }
        load_security(conn, &mut tables)?;
        load_security(conn, &mut storage)?;
        Ok(Schema {
            tables,
            storage,
            functions: load_functions(conn)?,
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The table or view named `name`.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }
}

fn load_table(
    conn: &Connection,
    name: &str,
    is_view: bool,
    without_rowid: bool,
) -> rusqlite::Result<Table> {
    let mut cols = conn.prepare(
        "SELECT name, coalesce(type, ''), \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1, 'main')",
    )?;
    let columns: Vec<Column> = cols
        .query_map([name], |r| {
            let declared: String = r.get(1)?;
            let hidden: i64 = r.get(5)?;
            Ok(Column {
                name: r.get(0)?,
                ty: ColType::from_declared(&declared),
                declared,
                not_null: r.get(2)?,
                default: r.get(3)?,
                pk: r.get(4)?,
                generated: hidden == 2 || hidden == 3,
            })
        })?
        .filter(|c| !matches!(c, Ok(c) if c.name.is_empty()))
        .collect::<Result<_, _>>()?;
    // Hidden columns of virtual tables (hidden == 1) are skipped by xinfo's caller only through names.
    let mut pk: Vec<&Column> = columns.iter().filter(|c| c.pk > 0).collect();
    pk.sort_by_key(|c| c.pk);
    let primary_key: Vec<String> = pk.iter().map(|c| c.name.clone()).collect();

    let mut fk_stmt = conn.prepare(
        "SELECT id, seq, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1, 'main') ORDER BY id, seq",
    )?;
    let rows: Vec<(i64, String, String, Option<String>)> = fk_stmt
        .query_map([name], |r| Ok((r.get(0)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<Result<_, _>>()?;
    let mut foreign_keys: Vec<ForeignKey> = Vec::new();
    let mut last_id = None;
    for (id, ref_table, from, to) in rows {
        if last_id != Some(id) {
            foreign_keys.push(ForeignKey {
                name: String::new(),
                table: name.to_string(),
                columns: Vec::new(),
                ref_table: ref_table.clone(),
                ref_columns: Vec::new(),
            });
            last_id = Some(id);
        }
        if let Some(fk) = foreign_keys.last_mut() {
            fk.columns.push(from);
            fk.ref_columns.push(to.unwrap_or_default());
        }
    }
    // References into Outpost's own tables (`auth.users`) hold, but are no relationship the
    // data API can embed.
    foreign_keys.retain(|fk| !is_system_table(&fk.ref_table));
    for fk in &mut foreign_keys {
        fk.name = format!("{}_{}_fkey", name, fk.columns.join("_"));
        // A foreign key naming no columns refers to the parent's primary key.
        if fk.ref_columns.iter().any(String::is_empty) {
            let parent_pk = parent_primary_key(conn, &fk.ref_table)?;
            if parent_pk.len() == fk.columns.len() {
                fk.ref_columns = parent_pk;
            }
        }
    }

    let mut idx_stmt =
        conn.prepare("SELECT name, \"unique\" FROM pragma_index_list(?1, 'main') ORDER BY seq")?;
    let idx: Vec<(String, bool)> = idx_stmt
        .query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut indexes = Vec::new();
    let mut info = conn.prepare("SELECT name FROM pragma_index_info(?1, 'main') ORDER BY seqno")?;
    for (index_name, unique) in idx {
        let columns: Vec<String> = info
            .query_map([&index_name], |r| r.get::<_, Option<String>>(0))?
            .filter_map(|c| c.transpose())
            .collect::<Result<_, _>>()?;
        indexes.push(Index {
            name: index_name,
            unique,
            columns,
        });
    }

    Ok(Table {
        name: name.to_string(),
        is_view,
        without_rowid,
        columns,
        primary_key,
        foreign_keys,
        indexes,
        rls: !is_view,
        policies: Vec::new(),
    })
}

/// Give a view the relationships of the base-table columns it shows, as PostgREST does: its own
/// foreign keys, and the foreign keys of other tables that point at columns it exposes.
fn inherit_relationships(
    conn: &Connection,
    tables: &mut BTreeMap<String, Table>,
    view: &str,
) -> rusqlite::Result<()> {
    // Which base column each view column shows (expressions show none).
    let origins: Vec<(String, String, String)> = {
        let stmt = match conn.prepare(&format!(
            "SELECT * FROM main.\"{}\"",
            view.replace('"', "\"\"")
        )) {
            Ok(s) => s,
            // A view over something that no longer exists: it simply has no relationships.
            Err(_) => return Ok(()),
        };
        stmt.columns_with_metadata()
            .iter()
            .filter_map(|c| {
                Some((
                    c.name().to_string(),
                    c.table_name()?.to_string(),
                    c.origin_name()?.to_string(),
                ))
            })
            .collect()
    };
    let shown = |table: &str, cols: &[String]| -> Option<Vec<String>> {
        cols.iter()
            .map(|col| {
                origins
                    .iter()
                    .find(|(_, t, c)| t == table && c == col)
                    .map(|(v, _, _)| v.clone())
            })
            .collect()
    };
    let mut own = Vec::new();
    let mut incoming: Vec<(String, ForeignKey)> = Vec::new();
    for table in tables.values().filter(|t| !t.is_view) {
        for fk in &table.foreign_keys {
            // The view shows the referencing columns: the view references the same parent.
            if let Some(columns) = shown(&table.name, &fk.columns) {
                own.push(ForeignKey {
                    table: view.to_string(),
                    columns,
                    ..fk.clone()
                });
            }
            // The view shows the referenced columns: the child references the view too.
            if let Some(ref_columns) = shown(&fk.ref_table, &fk.ref_columns) {
                incoming.push((
                    table.name.clone(),
                    ForeignKey {
                        ref_table: view.to_string(),
                        ref_columns,
                        ..fk.clone()
                    },
                ));
            }
        }
    }
    if let Some(v) = tables.get_mut(view) {
        v.foreign_keys.extend(own);
    }
    for (child, fk) in incoming {
        if let Some(t) = tables.get_mut(&child) {
            t.foreign_keys.push(fk);
        }
    }
    Ok(())
}

fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) > 0 FROM main.sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get(0),
    )
}

/// RLS switches and policies from Outpost's system tables.
fn load_security(conn: &Connection, tables: &mut BTreeMap<String, Table>) -> rusqlite::Result<()> {
    if !has_table(conn, "_outpost_rls")? {
        return Ok(());
    }
    let mut stmt = conn.prepare("SELECT table_name, enabled FROM main._outpost_rls")?;
    let switches: Vec<(String, bool)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (name, enabled) in switches {
        if let Some(t) = tables.get_mut(&name) {
            t.rls = enabled && !t.is_view;
        }
    }
    let mut stmt = conn.prepare(
        "SELECT table_name, name, command, roles, permissive, using_expr, check_expr
         FROM main._outpost_policies ORDER BY table_name, created_at, name",
    )?;
    let rows = stmt.query_map([], |r| {
        let roles: String = r.get(3)?;
        let command: String = r.get(2)?;
        Ok((
            r.get::<_, String>(0)?,
            Policy {
                name: r.get(1)?,
                command: PolicyCommand::parse(&command).unwrap_or(PolicyCommand::All),
                roles: serde_json::from_str(&roles).unwrap_or_else(|_| vec!["public".into()]),
                permissive: r.get(4)?,
                using: r.get(5)?,
                check: r.get(6)?,
            },
        ))
    })?;
    for row in rows {
        let (table, policy) = row?;
        if let Some(t) = tables.get_mut(&table) {
            t.policies.push(policy);
        }
    }
    Ok(())
}

/// RPC functions from Outpost's system table.
fn load_functions(conn: &Connection) -> rusqlite::Result<BTreeMap<String, Function>> {
    let mut out = BTreeMap::new();
    if !has_table(conn, "_outpost_functions")? {
        return Ok(out);
    }
    let mut stmt = conn.prepare("SELECT name, definition FROM main._outpost_functions")?;
    let rows: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (name, definition) in rows {
        match serde_json::from_str::<Function>(&definition) {
            Ok(f) => {
                out.insert(name, f);
            }
            Err(e) => {
                tracing::error!(function = %name, error = %e, "unreadable function definition")
            }
        }
    }
    Ok(out)
}

fn parent_primary_key(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare("SELECT name FROM pragma_table_info(?1, 'main') WHERE pk > 0 ORDER BY pk")?;
    let cols = stmt
        .query_map([table], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_keys_and_relationships() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE a (id INTEGER PRIMARY KEY, ok BOOLEAN, meta JSONB);
             CREATE TABLE b (id TEXT PRIMARY KEY, a_id INTEGER REFERENCES a, n REAL UNIQUE);
             CREATE TABLE _outpost_x (id);",
        )
        .unwrap();
        let s = Schema::load(&c).unwrap();
        assert_eq!(s.tables.len(), 2);
        let b = s.table("b").unwrap();
        assert_eq!(b.primary_key, vec!["id"]);
        assert_eq!(b.foreign_keys[0].ref_columns, vec!["id"]);
        assert_eq!(b.foreign_keys[0].name, "b_a_id_fkey");
        assert!(b.indexes.iter().any(|i| i.unique && i.columns == vec!["n"]));
        let a = s.table("a").unwrap();
        assert_eq!(a.column("ok").unwrap().ty, ColType::Bool);
        assert_eq!(a.column("meta").unwrap().ty, ColType::Json);
    }
}
