//! When writes become durable: group-committed flushes, the check that
//! nothing leaves the node before it is durable, and deferring handles that
//! let a burst of sync messages share one flush (see `docs/storage.md`,
//! "Durability and group commit").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::store::{storage, Store};
use crate::error::Result;

/// What a deferring handle owes, kept in one atomic: nothing (`0`), the feed
/// position up to which everything must be durable, or [`OWE_FLUSH`] when it
/// wrote records outside the feed and only a flush settles them.
pub(super) type Owed = AtomicU64;
const OWE_FLUSH: u64 = u64::MAX;

impl Store {
    /// Number of flushes so far (group commit makes this smaller than the
    /// number of writes under concurrency).
    pub fn flush_count(&self) -> u64 {
        self.inner.commit.flushes()
    }

    /// A handle on the same store whose writes do not wait for their flush
    /// and whose reads do not flush what they are about to show: it only
    /// records what it owes. The caller runs [`Store::settle`] on this handle
    /// before anything it produced leaves the node, so one flush covers a
    /// whole burst of messages (a connection's ready frames) instead of one
    /// flush each.
    pub fn deferring(&self) -> Store {
        Store {
            inner: self.inner.clone(),
            acting_device: self.acting_device.clone(),
            owed: Some(Arc::new(Owed::new(0))),
        }
    }

    /// Make durable everything this handle wrote or read since the last
    /// settle (a flush only when some of it is not durable yet). Nothing to do
    /// on a handle that is not [`Store::deferring`].
    pub fn settle(&self) -> Result<()> {
        let Some(owed) = &self.owed else {
            return Ok(());
        };
        match owed.swap(0, Ordering::SeqCst) {
            0 => Ok(()),
            OWE_FLUSH => self.flush_now(),
            seq if self.inner.durable_seq.load(Ordering::SeqCst) >= seq => Ok(()),
            _ => self.flush_now(),
        }
    }

    /// Make sure the write at feed position `seq` is durable (flushing if not):
    /// called before anything about a document is acknowledged or shown to a
    /// peer, so a write whose flush failed is flushed before it is acknowledged
    /// by a later call, and no peer ever gets a change a crash could still lose.
    /// A deferring handle only notes the position (see [`Store::settle`]).
    pub(super) fn ensure_durable(&self, seq: u64) -> Result<()> {
        if self.inner.durable_seq.load(Ordering::SeqCst) >= seq {
            return Ok(());
        }
        if let Some(owed) = &self.owed {
            owed.fetch_max(seq, Ordering::SeqCst);
            return Ok(());
        }
        self.flush_now()
    }

    /// Wait until everything written so far is durable; a deferring handle
    /// only notes that it owes a flush.
    pub(super) fn wait_durable(&self) -> Result<()> {
        if let Some(owed) = &self.owed {
            owed.store(OWE_FLUSH, Ordering::SeqCst);
            return Ok(());
        }
        self.flush_now()
    }

    /// Flush (sharing the flush with concurrent writers) and wait for it.
    pub(super) fn flush_now(&self) -> Result<()> {
        let inner = &self.inner;
        let covered = AtomicU64::new(0);
        inner
            .commit
            .wait_durable(
                || covered.store(inner.applied_seq.load(Ordering::SeqCst), Ordering::SeqCst),
                || inner.backend.flush(),
                || {
                    inner
                        .durable_seq
                        .fetch_max(covered.load(Ordering::SeqCst), Ordering::SeqCst);
                },
            )
            .map_err(storage)
    }

    /// The latest durable feed position.
    pub fn feed_head(&self) -> u64 {
        self.inner.durable_seq.load(Ordering::SeqCst)
    }

    /// Flush everything to disk (also on a deferring handle).
    pub fn flush(&self) -> Result<()> {
        self.flush_now()
    }
}
