//! The bridge between the synchronous [`crate::store::Backend`] and the async
//! PostgreSQL client: a small tokio runtime owned by the engine, on which
//! every query runs; a caller waits on a plain channel for the answer.
//!
//! Why not block on the client from the caller's thread: the backend is
//! called from tokio's blocking pool, from plain threads and, for a few cheap
//! reads, from tasks on a runtime's workers. `Runtime::block_on` (which the
//! synchronous `postgres` crate uses) panics on a thread that drives async
//! tasks, and a query that needed the caller's own runtime to make progress
//! could deadlock it. Here the caller only waits on a channel (allowed on any
//! thread), and the runtime that drives the connections is never the caller's:
//! nothing the caller's runtime does can stall a query, and no query waits for
//! the caller. The same runtime will run the `LISTEN` connection of the next
//! phase (see `docs/cluster.md`).

use std::future::Future;
use std::sync::mpsc;

use tokio::runtime::{Builder, Runtime};

use crate::store::StorageError;

/// Worker threads of the engine's runtime: the work is waiting on the
/// network, so two are plenty (and this is what a 2-core relay can give).
const WORKER_THREADS: usize = 2;

/// The engine's own runtime.
pub(super) struct Bridge {
    /// `None` only while dropping.
    runtime: Option<Runtime>,
}

impl Bridge {
    /// Start the runtime.
    pub(super) fn new() -> std::io::Result<Bridge> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("permitsync-pg")
            .enable_all()
            .build()?;
        Ok(Bridge {
            runtime: Some(runtime),
        })
    }

    /// Run `work` on the engine's runtime and wait for its answer (from any
    /// thread, also one of another runtime). Fails only when the runtime is
    /// going away or `work` panicked.
    pub(super) fn run<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| StorageError::new("the database engine is shutting down"))?;
        let (tx, rx) = mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(work.await);
        });
        // a task that panicked drops its sender: an error, not a hang
        rx.recv()
            .map_err(|_| StorageError::new("a database task ended without an answer"))
    }
}

impl Bridge {
    /// Run `work` on the engine's runtime in the background, until it ends
    /// or the engine is dropped.
    pub(super) fn spawn<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if let Some(runtime) = &self.runtime {
            runtime.spawn(work);
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // dropping a runtime waits for its tasks, which panics inside another
        // runtime's task: let the threads go in the background instead
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From a task on a runtime's worker, the bridge answers (no panic about
    /// blocking inside a runtime, no deadlock on a single worker thread), and
    /// the engine can be dropped there.
    #[test]
    fn answers_on_a_runtime_worker_and_drops_there() {
        let outer = Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let answer = outer.block_on(async {
            let bridge = Bridge::new().expect("bridge");
            let v = bridge.run(async {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                41 + 1
            });
            drop(bridge);
            v
        });
        assert_eq!(answer, Ok(42));
    }

    #[test]
    fn a_task_that_panics_is_an_error() {
        let bridge = Bridge::new().expect("bridge");
        let err = bridge.run(async { panic!("boom") }).expect_err("an error");
        assert_eq!(err.message(), "a database task ended without an answer");
    }
}
