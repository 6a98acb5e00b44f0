//! The `Prefer` and `Accept` request headers of the PostgREST dialect.

use super::error::{RestError, RestResult};
use axum::http::{HeaderMap, StatusCode};

/// `Prefer: return=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    Minimal,
    Representation,
    HeadersOnly,
}

/// `Prefer: resolution=…` (upsert).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    MergeDuplicates,
    IgnoreDuplicates,
}

/// Every preference Outpost understands.
#[derive(Debug, Clone, Default)]
pub struct Prefer {
    pub return_: Option<Return>,
    /// `count=exact|planned|estimated`: all answered exactly.
    pub count: bool,
    pub resolution: Option<Resolution>,
    pub missing_default: bool,
    pub rollback: bool,
    pub strict: bool,
    pub max_affected: Option<i64>,
    pub single_object_params: bool,
    /// Preferences honoured, echoed in `Preference-Applied`.
    pub applied: Vec<String>,
}

impl Prefer {
    /// Read every `Prefer` header (values may be comma-joined).
    pub fn from_headers(headers: &HeaderMap) -> RestResult<Prefer> {
        let mut p = Prefer::default();
        let mut invalid = Vec::new();
        for value in headers.get_all("prefer") {
            let Ok(text) = value.to_str() else {
                invalid.push("<non-ASCII>".to_string());
                continue;
            };
            for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let known = match item {
                    "return=minimal" => set(&mut p.return_, Return::Minimal),
                    "return=representation" => set(&mut p.return_, Return::Representation),
                    "return=headers-only" => set(&mut p.return_, Return::HeadersOnly),
                    "count=exact" | "count=planned" | "count=estimated" => {
                        p.count = true;
                        true
                    }
                    "resolution=merge-duplicates" => {
                        set(&mut p.resolution, Resolution::MergeDuplicates)
                    }
                    "resolution=ignore-duplicates" => {
                        set(&mut p.resolution, Resolution::IgnoreDuplicates)
                    }
                    "missing=default" => {
                        p.missing_default = true;
                        true
                    }
                    "missing=null" => true,
                    "tx=rollback" => {
                        p.rollback = true;
                        true
                    }
                    "tx=commit" => true,
                    "handling=strict" => {
                        p.strict = true;
                        true
                    }
                    "handling=lenient" => true,
                    "params=single-object" => {
                        p.single_object_params = true;
                        true
                    }
                    _ => match item.strip_prefix("max-affected=") {
                        Some(n) => match n.parse::<i64>() {
                            Ok(n) if n >= 0 => {
                                p.max_affected = Some(n);
                                true
                            }
                            _ => false,
                        },
                        None => item.starts_with("timezone="),
                    },
                };
                if known {
                    p.applied.push(item.to_string());
                } else {
                    invalid.push(item.to_string());
                }
            }
        }
        if !p.strict {
            // max-affected is honoured only with handling=strict, so only then is it applied.
            p.max_affected = None;
            p.applied.retain(|a| !a.starts_with("max-affected="));
        }
        if p.strict && !invalid.is_empty() {
            return Err(RestError::new(
                StatusCode::BAD_REQUEST,
                "PGRST122",
                "Invalid preferences given with handling=strict",
            )
            .details(format!("Invalid preferences: {}", invalid.join(", "))));
        }
        Ok(p)
    }
}

fn set<T>(slot: &mut Option<T>, v: T) -> bool {
    *slot = Some(v);
    true
}

/// The response representation asked for by `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    Json,
    Single,
    Csv,
    OpenApi,
}

/// The chosen representation and whether nulls are stripped from it.
#[derive(Debug, Clone, Copy)]
pub struct Accept {
    pub media: Media,
    pub strip_nulls: bool,
}

impl Accept {
    /// Pick the first acceptable media type of the `Accept` header.
    pub fn from_headers(headers: &HeaderMap) -> RestResult<Accept> {
        let Some(raw) = headers.get("accept").and_then(|v| v.to_str().ok()) else {
            return Ok(Accept {
                media: Media::Json,
                strip_nulls: false,
            });
        };
        for entry in raw.split(',') {
            let mut parts = entry.split(';').map(str::trim);
            let mime = parts.next().unwrap_or_default().to_ascii_lowercase();
            let strip_nulls = parts.any(|p| p.eq_ignore_ascii_case("nulls=stripped"));
            let media = match mime.as_str() {
                "application/json"
                | "*/*"
                | "application/*"
                | "application/vnd.pgrst.array+json"
                | "" => Media::Json,
                "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => {
                    Media::Single
                }
                "text/csv" => Media::Csv,
                "application/openapi+json" => Media::OpenApi,
                _ => continue,
            };
            return Ok(Accept { media, strip_nulls });
        }
        Err(RestError::new(
            StatusCode::NOT_ACCEPTABLE,
            "PGRST107",
            format!("None of these media types are available: {raw}"),
        ))
    }
}
