//! The store's two ways of failing outside its data: a backend error and a
//! lock poisoned by a panicking thread; and errors renamed for the client
//! (no internal id of a tenant's id space leaves the store).

use super::backend::StorageError;
use crate::error::Error;
use crate::model::EntityId;

pub(super) fn poisoned<T>(_: T) -> Error {
    Error::storage("a store lock was poisoned by a panicking thread")
}

pub(super) fn storage(e: StorageError) -> Error {
    Error::Storage(e)
}

/// `e` with the internal id `internal` it names replaced by `external`, so
/// that no internal id reaches a client.
pub(super) fn renamed(e: Error, internal: EntityId, external: EntityId) -> Error {
    if internal == external {
        return e;
    }
    let swap = |id: EntityId| if id == internal { external } else { id };
    match e {
        Error::UnknownEntity(id) => Error::UnknownEntity(swap(id)),
        Error::UntypedDocument(id) => Error::UntypedDocument(swap(id)),
        e => e,
    }
}
