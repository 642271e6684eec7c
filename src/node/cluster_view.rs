//! What a relay over a shared database knows of the cluster, from its last
//! heartbeat (`cluster.rs` writes it): shown by `/v1/status` and `/metrics`.

use std::sync::Mutex;

use serde::Serialize;

use crate::store::RelaySeen;

/// The cluster as this relay last saw it (`/v1/status`, `/metrics`).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ClusterView {
    /// This relay's id in `relays` (new every start).
    pub relay: String,
    /// The relays whose heartbeat is at most 30 s old, this one included
    /// (each: relay, address, feed position caught up to, age of its last
    /// heartbeat).
    #[schema(value_type = Vec<Object>)]
    pub relays: Vec<RelaySeen>,
    /// The last feed position committed by any relay.
    pub feed_head: u64,
    /// The feed position this relay has caught up to.
    pub caught_up: u64,
    /// Positions committed by others and not caught up with yet.
    pub feed_lag: u64,
    /// The round trip of the last heartbeat (two statements and two
    /// queries), in milliseconds.
    pub database_latency_ms: f64,
}

/// The last [`ClusterView`] (none on a node whose storage it shares with
/// nobody).
#[derive(Default)]
pub struct ClusterInfo {
    view: Mutex<Option<ClusterView>>,
}

impl ClusterInfo {
    /// The last view, if the node is in a cluster.
    pub fn view(&self) -> Option<ClusterView> {
        self.view.lock().ok().and_then(|v| v.clone())
    }

    pub(super) fn set(&self, view: ClusterView) {
        if let Ok(mut v) = self.view.lock() {
            *v = Some(view);
        }
    }

    /// The Prometheus lines of the view (none outside a cluster).
    pub fn metrics_text(&self) -> String {
        let Some(v) = self.view() else {
            return String::new();
        };
        format!(
            "# HELP permitsync_cluster_relays Relays over the same database seen within 30 s, \
             this one included.\n\
             # TYPE permitsync_cluster_relays gauge\n\
             permitsync_cluster_relays {}\n\
             # HELP permitsync_cluster_feed_lag Feed positions other relays committed that \
             this relay has not caught up with.\n\
             # TYPE permitsync_cluster_feed_lag gauge\n\
             permitsync_cluster_feed_lag {}\n\
             # HELP permitsync_cluster_database_latency_seconds Round trip of the last \
             heartbeat to the database.\n\
             # TYPE permitsync_cluster_database_latency_seconds gauge\n\
             permitsync_cluster_database_latency_seconds {}\n",
            v.relays.len(),
            v.feed_lag,
            v.database_latency_ms / 1000.0
        )
    }
}
