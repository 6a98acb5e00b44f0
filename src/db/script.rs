//! A small SQL lexer for what Outpost does to SQL text it is given: split migration scripts into
//! statements, rewrite Postgres's `auth.uid()` into Outpost's `auth_uid()`, substitute `:name`
//! parameters, and qualify write targets. It knows strings, quoted names, comments, `$$` bodies
//! and trigger bodies; it does not parse SQL.

/// A lexical piece of SQL text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A keyword or bare name.
    Word(String),
    /// `"name"`, `` `name` `` or `[name]`, quotes included.
    Quoted(String),
    /// `'text'` or `$tag$text$tag$`, delimiters included.
    Str(String),
    /// `:name` / `@name` / `$name` / `?`, `?NNN` parameters.
    Param(String),
    Comment(String),
    Space(String),
    /// Any other single character.
    Punct(char),
}

impl Token {
    /// The text of the token as written.
    pub fn text(&self) -> String {
        match self {
            Token::Punct(c) => c.to_string(),
            Token::Word(s)
            | Token::Quoted(s)
            | Token::Str(s)
            | Token::Param(s)
            | Token::Comment(s)
            | Token::Space(s) => s.clone(),
        }
    }

    /// Whether this is the keyword `kw` (case-insensitive).
    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    /// The name this token denotes, unquoted, if it is a name.
    pub fn name(&self) -> Option<String> {
        match self {
            Token::Word(w) => Some(w.clone()),
            Token::Quoted(q) if q.len() >= 2 => {
                let inner = &q[1..q.len() - 1];
                Some(if q.starts_with('"') {
                    inner.replace("\"\"", "\"")
                } else {
                    inner.to_string()
                })
            }
            _ => None,
        }
    }

    fn is_trivia(&self) -> bool {
        matches!(self, Token::Space(_) | Token::Comment(_))
    }
}

/// Cut SQL text into tokens. Unterminated strings or comments run to the end of the text.
pub fn tokenize(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let take = |from: usize, to: usize| chars[from..to.min(chars.len())].iter().collect::<String>();
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            out.push(Token::Space(take(start, i)));
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            out.push(Token::Comment(take(start, i)));
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i = (i + 2).min(chars.len());
            out.push(Token::Comment(take(start, i)));
        } else if c == '\'' || c == '"' || c == '`' {
            i += 1;
            loop {
                match chars.get(i) {
                    None => break,
                    Some(&q) if q == c => {
                        if chars.get(i + 1) == Some(&c) {
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some(_) => i += 1,
                }
            }
            let text = take(start, i);
            out.push(if c == '\'' {
                Token::Str(text)
            } else {
                Token::Quoted(text)
            });
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i = (i + 1).min(chars.len());
            out.push(Token::Quoted(take(start, i)));
        } else if c == '$' && dollar_tag(&chars, i).is_some() {
            let tag = dollar_tag(&chars, i).unwrap_or_default();
            i += tag.len();
            let tag_chars: Vec<char> = tag.chars().collect();
            while i < chars.len() && !chars[i..].starts_with(&tag_chars) {
                i += 1;
            }
            i = (i + tag_chars.len()).min(chars.len());
            out.push(Token::Str(take(start, i)));
        } else if (c == ':' || c == '@' || c == '$')
            && chars
                .get(i + 1)
                .is_some_and(|n| n.is_alphabetic() || *n == '_')
        {
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Param(take(start, i)));
        } else if c == '?' {
            i += 1;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            out.push(Token::Param(take(start, i)));
        } else if c.is_alphanumeric() || c == '_' {
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            out.push(Token::Word(take(start, i)));
        } else {
            i += 1;
            out.push(Token::Punct(c));
        }
    }
    out
}

/// `$$` or `$tag$` starting at `i`.
fn dollar_tag(chars: &[char], i: usize) -> Option<String> {
    let mut j = i + 1;
    while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
        j += 1;
    }
    (chars.get(j) == Some(&'$')).then(|| chars[i..=j].iter().collect())
}

/// Join tokens back into text.
pub fn render(tokens: &[Token]) -> String {
    tokens.iter().map(Token::text).collect()
}

/// Split a script into statements (without their `;`), keeping `CREATE TRIGGER … BEGIN … END`
/// whole. Statements with nothing but comments and spaces are dropped.
pub fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<Token> = Vec::new();
    let mut depth: i32 = 0;
    for tok in tokenize(sql) {
        let words: Vec<&Token> = current
            .iter()
            .filter(|t| matches!(t, Token::Word(_)))
            .collect();
        let in_trigger = words.first().is_some_and(|w| w.is_kw("create"))
            && words.iter().take(4).any(|w| w.is_kw("trigger"));
        if in_trigger {
            if tok.is_kw("begin") || tok.is_kw("case") {
                depth += 1;
            } else if tok.is_kw("end") {
                depth -= 1;
            }
        }
        if tok == Token::Punct(';') && depth <= 0 {
            push_statement(&mut out, &mut current);
            depth = 0;
        } else {
            current.push(tok);
        }
    }
    push_statement(&mut out, &mut current);
    out
}

fn push_statement(out: &mut Vec<String>, current: &mut Vec<Token>) {
    if current.iter().any(|t| !t.is_trivia()) {
        out.push(render(current).trim().to_string());
    }
    current.clear();
}

/// The significant tokens of a statement (no spaces or comments).
pub fn significant(sql: &str) -> Vec<Token> {
    tokenize(sql)
        .into_iter()
        .filter(|t| !t.is_trivia())
        .collect()
}

/// Rewrite what Supabase SQL names in the `auth` and `storage` schemas into what Outpost has:
/// `auth.uid()`/`role()`/`jwt()`/`email()` into its functions (parenthesised so they also work
/// as column defaults), `auth.users` and `storage.objects`/`buckets` into its tables,
/// `storage.foldername()`/`filename()`/`extension()` into its helpers, array subscripts on
/// those into `json_extract`, and drops Postgres `::type` casts.
pub fn rewrite_auth(sql: &str) -> String {
    let toks = tokenize(sql);
    let mut out = String::with_capacity(sql.len());
    // Output offsets of the open parentheses, and of the group that closed last (for `[n]`).
    let mut open: Vec<usize> = Vec::new();
    let mut closed: Option<usize> = None;
    let mut i = 0;
    while i < toks.len() {
        let qualified = toks.get(i + 1) == Some(&Token::Punct('.'));
        let member = match toks.get(i + 2) {
            Some(Token::Word(f)) if qualified => Some(f.to_ascii_lowercase()),
            _ => None,
        };
        let call = toks.get(i + 3) == Some(&Token::Punct('('));
        if let (true, Some(f)) = (toks[i].is_kw("auth"), member.as_deref()) {
            let no_args = call && toks.get(i + 4) == Some(&Token::Punct(')'));
            if no_args && matches!(f, "uid" | "role" | "jwt" | "email") {
                out.push_str(&format!("(auth_{f}())"));
                closed = None;
                i += 5;
                continue;
            }
            // Supabase schemas reference and trigger on `auth.users`; it is Outpost's table.
            if f == "users" && !call {
                out.push_str("_outpost_auth_users");
                i += 3;
                continue;
            }
        }
        if let (true, Some(f)) = (toks[i].is_kw("realtime"), member.as_deref()) {
            let no_args = call && toks.get(i + 4) == Some(&Token::Punct(')'));
            if f == "topic" && no_args {
                out.push_str("(topic)");
                closed = None;
                i += 5;
                continue;
            }
            if f == "messages" && !call {
                out.push_str("_outpost_realtime_messages");
                i += 3;
                continue;
            }
        }
        if let (true, Some(f)) = (toks[i].is_kw("storage"), member.as_deref()) {
            match (f, call) {
                ("foldername" | "filename" | "extension", true) => {
                    out.push_str(&format!("storage_{f}"));
                    i += 3;
                    continue;
                }
                ("objects" | "buckets", false) => {
                    out.push_str(&format!("_outpost_storage_{f}"));
                    i += 3;
                    continue;
                }
                _ => {}
            }
        }
        match &toks[i] {
            // A Postgres cast (`auth.uid()::text`): SQLite compares by affinity, so it goes.
            Token::Punct(':') if matches!(toks.get(i + 1), Some(Token::Param(p)) if p.starts_with(':')) =>
            {
                i += 2;
                continue;
            }
            Token::Punct('(') => {
                open.push(out.len());
                closed = None;
            }
            Token::Punct(')') => closed = open.pop(),
            // `(storage.foldername(name))[1]`: a Postgres array subscript, 1-based, on the JSON
            // array the helper returns.
            Token::Quoted(q) if q.starts_with('[') && closed.is_some() => {
                let index: Option<usize> = q[1..q.len() - 1].trim().parse().ok();
                if let (Some(n), Some(start)) = (index.filter(|n| *n >= 1), closed) {
                    out.insert_str(start, "json_extract(");
                    out.push_str(&format!(", '$[{}]')", n - 1));
                    closed = None;
                    i += 1;
                    continue;
                }
            }
            Token::Space(_) | Token::Comment(_) => {}
            _ => closed = None,
        }
        out.push_str(&toks[i].text());
        i += 1;
    }
    out
}

/// Replace each `:name` parameter by what `f` returns for it; the names `f` refuses are returned.
pub fn substitute_params(
    sql: &str,
    mut f: impl FnMut(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(sql.len());
    let mut unknown = Vec::new();
    for tok in tokenize(sql) {
        match &tok {
            Token::Param(p) if p.starts_with(':') => match f(&p[1..]) {
                Some(r) => out.push_str(&r),
                None => unknown.push(p[1..].to_string()),
            },
            _ => out.push_str(&tok.text()),
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(unknown)
    }
}

/// The `:name` parameters a statement uses, in order of first use.
pub fn param_names(sql: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for tok in tokenize(sql) {
        if let Token::Param(p) = tok {
            if let Some(n) = p.strip_prefix(':') {
                if !names.iter().any(|x| x == n) {
                    names.push(n.to_string());
                }
            }
        }
    }
    names
}

/// Prefix unqualified write targets (`INSERT INTO t`, `UPDATE t`, `DELETE FROM t`, `REPLACE INTO t`)
/// with `main.`, so a write reaches the table even where a temporary view shadows its name.
pub fn qualify_writes(sql: &str) -> String {
    let toks = tokenize(sql);
    let mut out = String::with_capacity(sql.len() + 16);
    let mut expect_target = false;
    let mut prev_words: Vec<String> = Vec::new();
    for (i, tok) in toks.iter().enumerate() {
        if expect_target && !tok.is_trivia() {
            expect_target = false;
            let next_is_dot =
                toks[i + 1..].iter().find(|t| !t.is_trivia()) == Some(&Token::Punct('.'));
            if matches!(tok, Token::Word(_) | Token::Quoted(_)) && !next_is_dot && !tok.is_kw("or")
            {
                out.push_str("main.");
            } else if tok.is_kw("or") {
                // `UPDATE OR REPLACE t`: the target comes after the conflict clause.
                expect_target = false;
            }
        }
        out.push_str(&tok.text());
        if let Token::Word(w) = tok {
            let w = w.to_ascii_lowercase();
            let prev = prev_words.last().map(String::as_str);
            expect_target = match w.as_str() {
                "into" => matches!(
                    prev,
                    Some("insert")
                        | Some("replace")
                        | Some("ignore")
                        | Some("rollback")
                        | Some("abort")
                        | Some("fail")
                ),
                "update" => true,
                "from" => prev == Some("delete"),
                "replace" | "ignore" | "rollback" | "abort" | "fail" => {
                    prev == Some("or")
                        && prev_words
                            .iter()
                            .rev()
                            .nth(1)
                            .is_some_and(|p| p == "update")
                }
                _ => false,
            };
            prev_words.push(w);
        }
    }
    out
}

/// The tables a statement writes to (targets of INSERT, REPLACE, UPDATE and DELETE).
pub fn write_targets(sql: &str) -> Vec<String> {
    let qualified = qualify_writes(sql);
    let toks = significant(&qualified);
    let mut out: Vec<String> = Vec::new();
    for w in toks.windows(3) {
        if w[0].is_kw("main") && w[1] == Token::Punct('.') {
            if let Some(name) = w[2].name() {
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
    }
    out
}

const CLAUSE_END: &[&str] = &[
    "where",
    "group",
    "having",
    "order",
    "limit",
    "window",
    "union",
    "except",
    "intersect",
    "returning",
    "set",
    "values",
    "select",
];

/// Prefix the tables a statement reads (after FROM and JOIN, and in comma-separated FROM lists)
/// with `main.`, leaving CTE names, table-valued functions and qualified names alone. Used for
/// SECURITY DEFINER functions, whose bodies read past row-level security.
pub fn qualify_reads(sql: &str) -> String {
    let toks = tokenize(sql);
    // CTE names: `WITH [RECURSIVE] name [(cols)] AS (`, and after `),`.
    let sig: Vec<&Token> = toks.iter().filter(|t| !t.is_trivia()).collect();
    let mut ctes: Vec<String> = Vec::new();
    for (i, t) in sig.iter().enumerate() {
        if t.is_kw("as") && sig.get(i + 1) == Some(&&Token::Punct('(')) {
            // Walk back over an optional column list to the name.
            let mut j = i;
            if j > 0 && *sig[j - 1] == Token::Punct(')') {
                while j > 0 && *sig[j - 1] != Token::Punct('(') {
                    j -= 1;
                }
                j = j.saturating_sub(1);
            }
            if j > 0 {
                if let Some(name) = sig[j - 1].name() {
                    let before = if j >= 2 { Some(sig[j - 2]) } else { None };
                    if before.is_some_and(|b| {
                        b.is_kw("with") || b.is_kw("recursive") || *b == Token::Punct(',')
                    }) {
                        ctes.push(name.to_ascii_lowercase());
                    }
                }
            }
        }
    }
    let mut out = String::with_capacity(sql.len() + 32);
    let mut depth: i32 = 0;
    // Paren depth of the FROM clause we are in, if any.
    let mut from_depth: Option<i32> = None;
    let mut expect_table = false;
    for (i, tok) in toks.iter().enumerate() {
        if expect_table && !tok.is_trivia() {
            expect_table = false;
            let next = toks[i + 1..].iter().find(|t| !t.is_trivia());
            let is_name = matches!(tok, Token::Word(_) | Token::Quoted(_));
            let keyword = matches!(tok, Token::Word(w) if ["select", "with", "values", "lateral"].contains(&w.to_ascii_lowercase().as_str()));
            let qualified_or_call =
                matches!(next, Some(Token::Punct('.')) | Some(Token::Punct('(')));
            let cte = tok
                .name()
                .is_some_and(|n| ctes.contains(&n.to_ascii_lowercase()));
            if is_name && !keyword && !qualified_or_call && !cte {
                out.push_str("main.");
            }
        }
        match tok {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => {
                if from_depth == Some(depth) {
                    from_depth = None;
                }
                depth -= 1;
            }
            Token::Punct(',') if from_depth == Some(depth) => expect_table = true,
            Token::Word(w) => {
                let lw = w.to_ascii_lowercase();
                if lw == "from" || lw == "join" {
                    expect_table = true;
                    from_depth = Some(depth);
                } else if from_depth == Some(depth) && CLAUSE_END.contains(&lw.as_str()) {
                    from_depth = None;
                }
            }
            _ => {}
        }
        out.push_str(&tok.text());
    }
    out
}

/// `CREATE VIEW …` rewritten as `CREATE TEMP VIEW …` (None when it is not a plain CREATE VIEW).
pub fn as_temp_view(sql: &str) -> Option<String> {
    let toks = tokenize(sql);
    let sig: Vec<usize> = toks
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.is_trivia())
        .map(|(i, _)| i)
        .collect();
    let (first, second) = (sig.first()?, sig.get(1)?);
    if !toks[*first].is_kw("create") || !toks[*second].is_kw("view") {
        return None;
    }
    let mut out = render(&toks[..=*first]);
    out.push_str(" TEMP");
    out.push_str(&render(&toks[*first + 1..]));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_scripts_keeping_triggers_and_strings_whole() {
        let sql = "CREATE TABLE a (x TEXT DEFAULT ';');\n-- c; d\nCREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = CASE WHEN 1 THEN 'y' END; SELECT 1; END;\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$; /* x; */";
        let stmts = split_statements(sql);
        assert_eq!(stmts.len(), 3, "{stmts:#?}");
        assert!(stmts[1].ends_with("END"));
        assert!(stmts[2].contains("SELECT 1; $$"));
    }

    #[test]
    fn rewrites_auth_functions_outside_strings() {
        assert_eq!(
            rewrite_auth("user_id = auth.uid() AND 'auth.uid()' = x AND auth.jwt() ->> 'email' = auth.email()"),
            "user_id = (auth_uid()) AND 'auth.uid()' = x AND (auth_jwt()) ->> 'email' = (auth_email())"
        );
        assert_eq!(
            rewrite_auth("id TEXT REFERENCES auth.users (id), 'auth.users'"),
            "id TEXT REFERENCES _outpost_auth_users (id), 'auth.users'"
        );
        assert_eq!(
            rewrite_auth("bucket_id = 'docs' AND (storage.foldername(name))[1] = auth.uid()::text"),
            "bucket_id = 'docs' AND json_extract((storage_foldername(name)), '$[0]') = (auth_uid())"
        );
        assert_eq!(
            rewrite_auth(
                "storage.extension(name) = 'png' AND x IN (SELECT 1 FROM storage.objects)"
            ),
            "storage_extension(name) = 'png' AND x IN (SELECT 1 FROM _outpost_storage_objects)"
        );
    }

    #[test]
    fn substitutes_parameters() {
        let s = substitute_params("SELECT ':a', :a, :b FROM t WHERE x = :a", |n| {
            (n == "a" || n == "b").then(|| format!("?{}", n.len()))
        });
        assert_eq!(s.unwrap(), "SELECT ':a', ?1, ?1 FROM t WHERE x = ?1");
        assert_eq!(
            substitute_params("SELECT :zz", |_| None).unwrap_err(),
            vec!["zz"]
        );
        assert_eq!(param_names("SELECT :b, :a, :b"), vec!["b", "a"]);
    }

    #[test]
    fn qualifies_reads_for_definer_bodies() {
        assert_eq!(
            qualify_reads("SELECT * FROM todos t JOIN users u ON u.id = t.user_id, notes WHERE x IN (SELECT id FROM tags)"),
            "SELECT * FROM main.todos t JOIN main.users u ON u.id = t.user_id, main.notes WHERE x IN (SELECT id FROM main.tags)"
        );
        assert_eq!(
            qualify_reads(
                "WITH mine AS (SELECT * FROM todos) SELECT * FROM mine, json_each('[1]')"
            ),
            "WITH mine AS (SELECT * FROM main.todos) SELECT * FROM mine, json_each('[1]')"
        );
        assert_eq!(
            qualify_reads("SELECT 1 FROM main.todos"),
            "SELECT 1 FROM main.todos"
        );
        assert_eq!(
            write_targets("INSERT INTO todos (a) SELECT a FROM x"),
            vec!["todos"]
        );
        assert_eq!(
            as_temp_view("CREATE VIEW v AS SELECT 1").unwrap(),
            "CREATE TEMP VIEW v AS SELECT 1"
        );
        assert!(as_temp_view("CREATE TEMP VIEW v AS SELECT 1").is_none());
    }

    #[test]
    fn qualifies_write_targets() {
        assert_eq!(
            qualify_writes("INSERT INTO todos (a) VALUES (1)"),
            "INSERT INTO main.todos (a) VALUES (1)"
        );
        assert_eq!(
            qualify_writes("update \"todos\" set a = 1"),
            "update main.\"todos\" set a = 1"
        );
        assert_eq!(
            qualify_writes("DELETE FROM main.todos"),
            "DELETE FROM main.todos"
        );
        assert_eq!(
            qualify_writes("INSERT OR REPLACE INTO t VALUES (1)"),
            "INSERT OR REPLACE INTO main.t VALUES (1)"
        );
        assert_eq!(qualify_writes("SELECT * FROM todos"), "SELECT * FROM todos");
    }
}
