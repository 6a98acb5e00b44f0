//! A buffered stderr for logs: one request log line must not cost one `write` syscall.
//!
//! Lines are appended to a shared buffer that a background thread flushes every
//! [`FLUSH_EVERY`], or at once when it grows past [`FLUSH_AT`]. Warnings and errors are written
//! through immediately (after whatever is buffered, so order is kept).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

const FLUSH_EVERY: Duration = Duration::from_millis(200);
const FLUSH_AT: usize = 64 * 1024;

/// Buffered stderr, shared by every log call.
#[derive(Clone)]
pub struct BufferedStderr {
    buf: Arc<Mutex<Vec<u8>>>,
}

impl BufferedStderr {
    /// A buffer with its flushing thread.
    pub fn start() -> BufferedStderr {
        let me = BufferedStderr {
            buf: Arc::new(Mutex::new(Vec::with_capacity(FLUSH_AT))),
        };
        let flusher = me.clone();
        let spawned = std::thread::Builder::new()
            .name("outpost-log".into())
            .spawn(move || loop {
                std::thread::sleep(FLUSH_EVERY);
                flusher.flush_now();
            });
        if spawned.is_err() {
            // No thread: every line is written through (see `Line::drop`).
            eprintln!("outpost: cannot start the log flusher; logging unbuffered");
        }
        me
    }

    /// Write out what is buffered.
    pub fn flush_now(&self) {
        let pending = match self.buf.lock() {
            Ok(mut b) if !b.is_empty() => std::mem::take(&mut *b),
            _ => return,
        };
        let _ = io::stderr().write_all(&pending);
    }
}

/// One log line being formatted.
pub struct Line {
    out: BufferedStderr,
    bytes: Vec<u8>,
    urgent: bool,
}

impl Write for Line {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let full = match self.out.buf.lock() {
            Ok(mut b) => {
                b.extend_from_slice(&self.bytes);
                b.len() >= FLUSH_AT
            }
            Err(_) => {
                let _ = io::stderr().write_all(&self.bytes);
                false
            }
        };
        if full || self.urgent {
            self.out.flush_now();
        }
    }
}

impl<'a> MakeWriter<'a> for BufferedStderr {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            out: self.clone(),
            bytes: Vec::with_capacity(160),
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Line {
        Line {
            out: self.clone(),
            bytes: Vec::with_capacity(160),
            urgent: *meta.level() <= Level::WARN,
        }
    }
}
