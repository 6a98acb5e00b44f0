//! `outpost serve`: open the database, bind, serve until SIGTERM/SIGINT, then shut down cleanly.

use crate::app::{self, AppState, Services};
use crate::auth::config::AuthConfig;
use crate::auth::AuthService;
use crate::config::Config;
use crate::db::{Db, DbError};
use crate::http::logbuf::BufferedStderr;
use crate::keys::{self, KeyError, ProjectKeys, Verifier};
use crate::replication::config::{FollowConfig, ReplicaConfig};
use crate::replication::follow::{self, Follower};
use crate::replication::primary::Replicator;
use crate::storage::{self, config::StorageConfig, StorageService};
use std::time::Duration;

/// How often the writer folds the WAL back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("{0}")]
    Keys(#[from] KeyError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
}

/// Run the server until a shutdown signal.
pub fn serve(config: Config) -> Result<(), ServerError> {
    let logs = init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(config));
    logs.flush_now();
    result
}
fn init_tracing() -> BufferedStderr {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("OUTPOST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let out = BufferedStderr::start();
    // A second call (tests starting servers in-process) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(out.clone())
        .with_ansi(false)
        .try_init();
    out
}

async fn run(config: Config) -> Result<(), ServerError> {
    std::fs::create_dir_all(&config.data_dir)?;
    let secret = keys::load_or_create_secret(&config.data_dir)?;
    let project_keys = ProjectKeys::derive(&secret)?;
    if config.replica.is_some() && config.follow.is_some() {
        return Err(ServerError::Config(
            "--replica and --follow exclude each other: a read replica does not ship".into(),
        ));
    }
    // A replica URL that cannot work stops the start before anything is written.
    let replica_config = match &config.replica {
        Some(url) => {
            let rc = ReplicaConfig::from_env(url).map_err(ServerError::Config)?;
            crate::replication::replica::Replica::open(url)
                .map_err(|e| ServerError::Config(e.to_string()))?;
            Some(rc)
        }
        None => None,
    };
    let follow = match &config.follow {
        Some(url) => {
            let fc = FollowConfig::from_env(url).map_err(ServerError::Config)?;
            let txid = follow::prepare(&fc, &config.data_dir, &config.db_path())
                .await
                .map_err(|e| ServerError::Config(e.to_string()))?;
            Some((fc, txid))
        }
        None => None,
    };
    let (db, writer_thread) = match &follow {
        Some((fc, _)) => Db::open_replica(
            &config.db_path(),
            config.read_connections,
            &follow::refusal(fc),
        )?,
        None => Db::open(
            &config.db_path(),
            config.migrations_dir.as_deref(),
            config.read_connections,
        )?,
    };
    // The replicator starts before anything else writes, and from here on it alone checkpoints.
    let replicator = match replica_config {
        Some(rc) => Some(
            Replicator::start(rc, &db, &config.data_dir)
                .await
                .map_err(|e| ServerError::Config(e.to_string()))?,
        ),
        None => None,
    };
    let write_proxy = match &follow {
        Some((fc, _)) if fc.proxy_writes => Some(
            crate::replication::proxy::Proxy::new(fc.primary_url.as_deref().unwrap_or_default())
                .map_err(ServerError::Config)?,
        ),
        _ => None,
    };
    let follower = match follow {
        Some((fc, txid)) => Some(
            Follower::start(fc, db.clone(), &config.data_dir, txid)
                .map_err(|e| ServerError::Config(e.to_string()))?,
        ),
        None => None,
    };
    let replication = replicator
        .as_ref()
        .map(|r| r.status.clone())
        .or_else(|| follower.as_ref().map(|f| f.status.clone()));
    for table in db
        .schema
        .get()
        .tables
        .values()
        .filter(|t| !t.is_view && !t.rls)
    {
        tracing::warn!(
            table = %table.name,
            "row-level security is disabled: every role, anon included, can read and write this table"
        );
    }
    let listener = tokio::net::TcpListener::bind(&config.http)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.http.clone(),
            source,
        })?;
    let addr = listener.local_addr()?;
    let jobs_config = crate::jobs::config::JobsConfig::from_env().map_err(ServerError::Config)?;
    let functions_config =
        crate::functions::service::FunctionsConfig::from_env(config.functions_dir.clone())
            .map_err(ServerError::Config)?;
    let auth_config =
        AuthConfig::from_env(&addr.to_string()).map_err(|e| ServerError::Config(e.to_string()))?;
    let auth = AuthService::new(auth_config, &secret).map_err(ServerError::Config)?;
    let storage_config = StorageConfig::from_env(&config.data_dir).map_err(ServerError::Config)?;
    let storage =
        StorageService::new(storage_config, &config.data_dir).map_err(ServerError::Config)?;
    // Nothing is uploading yet: every pending version left by a previous run is an orphan.
    // (A read replica's object bytes belong to its primary.)
    if follower.is_none() {
        match storage::store::sweep(&db, &storage.op, 0).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                orphans = n,
                "removed object bytes left by an interrupted run"
            ),
            Err(e) => tracing::warn!(error = %e.message, "cannot sweep orphaned object bytes"),
        }
    }
    let functions = std::sync::Arc::new(crate::functions::FunctionsService::new(
        functions_config,
        [
            (
                "SUPABASE_URL",
                auth.config.public_url.trim_end_matches('/').to_string(),
            ),
            ("SUPABASE_ANON_KEY", project_keys.anon_key.clone()),
            (
                "SUPABASE_SERVICE_ROLE_KEY",
                project_keys.service_role_key.clone(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    ));
    // With no admin account yet, a one-time link (printed below) lets the first one be made
    // in the browser. A read replica has its primary's admins.
    let no_admin = follower.is_none()
        && db
            .read(None, |c| {
                c.query_row("SELECT count(*) FROM _outpost_admins", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(crate::db::DbError::from)
            })
            .await
            .map_err(|e| ServerError::Config(e.to_string()))?
            == 0;
    let admin_setup = no_admin.then(|| hex::encode(rand::random::<[u8; 24]>()));
    let setup_link = admin_setup.as_ref().map(|t| {
        format!(
            "{}/_/#setup={t}",
            auth.config.public_url.trim_end_matches('/')
        )
    });
    let state = AppState::new(Services {
        db: db.clone(),
        verifier: Verifier::new(&secret),
        keys: project_keys.clone(),
        auth,
        storage,
        realtime: crate::realtime::Realtime::new(crate::realtime::Limits::from_env()),
        functions: functions.clone(),
        config,
        replication,
        write_proxy,
        admin_setup: std::sync::Mutex::new(admin_setup),
        started: std::time::Instant::now(),
    });

    // Signals are caught from before the banner: a supervisor (or a test) that reads it and
    // stops the server at once must get a clean shutdown, not the default signal death.
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let ctrl_c = tokio::spawn(tokio::signal::ctrl_c());
    // The banner goes to stdout so scripts can read the URL and keys; logs go to stderr.
    println!(
        "Outpost {} listening on http://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    println!("  anon key:         {}", project_keys.anon_key);
    println!("  service_role key: {}", project_keys.service_role_key);
    println!("  admin UI:         http://{addr}/_/");
    if let Some(link) = &setup_link {
        println!("  admin setup:      {link}  (one-time: creates the first admin account)");
    }
    tracing::info!(%addr, data_dir = %state.config.data_dir.display(), "ready");

    // With a replica the replicator checkpoints, in step with what it has shipped.
    let checkpointer = replicator
        .is_none()
        .then(|| tokio::spawn(checkpoint_loop(db.clone())));
    let janitor = follower
        .is_none()
        .then(|| tokio::spawn(storage::store::janitor(state.clone())));
    // A read replica delivers nothing: its primary does.
    let jobs = match follower {
        None => Some(tokio::spawn(crate::jobs::worker::run(
            db.clone(),
            jobs_config,
            functions.clone(),
        ))),
        Some(_) => None,
    };
    let cron = follower
        .is_none()
        .then(|| tokio::spawn(crate::jobs::cron::run(db.clone(), functions.clone())));

    let changes = db.changes.lock().ok().and_then(|mut c| c.take());
    let dispatcher = changes.map(|rx| {
        tokio::spawn(crate::realtime::changes::run(
            db.clone(),
            state.realtime.hub.clone(),
            rx,
        ))
    });
    let app = app::router(state);
    // Functions reach the REST, realtime, storage and auth APIs in-process, through this router.
    functions.set_router(app.clone());
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal(
        ctrl_c,
        #[cfg(unix)]
        terminate,
    ))
    .await?;
    tracing::info!("draining done; closing the database");
    for task in [checkpointer, janitor, dispatcher, jobs, cron]
        .into_iter()
        .flatten()
    {
        task.abort();
    }
    if let Some(f) = &follower {
        f.stop();
    }
    if let Some(r) = &replicator {
        r.stop();
    }
    // The router inside the functions service holds the state (and its database handle).
    functions.close();
    drop(functions);
    drop(db);
    // The writer thread finishes queued jobs, ships the rest of the WAL when replicating,
    // checkpoints (TRUNCATE) and closes.
    tokio::task::spawn_blocking(move || writer_thread.join())
        .await
        .map_err(std::io::Error::other)?;
    if let Some(r) = replicator {
        r.finish(Duration::from_secs(10)).await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn checkpoint_loop(db: Db) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = db.writer.checkpoint().await {
            tracing::warn!(error = %e, "checkpoint failed");
        }
    }
}

async fn shutdown_signal(
    ctrl_c: tokio::task::JoinHandle<std::io::Result<()>>,
    #[cfg(unix)] mut terminate: tokio::signal::unix::Signal,
) {
    let ctrl_c = async {
        if !matches!(ctrl_c.await, Ok(Ok(()))) {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        terminate.recv().await;
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}
