//! Sync over the automerge-repo protocol, sans-IO.
//!
//! A [`Session`] is one connection's protocol state machine: the `join` /
//! `peer` handshake, a per-document `automerge::sync::State` (persisted per
//! peer, so a reconnect resumes), tenant checks, and permitsync's extensions
//! (a change feed that carries what a reconnecting device lacks, so it costs
//! sync messages only for documents changed on both sides,
//! and rejection notices). It takes frames and returns frames plus effects;
//! the node moves them over WebSockets (`crate::node`), tests over channels.

pub mod backoff;
mod blob_fetch;
pub mod extension;
pub mod identity_ext;
mod session;
mod storage;

pub use extension::{Extensions, FeedEntry, FeedPage};
pub use session::{Output, Role, Session, SessionConfig};
pub use storage::SyncStore;
