//! Statements Outpost takes over from SQLite: row-level security switches, policies and RPC
//! functions, written the way Supabase users write them for Postgres. Each is parsed here and
//! stored in Outpost's system tables, in the same transaction as the migration that holds it.

use super::schema::{Function, FunctionParam, FunctionReturns, PolicyCommand};
use super::script::{self, Token};
use rusqlite::{params, Connection, OptionalExtension};

/// An intercepted statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ddl {
    SetRls {
        table: String,
        enabled: bool,
    },
    CreatePolicy(PolicyDef),
    AlterPolicy {
        table: String,
        name: String,
        change: PolicyChange,
    },
    DropPolicy {
        table: String,
        name: String,
        if_exists: bool,
    },
    CreateFunction {
        function: Function,
        replace: bool,
    },
    DropFunction {
        name: String,
        if_exists: bool,
    },
    /// `ALTER PUBLICATION supabase_realtime ADD|DROP|SET TABLE a, b`.
    Publication {
        change: PublicationChange,
        tables: Vec<String>,
    },
    /// `ALTER TABLE t REPLICA IDENTITY FULL|DEFAULT`.
    ReplicaIdentity {
        table: String,
        full: bool,
    },
}

/// How a publication's table list changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicationChange {
    Add,
    Drop,
    Set,
}

/// `CREATE POLICY` in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDef {
    pub table: String,
    pub name: String,
    pub command: PolicyCommand,
    pub roles: Vec<String>,
    pub permissive: bool,
    pub using: Option<String>,
    pub check: Option<String>,
}

/// What `ALTER POLICY` changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyChange {
    pub rename: Option<String>,
    pub roles: Option<Vec<String>>,
    pub using: Option<String>,
    pub check: Option<String>,
}

/// A statement Outpost recognised but could not read.
pub type DdlError = String;

/// Cursor over a statement's tokens that skips spaces and comments between keywords.
struct Cur {
    toks: Vec<Token>,
    pos: usize,
}

impl Cur {
    fn new(sql: &str) -> Cur {
        Cur {
            toks: script::tokenize(sql),
            pos: 0,
        }
    }

    fn skip_trivia(&mut self) {
        while matches!(
            self.toks.get(self.pos),
            Some(Token::Space(_) | Token::Comment(_))
        ) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<&Token> {
        self.skip_trivia();
        self.toks.get(self.pos)
    }

    fn kw(&mut self, kw: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_kw(kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn kws(&mut self, kws: &[&str]) -> bool {
        let save = self.pos;
        for k in kws {
            if !self.kw(k) {
                self.pos = save;
                return false;
            }
        }
        true
    }

    fn punct(&mut self, c: char) -> bool {
        if self.peek() == Some(&Token::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), DdlError> {
        if self.kw(kw) {
            Ok(())
        } else {
            Err(format!(
                "expected {} near \"{}\"",
                kw.to_uppercase(),
                self.rest_preview()
            ))
        }
    }

    /// A name, with an optional `public.` / `main.` schema dropped.
    fn name(&mut self) -> Result<String, DdlError> {
        let first = self.raw_name()?;
        if self.peek() == Some(&Token::Punct('.')) {
            let lower = first.to_ascii_lowercase();
            if lower == "public" || lower == "main" {
                self.pos += 1;
                return self.raw_name();
            }
            if lower == "realtime" {
                self.pos += 1;
                let table = self.raw_name()?.to_ascii_lowercase();
                if table == "messages" {
                    return Ok("_outpost_realtime_messages".into());
                }
                return Err(format!("relation \"realtime.{table}\" does not exist"));
            }
            if lower == "storage" {
                self.pos += 1;
                let table = self.raw_name()?.to_ascii_lowercase();
                // Policies on storage objects and buckets are kept on Outpost's own tables.
                if table == "objects" || table == "buckets" {
                    return Ok(format!("_outpost_storage_{table}"));
                }
                return Err(format!("relation \"storage.{table}\" does not exist"));
            }
            return Err(format!(
                "only the public schema is supported, not \"{first}\""
            ));
        }
        Ok(first)
    }

    fn raw_name(&mut self) -> Result<String, DdlError> {
        let preview = self.rest_preview();
        let tok = self.peek().cloned();
        match tok.as_ref().and_then(Token::name) {
            Some(n) => {
                self.pos += 1;
                Ok(n)
            }
            None => Err(format!("expected a name near \"{preview}\"")),
        }
    }

    /// The text inside a balanced `( … )`, spaces and comments kept.
    fn paren_group(&mut self) -> Result<String, DdlError> {
        if !self.punct('(') {
            return Err(format!("expected ( near \"{}\"", self.rest_preview()));
        }
        let start = self.pos;
        let mut depth = 1;
        while let Some(t) = self.toks.get(self.pos) {
            match t {
                Token::Punct('(') => depth += 1,
                Token::Punct(')') => {
                    depth -= 1;
                    if depth == 0 {
                        let inner = script::render(&self.toks[start..self.pos]);
                        self.pos += 1;
                        return Ok(inner.trim().to_string());
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        Err("unbalanced parentheses".into())
    }

    fn done(&mut self) -> bool {
        self.peek().is_none()
    }

    fn rest_preview(&self) -> String {
        let rest = script::render(&self.toks[self.pos.min(self.toks.len())..]);
        rest.trim().chars().take(40).collect()
    }
}

/// Recognise an intercepted statement; `Ok(None)` means "plain SQLite SQL".
pub fn parse(sql: &str) -> Result<Option<Ddl>, DdlError> {
    let mut c = Cur::new(sql);
    if c.kws(&["alter", "table"]) {
        let _ = c.kws(&["if", "exists"]);
        let _ = c.kw("only");
        let table = c.name()?;
        if c.kws(&["replica", "identity"]) {
            let full = if c.kw("full") {
                true
            } else if c.kw("default") {
                false
            } else {
                return Err("REPLICA IDENTITY must be FULL or DEFAULT here".into());
            };
            return finish(&mut c, Ddl::ReplicaIdentity { table, full });
        }
        let enabled = if c.kw("enable") {
            true
        } else if c.kw("disable") {
            false
        } else if c.kw("force") || c.kws(&["no", "force"]) {
            // FORCE only matters for table owners in Postgres; every request here is subject to RLS.
            if c.kws(&["row", "level", "security"]) && c.done() {
                return Ok(Some(Ddl::SetRls {
                    table,
                    enabled: true,
                }));
            }
            return Ok(None);
        } else {
            return Ok(None);
        };
        if !c.kws(&["row", "level", "security"]) {
            return Ok(None);
        }
        return finish(&mut c, Ddl::SetRls { table, enabled });
    }
    if c.kws(&["create", "policy"]) {
        return parse_create_policy(&mut c).map(Some);
    }
    if c.kws(&["alter", "publication"]) {
        let name = c.raw_name()?;
        if !name.eq_ignore_ascii_case("supabase_realtime") {
            return Err(format!(
                "publication \"{name}\" does not exist (Outpost has supabase_realtime)"
            ));
        }
        let change = if c.kw("add") {
            PublicationChange::Add
        } else if c.kw("drop") {
            PublicationChange::Drop
        } else if c.kw("set") {
            PublicationChange::Set
        } else {
            return Err("expected ADD, DROP or SET TABLE".into());
        };
        c.expect_kw("table")?;
        let mut tables = vec![c.name()?];
        while c.punct(',') {
            tables.push(c.name()?);
        }
        return finish(&mut c, Ddl::Publication { change, tables });
    }
    if c.kws(&["alter", "policy"]) {
        let name = c.raw_name()?;
        c.expect_kw("on")?;
        let table = c.name()?;
        let mut change = PolicyChange::default();
        if c.kws(&["rename", "to"]) {
            change.rename = Some(c.raw_name()?);
        }
        if c.kw("to") {
            change.roles = Some(roles(&mut c)?);
        }
        if c.kw("using") {
            change.using = Some(script::rewrite_auth(&c.paren_group()?));
        }
        if c.kws(&["with", "check"]) {
            change.check = Some(script::rewrite_auth(&c.paren_group()?));
        }
        return finish(
            &mut c,
            Ddl::AlterPolicy {
                table,
                name,
                change,
            },
        );
    }
    if c.kws(&["drop", "policy"]) {
        let if_exists = c.kws(&["if", "exists"]);
        let name = c.raw_name()?;
        c.expect_kw("on")?;
        let table = c.name()?;
        return finish(
            &mut c,
            Ddl::DropPolicy {
                table,
                name,
                if_exists,
            },
        );
    }
    let save = c.pos;
    if c.kw("create") {
        let replace = c.kws(&["or", "replace"]);
        if c.kw("function") {
            return parse_create_function(&mut c, replace).map(Some);
        }
        c.pos = save;
    }
    if c.kws(&["drop", "function"]) {
        let if_exists = c.kws(&["if", "exists"]);
        let name = c.name()?;
        if c.peek() == Some(&Token::Punct('(')) {
            c.paren_group()?;
        }
        return finish(&mut c, Ddl::DropFunction { name, if_exists });
    }
    Ok(None)
}

fn finish(c: &mut Cur, ddl: Ddl) -> Result<Option<Ddl>, DdlError> {
    if c.done() {
        Ok(Some(ddl))
    } else {
        Err(format!("unexpected \"{}\"", c.rest_preview()))
    }
}

fn roles(c: &mut Cur) -> Result<Vec<String>, DdlError> {
    let mut out = Vec::new();
    loop {
        out.push(c.raw_name()?.to_ascii_lowercase());
        if !c.punct(',') {
            break;
        }
    }
    Ok(out)
}

fn parse_create_policy(c: &mut Cur) -> Result<Ddl, DdlError> {
    let name = c.raw_name()?;
    c.expect_kw("on")?;
    let table = c.name()?;
    let mut def = PolicyDef {
        table,
        name,
        command: PolicyCommand::All,
        roles: vec!["public".into()],
        permissive: true,
        using: None,
        check: None,
    };
    if c.kw("as") {
        if c.kw("restrictive") {
            def.permissive = false;
        } else if !c.kw("permissive") {
            return Err("expected PERMISSIVE or RESTRICTIVE after AS".into());
        }
    }
    if c.kw("for") {
        let word = c.raw_name()?;
        def.command = PolicyCommand::parse(&word).ok_or_else(|| {
            format!("unknown policy command \"{word}\" (ALL, SELECT, INSERT, UPDATE, DELETE)")
        })?;
    }
    if c.kw("to") {
        def.roles = roles(c)?;
    }
    if c.kw("using") {
        def.using = Some(script::rewrite_auth(&c.paren_group()?));
    }
    if c.kws(&["with", "check"]) {
        def.check = Some(script::rewrite_auth(&c.paren_group()?));
    }
    if !c.done() {
        return Err(format!("unexpected \"{}\"", c.rest_preview()));
    }
    match def.command {
        PolicyCommand::Insert if def.using.is_some() => {
            return Err("only WITH CHECK expression allowed for INSERT".into())
        }
        PolicyCommand::Select | PolicyCommand::Delete if def.check.is_some() => {
            return Err("WITH CHECK cannot be applied to SELECT or DELETE".into())
        }
        _ => {}
    }
    Ok(Ddl::CreatePolicy(def))
}

fn parse_create_function(c: &mut Cur, replace: bool) -> Result<Ddl, DdlError> {
    let name = c.name()?;
    let params_text = c.paren_group()?;
    let params = parse_params(&params_text)?;
    c.expect_kw("returns")?;
    let returns = if c.kw("setof") {
        FunctionReturns::SetOf { table: c.name()? }
    } else if c.kw("table") {
        let cols = parse_params(&c.paren_group()?)?;
        FunctionReturns::Table {
            columns: cols.into_iter().map(|p| (p.name, p.declared)).collect(),
        }
    } else if c.kw("void") {
        FunctionReturns::Void
    } else {
        let mut declared = c.raw_name()?;
        // Two-word types: `double precision`, `character varying`, `timestamp with time zone`.
        while let Some(Token::Word(w)) = c.peek().cloned() {
            let lw = w.to_ascii_lowercase();
            if matches!(
                lw.as_str(),
                "precision" | "varying" | "with" | "without" | "time" | "zone"
            ) {
                c.pos += 1;
                declared.push(' ');
                declared.push_str(&w);
            } else {
                break;
            }
        }
        FunctionReturns::Scalar { declared }
    };
    let mut body = None;
    let mut volatile = true;
    let mut definer = false;
    while !c.done() {
        if c.kw("as") {
            let tok = c.peek().cloned();
            match tok {
                Some(Token::Str(s)) => {
                    c.pos += 1;
                    body = Some(unquote_body(&s));
                }
                _ => return Err("expected the function body as $$ … $$ or '…' after AS".into()),
            }
        } else if c.kw("language") {
            let lang = c.raw_name()?.to_ascii_lowercase();
            if lang != "sql" && lang != "sqlite" {
                return Err(format!("LANGUAGE {lang} is not supported; write the body as one SQLite statement (LANGUAGE sql)"));
            }
        } else if c.kw("immutable") || c.kw("stable") {
            volatile = false;
        } else if c.kw("volatile") {
            volatile = true;
        } else if c.kws(&["security", "definer"]) {
            definer = true;
        } else if c.kws(&["security", "invoker"]) {
            definer = false;
        } else if c.kw("strict")
            || c.kw("parallel")
            || c.kw("safe")
            || c.kw("unsafe")
            || c.kw("restricted")
            || c.kws(&["called", "on", "null", "input"])
            || c.kws(&["returns", "null", "on", "null", "input"])
            || c.kw("leakproof")
        {
            // Postgres options without meaning here.
        } else {
            return Err(format!(
                "unexpected \"{}\" in CREATE FUNCTION",
                c.rest_preview()
            ));
        }
    }
    let body = body.ok_or("CREATE FUNCTION needs a body: AS $$ <one SQLite statement> $$")?;
    let body = script::rewrite_auth(body.trim().trim_end_matches(';').trim());
    let statements = script::split_statements(&body);
    if statements.len() != 1 {
        return Err(format!(
            "a function body is one SQLite statement; this one has {}",
            statements.len()
        ));
    }
    // Writes name their tables in `main` so they reach them past the row-level security views;
    // whether the caller may write there is checked when the function runs.
    let body = script::qualify_writes(&statements[0]);
    // A SECURITY DEFINER body reads the tables themselves, past row-level security; the rest of
    // the call (embeds, filters on its result) still runs as the caller.
    let body = if definer {
        script::qualify_reads(&body)
    } else {
        body
    };
    let writes = script::write_targets(&body);
    for used in script::param_names(&body) {
        if !params.iter().any(|p| p.name == used) {
            return Err(format!("the body uses :{used}, which is not a parameter"));
        }
    }
    Ok(Ddl::CreateFunction {
        function: Function {
            name,
            params,
            returns,
            body,
            volatile,
            definer,
            writes,
        },
        replace,
    })
}

fn unquote_body(s: &str) -> String {
    if let Some(after) = s.strip_prefix('$') {
        let tag_len = after.find('$').map_or(1, |i| i + 2);
        s[tag_len..s.len().saturating_sub(tag_len)].to_string()
    } else {
        s[1..s.len().saturating_sub(1)].replace("''", "'")
    }
}

/// `a int, b text DEFAULT 'x'` (Postgres's `IN` mode word and `= default` are accepted).
fn parse_params(text: &str) -> Result<Vec<FunctionParam>, DdlError> {
    let mut out: Vec<FunctionParam> = Vec::new();
    if text.trim().is_empty() {
        return Ok(out);
    }
    let mut depth = 0;
    let mut parts = vec![String::new()];
    for tok in script::tokenize(text) {
        match &tok {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => depth -= 1,
            Token::Punct(',') if depth == 0 => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = parts.last_mut() {
            last.push_str(&tok.text());
        }
    }
    for part in parts {
        let toks = script::significant(&part);
        let mut i = 0;
        if toks.first().is_some_and(|t| t.is_kw("in")) {
            i = 1;
        }
        let name = toks
            .get(i)
            .and_then(Token::name)
            .ok_or_else(|| format!("expected a parameter name in \"{}\"", part.trim()))?;
        let mut declared = Vec::new();
        let mut default = None;
        let mut j = i + 1;
        while j < toks.len() {
            if toks[j].is_kw("default") || toks[j] == Token::Punct('=') {
                let rest: Vec<String> = toks[j + 1..].iter().map(Token::text).collect();
                default = Some(rest.join(" "));
                break;
            }
            declared.push(toks[j].text());
            j += 1;
        }
        if declared.is_empty() {
            return Err(format!("parameter \"{name}\" needs a type"));
        }
        if out.iter().any(|p| p.name == name) {
            return Err(format!("parameter \"{name}\" is declared twice"));
        }
        out.push(FunctionParam {
            name,
            declared: declared.join(" "),
            default,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------- applying

fn table_exists(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) > 0 FROM main.sqlite_schema WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get(0),
    )
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Check that a policy expression compiles against its table.
fn validate_expr(conn: &Connection, table: &str, expr: &str, what: &str) -> Result<(), DdlError> {
    let t = quote(table);
    let sql = format!("SELECT 1 FROM main.{t} AS {t} WHERE ({expr}) LIMIT 0");
    conn.prepare(&sql).map(|_| ()).map_err(|e| {
        format!(
            "{what} expression is not valid here: {}",
            super::sqlite_message(&e)
        )
    })
}

/// Carry out an intercepted statement on the migration's connection.
pub fn apply(conn: &Connection, ddl: &Ddl) -> Result<(), DdlError> {
    let db = |e: rusqlite::Error| super::sqlite_message(&e);
    match ddl {
        Ddl::SetRls { table, enabled } => {
            if !table_exists(conn, table).map_err(db)? {
                return Err(format!("relation \"{table}\" does not exist"));
            }
            conn.execute(
                "INSERT INTO main._outpost_rls (table_name, enabled) VALUES (?1, ?2)
                 ON CONFLICT (table_name) DO UPDATE SET enabled = excluded.enabled",
                params![table, enabled],
            )
            .map_err(db)?;
        }
        Ddl::CreatePolicy(p) => {
            if !table_exists(conn, &p.table).map_err(db)? {
                return Err(format!("relation \"{}\" does not exist", p.table));
            }
            for (expr, what) in [(&p.using, "USING"), (&p.check, "WITH CHECK")] {
                if let Some(e) = expr {
                    validate_expr(conn, &p.table, e, what)?;
                }
            }
            let roles = serde_json::to_string(&p.roles).map_err(|e| e.to_string())?;
            conn.execute(
                "INSERT INTO main._outpost_policies (table_name, name, command, roles, permissive, using_expr, check_expr)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![p.table, p.name, p.command.as_str(), roles, p.permissive, p.using, p.check],
            )
            .map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::ConstraintViolation) => {
                    format!("policy \"{}\" for table \"{}\" already exists", p.name, p.table)
                }
                _ => db(e),
            })?;
        }
        Ddl::AlterPolicy {
            table,
            name,
            change,
        } => {
            let exists: Option<i64> = conn
                .query_row(
                    "SELECT 1 FROM main._outpost_policies WHERE table_name = ?1 AND name = ?2",
                    [table, name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            if exists.is_none() {
                return Err(format!(
                    "policy \"{name}\" for table \"{table}\" does not exist"
                ));
            }
            for (expr, what) in [(&change.using, "USING"), (&change.check, "WITH CHECK")] {
                if let Some(e) = expr {
                    validate_expr(conn, table, e, what)?;
                }
            }
            if let Some(roles) = &change.roles {
                let roles = serde_json::to_string(roles).map_err(|e| e.to_string())?;
                conn.execute("UPDATE main._outpost_policies SET roles = ?3 WHERE table_name = ?1 AND name = ?2", params![table, name, roles]).map_err(db)?;
            }
            if let Some(u) = &change.using {
                conn.execute("UPDATE main._outpost_policies SET using_expr = ?3 WHERE table_name = ?1 AND name = ?2", params![table, name, u]).map_err(db)?;
            }
            if let Some(ch) = &change.check {
                conn.execute("UPDATE main._outpost_policies SET check_expr = ?3 WHERE table_name = ?1 AND name = ?2", params![table, name, ch]).map_err(db)?;
            }
            if let Some(new) = &change.rename {
                conn.execute("UPDATE main._outpost_policies SET name = ?3 WHERE table_name = ?1 AND name = ?2", params![table, name, new]).map_err(db)?;
            }
        }
        Ddl::DropPolicy {
            table,
            name,
            if_exists,
        } => {
            let n = conn
                .execute(
                    "DELETE FROM main._outpost_policies WHERE table_name = ?1 AND name = ?2",
                    [table, name],
                )
                .map_err(db)?;
            if n == 0 && !if_exists {
                return Err(format!(
                    "policy \"{name}\" for table \"{table}\" does not exist"
                ));
            }
        }
        Ddl::CreateFunction { function, replace } => {
            let mut function = function.clone();
            // `RETURNS todos` names a row type when a table of that name exists.
            if let FunctionReturns::Scalar { declared } = &function.returns {
                let is_table: bool = conn
                    .query_row(
                        "SELECT count(*) > 0 FROM main.sqlite_schema WHERE type IN ('table', 'view') AND name = ?1",
                        [declared],
                        |r| r.get(0),
                    )
                    .map_err(db)?;
                if is_table {
                    function.returns = FunctionReturns::Row {
                        table: declared.clone(),
                    };
                }
            }
            let function = &function;
            validate_function(conn, function)?;
            let definition = serde_json::to_string(function).map_err(|e| e.to_string())?;
            let sql = if *replace {
                "INSERT INTO main._outpost_functions (name, definition) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET definition = excluded.definition"
            } else {
                "INSERT INTO main._outpost_functions (name, definition) VALUES (?1, ?2)"
            };
            conn.execute(sql, [&function.name, &definition])
                .map_err(|e| match e.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::ConstraintViolation) => {
                        format!(
                            "function \"{}\" already exists (use CREATE OR REPLACE FUNCTION)",
                            function.name
                        )
                    }
                    _ => db(e),
                })?;
        }
        Ddl::DropFunction { name, if_exists } => {
            let n = conn
                .execute(
                    "DELETE FROM main._outpost_functions WHERE name = ?1",
                    [name],
                )
                .map_err(db)?;
            if n == 0 && !if_exists {
                return Err(format!("function {name}() does not exist"));
            }
        }
        Ddl::Publication { change, tables } => {
            for t in tables {
                if !table_exists(conn, t).map_err(db)? {
                    return Err(format!("relation \"{t}\" does not exist"));
                }
            }
            if *change == PublicationChange::Set {
                conn.execute("DELETE FROM main._outpost_realtime", [])
                    .map_err(db)?;
            }
            for t in tables {
                let sql = if *change == PublicationChange::Drop {
                    "DELETE FROM main._outpost_realtime WHERE table_name = ?1"
                } else {
                    "INSERT OR IGNORE INTO main._outpost_realtime (table_name) VALUES (?1)"
                };
                conn.execute(sql, [t]).map_err(db)?;
            }
        }
        Ddl::ReplicaIdentity { table, full } => {
            if !table_exists(conn, table).map_err(db)? {
                return Err(format!("relation \"{table}\" does not exist"));
            }
            // Remembered even before the table is published, as Postgres keeps it on the table.
            conn.execute(
                "INSERT INTO main._outpost_realtime_identity (table_name, full_identity) VALUES (?1, ?2) \
                 ON CONFLICT (table_name) DO UPDATE SET full_identity = excluded.full_identity",
                params![table, full],
            )
            .map_err(db)?;
        }
    }
    Ok(())
}

/// A function's body must compile, and the tables its result names must exist.
fn validate_function(conn: &Connection, f: &Function) -> Result<(), DdlError> {
    match &f.returns {
        FunctionReturns::SetOf { table } | FunctionReturns::Row { table } => {
            let exists: bool = conn
                .query_row(
                    "SELECT count(*) > 0 FROM main.sqlite_schema WHERE type IN ('table', 'view') AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .map_err(|e| super::sqlite_message(&e))?;
            if !exists {
                return Err(format!("type \"{table}\" does not exist"));
            }
        }
        _ => {}
    }
    conn.prepare(&f.body).map(|_| ()).map_err(|e| {
        format!(
            "the body of {}() does not compile: {}",
            f.name,
            super::sqlite_message(&e)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_like_postgres() {
        let d = parse("CREATE POLICY \"own rows\" ON public.todos AS RESTRICTIVE FOR UPDATE TO authenticated, anon USING (user_id = auth.uid()) WITH CHECK (done IN (0, 1))").unwrap().unwrap();
        let Ddl::CreatePolicy(p) = d else { panic!() };
        assert_eq!(p.name, "own rows");
        assert_eq!(p.table, "todos");
        assert!(!p.permissive);
        assert_eq!(p.command, PolicyCommand::Update);
        assert_eq!(p.roles, vec!["authenticated", "anon"]);
        assert_eq!(p.using.as_deref(), Some("user_id = (auth_uid())"));
        assert_eq!(p.check.as_deref(), Some("done IN (0, 1)"));
        assert_eq!(
            parse("alter table todos enable row level security").unwrap(),
            Some(Ddl::SetRls {
                table: "todos".into(),
                enabled: true
            })
        );
        assert_eq!(parse("ALTER TABLE todos ADD COLUMN x TEXT").unwrap(), None);
        assert!(parse("CREATE POLICY p ON t FOR SELECT WITH CHECK (1)").is_err());
        assert!(parse("CREATE POLICY p ON t FOR INSERT USING (1)").is_err());
        assert!(parse("CREATE POLICY p ON other.t USING (1)").is_err());
        assert!(matches!(
            parse("DROP POLICY IF EXISTS p ON t").unwrap(),
            Some(Ddl::DropPolicy {
                if_exists: true,
                ..
            })
        ));
    }

    #[test]
    fn functions_parse() {
        let d = parse("create or replace function search(q text, lim int default 10) returns setof todos language sql stable as $$ select * from todos where title like '%' || :q || '%' limit :lim; $$").unwrap().unwrap();
        let Ddl::CreateFunction {
            function: f,
            replace,
        } = d
        else {
            panic!()
        };
        assert!(replace);
        assert!(!f.volatile);
        assert_eq!(f.params.len(), 2);
        assert_eq!(f.params[1].default.as_deref(), Some("10"));
        assert_eq!(
            f.returns,
            FunctionReturns::SetOf {
                table: "todos".into()
            }
        );
        assert!(f.body.starts_with("select * from todos"));
        let d = parse("CREATE FUNCTION add_todo(t text) RETURNS TABLE(id int, title text) SECURITY DEFINER AS $$ INSERT INTO todos (title) VALUES (:t) RETURNING id, title $$").unwrap().unwrap();
        let Ddl::CreateFunction { function: f, .. } = d else {
            panic!()
        };
        assert!(f.definer && f.volatile);
        assert!(f.body.contains("INTO main.todos"));
        assert!(parse("CREATE FUNCTION f() RETURNS int AS $$ SELECT :nope $$").is_err());
        assert!(
            parse("CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN END $$").is_err()
        );
        assert!(parse("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; SELECT 2 $$").is_err());
    }
}
