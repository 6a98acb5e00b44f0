//! Fixed-window request counters per (bucket, client IP or email).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What is being limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    SignIn,
    SignUp,
    Otp,
    Verify,
    Refresh,
}

/// Counts requests per key within the current window.
pub struct RateLimiter {
    window: Duration,
    counts: Mutex<HashMap<(Bucket, String), (Instant, u32)>>,
}

/// Keys kept before expired windows are swept.
const SWEEP_AT: usize = 10_000;

impl RateLimiter {
    /// A limiter whose windows last `window`.
    pub fn new(window: Duration) -> Self {
        RateLimiter {
            window,
            counts: Mutex::default(),
        }
    }

    /// Count one request for `key`; false when `limit` requests were already counted in the
    /// current window.
    pub fn allow(&self, bucket: Bucket, key: &str, limit: u32) -> bool {
        let now = Instant::now();
        let mut counts = match self.counts.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if counts.len() >= SWEEP_AT {
            let window = self.window;
            counts.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = counts.entry((bucket, key.to_string())).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= limit {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_resets_with_the_window() {
        let l = RateLimiter::new(Duration::from_millis(50));
        assert!(l.allow(Bucket::SignIn, "a", 2));
        assert!(l.allow(Bucket::SignIn, "a", 2));
        assert!(!l.allow(Bucket::SignIn, "a", 2));
        assert!(l.allow(Bucket::SignIn, "b", 2));
        assert!(l.allow(Bucket::SignUp, "a", 2));
        std::thread::sleep(Duration::from_millis(60));
        assert!(l.allow(Bucket::SignIn, "a", 2));
    }
}
