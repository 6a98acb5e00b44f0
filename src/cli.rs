//! The command-line contract from DESIGN.md: `serve`, `keys`, `migrate`, `restore`, `admin`, `version`.

use crate::config::Config;
use crate::{admin, db, keys, server};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Top-level command line.
#[derive(Parser, Debug)]
#[command(
    name = "outpost",
    version,
    about = "A Supabase-compatible backend in one binary"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// One subcommand of `outpost`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Print the project's URL and API keys.
    Keys(KeysArgs),
    /// Apply pending migrations and exit.
    Migrate(MigrateArgs),
    /// Restore a database from a replica.
    Restore(RestoreArgs),
    /// Administrative tasks.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Print the version.
    Version,
}

/// Flags shared by every command that opens the data directory.
#[derive(Args, Debug, Clone)]
pub struct DataDirArg {
    /// Where data.db, logs.db and the secrets live.
    #[arg(long, env = "OUTPOST_DATA_DIR", default_value = "./outpost_data")]
    pub data_dir: PathBuf,
}

/// `outpost serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "OUTPOST_HTTP", default_value = "127.0.0.1:8000")]
    pub http: String,
    #[command(flatten)]
    pub data: DataDirArg,
    /// Directory of user SQL migrations applied at start-up.
    #[arg(long, env = "OUTPOST_MIGRATIONS_DIR")]
    pub migrations_dir: Option<PathBuf>,
    /// Directory of functions: one folder per function with `index.js`.
    #[arg(long, env = "OUTPOST_FUNCTIONS_DIR")]
    pub functions_dir: Option<PathBuf>,
    /// Replica URL to stream the WAL to (Litestream layout).
    #[arg(long, env = "OUTPOST_REPLICA")]
    pub replica: Option<String>,
    /// Replica URL to follow as a read replica.
    #[arg(long, env = "OUTPOST_FOLLOW")]
    pub follow: Option<String>,
    /// Allowed CORS origins, comma-separated; `*` allows any.
    #[arg(long, env = "OUTPOST_CORS_ORIGINS", default_value = "*")]
    pub cors_origins: String,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "OUTPOST_MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Longest query string accepted, in bytes.
    #[arg(long, env = "OUTPOST_MAX_QUERY_BYTES", default_value_t = 16 * 1024)]
    pub max_query_bytes: usize,
    /// Number of read-only connections in the pool.
    #[arg(long, env = "OUTPOST_READ_CONNECTIONS", default_value_t = 4)]
    pub read_connections: u32,
}

/// `outpost keys`.
#[derive(Args, Debug)]
pub struct KeysArgs {
    #[command(flatten)]
    pub data: DataDirArg,
    /// Print JSON: {"url","anon_key","service_role_key"}.
    #[arg(long)]
    pub json: bool,
    /// The URL to print alongside the keys.
    #[arg(long, env = "OUTPOST_HTTP", default_value = "127.0.0.1:8000")]
    pub http: String,
}

/// `outpost migrate`.
#[derive(Args, Debug)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub data: DataDirArg,
    /// Directory of user SQL migrations.
    #[arg(long, env = "OUTPOST_MIGRATIONS_DIR")]
    pub migrations_dir: Option<PathBuf>,
}

/// `outpost restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[arg(long, env = "OUTPOST_REPLICA")]
    pub replica: String,
    #[arg(long)]
    pub output: PathBuf,
    #[arg(long)]
    pub txid: Option<String>,
    #[arg(long)]
    pub timestamp: Option<String>,
}

/// `outpost admin …`.
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create an admin account for the web UI.
    Create {
        email: String,
        password: String,
        #[command(flatten)]
        data: DataDirArg,
    },
}

/// Error for a command line that cannot be carried out.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Db(#[from] db::DbError),
    #[error("{0}")]
    Keys(#[from] keys::KeyError),
    #[error("{0}")]
    Server(#[from] server::ServerError),
    #[error("{0}")]
    Admin(#[from] admin::accounts::AccountError),
    #[error("restore: {0}")]
    Restore(String),
}

fn restore(args: RestoreArgs) -> Result<(), CliError> {
    use crate::replication::{replica::Replica, restore};
    let target = match (&args.txid, &args.timestamp) {
        (Some(_), Some(_)) => {
            return Err(CliError::Restore(
                "give --txid or --timestamp, not both".into(),
            ))
        }
        (Some(t), None) if t.len() == 16 => {
            u64::from_str_radix(t, 16)
                .map(restore::Target::Txid)
                .map_err(|_| CliError::Restore(format!("--txid {t}: 16 hex digits")))?
        }
        (Some(t), None) => return Err(CliError::Restore(format!("--txid {t}: 16 hex digits"))),
        (None, Some(ts)) => {
            time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
                .map(|t| restore::Target::Timestamp((t.unix_timestamp_nanos() / 1_000_000) as i64))
                .map_err(|_| CliError::Restore(format!("--timestamp {ts}: RFC 3339")))?
        }
        (None, None) => restore::Target::Latest,
    };
    let replica = Replica::open(&args.replica).map_err(|e| CliError::Restore(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Restore(e.to_string()))?;
    let txid = runtime
        .block_on(restore::restore(&replica, target, &args.output))
        .map_err(|e| CliError::Restore(e.to_string()))?;
    println!("restored TXID {txid:016x} to {}", args.output.display());
    Ok(())
}

/// Carry out one parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(args) => {
            server::serve(Config::from_serve(args))?;
            Ok(())
        }
        Command::Keys(args) => {
            let secret = keys::load_or_create_secret(&args.data.data_dir)?;
            let project = keys::ProjectKeys::derive(&secret)?;
            let url = format!("http://{}", args.http);
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "url": url,
                        "anon_key": project.anon_key,
                        "service_role_key": project.service_role_key,
                    })
                );
            } else {
                println!("URL:              {url}");
                println!("anon key:         {}", project.anon_key);
                println!("service_role key: {}", project.service_role_key);
            }
            Ok(())
        }
        Command::Migrate(args) => {
            std::fs::create_dir_all(&args.data.data_dir).map_err(db::DbError::from)?;
            let applied = db::migrate::migrate_path(
                &args.data.data_dir.join("data.db"),
                args.migrations_dir.as_deref(),
            )?;
            if applied.is_empty() {
                println!("No pending migrations.");
            }
            for name in applied {
                println!("applied {name}");
            }
            Ok(())
        }
        Command::Restore(args) => restore(args),
        Command::Admin {
            command:
                AdminCommand::Create {
                    email,
                    password,
                    data,
                },
        } => {
            let email = admin::accounts::create(&data.data_dir.join("data.db"), &email, &password)?;
            println!("Created admin account {email}.");
            Ok(())
        }
        Command::Version => {
            println!("outpost {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}
