//! The store's two ways of failing outside its data: a backend error and a
//! lock poisoned by a panicking thread.

use super::backend::StorageError;
use crate::error::Error;

pub(super) fn poisoned<T>(_: T) -> Error {
    Error::storage("a store lock was poisoned by a panicking thread")
}

pub(super) fn storage(e: StorageError) -> Error {
    Error::Storage(e)
}
