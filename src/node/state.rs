//! Everything a running node shares between its connections and requests.

use std::sync::Arc;

use super::auth::Auth;
use super::cluster_view::ClusterInfo;
use super::devices::Devices;
use super::hub::Hub;
use super::metrics::Metrics;
use super::quotas::{Quotas, RateLimiter};
use crate::model::Access;
use crate::store::{Clock, Store};
use crate::wire::Limits;

/// The node's state as handlers and connections share it.
pub(super) type Shared = Arc<NodeState>;

/// The shared state of a node.
pub struct NodeState {
    /// The node's store.
    pub store: Store,
    /// Bearer tokens (or open access when the node has no tokens file).
    pub auth: Auth,
    /// Live sync connections.
    pub hub: Hub,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Devices that connected (persisted in the store).
    pub devices: Devices,
    /// This node's peer id on the wire.
    pub peer_id: String,
    /// Limits on what peers may send.
    pub limits: Limits,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Abuse limits.
    pub quotas: Quotas,
    /// Requests per token per second.
    pub rate: RateLimiter,
    /// The operator's token for `/v1/admin/...` (none: those routes are off).
    pub admin_token: Option<super::admin_token::AdminToken>,
    /// The relays over the same database, as the last heartbeat saw them.
    pub cluster: ClusterInfo,
}

impl NodeState {
    /// The store as `access`'s tenant sees it: the tenant's own id space on a
    /// node with tokens (another tenant's document of the same id is another
    /// document); the store as it is on a node without tokens (one tenant,
    /// and no extra read per id).
    ///
    /// With tokens, the handle also writes for the token's device and roles:
    /// on this node, when it is the tenant's authority, what the device
    /// writes through it (REST, classic API) or uploads unsigned (sync) is
    /// attested on its behalf and checked against its roles.
    pub fn store_for(&self, access: &Access) -> Store {
        if self.auth.is_open() {
            self.store.clone()
        } else {
            self.store
                .in_tenant(&access.tenant)
                .acting_as(&access.device)
                .with_roles(access.effective_roles())
                .with_person(access.person.as_deref())
        }
    }

    /// The store as a peer this node dialed sees it: everything of the
    /// default tenant, nothing attested on the peer's behalf.
    pub fn store_for_dialed(&self) -> Store {
        self.store.clone()
    }

    /// After a durable change of `access`'s tenant's document `id`: tell the
    /// tenant's live sync connections (but `origin`) and event streams.
    pub fn doc_changed(&self, access: &Access, id: crate::model::EntityId, origin: Option<u64>) {
        if self.auth.is_open() {
            self.hub.doc_changed(id, origin);
        } else {
            self.hub.doc_changed_in(&access.tenant, id, origin);
        }
    }
}
