//! The PostgREST query-string grammar: select lists, filters, logic trees and order terms.
//!
//! Parsing is pure: it knows nothing of the schema. Every input either parses or yields a
//! PGRST100 error; nothing here may panic (a property test feeds it arbitrary strings).

use super::error::{RestError, RestResult};

/// Deepest nesting of embeds (and of and/or trees) a query may have.
pub const MAX_DEPTH: usize = 8;

/// `->` (JSON) or `->>` (text) step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStep {
    pub text: bool,
    pub key: JsonKey,
}

/// A JSON path key: an object member or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonKey {
    Name(String),
    Index(i64),
}

/// A column, optionally followed by a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub column: String,
    pub path: Vec<JsonStep>,
}

impl Field {
    /// The key PostgREST gives this field in a JSON object: the last path key, else the column.
    pub fn default_key(&self) -> String {
        match self.path.last() {
            Some(JsonStep {
                key: JsonKey::Name(n),
                ..
            }) => n.clone(),
            Some(JsonStep {
                key: JsonKey::Index(_),
                ..
            }) => self.column.clone(),
            None => self.column.clone(),
        }
    }
}

/// How an embedded resource joins its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Left,
    Inner,
}

/// An aggregate function in a select list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Count,
    Sum,
    Avg,
    Max,
    Min,
}

impl Aggregate {
    fn parse(name: &str) -> Option<Aggregate> {
        Some(match name {
            "count" => Aggregate::Count,
            "sum" => Aggregate::Sum,
            "avg" => Aggregate::Avg,
            "max" => Aggregate::Max,
            "min" => Aggregate::Min,
            _ => return None,
        })
    }

    /// The SQL function and the default output key.
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Count => "count",
            Aggregate::Sum => "sum",
            Aggregate::Avg => "avg",
            Aggregate::Max => "max",
            Aggregate::Min => "min",
        }
    }
}

/// One entry of a `select=` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    Star,
    /// `count()`, or `col.sum()` and the like; `field` is `None` for `count()`.
    Aggregate {
        func: Aggregate,
        field: Option<Field>,
        alias: Option<String>,
        cast: Option<String>,
    },
    Field {
        field: Field,
        alias: Option<String>,
        cast: Option<String>,
    },
    Embed(Embed),
}

/// An embedded resource `alias:rel!hint!inner(items)` or `...rel(items)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embed {
    pub relation: String,
    pub alias: Option<String>,
    pub hint: Option<String>,
    pub join: Option<JoinKind>,
    pub spread: bool,
    pub items: Vec<SelectItem>,
}

impl Embed {
    /// The name this embed answers to in filters and in the output.
    pub fn name(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.relation)
    }
}

/// Filter operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    Ilike,
    Match,
    Imatch,
    In,
    Is,
    IsDistinct,
    Cs,
    Cd,
    Ov,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "neq" => Op::Neq,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "like" => Op::Like,
            "ilike" => Op::Ilike,
            "match" => Op::Match,
            "imatch" => Op::Imatch,
            "in" => Op::In,
            "is" => Op::Is,
            "isdistinct" => Op::IsDistinct,
            "cs" => Op::Cs,
            "cd" => Op::Cd,
            "ov" => Op::Ov,
            _ => return None,
        })
    }

    /// Whether `(any)`/`(all)` may follow the operator.
    fn quantifiable(self) -> bool {
        matches!(
            self,
            Op::Eq
                | Op::Neq
                | Op::Gt
                | Op::Gte
                | Op::Lt
                | Op::Lte
                | Op::Like
                | Op::Ilike
                | Op::Match
                | Op::Imatch
        )
    }
}

/// `(any)` / `(all)` on an operator: the value is a `{a,b}` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    Any,
    All,
}

/// The right-hand side of a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Scalar(String),
    List(Vec<String>),
}

/// `field=[not.]op[(any|all)].value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub field: Field,
    pub negate: bool,
    pub op: Op,
    pub quantifier: Option<Quantifier>,
    pub operand: Operand,
}

/// A boolean tree of filters (`or=(…)`, `and=(…)`, nested).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Filter(Filter),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

/// One `order=` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTerm {
    pub field: Field,
    pub descending: bool,
    /// `None`: Postgres's default (NULLS LAST ascending, NULLS FIRST descending).
    pub nulls_first: Option<bool>,
}

// ---------------------------------------------------------------- select

/// Parse a `select=` value.
pub fn parse_select(input: &str) -> RestResult<Vec<SelectItem>> {
    let cleaned = strip_whitespace(input);
    if cleaned.is_empty() {
        return Ok(vec![SelectItem::Star]);
    }
    let mut p = Cursor::new(&cleaned);
    let items = select_list(&mut p, 0)?;
    if !p.done() {
        return Err(p.error("unexpected input in select"));
    }
    Ok(items)
}

/// PostgREST drops whitespace outside double quotes in `select`.
fn strip_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut quoted = false;
    for c in s.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if quoted || !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

fn select_list(p: &mut Cursor, depth: usize) -> RestResult<Vec<SelectItem>> {
    if depth > MAX_DEPTH {
        return Err(RestError::parse(
            "select is nested too deeply",
            format!("at most {MAX_DEPTH} levels of embedding are allowed"),
        ));
    }
    let mut items = Vec::new();
    loop {
        items.push(select_item(p, depth)?);
        if !p.eat(',') {
            break;
        }
    }
    Ok(items)
}

fn select_item(p: &mut Cursor, depth: usize) -> RestResult<SelectItem> {
    if p.eat('*') {
        return Ok(SelectItem::Star);
    }
    let spread = p.eat_str("...");
    let first = p.ident()?;
    let (alias, name) = if !spread && p.peek() == Some(':') && p.peek_at(1) != Some(':') {
        p.bump();
        (Some(first), p.ident()?)
    } else {
        (None, first)
    };
    // `count()` counts the rows of its level.
    if name == "count" && p.eat_str("()") {
        return Ok(SelectItem::Aggregate {
            func: Aggregate::Count,
            field: None,
            alias,
            cast: cast_suffix(p)?,
        });
    }
    // Embedded resource?
    if matches!(p.peek(), Some('!') | Some('(')) {
        let mut hint = None;
        let mut join = None;
        while p.eat('!') {
            let word = p.ident()?;
            match word.as_str() {
                "inner" => join = Some(JoinKind::Inner),
                "left" => join = Some(JoinKind::Left),
                _ if hint.is_none() => hint = Some(word),
                _ => return Err(p.error("more than one hint on an embedded resource")),
            }
        }
        if !p.eat('(') {
            return Err(p.error("expected ( after an embedded resource"));
        }
        let items = if p.peek() == Some(')') {
            Vec::new()
        } else {
            select_list(p, depth + 1)?
        };
        if !p.eat(')') {
            return Err(p.error("expected ) closing an embedded resource"));
        }
        return Ok(SelectItem::Embed(Embed {
            relation: name,
            alias,
            hint,
            join,
            spread,
            items,
        }));
    }
    if spread {
        return Err(p.error("a spread (...) needs an embedded resource"));
    }
    let path = json_path(p)?;
    let field = Field { column: name, path };
    if p.eat('.') {
        let func = p.ident()?;
        let func = Aggregate::parse(&func)
            .ok_or_else(|| p.error("unknown aggregate (count, sum, avg, max, min)"))?;
        if !p.eat_str("()") {
            return Err(p.error("expected () after an aggregate"));
        }
        return Ok(SelectItem::Aggregate {
            func,
            field: Some(field),
            alias,
            cast: cast_suffix(p)?,
        });
    }
    Ok(SelectItem::Field {
        field,
        alias,
        cast: cast_suffix(p)?,
    })
}

fn cast_suffix(p: &mut Cursor) -> RestResult<Option<String>> {
    Ok(if p.eat_str("::") {
        Some(p.ident()?)
    } else {
        None
    })
}

fn json_path(p: &mut Cursor) -> RestResult<Vec<JsonStep>> {
    let mut steps = Vec::new();
    loop {
        let text = if p.eat_str("->>") {
            true
        } else if p.eat_str("->") {
            false
        } else {
            break;
        };
        let key = if p.peek() == Some('"') {
            JsonKey::Name(p.ident()?)
        } else {
            let negative =
                p.peek() == Some('-') && p.peek_at(1).is_some_and(|c| c.is_ascii_digit());
            if negative {
                p.bump();
            }
            let mut raw = p.take_while(|c| c.is_alphanumeric() || c == '_' || c == '$');
            if negative {
                raw.insert(0, '-');
            }
            if raw.is_empty() {
                return Err(p.error("expected a key after -> or ->>"));
            }
            match raw.parse::<i64>() {
                Ok(i) => JsonKey::Index(i),
                Err(_) => JsonKey::Name(raw),
            }
        };
        steps.push(JsonStep { text, key });
    }
    Ok(steps)
}

/// Parse a field (`col`, `"quoted col"`, `col->a->>b`) that must span the whole input.
pub fn parse_field(input: &str) -> RestResult<Field> {
    let mut p = Cursor::new(input);
    let column = p.ident()?;
    let path = json_path(&mut p)?;
    if !p.done() {
        return Err(p.error("unexpected input in column name"));
    }
    Ok(Field { column, path })
}

// ---------------------------------------------------------------- filters

/// Parse the value of a `field=…` filter parameter.
pub fn parse_filter(field: Field, value: &str) -> RestResult<Filter> {
    let bad = || {
        RestError::parse(
            format!("\"failed to parse filter ({value})\" (line 1, column 1)"),
            "unexpected input in filter",
        )
    };
    let (negate, rest) = match value.strip_prefix("not.") {
        Some(r) => (true, r),
        None => (false, value),
    };
    let (op_part, operand) = rest.split_once('.').ok_or_else(bad)?;
    let (op_name, quantifier) = if let Some(base) = op_part.strip_suffix("(any)") {
        (base, Some(Quantifier::Any))
    } else if let Some(base) = op_part.strip_suffix("(all)") {
        (base, Some(Quantifier::All))
    } else {
        (op_part, None)
    };
    let op = Op::parse(op_name).ok_or_else(|| {
        RestError::parse(
            format!("\"failed to parse filter ({value})\" (line 1, column 1)"),
            format!("unknown or unsupported operator \"{op_name}\""),
        )
    })?;
    if quantifier.is_some() && !op.quantifiable() {
        return Err(bad());
    }
    let operand = if op == Op::In {
        Operand::List(parse_list(operand, '(', ')').ok_or_else(bad)?)
    } else if quantifier.is_some() {
        Operand::List(parse_list(operand, '{', '}').ok_or_else(bad)?)
    } else {
        Operand::Scalar(operand.to_string())
    };
    Ok(Filter {
        field,
        negate,
        op,
        quantifier,
        operand,
    })
}

/// Parse `(a,"b,c",d)` (or with braces) into its elements, unquoting double-quoted ones.
pub fn parse_list(s: &str, open: char, close: char) -> Option<Vec<String>> {
    let inner = s.strip_prefix(open)?.strip_suffix(close)?;
    if inner.is_empty() {
        return Some(Vec::new());
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = inner.chars().peekable();
    let mut quoted_item = false;
    loop {
        match chars.next() {
            None => {
                out.push(std::mem::take(&mut cur));
                break;
            }
            Some('"') if cur.is_empty() && !quoted_item => {
                quoted_item = true;
                loop {
                    match chars.next()? {
                        '\\' => cur.push(chars.next()?),
                        '"' => break,
                        c => cur.push(c),
                    }
                }
                match chars.peek() {
                    None | Some(',') => {}
                    Some(_) => return None,
                }
            }
            Some(',') => {
                out.push(std::mem::take(&mut cur));
                quoted_item = false;
            }
            Some(c) => {
                if quoted_item {
                    return None;
                }
                cur.push(c)
            }
        }
    }
    Some(out)
}

/// Parse the value of `or=` / `and=` (the parentheses included) into a tree.
pub fn parse_logic(is_or: bool, value: &str) -> RestResult<Cond> {
    let bad = |why: &str| {
        RestError::parse(
            format!("\"failed to parse logic tree ({value})\" (line 1, column 1)"),
            why.to_string(),
        )
    };
    let inner = value
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .ok_or_else(|| bad("a logic tree is enclosed in ( )"))?;
    logic_items(is_or, inner, 0).map_err(|why| bad(&why))
}

fn logic_items(is_or: bool, inner: &str, depth: usize) -> Result<Cond, String> {
    if depth > MAX_DEPTH {
        return Err(format!("logic trees nest at most {MAX_DEPTH} levels"));
    }
    let parts = split_top_level(inner)?;
    if parts.iter().all(|p| p.is_empty()) {
        return Err("a logic tree needs at least one condition".into());
    }
    let mut conds = Vec::new();
    for part in parts {
        conds.push(logic_item(part, depth)?);
    }
    Ok(if is_or {
        Cond::Or(conds)
    } else {
        Cond::And(conds)
    })
}

fn logic_item(part: &str, depth: usize) -> Result<Cond, String> {
    let (negate, body) = match part.strip_prefix("not.") {
        Some(rest) if rest.starts_with("and(") || rest.starts_with("or(") => (true, rest),
        _ => (false, part),
    };
    for (prefix, is_or) in [("and(", false), ("or(", true)] {
        if let Some(rest) = body.strip_prefix(prefix) {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| format!("unbalanced parentheses in \"{part}\""))?;
            let tree = logic_items(is_or, inner, depth + 1)?;
            return Ok(if negate {
                Cond::Not(Box::new(tree))
            } else {
                tree
            });
        }
    }
    // `field.op.value`: the field ends at the first '.' outside quotes.
    let split =
        field_end(part).ok_or_else(|| format!("expected field.operator.value in \"{part}\""))?;
    let field = parse_field(&part[..split]).map_err(|e| e.message)?;
    let raw = &part[split + 1..];
    let filter = parse_filter(field, &unquote_scalar(raw)).map_err(|e| {
        e.details
            .unwrap_or_else(|| format!("unexpected input in \"{part}\""))
    })?;
    Ok(Cond::Filter(filter))
}

/// Position of the '.' that ends the field part of a logic-tree item.
fn field_end(part: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in part.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// In logic trees a scalar value may be double-quoted to hold `,` `(` `)`: `eq."a,b"`.
fn unquote_scalar(raw: &str) -> String {
    // raw is `[not.]op.value`; only unquote the value part of plain operators.
    let mut pieces: Vec<&str> = raw.splitn(3, '.').collect();
    let value_index = if pieces.first() == Some(&"not") { 2 } else { 1 };
    if pieces.len() > value_index {
        let joined_tail = raw
            .splitn(value_index + 1, '.')
            .nth(value_index)
            .unwrap_or_default();
        if joined_tail.len() >= 2 && joined_tail.starts_with('"') && joined_tail.ends_with('"') {
            let inner = &joined_tail[1..joined_tail.len() - 1];
            let unescaped = inner.replace("\\\"", "\"").replace("\\\\", "\\");
            pieces.truncate(value_index);
            return format!("{}.{}", pieces.join("."), unescaped);
        }
    }
    raw.to_string()
}

/// Split on commas that are outside (), {}, [] and double quotes.
fn split_top_level(s: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth: i32 = 0;
    let mut quoted = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '(' | '{' | '[' if !quoted => depth += 1,
            ')' | '}' | ']' if !quoted => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced parentheses".into());
                }
            }
            ',' if !quoted && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 || quoted {
        return Err("unbalanced parentheses or quotes".into());
    }
    parts.push(&s[start..]);
    Ok(parts)
}

// ---------------------------------------------------------------- order

/// Parse an `order=` value.
pub fn parse_order(value: &str) -> RestResult<Vec<OrderTerm>> {
    let mut terms = Vec::new();
    let parts = split_top_level(value)
        .map_err(|why| RestError::parse(format!("\"failed to parse order ({value})\""), why))?;
    for part in parts {
        if part.is_empty() {
            continue;
        }
        let bad = || {
            RestError::parse(
                format!("\"failed to parse order ({value})\" (line 1, column 1)"),
                format!("unexpected \"{part}\" expecting column.asc|desc[.nullsfirst|.nullslast]"),
            )
        };
        let split = field_end(part);
        let (field_str, mods) = match split {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, ""),
        };
        let field = parse_field(field_str).map_err(|_| bad())?;
        let mut term = OrderTerm {
            field,
            descending: false,
            nulls_first: None,
        };
        for m in mods.split('.').filter(|m| !m.is_empty()) {
            match m {
                "asc" => term.descending = false,
                "desc" => term.descending = true,
                "nullsfirst" => term.nulls_first = Some(true),
                "nullslast" => term.nulls_first = Some(false),
                _ => return Err(bad()),
            }
        }
        terms.push(term);
    }
    Ok(terms)
}

// ---------------------------------------------------------------- cursor

/// A character cursor over one parameter value.
struct Cursor<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(src: &'a str) -> Self {
        Cursor { src, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn done(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !f(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        self.src[start..self.pos].to_string()
    }

    /// An identifier: letters, digits, `_`, `$`, or a double-quoted name.
    fn ident(&mut self) -> RestResult<String> {
        if self.eat('"') {
            let mut out = String::new();
            loop {
                match self.bump() {
                    None => return Err(self.error("unterminated quoted identifier")),
                    Some('"') if self.peek() == Some('"') => {
                        self.bump();
                        out.push('"');
                    }
                    Some('"') => break,
                    Some(c) => out.push(c),
                }
            }
            if out.is_empty() {
                return Err(self.error("empty quoted identifier"));
            }
            return Ok(out);
        }
        let word = self.take_while(|c| c.is_alphanumeric() || c == '_' || c == '$');
        if word.is_empty() {
            return Err(self.error("expected an identifier"));
        }
        Ok(word)
    }

    fn error(&self, why: &str) -> RestError {
        RestError::parse(
            format!(
                "\"failed to parse select parameter ({})\" (line 1, column {})",
                self.src,
                self.pos + 1
            ),
            format!("{why} at \"{}\"", truncate(self.rest(), 40)),
        )
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(c: &str) -> Field {
        Field {
            column: c.into(),
            path: vec![],
        }
    }

    #[test]
    fn select_with_embeds_aliases_casts_and_paths() {
        let items =
            parse_select("id, t:title::text,meta->a->>b,author:users!author_id(name),...profiles(bio),tags!inner(*)")
                .unwrap();
        assert_eq!(items.len(), 6);
        assert_eq!(
            items[1],
            SelectItem::Field {
                field: field("title"),
                alias: Some("t".into()),
                cast: Some("text".into())
            }
        );
        match &items[2] {
            SelectItem::Field { field, .. } => {
                assert_eq!(field.default_key(), "b");
                assert_eq!(field.path.len(), 2);
                assert!(field.path[1].text && !field.path[0].text);
            }
            other => panic!("{other:?}"),
        }
        match &items[3] {
            SelectItem::Embed(e) => {
                assert_eq!(e.name(), "author");
                assert_eq!(e.relation, "users");
                assert_eq!(e.hint.as_deref(), Some("author_id"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&items[4], SelectItem::Embed(e) if e.spread));
        assert!(matches!(&items[5], SelectItem::Embed(e) if e.join == Some(JoinKind::Inner)));
    }

    #[test]
    fn aggregates() {
        let items = parse_select("count(),total:amount.sum()::int,status").unwrap();
        assert!(matches!(
            &items[0],
            SelectItem::Aggregate {
                func: Aggregate::Count,
                field: None,
                ..
            }
        ));
        match &items[1] {
            SelectItem::Aggregate {
                func,
                field,
                alias,
                cast,
            } => {
                assert_eq!(*func, Aggregate::Sum);
                assert_eq!(field.as_ref().unwrap().column, "amount");
                assert_eq!(alias.as_deref(), Some("total"));
                assert_eq!(cast.as_deref(), Some("int"));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_select("amount.median()").is_err());
        assert!(parse_select("amount.sum").is_err());
    }

    #[test]
    fn select_errors_are_pgrst100() {
        for bad in [
            "id,",
            "a(",
            "a(b",
            "...x",
            "\"unterminated",
            "a!b!c!d(x)",
            "a->",
        ] {
            let e = parse_select(bad).unwrap_err();
            assert_eq!(e.code, "PGRST100", "{bad}");
        }
        let deep = "a(".repeat(20) + &")".repeat(20);
        assert_eq!(parse_select(&deep).unwrap_err().code, "PGRST100");
    }

    #[test]
    fn filters_and_lists() {
        let f = parse_filter(field("a"), "not.in.(1,\"x,y\",z)").unwrap();
        assert!(f.negate);
        assert_eq!(
            f.operand,
            Operand::List(vec!["1".into(), "x,y".into(), "z".into()])
        );
        let f = parse_filter(field("a"), "like(any).{a*,b*}").unwrap();
        assert_eq!(f.quantifier, Some(Quantifier::Any));
        let f = parse_filter(field("a"), "eq.a.b.c").unwrap();
        assert_eq!(f.operand, Operand::Scalar("a.b.c".into()));
        assert!(parse_filter(field("a"), "nope.1").is_err());
        assert!(parse_filter(field("a"), "eq").is_err());
        assert!(parse_filter(field("a"), "in.(1,2").is_err());
    }

    #[test]
    fn logic_trees_nest() {
        let c = parse_logic(
            true,
            "(a.eq.1,and(b.gt.2,not.or(c.is.null,d.eq.\"x,y\")),e.in.(1,2))",
        )
        .unwrap();
        let Cond::Or(items) = c else { panic!() };
        assert_eq!(items.len(), 3);
        let Cond::And(inner) = &items[1] else {
            panic!()
        };
        let Cond::Not(n) = &inner[1] else { panic!() };
        let Cond::Or(leaves) = n.as_ref() else {
            panic!()
        };
        let Cond::Filter(f) = &leaves[1] else {
            panic!()
        };
        assert_eq!(f.operand, Operand::Scalar("x,y".into()));
        assert!(parse_logic(true, "(a.eq.1").is_err());
        assert!(parse_logic(true, "()").is_err());
        assert!(parse_logic(false, "(a.eq.1,or(b.eq.2)").is_err());
    }

    #[test]
    fn order_terms() {
        let o = parse_order("id.desc.nullsfirst,meta->>x.asc,name").unwrap();
        assert_eq!(o.len(), 3);
        assert!(o[0].descending && o[0].nulls_first == Some(true));
        assert_eq!(o[1].field.column, "meta");
        assert!(parse_order("id.sideways").is_err());
    }
}
