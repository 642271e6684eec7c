//! Durable storage of entity documents.
//!
//! A [`Store`] keeps each entity's Automerge document in a [`Backend`] (sled by
//! default) as a compacted save plus incremental chunks, with a per-store change
//! feed, an index of each permit's isolation points and closeouts, and a small
//! summary per entity. Writes return only once durable; concurrent writers share
//! flushes ([`GroupCommit`]). Documents load lazily into a bounded cache.
//! The layout is in `docs/storage.md`.

mod backend;
mod blobs;
mod clock;
pub mod cost;
#[cfg(test)]
mod cost_tests;
mod durability;
mod group_commit;
mod id_key;
mod interlocks;
pub(crate) mod keys;
mod peer_records;
mod reads;
mod sled_backend;
#[allow(clippy::module_inception)]
mod store;
mod summary;
mod tenancy;

pub use backend::{Backend, BatchOp, MemBackend, Pair, StorageError};
pub use blobs::{image_type, not_an_image, parse_sha256, BlobPut, Sha256Hash, IMAGE_TYPES};
pub use clock::{Clock, FixedClock, SystemClock};
pub use cost::{Cost, CostLimits};
pub use group_commit::GroupCommit;
pub use sled_backend::SledBackend;
pub use store::{
    Applied, Delta, ReceiveLimits, Store, StoreOptions, DEFAULT_MAX_BLOB_BYTES, DEFAULT_TENANT,
};
pub use summary::Summary;

pub(crate) use store::Durability;
