//! The classic sync API: JSON changes from offline clients that are not CRDT
//! clients (a queue of `{entity, op, offline_id, server_id, client_version,
//! data}` posted when online), applied to the same Automerge documents
//! through the same validated writes and policies; and a pull of entity
//! views changed since a cursor. The HTTP routes are in
//! `node::classic_api`; the semantics in `docs/classic-api.md`.

mod apply;
mod fields;
mod payload;
mod plan;
mod pull;
mod refusal;
mod versions;

pub use apply::sync_offline_data;
pub use payload::{
    AppliedItem, ClassicChange, ConflictItem, Outcome, RejectedItem, SyncRequest, SyncResponse,
    SyncSummary,
};
pub use plan::{plan, FieldConflict, FieldMerge, Input, Plan, Snapshot};
pub use pull::{changes_since, PullItem, PullPage};
pub use versions::{heads_at_version, version_record};
