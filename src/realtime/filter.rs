//! postgres_changes bindings: event, schema, table and a `column=op.value` filter.

use serde_json::Value;

/// A comparison of one column with a value or a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub column: String,
    pub op: FilterOp,
    pub values: Vec<String>,
}

/// The operators realtime filters support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
}

/// One binding of a channel, with the id the join reply gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub id: u64,
    /// `*`, `INSERT`, `UPDATE` or `DELETE`.
    pub event: String,
    pub schema: String,
    pub table: Option<String>,
    pub filter: Option<Filter>,
    /// The filter as the client wrote it, echoed in the join reply.
    pub filter_text: Option<String>,
}

/// Parse `col=op.value` (`in.(a,b)` for lists).
pub fn parse_filter(text: &str) -> Result<Filter, String> {
    let bad = || {
        format!("invalid filter `{text}`: use column=op.value with eq, neq, lt, lte, gt, gte or in")
    };
    let (column, rest) = text.split_once('=').ok_or_else(bad)?;
    let (op, value) = rest.split_once('.').ok_or_else(bad)?;
    let op = match op {
        "eq" => FilterOp::Eq,
        "neq" => FilterOp::Neq,
        "lt" => FilterOp::Lt,
        "lte" => FilterOp::Lte,
        "gt" => FilterOp::Gt,
        "gte" => FilterOp::Gte,
        "in" => FilterOp::In,
        _ => return Err(bad()),
    };
    let values = if op == FilterOp::In {
        let inner = value
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'))
            .ok_or_else(bad)?;
        inner
            .split(',')
            .map(|v| v.trim().trim_matches('"').to_string())
            .collect()
    } else {
        vec![value.to_string()]
    };
    if column.trim().is_empty() {
        return Err(bad());
    }
    Ok(Filter {
        column: column.trim().to_string(),
        op,
        values,
    })
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        _ => a.cmp(b),
    }
}

impl Filter {
    /// Whether `row` (a JSON object) passes.
    pub fn matches(&self, row: &Value) -> bool {
        let Some(v) = row.get(&self.column).and_then(as_text) else {
            return false;
        };
        let eq = |x: &String| compare(&v, x) == std::cmp::Ordering::Equal || v == *x;
        let first = &self.values[0];
        match self.op {
            FilterOp::Eq => eq(first),
            FilterOp::Neq => !eq(first),
            FilterOp::Lt => compare(&v, first).is_lt(),
            FilterOp::Lte => compare(&v, first).is_le(),
            FilterOp::Gt => compare(&v, first).is_gt(),
            FilterOp::Gte => compare(&v, first).is_ge(),
            FilterOp::In => self.values.iter().any(eq),
        }
    }
}

impl Binding {
    /// Whether a change of `kind` to `schema`.`table` with `row` is for this binding.
    pub fn wants(&self, kind: &str, schema: &str, table: &str, row: &Value) -> bool {
        (self.event == "*" || self.event.eq_ignore_ascii_case(kind))
            && (self.schema == "*" || self.schema == schema)
            && self.table.as_deref().is_none_or(|t| t == "*" || t == table)
            && self.filter.as_ref().is_none_or(|f| f.matches(row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters() {
        let row = json!({"id": 5, "status": "open", "n": 2.5, "done": true});
        for (f, want) in [
            ("id=eq.5", true),
            ("id=neq.5", false),
            ("n=lt.3", true),
            ("n=gte.3", false),
            ("id=gt.10", false),
            ("id=lte.5", true),
            ("status=in.(open,closed)", true),
            ("status=in.(closed)", false),
            ("done=eq.true", true),
            ("missing=eq.1", false),
        ] {
            assert_eq!(parse_filter(f).unwrap().matches(&row), want, "{f}");
        }
        assert!(parse_filter("id=like.5").is_err());
        assert!(parse_filter("id").is_err());
        assert!(parse_filter("status=in.open").is_err());
    }
}
