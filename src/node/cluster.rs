//! Following the other relays over the same database: a task that catches
//! up with their writes ([`crate::store::Store::catch_up`]) whenever the
//! database's notification wakes it, and every poll interval regardless
//! (notifications can be lost: a reconnecting listener, or a database
//! without `NOTIFY`), and tells this relay's live connections, as for a
//! write of its own. `docs/cluster.md` describes the whole.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::state::NodeState;
use crate::error::Result;

/// The feed poll's interval when none is given.
pub const DEFAULT_CLUSTER_POLL: Duration = Duration::from_millis(1000);

/// Feed entries read per catch-up call.
const PAGE: usize = 1000;

/// Follow the other relays until `stop` turns true. Does nothing on
/// storage that no other process writes.
pub(super) async fn follow(state: Arc<NodeState>, poll: Duration, mut stop: watch::Receiver<bool>) {
    let store = state.store.clone();
    if !store.backend().shared() {
        return;
    }
    let wake = store.backend().wake();
    let poll = if poll.is_zero() {
        DEFAULT_CLUSTER_POLL
    } else {
        poll
    };
    let start = {
        let store = store.clone();
        run_blocking_store(move || store.stored_feed_head()).await
    };
    let mut cursor = match start {
        Ok(head) => head,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the feed's head; following from 0");
            0
        }
    };
    tracing::info!(
        cursor,
        poll_ms = poll.as_millis() as u64,
        notified = wake.is_some(),
        "following the other relays over the database"
    );
    loop {
        let notified = async {
            match &wake {
                Some(w) => w.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => return,
        }
        // a page at a time until the feed is read to its end
        loop {
            let from = cursor;
            let caught = {
                let store = store.clone();
                run_blocking_store(move || store.catch_up(from, PAGE)).await
            };
            let caught = match caught {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the feed; the next poll tries again");
                    break;
                }
            };
            if !caught.caught.is_empty() {
                tracing::debug!(
                    from,
                    to = caught.cursor,
                    documents = caught.caught.len(),
                    dropped = caught.dropped,
                    "caught up with other relays"
                );
            }
            for doc in &caught.caught {
                if state.auth.is_open() {
                    state.hub.doc_changed(doc.internal, None);
                } else {
                    state.hub.doc_changed_in(&doc.tenant, doc.external, None);
                }
            }
            let full = caught.cursor > from && caught.caught.len() >= PAGE;
            cursor = caught.cursor;
            if !full {
                break;
            }
        }
    }
}

/// Run store work off the async threads.
async fn run_blocking_store<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| crate::Error::storage(format!("a store task failed: {e}")))?
}
