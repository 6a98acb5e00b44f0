//! A fixed set of worker threads running invocations, fed by a bounded queue: when every worker
//! is busy and the queue is full, callers are told so at once instead of waiting.

use super::runtime::{self, Answer, Failure, Invocation, Outcome};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

struct Task {
    invocation: Invocation,
    reply: oneshot::Sender<Outcome>,
}

/// Handle to the workers.
#[derive(Clone)]
pub struct Pool {
    tx: Sender<Task>,
    /// Invocations running or waiting; at most `capacity`.
    in_flight: Arc<AtomicUsize>,
    capacity: usize,
}

/// Why an invocation was not run.
#[derive(Debug)]
pub enum Refused {
    /// Every worker is busy and the queue is full.
    Full,
    /// The workers are gone (shutting down, or one panicked past recovery).
    Gone,
}

impl Pool {
    /// Start `workers` threads with room for `queue` waiting invocations; with `warm`, each
    /// keeps a context ready (built at start, rebuilt after one is discarded) for bodies up to
    /// `max_body`.
    pub fn start(workers: usize, queue: usize, warm: Option<usize>) -> Pool {
        let (tx, rx) = channel::<Task>();
        let rx = Arc::new(Mutex::new(rx));
        let in_flight = Arc::new(AtomicUsize::new(0));
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            let in_flight = in_flight.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("outpost-fn-{i}"))
                // boa recurses on the native stack; give it room below its recursion limit.
                .stack_size(16 * 1024 * 1024)
                .spawn(move || loop {
                    if let Some(max_body) = warm {
                        runtime::prewarm(max_body);
                    }
                    let task = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(p) => p.into_inner().recv(),
                    };
                    let Ok(task) = task else {
                        return;
                    };
                    // A caller that went away before its turn (a closed connection) is not
                    // run: the queue drains at once instead of working for nobody.
                    if task.reply.is_closed() {
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        continue;
                    }
                    let slot = in_flight.clone();
                    // Freed before the answer, so a caller that sends its next request as soon
                    // as it has the answer finds the slot free.
                    let mut answer = Answer::new(
                        task.reply,
                        Box::new(move || {
                            slot.fetch_sub(1, Ordering::SeqCst);
                        }),
                    );
                    // A panic inside the engine fails this invocation, not the worker.
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        runtime::run(task.invocation, &mut answer)
                    }));
                    if ran.is_err() && answer.pending() {
                        answer.release();
                        answer.send(Err(Failure::Handler(
                            "the engine failed on this function".into(),
                        )));
                    }
                    answer.release();
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a function worker");
            }
        }
        Pool {
            tx,
            in_flight,
            capacity: workers.max(1) + queue,
        }
    }

    /// Queue an invocation; the receiver gets its outcome.
    pub fn submit(&self, invocation: Invocation) -> Result<oneshot::Receiver<Outcome>, Refused> {
        let taken = self.in_flight.fetch_add(1, Ordering::SeqCst);
        if taken >= self.capacity {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return Err(Refused::Full);
        }
        let (reply, rx) = oneshot::channel();
        match self.tx.send(Task { invocation, reply }) {
            Ok(()) => Ok(rx),
            Err(_) => {
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                Err(Refused::Gone)
            }
        }
    }
}
