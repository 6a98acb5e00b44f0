//! Execution logs: the last invocations of each function (status, duration, console output,
//! error), kept in memory. They are diagnostics, not data: keeping them out of the database
//! keeps every invocation from being a write that replication must ship.

use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// One console line.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub level: String,
    pub message: String,
}

/// One invocation as the logs tell it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Increasing across all functions: `?after=` pages with it.
    pub id: u64,
    pub function: String,
    /// RFC 3339, when the invocation started.
    pub started_at: String,
    /// `http`, `cron` or `webhook`.
    pub trigger: String,
    pub method: String,
    pub path: String,
    /// The status answered (relay errors included).
    pub status: u16,
    pub duration_ms: f64,
    /// Why it failed, when Outpost or the function failed.
    pub error: Option<String>,
    pub console: Vec<Line>,
}

/// The logs of every function, at most `per_function` entries each.
pub struct Logs {
    per_function: usize,
    next: AtomicU64,
    entries: Mutex<HashMap<String, VecDeque<Entry>>>,
}

impl Logs {
    /// Keep the last `per_function` invocations of each function.
    pub fn new(per_function: usize) -> Logs {
        Logs {
            per_function,
            next: AtomicU64::new(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Record `entry` (its id is assigned here).
    pub fn push(&self, mut entry: Entry) {
        if self.per_function == 0 {
            return;
        }
        entry.id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut all = match self.entries.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let list = all.entry(entry.function.clone()).or_default();
        if list.len() == self.per_function {
            list.pop_front();
        }
        list.push_back(entry);
    }

    /// The newest entries of `function` first, at most `limit`, only those with an id above
    /// `after`, only failures when `errors`.
    pub fn recent(&self, function: &str, limit: usize, after: u64, errors: bool) -> Vec<Entry> {
        let all = match self.entries.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        all.get(function)
            .map(|list| {
                list.iter()
                    .rev()
                    .filter(|e| e.id > after && (!errors || e.error.is_some() || e.status >= 500))
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forget `function`'s entries (it was deleted).
    pub fn forget(&self, function: &str) {
        let mut all = match self.entries.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        all.remove(function);
    }
}
