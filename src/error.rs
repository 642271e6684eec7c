//! The library's error type.

use std::path::PathBuf;

use crate::model::{EntityId, EntityType};
use crate::view::Rejection;

/// Everything that can go wrong in the library. Each variant says exactly what
/// was wrong; an operation that returns an error changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No entity has this id in the store.
    #[error("unknown entity {0}")]
    UnknownEntity(EntityId),
    /// The entity exists but is of another type than the operation needs.
    #[error("entity {id} is of type {actual}, not {expected}")]
    WrongType {
        /// The entity.
        id: EntityId,
        /// The type the operation needs.
        expected: EntityType,
        /// The entity's type.
        actual: EntityType,
    },
    /// A write that the policies would reject (`invalid transition draft -> active`,
    /// `guard failed: ...`, `field permit_id is immutable`, ...). Nothing was written.
    #[error("{0}")]
    Rejected(Box<Rejection>),
    /// A local permit move that a hard interlock forbids (activation without
    /// verified isolation or the work type's gas tests, closing without a
    /// completed closeout). Nothing was written.
    #[error("cannot {action}: {}", reasons.join("; "))]
    Interlock {
        /// What was refused (`activate the permit`, `close the permit`).
        action: &'static str,
        /// Each rule that failed, naming isolation points and gases.
        reasons: Vec<String>,
    },
    /// An argument that is not acceptable (an empty item name, a bad number).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A conflict resolution named a field that has no open conflict.
    #[error("field {field} of {id} has no open conflict")]
    NoConflict {
        /// The entity.
        id: EntityId,
        /// The field.
        field: String,
    },
    /// Changes whose document has no valid `type` (`permit`, `isolation_point`, `closeout`).
    #[error("document {0} has no valid entity type (permit, isolation_point or closeout)")]
    UntypedDocument(EntityId),
    /// Bytes that are not valid Automerge data.
    #[error("invalid automerge data: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    /// A bundle file that is truncated, corrupted or of an unknown format.
    #[error("invalid bundle: {0}")]
    Bundle(String),
    /// The store directory is held by another process (sled locks it).
    #[error(
        "the store at {} is in use by another process (a running `permitsync serve`?); \
         stop it, or talk to it over HTTP instead",
        path.display()
    )]
    Locked {
        /// The store directory.
        path: PathBuf,
    },
    /// The store was written by a newer permitsync than this one.
    #[error(
        "this store was written by a newer permitsync (store format {found}; this build reads \
         formats up to {supported}): run the newer release, or restore a backup taken with this one"
    )]
    NewerFormat {
        /// The store's format version.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },
    /// A configured limit (changes per message, document size, ...) was exceeded;
    /// nothing was stored.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// The storage backend failed; the write was not acknowledged.
    #[error("storage error: {0}")]
    Storage(#[source] crate::store::StorageError),
    /// File I/O outside the store (bundles).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A storage failure described by `message` alone (no engine error).
    pub fn storage(message: impl Into<String>) -> Error {
        Error::Storage(crate::store::StorageError::new(message))
    }
}
