//! The store's change feed: every write of a document takes the next feed
//! position, and the document's entry moves there (in the store's feed and
//! in its tenant's), in the same atomic batch as the write itself.

use std::sync::Mutex;

use super::backend::{Backend, BatchOp};
use super::durability::Durable;
use super::failure::{poisoned, storage};
use super::keys;
use crate::error::Result;
use crate::model::EntityId;

/// Hands out feed positions. Its lock is held while a write's batch is
/// applied, so the feed's order is the order in which writes hit the backend.
pub(super) struct Feed {
    next: Mutex<u64>,
}

impl Feed {
    /// A feed whose last position is `last`.
    pub(super) fn new(last: u64) -> Feed {
        Feed {
            next: Mutex::new(last + 1),
        }
    }

    /// Apply `batch`, a write of the document stored under `id` (known to its
    /// tenant `tenant` as `external`), at the next feed
    /// position, with the document's feed entries moved there and whatever
    /// `at(seq)` adds (records that name the position). Returns the position.
    pub(super) fn append(
        &self,
        backend: &dyn Backend,
        durable: &Durable,
        (id, external): (EntityId, EntityId),
        tenant: &str,
        mut batch: Vec<BatchOp>,
        at: impl FnOnce(u64) -> Result<Vec<BatchOp>>,
    ) -> Result<u64> {
        let mut next = self.next.lock().map_err(poisoned)?;
        let seq = *next;
        batch.extend(at(seq)?);
        if let Some(old) = backend.get(&keys::feed_pos(id)).map_err(storage)? {
            if let Ok(old) = <[u8; 8]>::try_from(old.as_slice()) {
                batch.push((keys::feed(u64::from_be_bytes(old)), None));
                batch.push((keys::tenant_feed(tenant, u64::from_be_bytes(old)), None));
            }
        }
        batch.push((keys::feed(seq), Some(id.as_bytes().to_vec())));
        batch.push((
            keys::tenant_feed(tenant, seq),
            Some(external.as_bytes().to_vec()),
        ));
        batch.push((keys::feed_pos(id), Some(seq.to_be_bytes().to_vec())));
        // a failed batch still uses up its number: a torn write may have left
        // feed entries under it, which a reused number would clobber
        *next += 1;
        backend.apply(batch).map_err(storage)?;
        durable.applied(seq);
        Ok(seq)
    }
}
