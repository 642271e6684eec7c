//! Following the other relays over the same database: a task that catches
//! up with their writes ([`crate::store::Store::catch_up`]) whenever the
//! database's notification wakes it, and every poll interval regardless
//! (notifications can be lost: a reconnecting listener, or a database
//! without `NOTIFY`), and tells this relay's live connections, as for a
//! write of its own; and reads the identity records again when another
//! relay changed them ([`crate::store::Store::refresh_identity`]).
//! `docs/cluster.md` describes the whole.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::cluster_view::ClusterView;
use super::state::NodeState;
use crate::error::Result;

/// The feed poll's interval when none is given.
pub const DEFAULT_CLUSTER_POLL: Duration = Duration::from_millis(1000);

/// Feed entries read per catch-up call.
const PAGE: usize = 1000;

/// How often a relay writes its heartbeat row.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// A relay whose heartbeat is older than this is not counted as a peer.
const RECENT: Duration = Duration::from_secs(30);

/// Follow the other relays until `stop` turns true. Does nothing on
/// storage that no other process writes.
pub(super) async fn follow(
    state: Arc<NodeState>,
    poll: Duration,
    address: String,
    mut stop: watch::Receiver<bool>,
) {
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
    let relay = format!("{:016x}", rand::random::<u64>());
    tracing::info!(
        relay = %relay,
        cursor,
        poll_ms = poll.as_millis() as u64,
        notified = wake.is_some(),
        "following the other relays over the database"
    );
    heartbeat(&state, &relay, &address, cursor).await;
    let mut next_beat = tokio::time::Instant::now() + HEARTBEAT;
    let mut next_poll = tokio::time::Instant::now() + poll;
    loop {
        let notified = async {
            match &wake {
                Some(w) => w.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(next_poll) => next_poll += poll,
            _ = tokio::time::sleep_until(next_beat) => {
                next_beat = tokio::time::Instant::now() + HEARTBEAT;
                heartbeat(&state, &relay, &address, cursor).await;
                let devices = state.clone();
                match tokio::task::spawn_blocking(move || devices.devices.reload_registry()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the device registry"),
                    Err(e) => tracing::warn!(error = %e, "the device registry's task failed"),
                }
                continue;
            }
            _ = stop.changed() => return,
        }
        if next_poll <= tokio::time::Instant::now() {
            next_poll = tokio::time::Instant::now() + poll;
        }
        // certificates issued and revoked through other relays: judged
        // alike here, before the documents caught up below are shown
        let refreshed = {
            let store = store.clone();
            run_blocking_store(move || store.refresh_identity()).await
        };
        match refreshed {
            Ok(true) => {
                tracing::info!("identity records changed; documents are judged again");
                // a newer revocation list goes to the live connections
                state.hub.identity_changed(None);
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the identity records"),
        }
        // devices other relays removed: refused here too, and cut off
        let reloaded = {
            let state = state.clone();
            tokio::task::spawn_blocking(move || state.devices.reload_blocks()).await
        };
        match reloaded {
            Ok(Ok(blocked)) => {
                for (tenant, device) in blocked {
                    tracing::info!(%tenant, %device, "device removed through another relay");
                    state.hub.revoke(&tenant, &device, "device removed");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the blocked devices"),
            Err(e) => tracing::warn!(error = %e, "the blocked devices' task failed"),
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

/// Write this relay's heartbeat and keep what it found for the status.
async fn heartbeat(state: &Arc<NodeState>, relay: &str, address: &str, cursor: u64) {
    let store = state.store.clone();
    let (id, addr) = (relay.to_string(), address.to_string());
    let started = Instant::now();
    let beat =
        tokio::task::spawn_blocking(move || store.backend().heartbeat(&id, &addr, cursor, RECENT))
            .await;
    let latency = started.elapsed();
    match beat {
        Ok(Ok(Some(beat))) => state.cluster.set(ClusterView {
            relay: relay.to_string(),
            relays: beat.relays,
            feed_head: beat.feed_head.max(cursor),
            caught_up: cursor,
            feed_lag: beat.feed_head.saturating_sub(cursor),
            database_latency_ms: latency.as_secs_f64() * 1000.0,
        }),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "heartbeat to the database failed"),
        Err(e) => tracing::warn!(error = %e, "heartbeat task failed"),
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
