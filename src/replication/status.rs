//! What operators see of replication: on `/health`, `/metrics`, the admin API and in logs.

use serde::Serialize;
use std::sync::{Arc, Mutex};

/// A replicating primary's or a following replica's progress.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// `primary` (ships to `url`) or `replica` (follows `url`).
    pub role: &'static str,
    pub url: String,
    /// Newest TXID written locally (primary) or applied (replica).
    pub txid: u64,
    /// Newest TXID the destination holds (primary).
    pub uploaded_txid: u64,
    /// Files and bytes waiting for the destination (primary).
    pub pending_files: u64,
    pub pending_bytes: u64,
    /// Seconds the oldest waiting change has waited (primary), or how far the applied state is
    /// behind the newest file seen (replica).
    pub lag_seconds: f64,
    pub bytes_shipped: u64,
    pub files_shipped: u64,
    /// RFC 3339.
    pub last_upload_at: Option<String>,
    pub last_snapshot_txid: u64,
    pub last_snapshot_at: Option<String>,
    pub last_checkpoint_at: Option<String>,
    pub last_poll_at: Option<String>,
    /// The newest TXID the replica has seen on the destination (replica).
    pub remote_txid: u64,
    pub last_error: Option<String>,
    /// The primary's URL writes are sent to, when configured (replica).
    pub primary_url: Option<String>,
}

/// Shared, cheap-to-clone handle on the current [`Snapshot`].
#[derive(Clone, Default)]
pub struct Status(Arc<Mutex<Snapshot>>);

impl Status {
    /// A status for `role` at `url`.
    pub fn new(role: &'static str, url: &str) -> Status {
        Status(Arc::new(Mutex::new(Snapshot {
            role,
            url: url.to_string(),
            ..Snapshot::default()
        })))
    }

    /// Change the status in place.
    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        match self.0.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// A copy of the current status.
    pub fn get(&self) -> Snapshot {
        match self.0.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

/// Now, RFC 3339 with milliseconds.
pub fn now_rfc3339() -> String {
    rfc3339_ms(now_ms())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `ms` since the epoch as RFC 3339 with milliseconds (`2026-11-23T10:00:00.123Z`), the form
/// Litestream's `litestream-timestamp` metadata uses.
pub fn rfc3339_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}
