//! Values in: JSON bodies and query-string operands converted by the target column's type.

use super::error::{RestError, RestResult};
use crate::db::schema::ColType;
use rusqlite::types::Value as SqlValue;
use serde_json::Value;

/// Postgres's name for a kind, used in error messages.
pub fn type_name(ty: ColType) -> &'static str {
    match ty {
        ColType::Bool => "boolean",
        ColType::Integer => "bigint",
        ColType::Real => "double precision",
        ColType::Text | ColType::Any => "text",
        ColType::Json => "json",
        ColType::Blob => "bytea",
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "yes" | "y" | "on" | "1" => Some(true),
        "f" | "false" | "no" | "n" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Postgres `bytea` hex input `\x0a0b`, else the text's own bytes.
fn parse_bytea(s: &str) -> Option<Vec<u8>> {
    match s.strip_prefix("\\x") {
        Some(h) => hex::decode(h).ok(),
        None => Some(s.as_bytes().to_vec()),
    }
}

/// A query-string operand bound for comparison with a value of type `ty`.
pub fn from_text(ty: ColType, s: &str) -> RestResult<SqlValue> {
    let bad = || RestError::invalid_input(type_name(ty), s);
    Ok(match ty {
        ColType::Bool => SqlValue::Integer(i64::from(parse_bool(s).ok_or_else(bad)?)),
        ColType::Integer => SqlValue::Integer(s.trim().parse::<i64>().map_err(|_| bad())?),
        ColType::Real => SqlValue::Real(parse_real(s).ok_or_else(bad)?),
        ColType::Blob => SqlValue::Blob(parse_bytea(s).ok_or_else(bad)?),
        ColType::Any => match s.parse::<i64>() {
            Ok(i) => SqlValue::Integer(i),
            Err(_) => match parse_real(s) {
                Some(r) => SqlValue::Real(r),
                None => SqlValue::Text(s.to_string()),
            },
        },
        ColType::Text | ColType::Json => SqlValue::Text(s.to_string()),
    })
}

fn parse_real(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "nan" | "infinity" | "-infinity" | "inf" | "-inf" => None,
        _ => t.parse::<f64>().ok().filter(|f| f.is_finite()),
    }
}

/// An operand compared with a JSON value (`col->key`): a JSON literal when it is one (`5`,
/// `true`, `"text"`), else the text itself.
pub fn json_scalar(s: &str) -> SqlValue {
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Number(n)) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or_default()),
        },
        Ok(Value::Bool(b)) => SqlValue::Integer(i64::from(b)),
        Ok(Value::String(t)) => SqlValue::Text(t),
        _ => SqlValue::Text(s.to_string()),
    }
}

/// A JSON body value stored into a column of type `ty`.
pub fn from_json(ty: ColType, v: &Value) -> RestResult<SqlValue> {
    let render = || v.to_string();
    let bad = || RestError::invalid_input(type_name(ty), &render());
    Ok(match (ty, v) {
        (_, Value::Null) => SqlValue::Null,
        (ColType::Json, v) => SqlValue::Text(v.to_string()),
        (ColType::Bool, Value::Bool(b)) => SqlValue::Integer(i64::from(*b)),
        (ColType::Bool, Value::String(s)) => {
            SqlValue::Integer(i64::from(parse_bool(s).ok_or_else(bad)?))
        }
        (ColType::Bool, Value::Number(n)) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
            SqlValue::Integer(n.as_i64().unwrap_or_default())
        }
        (ColType::Integer, Value::Number(n)) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => SqlValue::Integer(f as i64),
                _ => return Err(bad()),
            },
        },
        (ColType::Integer, Value::String(s)) => {
            SqlValue::Integer(s.trim().parse::<i64>().map_err(|_| bad())?)
        }
        (ColType::Real, Value::Number(n)) => SqlValue::Real(n.as_f64().ok_or_else(bad)?),
        (ColType::Real, Value::String(s)) => SqlValue::Real(parse_real(s).ok_or_else(bad)?),
        (ColType::Blob, Value::String(s)) => SqlValue::Blob(parse_bytea(s).ok_or_else(bad)?),
        (ColType::Text, Value::String(s)) | (ColType::Any, Value::String(s)) => {
            SqlValue::Text(s.clone())
        }
        (ColType::Text, Value::Number(n)) => SqlValue::Text(n.to_string()),
        (ColType::Text, Value::Bool(b)) => SqlValue::Text(b.to_string()),
        (ColType::Any, Value::Number(n)) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().ok_or_else(bad)?),
        },
        (ColType::Any, Value::Bool(b)) => SqlValue::Integer(i64::from(*b)),
        (ColType::Text | ColType::Any, v @ (Value::Array(_) | Value::Object(_))) => {
            SqlValue::Text(v.to_string())
        }
        _ => return Err(bad()),
    })
}

/// A value read from SQLite, as JSON for a column of type `ty` (used where SQLite cannot render
/// the JSON itself, such as rows returned by an RPC function's INSERT … RETURNING).
pub fn to_json(ty: ColType, v: SqlValue) -> Value {
    match (ty, v) {
        (_, SqlValue::Null) => Value::Null,
        (ColType::Bool, SqlValue::Integer(i)) => Value::Bool(i != 0),
        (ColType::Bool, SqlValue::Real(r)) => Value::Bool(r != 0.0),
        (ColType::Json, SqlValue::Text(t)) => serde_json::from_str(&t).unwrap_or(Value::String(t)),
        (_, SqlValue::Integer(i)) => Value::from(i),
        (ColType::Real, SqlValue::Real(r)) if r.fract() == 0.0 && r.abs() < 1e15 => {
            Value::from(r as i64)
        }
        (_, SqlValue::Real(r)) => {
            serde_json::Number::from_f64(r).map_or(Value::Null, Value::Number)
        }
        (_, SqlValue::Text(t)) => Value::String(t),
        (_, SqlValue::Blob(b)) => Value::String(format!("\\x{}", hex::encode(b))),
    }
}

/// The JSON text for a `cs`/`cd`/`ov` operand: JSON itself, or a Postgres array literal `{a,b}`.
pub fn json_operand(s: &str) -> RestResult<String> {
    if let Ok(v) = serde_json::from_str::<Value>(s) {
        if v.is_array() || v.is_object() {
            return Ok(v.to_string());
        }
    }
    if let Some(items) = super::parse::parse_list(s, '{', '}') {
        let arr: Vec<Value> = items.iter().map(|i| literal_element(i)).collect();
        return Ok(Value::Array(arr).to_string());
    }
    if let Some(items) = super::parse::parse_list(s, '(', ')') {
        let arr: Vec<Value> = items.iter().map(|i| literal_element(i)).collect();
        return Ok(Value::Array(arr).to_string());
    }
    Err(RestError::invalid_input("json", s))
}

/// An element of a Postgres array literal: numbers and booleans keep their type.
fn literal_element(s: &str) -> Value {
    if s.eq_ignore_ascii_case("null") {
        return Value::Null;
    }
    match serde_json::from_str::<Value>(s) {
        Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
        _ => Value::String(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_in_by_type() {
        assert_eq!(
            from_json(ColType::Bool, &json!(true)).unwrap(),
            SqlValue::Integer(1)
        );
        assert_eq!(
            from_json(ColType::Json, &json!({"a":1})).unwrap(),
            SqlValue::Text("{\"a\":1}".into())
        );
        assert_eq!(
            from_json(ColType::Integer, &json!("42")).unwrap(),
            SqlValue::Integer(42)
        );
        assert_eq!(
            from_json(ColType::Blob, &json!("\\x0aff")).unwrap(),
            SqlValue::Blob(vec![10, 255])
        );
        let e = from_json(ColType::Integer, &json!("abc")).unwrap_err();
        assert_eq!(e.code, "22P02");
        assert!(from_json(ColType::Integer, &json!(1.5)).is_err());
        assert!(from_json(ColType::Bool, &json!({})).is_err());
    }

    #[test]
    fn operands() {
        assert_eq!(json_operand("{a,2,true}").unwrap(), "[\"a\",2,true]");
        assert_eq!(json_operand("{\"k\":1}").unwrap(), "{\"k\":1}");
        assert_eq!(
            from_text(ColType::Bool, "false").unwrap(),
            SqlValue::Integer(0)
        );
        assert!(from_text(ColType::Integer, "x").is_err());
    }
}
