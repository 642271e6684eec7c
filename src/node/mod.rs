//! A node: the REST API and the WebSocket sync endpoint over one store, and
//! connections it dials to other nodes. The sync logic itself is sans-IO
//! ([`crate::sync`]); this module moves its frames over axum and tokio.

mod access;
mod api_error;
mod auth;
mod blob_api;
mod classic_api;
mod connection;
mod dashboard;
mod devices;
mod dialer;
mod events;
mod hub;
mod metrics;
mod operator_api;
mod quotas;
mod rest;
mod server;
mod state;
mod ws;

pub use access::Access;
pub use api_error::ApiError;
pub use auth::{access_from_parts, Auth, AuthError, Mode, TokenEntry};
pub use connection::{drive, DriveOptions, Ended, Transport};
pub use dashboard::dashboard_router;
pub use devices::{DeviceInfo, Devices};
pub use dialer::{connect, redact};
pub use events::{events_router, EventBus, NodeEvent};
pub use hub::{Direction, Hub, HubEvent, PeerStats, PeerStatus};
pub use metrics::Metrics;
pub use quotas::{Quotas, RateLimiter};
pub use rest::rest_router;
pub use server::{app, build_state, run, NodeOptions};
pub use state::NodeState;
