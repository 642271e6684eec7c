//! Why the PostgreSQL engine could not open, and how driver errors read.

use crate::store::StorageError;

/// Why [`super::PgBackend::connect`] failed. Each says what to fix; none
/// changed anything in the database.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The URL is not a PostgreSQL connection string.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The database could not be reached or refused us: where (without the
    /// password) and the driver's reason, down to the OS error.
    #[error("cannot connect to the database {target}: {reason}")]
    Unreachable {
        /// `user@host:port/database`.
        target: String,
        /// The driver's error and its causes.
        reason: String,
    },
    /// The database holds a newer schema than this binary knows: it was
    /// migrated by a newer permitsync, and this one would misread it.
    #[error(
        "the database {target} has schema version {found}, newer than the version this \
         permitsync knows ({known}); run a permitsync at least as new as the one that \
         migrated it"
    )]
    SchemaTooNew {
        /// `user@host:port/database`.
        target: String,
        /// The database's version.
        found: i64,
        /// The newest version this binary knows.
        known: i64,
    },
    /// Applying the schema migrations failed.
    #[error("cannot migrate the schema of the database {target}: {reason}")]
    Migration {
        /// `user@host:port/database`.
        target: String,
        /// The driver's error and its causes.
        reason: String,
    },
    /// The engine's runtime could not start.
    #[error("cannot start the database engine's threads: {0}")]
    Runtime(#[from] std::io::Error),
}

/// `error` and each of its causes, joined by `: ` (the driver's `Display`
/// says only "error connecting to server"; the OS error is its source).
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let more = e.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = e.source();
    }
    text
}

/// A driver error as a [`StorageError`] whose message carries the causes.
pub(crate) fn storage(error: tokio_postgres::Error) -> StorageError {
    let message = chain(&error);
    StorageError::with_message(message, error)
}
