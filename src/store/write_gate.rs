//! The store's write gate: the store wraps its engine in [`Gated`], whose
//! every write holds a read lock of the gate; a snapshot (`snapshot.rs`)
//! holds the write lock while it reads the whole key space, so that it sees
//! the store between two batches.

use std::sync::{Arc, RwLock};

use super::backend::{Backend, BatchOp, Pair, StorageError};

/// A backend whose writes pass a gate that a snapshot can close.
pub(super) struct Gated {
    inner: Arc<dyn Backend>,
    pub(super) gate: Arc<RwLock<()>>,
}

impl Gated {
    pub(super) fn new(inner: Arc<dyn Backend>) -> Gated {
        Gated {
            inner,
            gate: Arc::default(),
        }
    }
}

impl Backend for Gated {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }

    fn scan_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Pair>, StorageError> {
        self.inner.scan_prefix(prefix, after, limit)
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StorageError> {
        self.inner.last_with_prefix(prefix)
    }

    fn apply(&self, batch: Vec<BatchOp>) -> Result<(), StorageError> {
        // a panicked writer left no half batch (apply is atomic): go on
        let _open = self.gate.read().unwrap_or_else(|p| p.into_inner());
        self.inner.apply(batch)
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.inner.flush()
    }
}
