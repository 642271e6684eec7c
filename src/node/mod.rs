//! A node: the REST API and the WebSocket sync endpoint over one store, and
//! connections it dials to other nodes. The sync logic itself is sans-IO
//! ([`crate::sync`]); this module moves its frames over axum and tokio.

mod access;
mod auth;
mod devices;
mod hub;
mod metrics;
mod state;

pub use access::Access;
pub use auth::Auth;
pub use devices::Devices;
pub use hub::{Direction, Hub, HubEvent, PeerStats, PeerStatus};
pub use metrics::Metrics;
pub use state::NodeState;
