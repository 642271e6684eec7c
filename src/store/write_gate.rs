//! The store's write gate: the store wraps its engine in [`Gated`], whose
//! every write holds a read lock of the gate; a snapshot (`snapshot.rs`)
//! holds the write lock while it reads the whole key space, so that it sees
//! the store between two batches. It forwards everything else, shared
//! storage's checked writes and notifications included. (On storage several
//! relays share, the gate holds only this relay's writes: a backup of a
//! cluster is the database's own, see docs/cluster.md.)

use std::sync::{Arc, RwLock};

use super::backend::{Backend, BatchOp, Check, Checked, Heartbeat, Pair, StorageError};

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

    fn apply_checked(&self, batch: Vec<BatchOp>, check: &Check) -> Result<Checked, StorageError> {
        let _open = self.gate.read().unwrap_or_else(|p| p.into_inner());
        self.inner.apply_checked(batch, check)
    }

    fn shared(&self) -> bool {
        self.inner.shared()
    }

    fn wake(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.inner.wake()
    }

    fn announce(&self) -> Result<(), StorageError> {
        self.inner.announce()
    }

    fn heartbeat(
        &self,
        relay: &str,
        address: &str,
        feed_seq: u64,
        recent: std::time::Duration,
    ) -> Result<Option<Heartbeat>, StorageError> {
        self.inner.heartbeat(relay, address, feed_seq, recent)
    }
}
