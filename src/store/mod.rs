//! Durable storage of entity documents.
//!
//! A [`Store`] keeps each entity's Automerge document in a [`Backend`] (sled by
//! default, or PostgreSQL: [`PgBackend`]) as a compacted save plus incremental
//! chunks, with a per-store change feed, an index of each permit's isolation points and closeouts, and a small
//! summary per entity. Writes return only once durable; concurrent writers share
//! flushes ([`GroupCommit`]). Documents load lazily into a bounded cache.
//! The layout is in `docs/storage.md`.

mod attestations;
mod authority_ops;
mod backend;
mod blobs;
mod cache;
mod clock;
mod cluster;
pub mod cost;
mod cost_checks;
#[cfg(test)]
mod cost_tests;
mod durability;
mod exchange;
mod failure;
mod feed;
mod foreign;
mod format;
mod group_commit;
mod id_key;
mod id_space;
#[cfg(test)]
mod id_space_tests;
mod identity;
mod identity_marking;
mod identity_status;
mod interlocks;
pub(crate) mod keys;
mod options;
mod peer_records;
mod persist;
mod pg;
mod reads;
mod revocations;
mod role_tables;
mod sled_backend;
mod snapshot;
#[allow(clippy::module_inception)]
mod store;
mod summary;
mod tenancy;
mod write_gate;
mod writes;

pub use authority_ops::{CertificateRequest, DEVICE_CERTIFICATE_DAYS};
pub use backend::{
    Backend, BatchOp, Check, Checked, Heartbeat, MemBackend, Pair, RelaySeen, StorageError,
};
pub use blobs::{image_type, not_an_image, parse_sha256, BlobPut, Sha256Hash, IMAGE_TYPES};
pub use clock::{Clock, FixedClock, SystemClock};
pub use cluster::{Caught, CaughtUp};
pub use cost::{Cost, CostLimits};
pub use exchange::{Admission, Generated, ReceiveError, Received, Taken};
pub use format::FORMAT_VERSION;
pub use group_commit::GroupCommit;
pub use identity_status::{CertificateInfo, IdentityStatus, RoleTableInfo};
pub use options::{
    ReceiveLimits, StoreOptions, DEFAULT_MAX_BLOB_BYTES, DEFAULT_PAGE_CACHE_BYTES, DEFAULT_TENANT,
};
pub use pg::{PgBackend, PgError, PgOptions, SCHEMA_VERSION};
pub use sled_backend::SledBackend;
pub use snapshot::{restore, verify, BackupInfo};
pub use store::{Applied, Delta, Store};
pub use summary::Summary;
