//! The replication service's one error type.

use super::ltx::LtxError;
use super::replica::ReplicaError;
use super::wal::WalError;

/// Why shipping, following or restoring failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("{0}")]
    Ltx(#[from] LtxError),
    #[error("{0}")]
    Wal(#[from] WalError),
    #[error("{0}")]
    Replica(#[from] ReplicaError),
    #[error("replica storage: {0}")]
    Store(#[from] opendal::Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Db(#[from] crate::db::DbError),
    #[error("{0}")]
    Other(String),
}

/// Result of replication work.
pub type Result<T> = std::result::Result<T, ReplicationError>;
