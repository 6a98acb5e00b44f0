//! Rendering rows (JSON texts made by SQLite) into the representation the client asked for.

use super::error::{RestError, RestResult};
use super::prefer::{Accept, Media};
use axum::http::StatusCode;
use serde_json::Value;

/// A rendered body and its content type.
pub struct Body {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Render `rows` (each one JSON object text) as the `accept` representation.
pub fn render(rows: &[String], accept: Accept) -> RestResult<Body> {
    match accept.media {
        Media::Single => {
            if rows.len() != 1 {
                return Err(RestError::not_single(rows.len()));
            }
            let text = if accept.strip_nulls {
                strip(&rows[0])?
            } else {
                rows[0].clone()
            };
            Ok(Body {
                content_type: "application/vnd.pgrst.object+json; charset=utf-8",
                bytes: text.into_bytes(),
            })
        }
        Media::Csv => Ok(Body {
            content_type: "text/csv; charset=utf-8",
            bytes: csv(rows)?.into_bytes(),
        }),
        Media::Json | Media::OpenApi => {
            let mut out =
                String::with_capacity(rows.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
            out.push('[');
            for (i, row) in rows.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                if accept.strip_nulls {
                    out.push_str(&strip(row)?);
                } else {
                    out.push_str(row);
                }
            }
            out.push(']');
            Ok(Body {
                content_type: "application/json; charset=utf-8",
                bytes: out.into_bytes(),
            })
        }
    }
}

fn parse(row: &str) -> RestResult<Value> {
    serde_json::from_str(row).map_err(|e| {
        RestError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "XX000",
            "cannot render a row",
        )
        .details(e.to_string())
    })
}

/// Remove null members, recursively, as `json_strip_nulls` does.
fn strip(row: &str) -> RestResult<String> {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|_, x| !x.is_null());
                m.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v = parse(row)?;
    walk(&mut v);
    Ok(v.to_string())
}

fn csv(rows: &[String]) -> RestResult<String> {
    let mut out = String::new();
    let mut header: Vec<String> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let Value::Object(obj) = parse(row)? else {
            continue;
        };
        if i == 0 {
            header = obj.keys().cloned().collect();
            out.push_str(
                &header
                    .iter()
                    .map(|h| csv_field(h))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            out.push('\n');
        }
        let line: Vec<String> = header
            .iter()
            .map(|k| match obj.get(k) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => csv_field(s),
                Some(other) => csv_field(&other.to_string()),
            })
            .collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    Ok(out)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `Content-Range` for `n` rows starting at `offset` of `total` (when counted).
pub fn content_range(offset: i64, n: usize, total: Option<i64>) -> String {
    let total = total.map(|t| t.to_string()).unwrap_or_else(|| "*".into());
    if n == 0 {
        format!("*/{total}")
    } else {
        format!("{}-{}/{total}", offset, offset + n as i64 - 1)
    }
}
