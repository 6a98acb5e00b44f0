//! Runtime configuration of a serving Outpost, resolved from flags and environment.

use crate::cli::ServeArgs;
use std::path::PathBuf;

/// Everything `serve` needs, after flags and environment are resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub http: String,
    pub data_dir: PathBuf,
    pub migrations_dir: Option<PathBuf>,
    /// `None` allows any origin.
    pub cors_origins: Option<Vec<String>>,
    pub max_body_bytes: usize,
    pub max_query_bytes: usize,
    pub read_connections: u32,
    /// Where functions live (one folder each).
    pub functions_dir: Option<PathBuf>,
    /// Stream the database to this replica URL.
    pub replica: Option<String>,
    /// Follow this replica URL as a read replica.
    pub follow: Option<String>,
}

impl Config {
    /// Build from the `serve` command line.
    pub fn from_serve(args: ServeArgs) -> Self {
        let origins: Vec<String> = args
            .cors_origins
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let cors_origins = if origins.is_empty() || origins.iter().any(|o| o == "*") {
            None
        } else {
            Some(origins)
        };
        Config {
            http: args.http,
            data_dir: args.data.data_dir,
            migrations_dir: args.migrations_dir,
            cors_origins,
            max_body_bytes: args.max_body_bytes,
            max_query_bytes: args.max_query_bytes,
            read_connections: args.read_connections.max(1),
            functions_dir: args.functions_dir,
            replica: args.replica.filter(|u| !u.trim().is_empty()),
            follow: args.follow.filter(|u| !u.trim().is_empty()),
        }
    }

    /// Path of the database of record.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("data.db")
    }
}

/// Seconds in a Go duration string (`300ms`, `1.5h`, `2h45m`).
pub fn parse_go_duration(s: &str) -> Option<f64> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// A duration from environment variable `name` (Go syntax: `500ms`, `2s`, `1h30m`), or
/// `default` when unset or empty.
pub fn env_duration(
    name: &str,
    default: std::time::Duration,
) -> Result<std::time::Duration, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => parse_go_duration(&v)
            .filter(|s| *s > 0.0)
            .map(std::time::Duration::from_secs_f64)
            .ok_or_else(|| format!("{name}={v} is not a duration like 500ms, 2s or 1h")),
        _ => Ok(default),
    }
}
