//! Group commit: concurrent writers share one flush.
//!
//! A writer applies its batch (in memory), then waits until a flush that
//! started after its batch has finished. Whoever finds no flush running becomes
//! the leader and flushes for everyone who arrived so far; the others wait for
//! it. One fsync thus covers many writes, and no write is acknowledged before
//! it is durable.

use std::sync::{Condvar, Mutex};

use super::backend::StorageError;

#[derive(Default)]
struct State {
    /// Tickets handed out (one per write waiting to be durable).
    issued: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    /// A flush is running.
    flushing: bool,
    /// Tickets up to this one were covered by a failed flush.
    failed_upto: u64,
    last_error: Option<StorageError>,
    /// Flushes run so far (for metrics and tests).
    flushes: u64,
}

/// Coordinates flushes among concurrent writers.
#[derive(Default)]
pub struct GroupCommit {
    state: Mutex<State>,
    cv: Condvar,
}

impl GroupCommit {
    /// A new coordinator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wait until everything applied before this call is durable, running
    /// `flush` as the leader when no flush is under way. `before_flush` runs in
    /// the leader just before flushing (to note what the flush will cover).
    pub fn wait_durable(
        &self,
        before_flush: impl Fn(),
        flush: impl Fn() -> Result<(), StorageError>,
        after_flush: impl Fn(),
    ) -> Result<(), StorageError> {
        let poisoned = || StorageError::new("group commit lock poisoned");
        let mut st = self.state.lock().map_err(|_| poisoned())?;
        st.issued += 1;
        let ticket = st.issued;
        loop {
            if st.durable >= ticket {
                return Ok(());
            }
            if st.failed_upto >= ticket {
                return Err(st
                    .last_error
                    .clone()
                    .unwrap_or_else(|| StorageError::new("flush failed")));
            }
            if !st.flushing {
                st.flushing = true;
                let target = st.issued;
                drop(st);
                before_flush();
                let result = flush();
                if result.is_ok() {
                    after_flush();
                }
                st = self.state.lock().map_err(|_| poisoned())?;
                st.flushing = false;
                st.flushes += 1;
                match result {
                    Ok(()) => st.durable = st.durable.max(target),
                    Err(e) => {
                        st.failed_upto = st.failed_upto.max(target);
                        st.last_error = Some(e);
                    }
                }
                self.cv.notify_all();
            } else {
                st = self.cv.wait(st).map_err(|_| poisoned())?;
            }
        }
    }

    /// How many flushes ran.
    pub fn flushes(&self) -> u64 {
        self.state.lock().map(|s| s.flushes).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn concurrent_writers_share_flushes_and_all_become_durable() {
        let gc = Arc::new(GroupCommit::new());
        let flushed = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let gc = gc.clone();
                let flushed = flushed.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        gc.wait_durable(
                            || {},
                            || {
                                std::thread::sleep(std::time::Duration::from_millis(2));
                                flushed.fetch_add(1, Ordering::SeqCst);
                                Ok(())
                            },
                            || {},
                        )
                        .expect("durable");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("join");
        }
        // 320 writes; with 16 concurrent writers far fewer flushes are needed
        assert!(gc.flushes() < 320, "flushes: {}", gc.flushes());
        assert_eq!(gc.flushes(), flushed.load(Ordering::SeqCst));
    }

    #[test]
    fn a_failed_flush_is_reported_and_the_next_one_can_succeed() {
        let gc = GroupCommit::new();
        let r = gc.wait_durable(|| {}, || Err(StorageError::new("disk full")), || {});
        assert_eq!(r, Err(StorageError::new("disk full")));
        assert!(gc.wait_durable(|| {}, || Ok(()), || {}).is_ok());
    }
}
