//! When writes become durable: the feed positions applied and flushed, the
//! group-committed flush that moves one to the other, and what a deferring
//! handle owes (see `docs/storage.md`, "Durability and group commit").

use std::sync::atomic::{AtomicU64, Ordering};

use super::backend::{Backend, StorageError};
use super::group_commit::GroupCommit;

/// What a deferring handle owes, kept in one atomic: nothing (`0`), the feed
/// position up to which everything must be durable, or [`OWE_FLUSH`] when it
/// wrote records outside the feed and only a flush settles them.
#[derive(Default)]
pub(super) struct Owed(AtomicU64);

const OWE_FLUSH: u64 = u64::MAX;

/// What settling a deferring handle takes.
pub(super) enum Debt {
    /// Nothing: everything it wrote or showed is durable.
    None,
    /// A flush if the feed is not durable up to this position yet.
    UpTo(u64),
    /// A flush.
    Flush,
}

impl Owed {
    /// Owe everything up to feed position `seq`.
    pub(super) fn up_to(&self, seq: u64) {
        self.0.fetch_max(seq, Ordering::SeqCst);
    }

    /// Owe a flush (records outside the feed).
    pub(super) fn flush(&self) {
        self.0.store(OWE_FLUSH, Ordering::SeqCst);
    }

    /// Take the debt, leaving nothing owed.
    pub(super) fn take(&self) -> Debt {
        match self.0.swap(0, Ordering::SeqCst) {
            0 => Debt::None,
            OWE_FLUSH => Debt::Flush,
            seq => Debt::UpTo(seq),
        }
    }
}

/// The feed positions written and made durable, and the group commit that
/// flushes for concurrent writers together.
pub(super) struct Durable {
    applied: AtomicU64,
    durable: AtomicU64,
    commit: GroupCommit,
}

impl Durable {
    /// Everything up to feed position `last` is durable (a store just opened).
    pub(super) fn new(last: u64) -> Durable {
        Durable {
            applied: AtomicU64::new(last),
            durable: AtomicU64::new(last),
            commit: GroupCommit::new(),
        }
    }

    /// The write at feed position `seq` was applied to the backend.
    pub(super) fn applied(&self, seq: u64) {
        self.applied.fetch_max(seq, Ordering::SeqCst);
    }

    /// Another process committed (durably) the feed up to `seq`.
    pub(super) fn observe(&self, seq: u64) {
        self.durable.fetch_max(seq, Ordering::SeqCst);
    }

    /// The latest durable feed position.
    pub(super) fn durable_seq(&self) -> u64 {
        self.durable.load(Ordering::SeqCst)
    }

    /// Whether the write at feed position `seq` is durable.
    pub(super) fn covers(&self, seq: u64) -> bool {
        self.durable_seq() >= seq
    }

    /// Flush `backend` (sharing the flush with concurrent writers) and wait
    /// for it; everything applied before the flush started is then durable.
    pub(super) fn flush(&self, backend: &dyn Backend) -> Result<(), StorageError> {
        let covered = AtomicU64::new(0);
        self.commit.wait_durable(
            || covered.store(self.applied.load(Ordering::SeqCst), Ordering::SeqCst),
            || backend.flush(),
            || {
                self.durable
                    .fetch_max(covered.load(Ordering::SeqCst), Ordering::SeqCst);
            },
        )
    }

    /// Number of flushes so far.
    pub(super) fn flushes(&self) -> u64 {
        self.commit.flushes()
    }
}
