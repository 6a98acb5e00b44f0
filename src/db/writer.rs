//! The single writer: one thread owns the only read-write connection and is fed by a queue.
//!
//! Jobs that arrive together are grouped into one transaction (one fsync-free WAL commit for
//! many requests). Each job runs inside its own SAVEPOINT, so a job that fails, or asks to be
//! rolled back, is undone alone while the others in the batch still commit. A job's result is
//! handed back only after the COMMIT succeeded: an acknowledged write is in the WAL.

use super::schema::Schema;
use super::{DbError, SchemaCache};
use crate::policy::context::{self, RequestContext};
use crate::policy::views;
use crate::realtime::capture::{Capture, Committed};
use rusqlite::Connection;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most jobs grouped into one transaction.
const MAX_BATCH: usize = 64;
/// Jobs waiting beyond this make senders wait (back-pressure instead of unbounded memory).
const QUEUE_DEPTH: usize = 4096;

/// Whether a job's changes are kept when it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Commit,
    /// Run, return the result, and undo everything (`Prefer: tx=rollback`).
    Rollback,
}

/// What a job reports back to the writer loop once it ran.
struct Ran {
    keep: bool,
    /// Delivers the job's result, or the batch's commit error, to the waiting request.
    deliver: Box<dyn FnOnce(Option<DbError>) + Send>,
}

type Job = Box<dyn FnOnce(&Connection) -> Ran + Send>;

/// Work run on the writer thread outside any transaction, with no write in progress.
pub type Barrier = Box<dyn FnOnce(&Connection) + Send>;

enum Msg {
    Job(Job),
    Checkpoint(oneshot::Sender<Result<(), DbError>>),
    Barrier(Barrier),
    /// Run as the writer closes, before its final checkpoint.
    OnClose(Barrier),
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
    /// Set on a read replica: every write is refused with this message.
    read_only: Option<Arc<str>>,
}

impl Writer {
    /// Start the writer thread on `conn`. It stops when every handle is dropped.
    pub fn spawn(
        conn: Connection,
        schema: SchemaCache,
        feed: ChangeFeed,
    ) -> (Writer, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let handle = std::thread::Builder::new()
            .name("outpost-writer".into())
            .spawn(move || run(conn, rx, schema, feed))
            .unwrap_or_else(|e| panic!("cannot start the writer thread: {e}"));
        (
            Writer {
                tx,
                read_only: None,
            },
            handle,
        )
    }

    /// Refuse every write with `message` (a read replica).
    pub fn refuse_writes(&mut self, message: &str) {
        self.read_only = Some(Arc::from(message));
    }

    /// Run `f` on the writer thread between transactions, while no write can happen, and
    /// return its result.
    pub async fn barrier<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Barrier = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        self.tx
            .send(Msg::Barrier(job))
            .await
            .map_err(|_| DbError::WriterGone)?;
        rx.await.map_err(|_| DbError::WriterGone)
    }

    /// Run `f` on the writer thread as it closes, after its last job, before its final
    /// checkpoint.
    pub async fn on_close(&self, f: Barrier) -> Result<(), DbError> {
        self.tx
            .send(Msg::OnClose(f))
            .await
            .map_err(|_| DbError::WriterGone)
    }

    /// Run `f` on the writer inside a transaction, for the request `ctx` (`None`: Outpost
    /// itself); its result arrives after the commit.
    pub async fn write<T, E, F>(
        &self,
        mode: Mode,
        ctx: Option<Arc<RequestContext>>,
        f: F,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        if let Some(msg) = &self.read_only {
            return Err(E::from(DbError::ReadOnlyReplica(msg.clone())));
        }
        let (done_tx, done_rx) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |conn| {
            let result = context::with(ctx, || f(conn));
            Ran {
                keep: result.is_ok() && mode == Mode::Commit,
                deliver: Box::new(move |commit_err| {
                    let out = match (commit_err, result) {
                        (Some(err), Ok(_)) => Err(E::from(err)),
                        (_, result) => result,
                    };
                    // The request may have gone away; nobody is left to tell.
                    let _ = done_tx.send(out);
                }),
            }
        });
        self.tx
            .send(Msg::Job(job))
            .await
            .map_err(|_| E::from(DbError::WriterGone))?;
        done_rx.await.map_err(|_| E::from(DbError::WriterGone))?
    }

    /// Run a PASSIVE checkpoint on the writer: copy WAL frames into the database without blocking.
    pub async fn checkpoint(&self) -> Result<(), DbError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Checkpoint(tx))
            .await
            .map_err(|_| DbError::WriterGone)?;
        rx.await.map_err(|_| DbError::WriterGone)?
    }
}

/// Where committed row changes go: the capture filled by the pre-update hook, drained after
/// each commit into the channel the realtime service reads.
pub struct ChangeFeed {
    pub capture: Capture,
    pub tx: mpsc::UnboundedSender<Committed>,
    /// Woken after every commit (the replicator ships soon after).
    pub commits: Arc<tokio::sync::Notify>,
    /// Also record changes in `_outpost_realtime_log`, in the same transaction, for read
    /// replicas to publish (set while replicating).
    pub log_changes: Arc<std::sync::atomic::AtomicBool>,
    /// Database webhooks: deliveries are queued in the transaction of the change.
    pub hooks: crate::jobs::webhooks::Hooks,
    /// Woken when a batch queued jobs.
    pub jobs_wake: Arc<tokio::sync::Notify>,
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Msg>, schema: SchemaCache, feed: ChangeFeed) {
    let mut schema_version = current_schema_version(&conn).unwrap_or(-1);
    let mut dirty = false;
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut on_close: Vec<Barrier> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut pending = Some(first);
        while let Some(msg) = pending.take() {
            match msg {
                Msg::Job(job) => batch.push(job),
                Msg::Checkpoint(reply) => {
                    // Finish the jobs queued before the checkpoint request first.
                    if !batch.is_empty() {
                        prepare_views(&conn, &schema, &mut batch);
                        run_batch(&conn, &mut batch, &feed, &schema);
                        dirty = true;
                    }
                    let result = if dirty {
                        passive_checkpoint(&conn)
                    } else {
                        Ok(())
                    };
                    dirty = false;
                    let _ = reply.send(result);
                }
                Msg::Barrier(f) => {
                    if !batch.is_empty() {
                        prepare_views(&conn, &schema, &mut batch);
                        run_batch(&conn, &mut batch, &feed, &schema);
                        dirty = true;
                    }
                    f(&conn);
                    // A read replica applies pages here, schema included.
                    if let Ok(version) = current_schema_version(&conn) {
                        if version != schema_version {
                            schema_version = version;
                            refresh_schema(&conn, &schema);
                        }
                    }
                }
                Msg::OnClose(f) => on_close.push(f),
            }
            if batch.len() < MAX_BATCH {
                pending = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            prepare_views(&conn, &schema, &mut batch);
            run_batch(&conn, &mut batch, &feed, &schema);
            dirty = true;
            if let Ok(version) = current_schema_version(&conn) {
                if version != schema_version {
                    schema_version = version;
                    refresh_schema(&conn, &schema);
                }
            }
        }
    }
    for f in on_close {
        f(&conn);
    }
    // Every handle is gone: fold the WAL into the database so the file stands alone.
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "final checkpoint failed");
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the database failed");
    }
}
/// Build the row-level security views before a batch. Without them table names would resolve
/// to the unfiltered tables, so a failure fails the batch closed: its jobs are dropped unrun
/// (their requests read that as "database unavailable").
fn prepare_views(conn: &Connection, schema: &SchemaCache, batch: &mut Vec<Job>) {
    if let Err(e) = views::ensure(conn, &schema.get()) {
        tracing::error!(error = %e, "cannot build the row-level security views; refusing the batch");
        batch.clear();
    }
}

fn run_batch(conn: &Connection, batch: &mut Vec<Job>, feed: &ChangeFeed, schema: &SchemaCache) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Run nothing: dropping a job drops its reply channel, which its request reads as
        // "database unavailable".
        tracing::error!(error = %e, "cannot begin a write transaction");
        batch.clear();
        return;
    }
    let mut ran: Vec<Ran> = Vec::with_capacity(batch.len());
    // Changes left by a batch that never committed (BEGIN failed half-way) are not news.
    feed.capture.take();
    for job in batch.drain(..) {
        let mark = feed.capture.mark();
        let savepoint = conn.execute_batch("SAVEPOINT job");
        let r = job(conn);
        let undo = !r.keep || savepoint.is_err();
        if undo {
            feed.capture.rollback_to(mark);
        }
        if savepoint.is_ok() {
            let end = if undo {
                "ROLLBACK TO job; RELEASE job"
            } else {
                "RELEASE job"
            };
            if let Err(e) = conn.execute_batch(end) {
                tracing::error!(error = %e, "ending a job's savepoint failed");
            }
        }
        ran.push(r);
    }
    // Some errors (I/O, disk full) make SQLite roll back the whole transaction by itself;
    // then there is nothing to commit and every job in the batch must hear so.
    let mut changes = feed.capture.take();
    // Webhook deliveries are part of the transaction: if they cannot be queued, nothing of it
    // commits (a committed change is never missed).
    let mut outbox_failed = None;
    let mut queued = 0;
    if !changes.is_empty() && !conn.is_autocommit() {
        let hooks = feed.hooks.get();
        if !hooks.is_empty() {
            match crate::jobs::webhooks::enqueue(conn, &schema.get(), &hooks, &changes) {
                Ok(n) => queued = n,
                Err(e) => {
                    tracing::error!(error = %e, "cannot queue webhook deliveries; rolling back");
                    outbox_failed = Some(DbError::from(e));
                }
            }
        }
        // Only published tables reach realtime and read replicas.
        changes.retain(|c| feed.capture.identity(&c.table).is_some());
    }
    if !changes.is_empty()
        && !conn.is_autocommit()
        && feed.log_changes.load(std::sync::atomic::Ordering::Relaxed)
    {
        if let Err(e) = crate::replication::changelog::record(conn, &changes) {
            // Read replicas will miss these events; the write itself is not at fault.
            tracing::warn!(error = %e, "cannot record changes for read replicas");
        }
    }
    let commit = if let Some(e) = outbox_failed {
        Err(e)
    } else if conn.is_autocommit() {
        Err(DbError::Aborted)
    } else {
        conn.execute_batch("COMMIT").map_err(DbError::from)
    };
    let commit_err = match commit {
        Ok(()) => {
            if !changes.is_empty() {
                // The realtime service may be gone (shutting down); then nobody listens.
                let _ = feed.tx.send(Committed {
                    changes,
                    commit_timestamp: crate::db::functions::now_iso(),
                });
            }
            feed.commits.notify_one();
            if queued > 0 {
                feed.jobs_wake.notify_one();
            }
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "commit failed");
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Some(e)
        }
    };
    for r in ran {
        (r.deliver)(commit_err.clone());
    }
}

fn passive_checkpoint(conn: &Connection) -> Result<(), DbError> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
    Ok(())
}
fn current_schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("PRAGMA schema_version")?
        .query_row([], |r| r.get(0))
}

fn refresh_schema(conn: &Connection, cache: &SchemaCache) {
    match Schema::load(conn) {
        Ok(s) => cache.replace(Arc::new(s)),
        Err(e) => tracing::error!(error = %e, "reloading the schema cache failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::connection;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_does_not_undo_its_batch_neighbours() {
        let dir = std::env::temp_dir().join(format!("outpost-writer-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.db");
        let conn = connection::open_writer(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .unwrap();
        let capture = Capture::default();
        capture.set_published(
            [("t".to_string(), crate::realtime::capture::Identity::Default)]
                .into_iter()
                .collect(),
        );
        capture.install(&conn);
        let (tx, mut changes) = mpsc::unbounded_channel();
        let feed = ChangeFeed {
            capture,
            tx,
            commits: Default::default(),
            log_changes: Default::default(),
            hooks: Default::default(),
            jobs_wake: Default::default(),
        };
        let (writer, handle) = Writer::spawn(conn, SchemaCache::default(), feed);
        // Queue many jobs at once so they share transactions; every third one fails midway.
        let mut jobs = Vec::new();
        for i in 0..60i64 {
            let w = writer.clone();
            jobs.push(tokio::spawn(async move {
                w.write(
                    Mode::Commit,
                    None,
                    move |c: &Connection| -> Result<(), DbError> {
                        c.execute("INSERT INTO t (id, v) VALUES (?1, 'x')", [i])?;
                        if i % 3 == 0 {
                            // A second statement fails: the job's first insert must be undone too.
                            c.execute("INSERT INTO t (id, v) VALUES (?1, NULL)", [i + 1000])?;
                        }
                        Ok(())
                    },
                )
                .await
            }));
        }
        let mut failures = 0;
        for j in jobs {
            if j.await.unwrap().is_err() {
                failures += 1;
            }
        }
        assert_eq!(failures, 20);
        // A rolled-back job returns its result but leaves nothing.
        let n: i64 = writer
            .write(
                Mode::Rollback,
                None,
                |c: &Connection| -> Result<i64, DbError> {
                    c.execute("DELETE FROM t", [])?;
                    Ok(c.changes() as i64)
                },
            )
            .await
            .unwrap();
        assert_eq!(n, 40);
        drop(writer);
        handle.join().unwrap();
        let check = Connection::open(&path).unwrap();
        let ids: Vec<i64> = check
            .prepare("SELECT id FROM t ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected: Vec<i64> = (0..60).filter(|i| i % 3 != 0).collect();
        // Exactly the committed inserts were published: none of the failed or rolled-back jobs.
        let mut published = Vec::new();
        while let Ok(batch) = changes.try_recv() {
            for c in batch.changes {
                assert_eq!(c.op, crate::realtime::capture::Op::Insert);
                if let Some(rusqlite::types::Value::Integer(id)) =
                    c.new.as_ref().and_then(|v| v.first())
                {
                    published.push(*id);
                }
            }
        }
        published.sort();
        assert_eq!(published, expected);
        assert_eq!(ids, expected);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
