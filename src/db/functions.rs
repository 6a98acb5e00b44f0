//! SQL functions Outpost registers on every connection so Postgres-style schemas and filters work.

use regex::{Regex, RegexBuilder};
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Error, Result};
use serde_json::Value;
use std::sync::Arc;

const PURE: FunctionFlags = FunctionFlags::SQLITE_UTF8.union(FunctionFlags::SQLITE_DETERMINISTIC);
const VOLATILE: FunctionFlags = FunctionFlags::SQLITE_UTF8;

/// Register every Outpost function on `conn`.
pub fn register(conn: &Connection) -> Result<()> {
    conn.create_scalar_function("gen_random_uuid", 0, VOLATILE, |_| {
        Ok(uuid::Uuid::new_v4().to_string())
    })?;
    conn.create_scalar_function("uuid_generate_v4", 0, VOLATILE, |_| {
        Ok(uuid::Uuid::new_v4().to_string())
    })?;
    conn.create_scalar_function("now", 0, VOLATILE, |_| Ok(now_iso()))?;
    crate::policy::context::register(conn)?;
    // `X REGEXP Y` calls regexp(Y, X).
    conn.create_scalar_function("regexp", 2, PURE, |ctx| regex_fn(ctx, false))?;
    conn.create_scalar_function("regexp_i", 2, PURE, |ctx| regex_fn(ctx, true))?;
    conn.create_scalar_function("pg_like", 2, PURE, |ctx| like_fn(ctx, false))?;
    conn.create_scalar_function("pg_ilike", 2, PURE, |ctx| like_fn(ctx, true))?;
    conn.create_scalar_function("pg_float8", 1, PURE, |ctx| Ok(float8_json(ctx.get_raw(0))))?;
    conn.create_scalar_function("json_contains", 2, PURE, |ctx| json_pair(ctx, contains))?;
    conn.create_scalar_function("json_overlaps", 2, PURE, |ctx| json_pair(ctx, overlaps))?;
    // Supabase's storage helpers, for policies on storage objects.
    conn.create_scalar_function("storage_foldername", 1, PURE, |ctx| {
        let name: Option<String> = ctx.get(0)?;
        Ok(name.map(|n| {
            let mut parts: Vec<&str> = n.split('/').collect();
            parts.pop();
            Value::from(parts).to_string()
        }))
    })?;
    conn.create_scalar_function("storage_filename", 1, PURE, |ctx| {
        let name: Option<String> = ctx.get(0)?;
        Ok(name.map(|n| n.rsplit('/').next().unwrap_or_default().to_string()))
    })?;
    conn.create_scalar_function("storage_extension", 1, PURE, |ctx| {
        let name: Option<String> = ctx.get(0)?;
        Ok(name.map(|n| {
            let file = n.rsplit('/').next().unwrap_or_default();
            file.rsplit_once('.').map_or("", |(_, ext)| ext).to_string()
        }))
    })?;
    Ok(())
}

/// Current time as Postgres renders a `timestamptz` in JSON: ISO 8601 with microseconds, UTC.
pub fn now_iso() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+00:00"
    );
    now.format(&fmt)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// A number as JSON text with the shortest digits that read back exactly (as Postgres prints
/// float8); infinities become the strings Postgres uses.
fn float8_json(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        // Whole numbers print without a fraction, as Postgres prints them.
        ValueRef::Real(r) if r.fract() == 0.0 && r.abs() < 1e15 => Some(format!("{}", r as i64)),
        ValueRef::Real(r) if r.is_finite() => Some(serde_json::Number::from_f64(r)?.to_string()),
        ValueRef::Real(r) if r > 0.0 => Some("\"Infinity\"".into()),
        ValueRef::Real(_) => Some("\"-Infinity\"".into()),
        ValueRef::Text(t) => {
            Some(Value::String(String::from_utf8_lossy(t).into_owned()).to_string())
        }
        ValueRef::Blob(b) => Some(Value::String(format!("\\x{}", hex::encode(b))).to_string()),
    }
}

fn text_arg(ctx: &Context, i: usize) -> Result<Option<String>> {
    Ok(match ctx.get_raw(i) {
        ValueRef::Null => None,
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(r) => Some(r.to_string()),
        ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
    })
}

/// Compile the pattern in argument 0 once per statement (SQLite keeps it as aux data).
fn cached_regex(
    ctx: &Context,
    build: impl FnOnce(&str) -> Result<Regex, regex::Error>,
) -> Result<Option<Arc<Regex>>> {
    let Some(pattern) = text_arg(ctx, 0)? else {
        return Ok(None);
    };
    let re = ctx.get_or_create_aux(0, |_| {
        build(&pattern).map_err(|e| Error::UserFunctionError(Box::new(e)))
    })?;
    Ok(Some(re))
}

fn regex_fn(ctx: &Context, case_insensitive: bool) -> Result<Option<bool>> {
    let Some(re) = cached_regex(ctx, |p| {
        RegexBuilder::new(p)
            .case_insensitive(case_insensitive)
            .size_limit(1 << 20)
            .build()
    })?
    else {
        return Ok(None);
    };
    Ok(text_arg(ctx, 1)?.map(|v| re.is_match(&v)))
}

fn like_fn(ctx: &Context, case_insensitive: bool) -> Result<Option<bool>> {
    let Some(re) = cached_regex(ctx, |p| {
        RegexBuilder::new(&like_to_regex(p))
            .case_insensitive(case_insensitive)
            .dot_matches_new_line(true)
            .build()
    })?
    else {
        return Ok(None);
    };
    Ok(text_arg(ctx, 1)?.map(|v| re.is_match(&v)))
}

/// Translate a Postgres LIKE pattern (`%`, `_`, `\` escapes) into an anchored regex.
pub fn like_to_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    out.push('^');
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push_str(&regex::escape(&next.to_string()));
                }
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out.push('$');
    out
}

fn json_pair(ctx: &Context, f: impl Fn(&Value, &Value) -> bool) -> Result<Option<bool>> {
    // Text that is not JSON contains nothing and is contained by nothing: NULL, not an error,
    // so one malformed row cannot fail a whole query.
    let parse = |i: usize| -> Result<Option<Value>> {
        Ok(text_arg(ctx, i)?.and_then(|s| serde_json::from_str(&s).ok()))
    };
    let (Some(a), Some(b)) = (parse(0)?, parse(1)?) else {
        return Ok(None);
    };
    Ok(Some(f(&a, &b)))
}

/// Postgres `jsonb @>`: does `a` contain `b`?
pub fn contains(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => b
            .iter()
            .all(|(k, bv)| a.get(k).is_some_and(|av| contains(av, bv))),
        (Value::Array(a), Value::Array(b)) => b.iter().all(|bv| {
            a.iter().any(|av| match (av, bv) {
                (Value::Array(_) | Value::Object(_), _) => contains(av, bv),
                _ => av == bv,
            })
        }),
        // A top-level array contains a bare scalar that it holds.
        (Value::Array(a), scalar) => a.iter().any(|av| av == scalar),
        (a, b) => a == b,
    }
}

/// Postgres `&&` on arrays: do they share an element?
pub fn overlaps(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(a), Value::Array(b)) => a.iter().any(|x| b.contains(x)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn like_translation_honours_escapes() {
        let re = Regex::new(&like_to_regex("a\\%b%")).unwrap();
        assert!(re.is_match("a%bxyz"));
        assert!(!re.is_match("axbxyz"));
        assert!(Regex::new(&like_to_regex("(x)_")).unwrap().is_match("(x)1"));
    }

    #[test]
    fn containment_follows_jsonb() {
        assert!(contains(&json!({"a":1,"b":[1,2]}), &json!({"b":[2]})));
        assert!(!contains(&json!({"a":1}), &json!({"a":2})));
        assert!(contains(&json!(["a", "b"]), &json!(["b"])));
        assert!(!contains(&json!(["a"]), &json!(["a", "c"])));
        assert!(overlaps(&json!([1, 2]), &json!([2, 3])));
        assert!(!overlaps(&json!([1]), &json!([2])));
    }

    #[test]
    fn functions_work_in_sql() {
        let c = Connection::open_in_memory().unwrap();
        register(&c).unwrap();
        let (m, l, il): (bool, bool, bool) = c
            .query_row(
                "SELECT 'Hello' REGEXP '^H.l', pg_like('He%', 'Hello'), pg_ilike('hé%', 'HÉllo')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert!(m && l && il);
        let uuid: String = c
            .query_row("SELECT gen_random_uuid()", [], |r| r.get(0))
            .unwrap();
        assert_eq!(uuid.len(), 36);
    }
}
