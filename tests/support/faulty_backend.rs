//! A backend that fails or tears writes on demand, for crash and fault tests
//! (a test tool, outside the library's API: it implements the public
//! [`Backend`] trait like any other engine would).
//!
//! [`FaultyBackend`] wraps any [`Backend`] and passes every call through until a
//! [`Fault`] is injected. Faults can be injected and cleared ([`FaultyBackend::heal`])
//! at any time, from any thread, while a store or a node is using the backend.
//! Reads (`get`, `scan_prefix`, `last_with_prefix`) are never faulted.
//!
//! `tests/fault_injection.rs` uses it under stores, a REST node and sync
//! sessions (`a_store_on_the_faulty_backend_fails_while_faulted_and_writes_once_healed`
//! shows the idea in a few lines).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use permitsync::store::{Backend, BatchOp, Pair, StorageError};

/// A fault to inject into a [`FaultyBackend`]. Faults of different kinds
/// combine; each stays in force until [`FaultyBackend::heal`] unless noted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Every `apply` fails and writes nothing (a read-only or full disk).
    FailApply,
    /// Every `flush` fails (fsync errors); applies still reach the inner backend.
    FailFlush,
    /// The next `apply` writes only the first `keep` operations of its batch to
    /// the inner backend and then fails: a crash in the middle of a write on an
    /// engine whose batches are not atomic. With `keep` at least the batch's
    /// length the whole batch is written and the call still fails (a crash after
    /// the write, before it was acknowledged). Used up by that one apply.
    TearNextApply {
        /// Operations of the batch that reach the inner backend.
        keep: usize,
    },
    /// The next `n` applies succeed; every apply after them fails, as with
    /// [`Fault::FailApply`] (a disk that fills up).
    FailApplyAfter(u64),
}

/// The injected faults.
#[derive(Default)]
struct Faults {
    fail_apply: bool,
    fail_flush: bool,
    tear_next: Option<usize>,
    /// Applies still allowed before [`Faults::fail_apply`] turns on.
    applies_left: Option<u64>,
}

/// What one `apply` does under the current faults.
enum ApplyPlan {
    Pass,
    Fail,
    Tear(usize),
}

/// A [`Backend`] wrapper that fails or tears writes on demand and counts calls.
pub struct FaultyBackend {
    inner: Arc<dyn Backend>,
    faults: Mutex<Faults>,
    applies: AtomicU64,
    failed_applies: AtomicU64,
    torn_applies: AtomicU64,
    flushes: AtomicU64,
    failed_flushes: AtomicU64,
}

impl FaultyBackend {
    /// Wrap `inner`, with no fault injected.
    pub fn new(inner: Arc<dyn Backend>) -> Self {
        FaultyBackend {
            inner,
            faults: Mutex::new(Faults::default()),
            applies: AtomicU64::new(0),
            failed_applies: AtomicU64::new(0),
            torn_applies: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            failed_flushes: AtomicU64::new(0),
        }
    }

    /// The wrapped backend (what survives a "crash": reopen a store on it).
    pub fn inner(&self) -> &Arc<dyn Backend> {
        &self.inner
    }

    /// Inject `fault` (in addition to those already in force).
    pub fn inject(&self, fault: Fault) {
        let mut f = self.lock();
        match fault {
            Fault::FailApply => f.fail_apply = true,
            Fault::FailFlush => f.fail_flush = true,
            Fault::TearNextApply { keep } => f.tear_next = Some(keep),
            Fault::FailApplyAfter(0) => f.fail_apply = true,
            Fault::FailApplyAfter(n) => f.applies_left = Some(n),
        }
    }

    /// Clear every fault: calls pass through again.
    pub fn heal(&self) {
        *self.lock() = Faults::default();
    }

    /// Calls of `apply` so far (failed and torn ones included).
    pub fn applies(&self) -> u64 {
        self.applies.load(Ordering::SeqCst)
    }

    /// Calls of `apply` that returned an error (torn ones included).
    pub fn failed_applies(&self) -> u64 {
        self.failed_applies.load(Ordering::SeqCst)
    }

    /// Calls of `apply` that were torn.
    pub fn torn_applies(&self) -> u64 {
        self.torn_applies.load(Ordering::SeqCst)
    }

    /// Calls of `flush` so far (failed ones included).
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::SeqCst)
    }

    /// Calls of `flush` that returned an error.
    pub fn failed_flushes(&self) -> u64 {
        self.failed_flushes.load(Ordering::SeqCst)
    }

    /// Calls of `flush` that succeeded.
    pub fn successful_flushes(&self) -> u64 {
        self.flushes() - self.failed_flushes()
    }

    /// The faults; a panic while they were held cannot leave them half-set, so
    /// a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, Faults> {
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Decide what the next apply does, using up one-shot faults.
    fn plan_apply(&self) -> ApplyPlan {
        let mut f = self.lock();
        if let Some(keep) = f.tear_next.take() {
            return ApplyPlan::Tear(keep);
        }
        if f.fail_apply {
            return ApplyPlan::Fail;
        }
        match f.applies_left {
            Some(0) => {
                f.applies_left = None;
                f.fail_apply = true;
                ApplyPlan::Fail
            }
            Some(n) => {
                f.applies_left = Some(n - 1);
                ApplyPlan::Pass
            }
            None => ApplyPlan::Pass,
        }
    }
}

impl Backend for FaultyBackend {
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

    fn apply(&self, mut batch: Vec<BatchOp>) -> Result<(), StorageError> {
        self.applies.fetch_add(1, Ordering::SeqCst);
        match self.plan_apply() {
            ApplyPlan::Pass => self.inner.apply(batch),
            ApplyPlan::Fail => {
                self.failed_applies.fetch_add(1, Ordering::SeqCst);
                Err(StorageError::new("injected fault: apply failed"))
            }
            ApplyPlan::Tear(keep) => {
                self.failed_applies.fetch_add(1, Ordering::SeqCst);
                self.torn_applies.fetch_add(1, Ordering::SeqCst);
                let total = batch.len();
                batch.truncate(keep);
                let written = batch.len();
                if written > 0 {
                    self.inner.apply(batch)?;
                }
                Err(StorageError::new(format!(
                    "injected fault: apply torn after {written} of {total} writes"
                )))
            }
        }
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        if self.lock().fail_flush {
            self.failed_flushes.fetch_add(1, Ordering::SeqCst);
            return Err(StorageError::new("injected fault: flush failed"));
        }
        self.inner.flush().inspect_err(|_| {
            self.failed_flushes.fetch_add(1, Ordering::SeqCst);
        })
    }
}
