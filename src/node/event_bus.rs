//! The node's broadcast of what happened ([`NodeEvent`]): the
//! [`Hub`](super::Hub) publishes on it, the live-events streams
//! (`GET /v1/events`, [`super::events`]) listen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::broadcast;

use crate::model::EntityId;

/// How many events the bus buffers for a slow stream before it lags (and is
/// told to `resync`).
pub const BUS_CAPACITY: usize = 1024;

/// Something that happened on a node that live clients may want to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// A document changed: `tenant`'s document `id` (the id as the tenant
    /// knows it), or on a node without tokens (`None`) the one document `id`.
    DocChanged {
        /// The tenant whose document changed, when the node has tenants.
        tenant: Option<String>,
        /// The document, as its tenant knows it.
        id: EntityId,
    },
    /// A sync connection of a device opened (`connected`) or closed.
    Peer {
        /// The device's tenant.
        tenant: String,
        /// The device.
        device: String,
        /// Whether the connection opened.
        connected: bool,
    },
    /// A device lost its access (removed, or its token left the tokens file):
    /// its streams end.
    Revoked {
        /// The device's tenant.
        tenant: String,
        /// The device.
        device: String,
    },
    /// The node is shutting down: streams end.
    Shutdown,
}

/// The node's broadcast of [`NodeEvent`]s. Publishing costs next to nothing
/// when no stream listens.
pub struct EventBus {
    tx: broadcast::Sender<NodeEvent>,
    closed: AtomicBool,
    /// Open streams per (tenant, device).
    streams: Mutex<HashMap<(String, String), usize>>,
}

impl Default for EventBus {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(BUS_CAPACITY);
        EventBus {
            tx,
            closed: AtomicBool::new(false),
            streams: Mutex::new(HashMap::new()),
        }
    }
}

impl EventBus {
    /// Tell every live stream.
    pub fn publish(&self, event: NodeEvent) {
        // an error only means that nobody listens
        let _ = self.tx.send(event);
    }

    /// A receiver of the events published from now on; `None` once closed.
    pub fn subscribe(&self) -> Option<broadcast::Receiver<NodeEvent>> {
        let rx = self.tx.subscribe();
        (!self.closed.load(Ordering::SeqCst)).then_some(rx)
    }

    /// End every stream, now and later (the node is shutting down).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.publish(NodeEvent::Shutdown);
    }

    /// Number of open event streams.
    pub fn streams(&self) -> usize {
        self.counts().values().sum()
    }

    /// Open streams per (tenant, device), for [`super::events`] to count in.
    pub(super) fn counts(&self) -> MutexGuard<'_, HashMap<(String, String), usize>> {
        // every update is a single insert or remove: consistent even after a panic
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_bus_has_no_new_subscribers_and_ends_old_ones() {
        let bus = EventBus::default();
        let mut rx = bus.subscribe().expect("open bus");
        bus.publish(NodeEvent::DocChanged {
            tenant: None,
            id: EntityId::new_random(),
        });
        bus.close();
        assert!(bus.subscribe().is_none());
        assert!(matches!(rx.try_recv(), Ok(NodeEvent::DocChanged { .. })));
        assert_eq!(rx.try_recv(), Ok(NodeEvent::Shutdown));
    }

    #[test]
    fn publishing_without_subscribers_is_fine() {
        let bus = EventBus::default();
        bus.publish(NodeEvent::Shutdown);
        assert_eq!(bus.streams(), 0);
    }
}
