//! The database layer: one writer thread, a pool of read-only connections, and the schema cache.

pub mod connection;
pub mod ddl;
pub mod functions;
pub mod migrate;
pub mod schema;
pub mod script;
pub mod writer;

use crate::policy::context::{self, RequestContext};
use crate::policy::views;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use schema::Schema;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
pub use writer::{ChangeFeed, Mode, Writer};

/// Error from the database layer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    #[error("{}", sqlite_message_ref(.0))]
    Sqlite(Arc<rusqlite::Error>),
    #[error("cannot get a read connection: {0}")]
    Pool(String),
    #[error("I/O error: {0}")]
    Io(Arc<std::io::Error>),
    #[error("cannot read the migrations directory {dir}: {source}")]
    MigrationDir {
        dir: String,
        source: Arc<std::io::Error>,
    },
    #[error("migration {file} failed: {message}")]
    MigrationFailed { file: String, message: String },
    #[error("the database writer has stopped")]
    WriterGone,
    #[error("the transaction was aborted by SQLite")]
    Aborted,
    /// A write reached a read replica; the message names where writes go.
    #[error("{0}")]
    ReadOnlyReplica(Arc<str>),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(Arc::new(e))
    }
}

impl From<std::io::Error> for DbError {
    fn from(e: std::io::Error) -> Self {
        DbError::Io(Arc::new(e))
    }
}

/// SQLite's own message for an error, without rusqlite's decoration.
pub fn sqlite_message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}

fn sqlite_message_ref(e: &Arc<rusqlite::Error>) -> String {
    sqlite_message(e)
}

/// The current schema snapshot, swapped whole when the schema changes.
#[derive(Clone, Default)]
pub struct SchemaCache(Arc<RwLock<Arc<Schema>>>);

impl SchemaCache {
    /// The current snapshot.
    pub fn get(&self) -> Arc<Schema> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Install a new snapshot.
    pub fn replace(&self, schema: Arc<Schema>) {
        match self.0.write() {
            Ok(mut g) => *g = schema,
            Err(poisoned) => *poisoned.into_inner() = schema,
        }
    }
}

/// Handle to the database of record.
#[derive(Clone)]
pub struct Db {
    pub writer: Writer,
    /// The tables published to realtime, and the hook that captures their changes.
    pub capture: crate::realtime::capture::Capture,
    /// Committed changes, for the realtime service to take once.
    pub changes: Arc<
        std::sync::Mutex<
            Option<tokio::sync::mpsc::UnboundedReceiver<crate::realtime::capture::Committed>>,
        >,
    >,
    /// Hands committed changes to the realtime service (a read replica publishes the
    /// primary's through it).
    pub publish: tokio::sync::mpsc::UnboundedSender<crate::realtime::capture::Committed>,
    /// Woken after every commit.
    pub commits: Arc<tokio::sync::Notify>,
    /// Record published changes for read replicas (set while replicating).
    pub log_changes: Arc<std::sync::atomic::AtomicBool>,
    /// Database webhooks, as the writer sees them.
    pub hooks: crate::jobs::webhooks::Hooks,
    /// Woken when a transaction queued jobs.
    pub jobs_wake: Arc<tokio::sync::Notify>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    pub schema: SchemaCache,
    pub path: PathBuf,
}

/// Joins the writer thread when the server shuts down.
pub struct WriterThread(std::thread::JoinHandle<()>);

impl WriterThread {
    /// Wait for the writer to finish its queue, checkpoint and close.
    pub fn join(self) {
        if self.0.join().is_err() {
            tracing::error!("the writer thread panicked");
        }
    }
}

/// The async runtime's worker threads: one per available core.
fn workers() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

impl Db {
    /// Open (creating if needed) the database, apply migrations, and start the writer.
    pub fn open(
        path: &Path,
        migrations_dir: Option<&Path>,
        read_connections: u32,
    ) -> Result<(Db, WriterThread), DbError> {
        Self::open_as(path, migrations_dir, read_connections, None)
    }

    /// Open a read replica's database: no migrations (its schema is the primary's), and every
    /// write refused with `refusal`.
    pub fn open_replica(
        path: &Path,
        read_connections: u32,
        refusal: &str,
    ) -> Result<(Db, WriterThread), DbError> {
        Self::open_as(path, None, read_connections, Some(refusal))
    }

    fn open_as(
        path: &Path,
        migrations_dir: Option<&Path>,
        read_connections: u32,
        refusal: Option<&str>,
    ) -> Result<(Db, WriterThread), DbError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(DbError::from)?;
        }
        let conn = connection::open_writer(path)?;
        if refusal.is_none() {
            migrate::migrate(&conn, migrations_dir)?;
        }
        let schema = SchemaCache::default();
        schema.replace(Arc::new(Schema::load(&conn)?));
        let manager = SqliteConnectionManager::file(path)
            .with_flags(
                rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .with_init(|c: &mut Connection| connection::configure_reader(c));
        let readers = r2d2::Pool::builder()
            .max_size(read_connections.max(workers()))
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(|e| DbError::Pool(e.to_string()))?;
        let capture = crate::realtime::capture::Capture::default();
        capture.load(&conn)?;
        let hooks = crate::jobs::webhooks::Hooks::default();
        hooks.replace(crate::jobs::webhooks::load(&conn)?);
        capture.set_hooked(hooks.tables());
        capture.install(&conn);
        let (tx, changes) = tokio::sync::mpsc::unbounded_channel();
        let commits: Arc<tokio::sync::Notify> = Default::default();
        let log_changes: Arc<std::sync::atomic::AtomicBool> = Default::default();
        let jobs_wake: Arc<tokio::sync::Notify> = Default::default();
        let publish = tx.clone();
        let feed = ChangeFeed {
            capture: capture.clone(),
            tx,
            commits: commits.clone(),
            log_changes: log_changes.clone(),
            hooks: hooks.clone(),
            jobs_wake: jobs_wake.clone(),
        };
        let (mut writer, handle) = Writer::spawn(conn, schema.clone(), feed);
        if let Some(msg) = refusal {
            writer.refuse_writes(msg);
        }
        Ok((
            Db {
                writer,
                capture,
                changes: Arc::new(std::sync::Mutex::new(Some(changes))),
                publish,
                commits,
                log_changes,
                hooks,
                jobs_wake,
                readers,
                schema,
                path: path.to_path_buf(),
            },
            WriterThread(handle),
        ))
    }

    /// Run `f` on a pooled read-only connection, off the async runtime, for the request `ctx`
    /// (`None`: Outpost itself, which sees every row).
    pub async fn read<T, E, F>(&self, ctx: Option<Arc<RequestContext>>, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        // Reads run right here on the async worker. Handing each one to a blocking-pool thread
        // cost more in thread switches than the query itself (most take tens of microseconds),
        // and with one worker per core and at least as many pooled connections as workers, no
        // read ever waits for a connection.
        let conn = self
            .readers
            .get()
            .map_err(|e| E::from(DbError::Pool(e.to_string())))?;
        views::ensure(&conn, &self.schema.get()).map_err(|e| E::from(DbError::from(e)))?;
        context::with(ctx, || f(&conn))
    }
}
