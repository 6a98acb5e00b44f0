//! Admin accounts: created from the command line, stored in `_outpost_admins` with argon2id.

use crate::auth::password;
use crate::db::{connection, migrate, DbError};
use rusqlite::params;
use std::path::Path;

/// Shortest admin password accepted.
pub const MIN_PASSWORD: usize = 10;

/// Why an admin account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("`{0}` is not an email address")]
    BadEmail(String),
    #[error("the password must be at least {MIN_PASSWORD} characters long")]
    WeakPassword,
    #[error("an admin account for {0} already exists")]
    Exists(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Create an admin account in the database at `db_path` (migrating it first).
pub fn create(db_path: &Path, email: &str, password_text: &str) -> Result<String, AccountError> {
    let email = crate::auth::normalize_email(email)
        .map_err(|_| AccountError::BadEmail(email.to_string()))?;
    if password_text.chars().count() < MIN_PASSWORD {
        return Err(AccountError::WeakPassword);
    }
    if let Some(parent) = db_path.parent() {
        std::fs::create_dir_all(parent).map_err(DbError::from)?;
    }
    migrate::migrate_path(db_path, None)?;
    let hash = password::hash(password_text).map_err(|e| AccountError::Hash(e.msg))?;
    let conn = connection::open_writer(db_path).map_err(DbError::from)?;
    let id = uuid::Uuid::new_v4().to_string();
    let inserted = conn
        .execute(
            "INSERT INTO _outpost_admins (id, email, password_hash) VALUES (?1, ?2, ?3) \
             ON CONFLICT (email) DO NOTHING",
            params![id, email, hash],
        )
        .map_err(DbError::from)?;
    if inserted == 0 {
        return Err(AccountError::Exists(email));
    }
    Ok(email)
}
