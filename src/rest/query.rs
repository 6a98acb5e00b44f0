//! One `/rest/v1` request's query string, assembled into select, filters, order and paging per
//! embedding level. Level paths are the embed names from the top table down (`[]` is the top).

use super::error::{RestError, RestResult};
use super::parse::{self, Cond, OrderTerm, SelectItem};
use std::collections::HashMap;

/// Embedding level: the names of the embeds from the top table down.
pub type Path = Vec<String>;

/// The parsed query string.
#[derive(Debug, Clone, Default)]
pub struct ApiQuery {
    pub select: Vec<SelectItem>,
    pub conds: HashMap<Path, Vec<Cond>>,
    pub order: HashMap<Path, Vec<OrderTerm>>,
    pub limit: HashMap<Path, i64>,
    pub offset: HashMap<Path, i64>,
    pub on_conflict: Option<Vec<String>>,
    pub columns: Option<Vec<String>>,
    /// Parameters that are not part of the grammar (RPC arguments on GET).
    pub extra: Vec<(String, String)>,
    /// Why each entry of `extra` is not a filter: an error for table endpoints.
    pub bad_filters: Vec<RestError>,
}

impl ApiQuery {
    /// Parse a raw query string (form-encoded: `+` is a space).
    pub fn parse(raw: &str) -> RestResult<ApiQuery> {
        let mut q = ApiQuery {
            select: vec![SelectItem::Star],
            ..Default::default()
        };
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            q.add(&key, &value)?;
        }
        Ok(q)
    }

    fn add(&mut self, key: &str, value: &str) -> RestResult<()> {
        match key {
            "select" => {
                self.select = parse::parse_select(value)?;
                return Ok(());
            }
            "on_conflict" => {
                self.on_conflict = Some(split_columns(value));
                return Ok(());
            }
            "columns" => {
                self.columns = Some(split_columns(value));
                return Ok(());
            }
            _ => {}
        }
        let segments = split_key(key);
        let Some((last, parents)) = segments.split_last() else {
            return Ok(());
        };
        let mut path: Path = parents.to_vec();
        match last.as_str() {
            "order" => {
                self.order.insert(path, parse::parse_order(value)?);
            }
            "limit" => {
                self.limit.insert(path, parse_count("limit", value)?);
            }
            "offset" => {
                self.offset.insert(path, parse_count("offset", value)?);
            }
            "or" | "and" => {
                let negate = path.last().map(String::as_str) == Some("not");
                if negate {
                    path.pop();
                }
                let tree = parse::parse_logic(last == "or", value)?;
                let tree = if negate {
                    Cond::Not(Box::new(tree))
                } else {
                    tree
                };
                self.conds.entry(path).or_default().push(tree);
            }
            _ => {
                let field = match parse::parse_field(last) {
                    Ok(f) => f,
                    Err(e) if parents.is_empty() => {
                        // Not a filter: keep it for endpoints that take named arguments.
                        self.extra.push((key.to_string(), value.to_string()));
                        self.bad_filters.push(e);
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                };
                let filter = match parse::parse_filter(field, value) {
                    Ok(f) => f,
                    Err(e) if parents.is_empty() => {
                        self.extra.push((key.to_string(), value.to_string()));
                        self.bad_filters.push(e);
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                };
                self.conds
                    .entry(path)
                    .or_default()
                    .push(Cond::Filter(filter));
            }
        }
        Ok(())
    }

    /// For table endpoints every parameter must be part of the grammar.
    pub fn require_grammar(&self) -> RestResult<()> {
        match self.bad_filters.first() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

/// `"a","b"` or `a,b` → [a, b].
fn split_columns(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

/// Split a parameter name on dots outside double quotes.
fn split_key(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in key.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            '.' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn parse_count(name: &str, value: &str) -> RestResult<i64> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            RestError::parse(
                format!("\"failed to parse {name} parameter ({value})\""),
                format!("{name} must be a non-negative integer"),
            )
        })
}
