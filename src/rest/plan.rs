//! The query planner: a parsed request plus the schema cache become one SQLite statement.
//!
//! Rows are rendered to JSON inside SQLite (`json_object`, `json_group_array`), the way PostgREST
//! has Postgres build its JSON, so a read is one statement and no per-value work happens in Rust.
//! Every identifier is checked against the schema cache and quoted; every value is bound.

use super::error::{RestError, RestResult};
use super::parse::{
    Aggregate, Cond, Embed, Field, Filter, JoinKind, JsonKey, Op, Operand, OrderTerm, Quantifier,
    SelectItem,
};
use super::query::{ApiQuery, Path};
use super::value;
use crate::db::schema::{ColType, Schema, Table};
use axum::http::StatusCode;
use rusqlite::types::Value as SqlValue;

/// Quote an identifier for SQLite.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// SQL text with its bound parameters (numbered `?N`, so fragments can be reused).
#[derive(Debug, Default)]
pub struct Sql {
    pub params: Vec<SqlValue>,
    aliases: usize,
}

impl Sql {
    /// Bind a value and return its placeholder.
    pub fn bind(&mut self, v: SqlValue) -> String {
        self.params.push(v);
        format!("?{}", self.params.len())
    }

    fn alias(&mut self) -> String {
        let a = format!("t{}", self.aliases);
        self.aliases += 1;
        a
    }
}

/// A SQL expression and the kind of value it yields.
#[derive(Debug, Clone)]
struct Expr {
    sql: String,
    ty: ColType,
    /// How the value compares and sorts when that differs from `sql`: a `->` path yields JSON
    /// text, but compares as the JSON value (numbers as numbers), as jsonb does.
    cmp: Option<String>,
}

impl Expr {
    fn comparable(&self) -> &str {
        self.cmp.as_deref().unwrap_or(&self.sql)
    }

    /// Bind a query-string operand for comparison with this expression.
    fn operand(&self, v: &str) -> RestResult<SqlValue> {
        if self.cmp.is_some() {
            return Ok(value::json_scalar(v));
        }
        value::from_text(self.ty, v)
    }
}

/// An expression ready to sit in `json_object`; `json` marks text that is already JSON.
#[derive(Debug, Clone)]
struct Val {
    sql: String,
    json: bool,
}

/// How an embedded table relates to its parent.
struct Relation<'s> {
    target: &'s Table,
    to_many: bool,
    join: Join,
}

enum Join {
    /// `target.0 = parent.1` for each pair.
    Direct(Vec<(String, String)>),
    /// Through a junction table: (junction col, target col) and (junction col, parent col).
    Junction {
        table: String,
        to_target: Vec<(String, String)>,
        to_parent: Vec<(String, String)>,
    },
}

/// Plans statements for one request against one schema snapshot.
pub struct Planner<'a> {
    pub schema: &'a Schema,
    pub query: &'a ApiQuery,
    pub sql: Sql,
    /// Whether row-level security applies: tables are then read through their TEMP views
    /// (bare names); otherwise `main.<table>` is named directly.
    pub rls: bool,
}

impl<'a> Planner<'a> {
    /// A planner for `query` over `schema`.
    pub fn new(schema: &'a Schema, query: &'a ApiQuery) -> Self {
        Planner {
            schema,
            query,
            sql: Sql::default(),
            rls: false,
        }
    }

    /// The same planner, reading through row-level security when `rls` is true.
    pub fn with_rls(mut self, rls: bool) -> Self {
        self.rls = rls;
        self
    }

    /// How a read names `table`: its RLS view, or the table itself.
    fn source(&self, table: &str) -> String {
        if self.rls {
            ident(table)
        } else {
            format!("main.{}", ident(table))
        }
    }

    /// Check that every embed path named by a filter, order or limit exists in `select`.
    pub fn check_paths(&self) -> RestResult<()> {
        let mut known: Vec<Path> = vec![Vec::new()];
        collect_paths(&self.query.select, &mut Vec::new(), &mut known);
        let named = self
            .query
            .conds
            .keys()
            .chain(self.query.order.keys())
            .chain(self.query.limit.keys())
            .chain(self.query.offset.keys());
        for path in named {
            if !known.contains(path) {
                return Err(RestError::new(
                    StatusCode::BAD_REQUEST,
                    "PGRST108",
                    format!(
                        "'{}' is not an embedded resource in this request",
                        path.join(".")
                    ),
                )
                .hint(format!(
                    "Verify that '{}' is included in the 'select' query parameter.",
                    path.join(".")
                )));
            }
        }
        Ok(())
    }

    /// `SELECT <row json> FROM table WHERE … ORDER BY … LIMIT … OFFSET …`.
    pub fn select_rows(
        &mut self,
        table: &Table,
        limit: Option<i64>,
        offset: i64,
    ) -> RestResult<String> {
        let source = self.source(&table.name);
        self.select_rows_from(table, &source, limit, offset)
    }

    /// Like [`Self::select_rows`], reading rows shaped like `table` from `source` (a table name
    /// or a parenthesised subquery, such as an RPC function's body).
    pub fn select_rows_from(
        &mut self,
        table: &Table,
        source: &str,
        limit: Option<i64>,
        offset: i64,
    ) -> RestResult<String> {
        let alias = self.sql.alias();
        let path: Path = Vec::new();
        let obj = self.object(table, &alias, &self.query.select, &path)?;
        let cond = self.level_conditions(table, &alias, &self.query.select, &path)?;
        let group = self.group_by(table, &alias, &self.query.select)?;
        let order = self.order_by(table, &alias, &path)?;
        if !order.is_empty() && limit.is_some() && group.is_empty() {
            // SQLite's sorter carries every result column of every matching row, so the row JSON
            // would be built for all of them and then mostly thrown away. Sort and cut the page
            // first, then render only its rows (the order is re-applied to the page).
            let mut page = format!("SELECT * FROM {source} AS {alias} WHERE {cond}{order}");
            self.push_limit(&mut page, limit, offset);
            return Ok(format!(
                "WITH page AS MATERIALIZED ({page}) SELECT {obj} FROM page AS {alias}{order}"
            ));
        }
        let mut sql = format!("SELECT {obj} FROM {source} AS {alias} WHERE {cond}{group}{order}");
        self.push_limit(&mut sql, limit, offset);
        Ok(sql)
    }

    /// `SELECT count(*)` over the rows a read would return before paging.
    pub fn count_rows(&mut self, table: &Table) -> RestResult<String> {
        let source = self.source(&table.name);
        self.count_rows_from(table, &source)
    }

    /// Like [`Self::count_rows`], over `source`.
    pub fn count_rows_from(&mut self, table: &Table, source: &str) -> RestResult<String> {
        let alias = self.sql.alias();
        let cond = self.level_conditions(table, &alias, &self.query.select, &Vec::new())?;
        Ok(format!(
            "SELECT count(*) FROM {source} AS {alias} WHERE {cond}"
        ))
    }

    /// The row keys (see [`key_expr`]) of the rows the filters select, for writes. Writes read
    /// `main.<table>` under the table's own name, so that `allowed` (policy predicates, which may
    /// name the table) applies to the rows themselves.
    pub fn select_keys(
        &mut self,
        table: &Table,
        limit: Option<i64>,
        offset: i64,
        allowed: Option<&str>,
    ) -> RestResult<String> {
        let (alias, cond) = self.top_conditions(table)?;
        let order = self.order_by(table, &alias, &Vec::new())?;
        let allowed = allowed.map(|a| format!(" AND {a}")).unwrap_or_default();
        let mut sql = format!(
            "SELECT {} FROM main.{} AS {alias} WHERE {cond}{allowed}{order}",
            key_expr(table, &alias),
            ident(&table.name)
        );
        self.push_limit(&mut sql, limit, offset);
        Ok(sql)
    }

    /// The alias of the top table in writes (its own name) and the filter conditions, for
    /// `UPDATE main.t AS t WHERE …`.
    pub fn top_conditions(&mut self, table: &Table) -> RestResult<(String, String)> {
        let alias = ident(&table.name);
        let cond = self.level_conditions(table, &alias, &self.query.select, &Vec::new())?;
        Ok((alias, cond))
    }

    /// Render the rows whose keys are in the JSON array bound at `keys`, in that order; with
    /// `visible`, only the rows passing it (the SELECT policies).
    pub fn select_by_keys(
        &mut self,
        table: &Table,
        keys: &str,
        visible: Option<&str>,
    ) -> RestResult<String> {
        let alias = ident(&table.name);
        let obj = self.object(table, &alias, &self.query.select, &Vec::new())?;
        let visible = visible.map(|v| format!(" WHERE {v}")).unwrap_or_default();
        Ok(format!(
            "SELECT {obj} FROM json_each({keys}) AS k JOIN main.{} AS {alias} ON {} = k.value{visible} ORDER BY k.key",
            ident(&table.name),
            key_expr(table, &alias)
        ))
    }

    fn push_limit(&mut self, sql: &mut String, limit: Option<i64>, offset: i64) {
        if limit.is_some() || offset > 0 {
            let l = self.sql.bind(SqlValue::Integer(limit.unwrap_or(-1)));
            let o = self.sql.bind(SqlValue::Integer(offset));
            sql.push_str(&format!(" LIMIT {l} OFFSET {o}"));
        }
    }

    // ------------------------------------------------------------ rendering

    fn object(
        &mut self,
        table: &Table,
        alias: &str,
        items: &[SelectItem],
        path: &Path,
    ) -> RestResult<String> {
        let pairs = self.pairs(table, alias, items, path)?;
        if pairs.is_empty() {
            return Ok("json_object()".into());
        }
        let mut parts = Vec::with_capacity(pairs.len());
        for (key, val) in pairs {
            let k = self.sql.bind(SqlValue::Text(key));
            parts.push(format!("{k}, {}", val.sql));
        }
        Ok(format!("json_object({})", parts.join(", ")))
    }

    fn pairs(
        &mut self,
        table: &Table,
        alias: &str,
        items: &[SelectItem],
        path: &Path,
    ) -> RestResult<Vec<(String, Val)>> {
        let mut out = Vec::new();
        for item in items {
            match item {
                SelectItem::Star => {
                    for col in &table.columns {
                        let e = column_expr(alias, &col.name, col.ty);
                        out.push((col.name.clone(), output(e)));
                    }
                }
                SelectItem::Field {
                    field,
                    alias: key,
                    cast,
                } if is_count_keyword(table, field) => {
                    let e = aggregate_expr(Aggregate::Count, None, cast.as_deref())?;
                    out.push((key.clone().unwrap_or_else(|| "count".into()), output(e)));
                }
                SelectItem::Aggregate {
                    func,
                    field,
                    alias: key,
                    cast,
                } => {
                    let arg = match field {
                        Some(f) => Some(self.field_expr(table, alias, f)?),
                        None => None,
                    };
                    let e = aggregate_expr(*func, arg, cast.as_deref())?;
                    out.push((key.clone().unwrap_or_else(|| func.name().into()), output(e)));
                }
                SelectItem::Field {
                    field,
                    alias: key,
                    cast,
                } => {
                    let e = self.field_expr(table, alias, field)?;
                    let e = apply_cast(e, cast.as_deref())?;
                    out.push((
                        key.clone().unwrap_or_else(|| field.default_key()),
                        output(e),
                    ));
                }
                SelectItem::Embed(embed) => {
                    let mut child_path = path.clone();
                    child_path.push(embed.name().to_string());
                    out.extend(self.embed(table, alias, embed, &child_path)?);
                }
            }
        }
        Ok(out)
    }

    fn embed(
        &mut self,
        parent: &Table,
        parent_alias: &str,
        embed: &Embed,
        path: &Path,
    ) -> RestResult<Vec<(String, Val)>> {
        let rel = resolve(self.schema, parent, embed)?;
        let alias = self.sql.alias();
        let join = join_sql(&rel.join, &alias, parent_alias);
        let cond = self.level_conditions(rel.target, &alias, &embed.items, path)?;
        let group = self.group_by(rel.target, &alias, &embed.items)?;
        let from = format!(
            "FROM {} AS {alias} WHERE {join} AND {cond}{group}",
            self.source(&rel.target.name)
        );
        let items: &[SelectItem] = if embed.items.is_empty() {
            &[]
        } else {
            &embed.items
        };
        if embed.spread {
            let pairs = self.pairs(rel.target, &alias, items, path)?;
            let order = self.order_by(rel.target, &alias, path)?;
            let mut out = Vec::new();
            for (key, val) in pairs {
                let sql = if rel.to_many {
                    let inner = format!(
                        "SELECT {} AS v {from}{order}{}",
                        val.sql,
                        self.limit_sql(path)
                    );
                    let element = if val.json { "json(v)" } else { "v" };
                    format!(
                        "json(coalesce((SELECT json_group_array({element}) FROM ({inner})), '[]'))"
                    )
                } else {
                    let sub = format!("(SELECT {} {from} LIMIT 1)", val.sql);
                    if val.json {
                        format!("json({sub})")
                    } else {
                        sub
                    }
                };
                out.push((
                    key,
                    Val {
                        sql,
                        json: val.json || rel.to_many,
                    },
                ));
            }
            return Ok(out);
        }
        let obj = self.object(rel.target, &alias, items, path)?;
        let sql = if rel.to_many {
            let order = self.order_by(rel.target, &alias, path)?;
            let limit = self.limit_sql(path);
            format!(
                "json(coalesce((SELECT json_group_array(json(o)) FROM (SELECT {obj} AS o {from}{order}{limit})), '[]'))"
            )
        } else {
            format!("json((SELECT {obj} {from} LIMIT 1))")
        };
        Ok(vec![(embed.name().to_string(), Val { sql, json: true })])
    }

    /// ` GROUP BY …` over the plain fields of a level that has aggregates; empty otherwise.
    fn group_by(&mut self, table: &Table, alias: &str, items: &[SelectItem]) -> RestResult<String> {
        let aggregated = items.iter().any(|i| match i {
            SelectItem::Aggregate { .. } => true,
            SelectItem::Field { field, .. } => is_count_keyword(table, field),
            _ => false,
        });
        if !aggregated {
            return Ok(String::new());
        }
        let mut keys = Vec::new();
        for item in items {
            match item {
                SelectItem::Star => {
                    for col in &table.columns {
                        keys.push(format!("{alias}.{}", ident(&col.name)));
                    }
                }
                SelectItem::Field { field, cast, .. } if !is_count_keyword(table, field) => {
                    let e = apply_cast(self.field_expr(table, alias, field)?, cast.as_deref())?;
                    keys.push(e.sql);
                }
                _ => {}
            }
        }
        Ok(if keys.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {}", keys.join(", "))
        })
    }

    fn limit_sql(&mut self, path: &Path) -> String {
        let limit = self.query.limit.get(path).copied();
        let offset = self.query.offset.get(path).copied().unwrap_or(0);
        let mut s = String::new();
        self.push_limit(&mut s, limit, offset);
        s
    }

    // ------------------------------------------------------------ conditions

    /// The WHERE conditions of one level: its filters, plus EXISTS for each `!inner` child.
    fn level_conditions(
        &mut self,
        table: &Table,
        alias: &str,
        items: &[SelectItem],
        path: &Path,
    ) -> RestResult<String> {
        let mut parts = Vec::new();
        if let Some(conds) = self.query.conds.get(path) {
            for cond in conds {
                parts.push(self.cond(table, alias, cond, items, path)?);
            }
        }
        for item in items {
            if let SelectItem::Embed(embed) = item {
                if embed.join == Some(JoinKind::Inner) {
                    let mut child_path = path.clone();
                    child_path.push(embed.name().to_string());
                    parts.push(self.exists(table, alias, embed, &child_path)?);
                }
            }
        }
        Ok(if parts.is_empty() {
            "1".into()
        } else {
            parts.join(" AND ")
        })
    }

    fn exists(
        &mut self,
        parent: &Table,
        parent_alias: &str,
        embed: &Embed,
        path: &Path,
    ) -> RestResult<String> {
        let rel = resolve(self.schema, parent, embed)?;
        let alias = self.sql.alias();
        let join = join_sql(&rel.join, &alias, parent_alias);
        let cond = self.level_conditions(rel.target, &alias, &embed.items, path)?;
        Ok(format!(
            "EXISTS (SELECT 1 FROM {} AS {alias} WHERE {join} AND {cond})",
            self.source(&rel.target.name)
        ))
    }

    fn cond(
        &mut self,
        table: &Table,
        alias: &str,
        cond: &Cond,
        items: &[SelectItem],
        path: &Path,
    ) -> RestResult<String> {
        Ok(match cond {
            Cond::Filter(f) => self.filter(table, alias, f, items, path)?,
            Cond::And(cs) | Cond::Or(cs) => {
                let joiner = if matches!(cond, Cond::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let mut parts = Vec::new();
                for c in cs {
                    parts.push(self.cond(table, alias, c, items, path)?);
                }
                format!("({})", parts.join(joiner))
            }
            Cond::Not(c) => format!("NOT ({})", self.cond(table, alias, c, items, path)?),
        })
    }

    fn filter(
        &mut self,
        table: &Table,
        alias: &str,
        f: &Filter,
        items: &[SelectItem],
        path: &Path,
    ) -> RestResult<String> {
        // `embed=is.null` / `embed=not.is.null` tests for the presence of a related row.
        if f.field.path.is_empty() && table.column(&f.field.column).is_none() && f.op == Op::Is {
            let embed = items.iter().find_map(|i| match i {
                SelectItem::Embed(e) if e.name() == f.field.column => Some(e),
                _ => None,
            });
            if let (Some(embed), Operand::Scalar(v)) = (embed, &f.operand) {
                if v == "null" {
                    let mut child_path = path.clone();
                    child_path.push(embed.name().to_string());
                    let exists = self.exists(table, alias, embed, &child_path)?;
                    return Ok(if f.negate {
                        exists
                    } else {
                        format!("NOT {exists}")
                    });
                }
            }
        }
        let e = self.field_expr(table, alias, &f.field)?;
        let sql = match (&f.operand, f.quantifier) {
            (Operand::List(values), Some(q)) => {
                let mut parts = Vec::new();
                for v in values {
                    parts.push(self.compare(&e, f.op, v)?);
                }
                match (parts.is_empty(), q) {
                    (true, Quantifier::Any) => "0".to_string(),
                    (true, Quantifier::All) => "1".to_string(),
                    (false, Quantifier::Any) => format!("({})", parts.join(" OR ")),
                    (false, Quantifier::All) => format!("({})", parts.join(" AND ")),
                }
            }
            (Operand::List(values), None) => {
                let mut binds = Vec::new();
                for v in values {
                    binds.push(self.sql.bind(e.operand(v)?));
                }
                format!("{} IN ({})", e.comparable(), binds.join(", "))
            }
            (Operand::Scalar(v), _) => self.compare(&e, f.op, v)?,
        };
        Ok(if f.negate {
            format!("NOT ({sql})")
        } else {
            sql
        })
    }

    fn compare(&mut self, e: &Expr, op: Op, v: &str) -> RestResult<String> {
        let x = e.comparable();
        Ok(match op {
            Op::Eq | Op::Neq | Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
                let sym = match op {
                    Op::Eq => "=",
                    Op::Neq => "<>",
                    Op::Gt => ">",
                    Op::Gte => ">=",
                    Op::Lt => "<",
                    _ => "<=",
                };
                let p = self.sql.bind(e.operand(v)?);
                format!("{x} {sym} {p}")
            }
            Op::Like | Op::Ilike => {
                let p = self.sql.bind(SqlValue::Text(v.replace('*', "%")));
                let f = if op == Op::Like {
                    "pg_like"
                } else {
                    "pg_ilike"
                };
                format!("{f}({p}, {x})")
            }
            Op::Match | Op::Imatch => {
                regex::RegexBuilder::new(v)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|err| {
                        RestError::new(
                            StatusCode::BAD_REQUEST,
                            "2201B",
                            "invalid regular expression",
                        )
                        .details(err.to_string())
                    })?;
                let p = self.sql.bind(SqlValue::Text(v.to_string()));
                let f = if op == Op::Match {
                    "regexp"
                } else {
                    "regexp_i"
                };
                format!("{f}({p}, {x})")
            }
            Op::Is => match v.to_ascii_lowercase().as_str() {
                "null" | "unknown" => format!("{x} IS NULL"),
                "not_null" => format!("{x} IS NOT NULL"),
                "true" => format!("{x} IS TRUE"),
                "false" => format!("{x} IS FALSE"),
                _ => {
                    return Err(RestError::parse(
                        format!("\"failed to parse filter (is.{v})\" (line 1, column 4)"),
                        "is takes null, not_null, true, false or unknown",
                    ))
                }
            },
            Op::IsDistinct => {
                let p = self.sql.bind(e.operand(v)?);
                format!("{x} IS NOT {p}")
            }
            Op::Cs | Op::Cd | Op::Ov => {
                let p = self.sql.bind(SqlValue::Text(value::json_operand(v)?));
                let x = &e.sql;
                match op {
                    Op::Cs => format!("json_contains({x}, {p})"),
                    Op::Cd => format!("json_contains({p}, {x})"),
                    _ => format!("json_overlaps({x}, {p})"),
                }
            }
            Op::In => {
                return Err(RestError::parse(
                    "\"in\" takes a list: in.(a,b)",
                    v.to_string(),
                ));
            }
        })
    }

    // ------------------------------------------------------------ fields and order

    fn field_expr(&mut self, table: &Table, alias: &str, field: &Field) -> RestResult<Expr> {
        let col = table
            .column(&field.column)
            .ok_or_else(|| RestError::no_column(&table.name, &field.column))?;
        let base = column_expr(alias, &col.name, col.ty);
        if field.path.is_empty() {
            return Ok(base);
        }
        let mut json_path = String::from("$");
        for step in &field.path {
            match &step.key {
                JsonKey::Name(n) => json_path.push_str(&format!(".\"{}\"", n.replace('"', "\\\""))),
                JsonKey::Index(i) if *i < 0 => json_path.push_str(&format!("[#{i}]")),
                JsonKey::Index(i) => json_path.push_str(&format!("[{i}]")),
            }
        }
        let p = self.sql.bind(SqlValue::Text(json_path));
        let c = &base.sql;
        // Bad JSON in a row must not fail the whole query: treat it as absent.
        let doc = format!("(CASE WHEN json_valid({c}) THEN {c} END)");
        let text = field.path.last().is_some_and(|s| s.text);
        Ok(if text {
            // Postgres's ->> yields text, booleans included.
            Expr {
                sql: format!(
                    "(CASE json_type({doc}, {p}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN NULL ELSE CAST(({doc} ->> {p}) AS TEXT) END)"
                ),
                ty: ColType::Text,
                cmp: None,
            }
        } else {
            Expr {
                sql: format!("({doc} -> {p})"),
                ty: ColType::Json,
                cmp: Some(format!("({doc} ->> {p})")),
            }
        })
    }

    fn order_by(&mut self, table: &Table, alias: &str, path: &Path) -> RestResult<String> {
        let Some(terms) = self.query.order.get(path) else {
            return Ok(String::new());
        };
        let mut parts = Vec::new();
        for OrderTerm {
            field,
            descending,
            nulls_first,
        } in terms
        {
            let e = self.field_expr(table, alias, field)?;
            let e = e.comparable();
            let dir = if *descending { "DESC" } else { "ASC" };
            // Postgres sorts NULLs as larger than any value: last ascending, first descending.
            let first = nulls_first.unwrap_or(*descending);
            let nulls = if first { "NULLS FIRST" } else { "NULLS LAST" };
            parts.push(format!("{e} {dir} {nulls}"));
        }
        Ok(if parts.is_empty() {
            String::new()
        } else {
            format!(" ORDER BY {}", parts.join(", "))
        })
    }
}

fn collect_paths(items: &[SelectItem], path: &mut Path, out: &mut Vec<Path>) {
    for item in items {
        if let SelectItem::Embed(e) = item {
            path.push(e.name().to_string());
            out.push(path.clone());
            collect_paths(&e.items, path, out);
            path.pop();
        }
    }
}

/// The expression identifying a row: `rowid`, or the primary key as a JSON array.
/// With an empty `alias` the columns are unqualified (as `RETURNING` needs them).
pub fn key_expr(table: &Table, alias: &str) -> String {
    let qualify = |c: &str| {
        if alias.is_empty() {
            c.to_string()
        } else {
            format!("{alias}.{c}")
        }
    };
    if table.has_rowid() || table.primary_key.is_empty() {
        qualify("rowid")
    } else {
        let cols: Vec<String> = table
            .primary_key
            .iter()
            .map(|c| qualify(&ident(c)))
            .collect();
        format!("json_array({})", cols.join(", "))
    }
}

/// PostgREST reads a bare `count` as `count()` unless the table has such a column:
/// `select=*,comments(count)`.
fn is_count_keyword(table: &Table, field: &Field) -> bool {
    field.column == "count" && field.path.is_empty() && table.column("count").is_none()
}

fn aggregate_expr(func: Aggregate, arg: Option<Expr>, cast: Option<&str>) -> RestResult<Expr> {
    let (sql, ty) = match (func, arg) {
        (Aggregate::Count, None) => ("count(*)".to_string(), ColType::Integer),
        (Aggregate::Count, Some(e)) => (format!("count({})", e.comparable()), ColType::Integer),
        (_, None) => {
            return Err(RestError::parse(
                "an aggregate other than count() needs a column",
                func.name(),
            ))
        }
        (Aggregate::Sum, Some(e)) => {
            let ty = if e.ty == ColType::Integer {
                ColType::Integer
            } else {
                ColType::Real
            };
            (format!("sum({})", e.comparable()), ty)
        }
        (Aggregate::Avg, Some(e)) => (format!("avg({})", e.comparable()), ColType::Real),
        (Aggregate::Max | Aggregate::Min, Some(e)) => {
            (format!("{}({})", func.name(), e.comparable()), e.ty)
        }
    };
    apply_cast(Expr { sql, ty, cmp: None }, cast)
}

fn column_expr(alias: &str, column: &str, ty: ColType) -> Expr {
    Expr {
        sql: format!("{alias}.{}", ident(column)),
        ty,
        cmp: None,
    }
}

/// How a value of each kind enters `json_object`.
fn output(e: Expr) -> Val {
    let x = &e.sql;
    match e.ty {
        ColType::Bool => Val {
            sql: format!(
                "json(CASE WHEN {x} IS NULL THEN NULL WHEN {x} THEN 'true' ELSE 'false' END)"
            ),
            json: true,
        },
        ColType::Json => Val {
            sql: format!("json(CASE WHEN json_valid({x}) THEN {x} ELSE json_quote({x}) END)"),
            json: true,
        },
        ColType::Integer => Val {
            sql: x.clone(),
            json: false,
        },
        // SQLite renders reals with 15 digits; pg_float8 gives the shortest exact form.
        ColType::Real => Val {
            sql: format!("json(pg_float8({x}))"),
            json: true,
        },
        ColType::Blob | ColType::Text | ColType::Any => Val {
            sql: format!(
                "(CASE WHEN typeof({x}) = 'blob' THEN '\\x' || lower(hex({x})) ELSE {x} END)"
            ),
            json: false,
        },
    }
}

fn apply_cast(e: Expr, cast: Option<&str>) -> RestResult<Expr> {
    let Some(cast) = cast else { return Ok(e) };
    let x = &e.sql;
    let t = cast.to_ascii_lowercase();
    Ok(match t.as_str() {
        "text" | "varchar" | "char" | "character" | "uuid" | "date" | "time" | "timestamp"
        | "timestamptz" | "citext" | "name" => {
            let sql = if e.ty == ColType::Bool {
                format!("(CASE WHEN {x} IS NULL THEN NULL WHEN {x} THEN 'true' ELSE 'false' END)")
            } else {
                format!("CAST({x} AS TEXT)")
            };
            Expr {
                sql,
                ty: ColType::Text,
                cmp: None,
            }
        }
        "int" | "integer" | "bigint" | "smallint" | "int2" | "int4" | "int8" => Expr {
            sql: format!("CAST({x} AS INTEGER)"),
            ty: ColType::Integer,
            cmp: None,
        },
        "float" | "real" | "double" | "float4" | "float8" | "numeric" | "decimal" => Expr {
            sql: format!("CAST({x} AS REAL)"),
            ty: ColType::Real,
            cmp: None,
        },
        "bool" | "boolean" => Expr {
            sql: e.sql,
            ty: ColType::Bool,
            cmp: None,
        },
        "json" | "jsonb" => Expr {
            sql: e.sql,
            ty: ColType::Json,
            cmp: e.cmp,
        },
        _ => {
            return Err(RestError::new(
                StatusCode::BAD_REQUEST,
                "42704",
                format!("type \"{cast}\" does not exist"),
            ))
        }
    })
}

fn join_sql(join: &Join, target: &str, parent: &str) -> String {
    match join {
        Join::Direct(pairs) => pairs
            .iter()
            .map(|(t, p)| format!("{target}.{} = {parent}.{}", ident(t), ident(p)))
            .collect::<Vec<_>>()
            .join(" AND "),
        Join::Junction {
            table,
            to_target,
            to_parent,
        } => {
            let target_cols: Vec<String> = to_target
                .iter()
                .map(|(_, t)| format!("{target}.{}", ident(t)))
                .collect();
            let junction_cols: Vec<String> = to_target
                .iter()
                .map(|(j, _)| format!("j.{}", ident(j)))
                .collect();
            let parent_match: Vec<String> = to_parent
                .iter()
                .map(|(j, p)| format!("j.{} = {parent}.{}", ident(j), ident(p)))
                .collect();
            format!(
                "({}) IN (SELECT {} FROM {} AS j WHERE {})",
                target_cols.join(", "),
                junction_cols.join(", "),
                ident(table),
                parent_match.join(" AND ")
            )
        }
    }
}

/// Find the one relationship an embed names, as PostgREST does: by table name, by foreign-key
/// column or constraint name, disambiguated by the hint.
fn resolve<'s>(schema: &'s Schema, parent: &Table, embed: &Embed) -> RestResult<Relation<'s>> {
    let name = embed.relation.as_str();
    let hint = embed.hint.as_deref();
    let mut found: Vec<(Relation<'s>, String)> = Vec::new();

    let fk_matches = |fk: &crate::db::schema::ForeignKey, hint: Option<&str>| match hint {
        None => true,
        Some(h) => fk.name == h || (fk.columns.len() == 1 && fk.columns[0] == h),
    };

    if let Some(target) = schema.table(name) {
        // Many-to-one: the parent holds a foreign key to the target.
        for fk in parent
            .foreign_keys
            .iter()
            .filter(|fk| fk.ref_table == target.name)
        {
            if fk_matches(fk, hint) {
                let pairs = fk
                    .ref_columns
                    .iter()
                    .cloned()
                    .zip(fk.columns.iter().cloned())
                    .collect();
                found.push((
                    Relation {
                        target,
                        to_many: false,
                        join: Join::Direct(pairs),
                    },
                    fk.name.clone(),
                ));
            }
        }
        // One-to-many: the target holds a foreign key to the parent.
        for fk in target
            .foreign_keys
            .iter()
            .filter(|fk| fk.ref_table == parent.name)
        {
            if fk_matches(fk, hint) {
                let pairs = fk
                    .columns
                    .iter()
                    .cloned()
                    .zip(fk.ref_columns.iter().cloned())
                    .collect();
                found.push((
                    Relation {
                        target,
                        to_many: true,
                        join: Join::Direct(pairs),
                    },
                    fk.name.clone(),
                ));
            }
        }
        // Many-to-many through a junction with keys to both.
        if found.is_empty() {
            for junction in schema.tables.values() {
                if hint.is_some_and(|h| h != junction.name) {
                    continue;
                }
                let to_parent = junction
                    .foreign_keys
                    .iter()
                    .find(|fk| fk.ref_table == parent.name);
                let to_target = junction.foreign_keys.iter().find(|fk| {
                    fk.ref_table == target.name
                        && Some(fk.name.as_str()) != to_parent.map(|p| p.name.as_str())
                });
                if let (Some(p), Some(t)) = (to_parent, to_target) {
                    if junction.name == parent.name || junction.name == target.name {
                        continue;
                    }
                    found.push((
                        Relation {
                            target,
                            to_many: true,
                            join: Join::Junction {
                                table: junction.name.clone(),
                                to_target: t
                                    .columns
                                    .iter()
                                    .cloned()
                                    .zip(t.ref_columns.iter().cloned())
                                    .collect(),
                                to_parent: p
                                    .columns
                                    .iter()
                                    .cloned()
                                    .zip(p.ref_columns.iter().cloned())
                                    .collect(),
                            },
                        },
                        junction.name.clone(),
                    ));
                }
            }
        }
    } else {
        // Embedding by the foreign-key column or constraint name: `author_id(name)`.
        for fk in &parent.foreign_keys {
            let by_column = fk.columns.len() == 1 && fk.columns[0] == name;
            if (by_column || fk.name == name) && hint.is_none() {
                if let Some(target) = schema.table(&fk.ref_table) {
                    let pairs = fk
                        .ref_columns
                        .iter()
                        .cloned()
                        .zip(fk.columns.iter().cloned())
                        .collect();
                    found.push((
                        Relation {
                            target,
                            to_many: false,
                            join: Join::Direct(pairs),
                        },
                        fk.name.clone(),
                    ));
                }
            }
        }
    }

    match found.len() {
        0 => Err(RestError::new(
            StatusCode::BAD_REQUEST,
            "PGRST200",
            format!(
                "Could not find a relationship between '{}' and '{}' in the schema cache",
                parent.name, name
            ),
        )
        .hint("Verify the foreign keys between the tables, or the hint after '!'.")),
        1 => Ok(found.remove(0).0),
        _ => {
            let names: Vec<String> = found.iter().map(|(_, n)| n.clone()).collect();
            Err(RestError::new(
                StatusCode::MULTIPLE_CHOICES,
                "PGRST201",
                format!(
                    "Could not embed because more than one relationship was found for '{}' and '{}'",
                    parent.name, name
                ),
            )
            .details(names.join(", "))
            .hint(format!(
                "Try changing '{name}' to one of the following: {}. Find the desired relationship in the 'details' key.",
                names.iter().map(|n| format!("'{name}!{n}'")).collect::<Vec<_>>().join(", ")
            )))
        }
    }
}
