//! The hub: every live sync connection of a node, so that a change that
//! arrives on one (or through the REST API) reaches the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::mpsc;

use super::conn_slots::ConnSlots;
use super::event_bus::{EventBus, NodeEvent};
use crate::model::{Access, EntityId};

/// Something a connection's task must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubEvent {
    /// A document changed (not through this connection).
    DocChanged(EntityId),
    /// The node learnt a newer revocation list: send it on.
    IdentityChanged,
    /// Close the connection (e.g. the device was removed).
    Close(String),
    /// The node is shutting down.
    Shutdown(String),
}

/// Counters of one connection, updated by its task.
#[derive(Debug, Default)]
pub struct PeerStats {
    /// Sync messages sent.
    pub messages_sent: AtomicU64,
    /// Sync messages received.
    pub messages_received: AtomicU64,
    /// Bytes sent.
    pub bytes_out: AtomicU64,
    /// Bytes received.
    pub bytes_in: AtomicU64,
    /// Documents that still have sync messages to exchange.
    pub docs_pending: AtomicU64,
    /// Documents for which this node sent changes.
    pub docs_sent: AtomicU64,
    /// Documents for which the peer sent new changes.
    pub docs_received: AtomicU64,
    /// Conflicts in documents received from the peer.
    pub conflicts: AtomicU64,
    /// Operations of the peer's that the view rejected.
    pub rejected: AtomicU64,
    /// When the last sync message was exchanged (ms since the epoch).
    pub last_sync_ms: AtomicU64,
}

/// Which side opened the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The peer dialed this node.
    Inbound,
    /// This node dialed the peer.
    Outbound,
}

/// A live connection as the hub knows it.
#[derive(Clone)]
pub struct PeerHandle {
    /// The peer's id from its `join` / `peer` message.
    pub peer_id: String,
    /// What the peer may do.
    pub access: Access,
    /// Who dialed.
    pub direction: Direction,
    /// The URL dialed, for outbound connections.
    pub url: Option<String>,
    /// Live counters.
    pub stats: Arc<PeerStats>,
    /// The peer wants every change of its tenant (it speaks the feed extension),
    /// not only those of the documents it follows.
    pub wants_all: bool,
    events: mpsc::UnboundedSender<HubEvent>,
}

/// A connection's status, as `GET /v1/status` and `permitsync status` show it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PeerStatus {
    /// Connection number (unique while the node runs).
    pub connection: u64,
    /// The peer's id.
    pub peer_id: String,
    /// The peer's device (from its token).
    pub device: String,
    /// The peer's tenant.
    pub tenant: String,
    /// Who dialed.
    pub direction: Direction,
    /// The URL dialed, for outbound connections.
    pub url: Option<String>,
    /// Documents still being synced.
    pub pending: u64,
    /// Documents this node sent changes for.
    pub sent: u64,
    /// Documents the peer sent new changes for.
    pub received: u64,
    /// Conflicts in what the peer sent.
    pub conflicts: u64,
    /// Rejected operations in what the peer sent.
    pub rejected: u64,
    /// Sync messages sent / received.
    pub messages_sent: u64,
    /// Sync messages received.
    pub messages_received: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Last sync message exchanged (ms since the epoch), 0 if none.
    pub last_sync_ms: u64,
}

fn peer_event(access: &Access, connected: bool) -> NodeEvent {
    NodeEvent::Peer {
        tenant: access.tenant.clone(),
        device: access.device.clone(),
        connected,
    }
}

/// The registry of live connections.
#[derive(Default)]
pub struct Hub {
    peers: Mutex<HashMap<u64, PeerHandle>>,
    /// Which connections follow which document (they exchanged sync messages
    /// about it), so a change wakes only the connections it concerns.
    followers: Mutex<HashMap<EntityId, std::collections::HashSet<u64>>>,
    next: AtomicU64,
    /// What live clients (`GET /v1/events`) hear about.
    events: EventBus,
    /// Sync connections per token, counted from the upgrade (before `join`).
    slots: Arc<ConnSlots>,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sync connections per token, counted from the upgrade.
    pub fn slots(&self) -> &Arc<ConnSlots> {
        &self.slots
    }

    /// The node's live events: document changes and device connections.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Register a connection; returns its number and the receiver of its events.
    pub fn register(
        &self,
        peer_id: String,
        access: Access,
        direction: Direction,
        url: Option<String>,
        stats: Arc<PeerStats>,
    ) -> (u64, mpsc::UnboundedReceiver<HubEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let event = peer_event(&access, true);
        let handle = PeerHandle {
            peer_id,
            access,
            direction,
            url,
            stats,
            wants_all: false,
            events: tx,
        };
        if let Ok(mut peers) = self.peers.lock() {
            peers.insert(id, handle);
        }
        self.events.publish(event);
        (id, rx)
    }

    /// Forget a connection.
    pub fn unregister(&self, connection: u64) {
        if let Ok(mut peers) = self.peers.lock() {
            if let Some(p) = peers.remove(&connection) {
                self.events.publish(peer_event(&p.access, false));
            }
        }
        if let Ok(mut followers) = self.followers.lock() {
            followers.retain(|_, conns| {
                conns.remove(&connection);
                !conns.is_empty()
            });
        }
    }

    /// Mark that `connection` wants every change of its tenant.
    pub fn set_wants_all(&self, connection: u64, wants_all: bool) {
        if let Ok(mut peers) = self.peers.lock() {
            if let Some(p) = peers.get_mut(&connection) {
                p.wants_all = wants_all;
            }
        }
    }

    /// Note that `connection` follows documents `ids`.
    pub fn follow(&self, connection: u64, ids: impl IntoIterator<Item = EntityId>) {
        if let Ok(mut followers) = self.followers.lock() {
            for id in ids {
                followers.entry(id).or_default().insert(connection);
            }
        }
    }

    /// Tell the connections that follow document `id` (and those that want
    /// every change), but not `origin`, that it changed; connections of every
    /// tenant (a node without tokens has one id space).
    pub fn doc_changed(&self, id: EntityId, origin: Option<u64>) {
        self.notify(None, id, origin);
    }

    /// [`Hub::doc_changed`] for tenant `tenant`'s document `id` (the id as
    /// the tenant knows it): only that tenant's connections hear of it, as
    /// another tenant's document of the same id is another document.
    pub fn doc_changed_in(&self, tenant: &str, id: EntityId, origin: Option<u64>) {
        self.notify(Some(tenant), id, origin);
    }

    fn notify(&self, tenant: Option<&str>, id: EntityId, origin: Option<u64>) {
        self.events.publish(NodeEvent::DocChanged {
            tenant: tenant.map(str::to_string),
            id,
        });
        let following: std::collections::HashSet<u64> = self
            .followers
            .lock()
            .map(|f| f.get(&id).cloned().unwrap_or_default())
            .unwrap_or_default();
        if let Ok(peers) = self.peers.lock() {
            for (conn, p) in peers.iter() {
                let theirs = tenant.is_none_or(|t| p.access.tenant == t);
                if Some(*conn) != origin && theirs && (p.wants_all || following.contains(conn)) {
                    let _ = p.events.send(HubEvent::DocChanged(id));
                }
            }
        }
    }

    /// Tell every connection but `origin` that the node learnt a newer
    /// revocation list (each sends on its own tenant's, if the peer lacks it).
    pub fn identity_changed(&self, origin: Option<u64>) {
        if let Ok(peers) = self.peers.lock() {
            for (conn, p) in peers.iter() {
                if Some(*conn) != origin {
                    let _ = p.events.send(HubEvent::IdentityChanged);
                }
            }
        }
    }

    /// Close every connection of `device` in `tenant`; returns how many.
    pub fn disconnect_device(&self, tenant: &str, device: &str) -> usize {
        self.close_device(tenant, device, "device removed")
    }

    /// A device lost its access: close its sync connections and end its event
    /// streams; returns how many sync connections were told.
    pub fn revoke(&self, tenant: &str, device: &str, reason: &str) -> usize {
        let n = self.close_device(tenant, device, reason);
        self.events.publish(NodeEvent::Revoked {
            tenant: tenant.to_string(),
            device: device.to_string(),
        });
        n
    }

    fn close_device(&self, tenant: &str, device: &str, reason: &str) -> usize {
        let Ok(peers) = self.peers.lock() else {
            return 0;
        };
        let mut n = 0;
        for p in peers.values() {
            if p.access.tenant == tenant && p.access.device == device {
                let _ = p.events.send(HubEvent::Close(reason.to_string()));
                n += 1;
            }
        }
        n
    }

    /// Tell every connection the node is shutting down.
    pub fn shutdown_all(&self, reason: &str) {
        self.events.close();
        if let Ok(peers) = self.peers.lock() {
            for p in peers.values() {
                let _ = p.events.send(HubEvent::Shutdown(reason.to_string()));
            }
        }
    }

    /// Live connections of one token (tenant and device).
    pub fn connections_of(&self, tenant: &str, device: &str) -> usize {
        self.peers
            .lock()
            .map(|peers| {
                peers
                    .values()
                    .filter(|p| p.access.tenant == tenant && p.access.device == device)
                    .count()
            })
            .unwrap_or(0)
    }

    /// Number of live connections.
    pub fn len(&self) -> usize {
        self.peers.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// Whether there are no live connections.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The status of every live connection (of `tenant`, when given), by connection number.
    pub fn status(&self, tenant: Option<&str>) -> Vec<PeerStatus> {
        let Ok(peers) = self.peers.lock() else {
            return Vec::new();
        };
        let mut out: Vec<PeerStatus> = peers
            .iter()
            .filter(|(_, p)| tenant.is_none_or(|t| p.access.tenant == t))
            .map(|(conn, p)| {
                let s = &p.stats;
                let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
                PeerStatus {
                    connection: *conn,
                    peer_id: p.peer_id.clone(),
                    device: p.access.device.clone(),
                    tenant: p.access.tenant.clone(),
                    direction: p.direction,
                    url: p.url.clone(),
                    pending: get(&s.docs_pending),
                    sent: get(&s.docs_sent),
                    received: get(&s.docs_received),
                    conflicts: get(&s.conflicts),
                    rejected: get(&s.rejected),
                    messages_sent: get(&s.messages_sent),
                    messages_received: get(&s.messages_received),
                    bytes_out: get(&s.bytes_out),
                    bytes_in: get(&s.bytes_in),
                    last_sync_ms: get(&s.last_sync_ms),
                }
            })
            .collect();
        out.sort_by_key(|p| p.connection);
        out
    }
}
