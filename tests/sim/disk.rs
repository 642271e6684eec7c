//! A node's disk: an in-memory [`Backend`] that remembers which writes were
//! not flushed yet, so a crash can lose them (all, or all but a prefix, as a
//! log-structured engine such as sled may have written some before dying).
//! A clean restart keeps everything, which is [`MemBackend`]'s behaviour.

use std::sync::{Arc, Mutex, MutexGuard};

use permitsync::store::{Backend, BatchOp, MemBackend, Pair, StorageError};

/// Undo record of one applied batch: each key's value before the batch.
type Undo = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// See the module docs.
#[derive(Default)]
pub struct Disk {
    live: MemBackend,
    /// Batches applied since the last flush, oldest first, with their undo.
    unflushed: Mutex<Vec<Undo>>,
}

impl Disk {
    /// An empty disk.
    pub fn new() -> Arc<Disk> {
        Arc::new(Disk::default())
    }

    fn unflushed(&self) -> Result<MutexGuard<'_, Vec<Undo>>, StorageError> {
        self.unflushed
            .lock()
            .map_err(|_| StorageError::new("disk lock poisoned"))
    }

    /// Number of batches a crash could lose right now.
    pub fn unflushed_batches(&self) -> usize {
        self.unflushed.lock().map(|u| u.len()).unwrap_or(0)
    }

    /// A crash: keep the first `keep` unflushed batches, lose the rest.
    pub fn crash(&self, keep: usize) {
        let mut unflushed = self.unflushed.lock().expect("disk lock");
        while unflushed.len() > keep {
            let undo = unflushed.pop().expect("non-empty");
            let restore: Vec<BatchOp> = undo.into_iter().rev().collect();
            self.live.apply(restore).expect("undo a batch");
        }
        unflushed.clear();
    }

    /// Put a key directly (before the store opens): e.g. a fixed actor id.
    pub fn seed(&self, key: &[u8], value: Vec<u8>) {
        self.live
            .apply(vec![(key.to_vec(), Some(value))])
            .expect("seed the disk");
    }
}

impl Backend for Disk {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.live.get(key)
    }

    fn scan_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Pair>, StorageError> {
        self.live.scan_prefix(prefix, after, limit)
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StorageError> {
        self.live.last_with_prefix(prefix)
    }

    fn apply(&self, batch: Vec<BatchOp>) -> Result<(), StorageError> {
        let mut unflushed = self.unflushed()?;
        let mut undo = Vec::with_capacity(batch.len());
        for (k, _) in &batch {
            undo.push((k.clone(), self.live.get(k)?));
        }
        self.live.apply(batch)?;
        unflushed.push(undo);
        Ok(())
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.unflushed()?.clear();
        Ok(())
    }
}
