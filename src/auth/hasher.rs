//! A small fixed pool of threads for password hashing.
//!
//! argon2id needs megabytes of memory per hash and tens of milliseconds of CPU. On the tokio
//! blocking pool, a burst of sign-ins ran one hash per request at once on many threads, and the
//! allocator kept every thread's arena at its high-water mark (RSS grew past a gigabyte in the
//! benchmark). One thread per core bounds both the memory and the CPU taken from other requests;
//! excess sign-ins queue here.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, LazyLock, Mutex};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    tx: Mutex<Sender<Job>>,
}

static POOL: LazyLock<Pool> = LazyLock::new(|| {
    let (tx, rx) = channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for i in 0..threads {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("outpost-hash-{i}"))
            .spawn(move || work(&rx));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a password hashing thread");
        }
    }
    Pool { tx: Mutex::new(tx) }
});

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Run `f` on a hashing thread; `None` if the pool is gone.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (done, result) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(f());
    });
    let sent = match POOL.tx.lock() {
        Ok(tx) => tx.send(job).is_ok(),
        Err(poisoned) => poisoned.into_inner().send(job).is_ok(),
    };
    if !sent {
        return None;
    }
    result.await.ok()
}
