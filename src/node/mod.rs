//! A node: the REST API and the WebSocket sync endpoint over one store, and
//! connections it dials to other nodes. The sync logic itself is sans-IO
//! ([`crate::sync`]); this module moves its frames over axum and tokio.

mod address_slots;
mod admin_api;
mod admin_token;
mod alarm;
mod api_doc;
mod api_error;
mod api_schemas;
mod auth;
mod auth_throttle;
mod blob_api;
mod classic_api;
mod cluster;
mod cluster_view;
mod conn_slots;
mod connection;
mod dashboard;
mod device_api;
mod devices;
mod dialer;
mod entity_api;
mod entity_create;
mod entity_listing;
mod event_bus;
mod events;
mod extract;
mod gate;
mod http_guards;
mod hub;
mod listener;
mod listing_query;
mod metrics;
mod net_limits;
mod operator_api;
mod permit_index;
mod quotas;
mod readiness;
mod role_config;
mod routes;
mod server;
mod state;
mod status_api;
mod store_work;
mod tls;
mod token_watch;
mod ws;

pub use crate::model::Access;
pub use admin_token::AdminToken;
pub use api_doc::openapi;
pub use api_error::ApiError;
pub use auth::{access_from_parts, Auth, AuthError, Mode, TokenEntry};
pub use auth_throttle::AuthThrottle;
pub use cluster::DEFAULT_CLUSTER_POLL;
pub use cluster_view::{ClusterInfo, ClusterView};
pub use conn_slots::{ConnSlot, ConnSlots};
pub use connection::{drive, DriveOptions, Ended, Transport};
pub use dashboard::dashboard_router;
pub use devices::{DeviceInfo, Devices};
pub use dialer::{cluster_urls, connect, connect_with, dial_forever, redact};
pub use event_bus::{EventBus, NodeEvent};
pub use events::events_router;
pub use http_guards::BodyTimeout;
pub use hub::{Direction, Hub, HubEvent, PeerStats, PeerStatus};
pub use metrics::Metrics;
pub use net_limits::{raise_open_file_limit, NetLimits, RESERVED_FILES};
pub use quotas::{Quotas, RateLimiter};
pub use role_config::{
    apply_role_tables, read_role_table_file, reload_role_tables, watch_role_tables, RoleTableFile,
    RoleTableFileError,
};
pub use routes::{app, rest_router};
pub use server::{build_state, read_authority_key, run, run_with, NodeOptions, RunOptions};
pub use state::NodeState;
pub use tls::{ClientTls, MaybeTls, ServerTls, TlsError};
pub use token_watch::watch_tokens;
