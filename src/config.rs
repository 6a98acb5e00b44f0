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
        }
    }

    /// Path of the database of record.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("data.db")
    }
}
