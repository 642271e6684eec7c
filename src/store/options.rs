//! How a store is tuned: its options, the limits on what one sync message
//! may bring, and the defaults.

use std::sync::Arc;

use automerge::ActorId;

use super::clock::{Clock, SystemClock};
use super::cost::CostLimits;

/// Default size of sled's page cache: 64 MiB.
pub const DEFAULT_PAGE_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Tuning and injected dependencies of a store.
#[derive(Clone)]
pub struct StoreOptions {
    /// Loaded documents kept in memory; idle ones beyond this are dropped.
    pub cache_capacity: usize,
    /// Bytes of sled's page cache (sled's own default is 1 GiB). Loaded
    /// documents live in the document cache above; this one holds storage
    /// pages, and a relay holding many documents would otherwise grow it.
    pub page_cache_bytes: u64,
    /// Incremental chunks a document may collect before it is compacted.
    pub compact_after_chunks: u32,
    /// The device id written in `created_by` (kept in the store after first use;
    /// a random one when `None` and the store has none).
    pub device: Option<String>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The Automerge actor for this opening's writes; a fresh random one when
    /// `None` (the normal case). Pass a new one for every opening: reusing an
    /// actor after a crash could collide with a lost change. Deterministic
    /// simulations supply seeded actors here.
    pub actor: Option<ActorId>,
    /// The hard interlocks on local writes (gas tests per work type).
    pub interlocks: crate::write::Interlocks,
    /// What foreign data and writes may cost in memory (operations,
    /// characters, value bytes), checked before they are applied.
    pub cost: CostLimits,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_capacity: 4096,
            page_cache_bytes: DEFAULT_PAGE_CACHE_BYTES,
            compact_after_chunks: 32,
            device: None,
            clock: Arc::new(SystemClock),
            actor: None,
            interlocks: crate::write::Interlocks::default(),
            cost: CostLimits::default(),
        }
    }
}

/// Limits on what one sync message may bring (see `Store::receive_sync_limited`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiveLimits {
    /// Most new changes one message may bring.
    pub max_changes: usize,
    /// Largest stored size of one document, in bytes.
    pub max_document_bytes: usize,
    /// Largest photo (blob) accepted, in bytes (REST upload or from a peer).
    pub max_blob_bytes: usize,
}

/// Default largest blob: room for a tablet photo, and well inside the
/// default frame limit (8 MiB), so a blob always fits one frame.
pub const DEFAULT_MAX_BLOB_BYTES: usize = 6 * 1024 * 1024;

impl Default for ReceiveLimits {
    fn default() -> Self {
        ReceiveLimits {
            max_changes: 100_000,
            max_document_bytes: 64 * 1024 * 1024,
            max_blob_bytes: DEFAULT_MAX_BLOB_BYTES,
        }
    }
}

/// The tenant of documents nobody claimed (local edits, nodes without tokens).
pub use crate::model::DEFAULT_TENANT;
