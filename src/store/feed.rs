//! The store's change feed: every write of a document takes the next feed
//! position, and the document's entry moves there (in the store's feed and
//! in its tenant's), in the same atomic batch as the write itself.
//!
//! On storage that several relays share, the batch is a checked write
//! ([`Backend::apply_checked`]): it commits only if the feed has not reached
//! its position yet (another relay's write took it: the feed moves past it
//! and the write takes the next one) and the document's feed position is
//! still the one its cached copy was read at (another relay wrote the
//! document: the caller merges what storage holds and writes again). So
//! positions are taken in commit order, and no write is based on a stale copy.

use std::sync::Mutex;

use super::backend::{Backend, BatchOp, Check, Checked};
use super::durability::Durable;
use super::failure::{poisoned, storage};
use super::keys;
use crate::error::{Error, Result};
use crate::model::EntityId;

/// Hands out feed positions. Its lock is held while a write's batch is
/// applied, so the feed's order is the order in which writes hit the backend.
pub(super) struct Feed {
    next: Mutex<u64>,
}

/// What [`Feed::append`] did.
pub(super) enum Appended {
    /// Committed at this feed position.
    At(u64),
    /// Nothing written: another relay wrote the document since its copy was
    /// read at the position the caller gave.
    Moved,
}

/// A relay retries a write whose position another relay took; under a
/// relentless stream of other relays' writes it gives up after this many.
const POSITION_ATTEMPTS: usize = 64;

impl Feed {
    /// A feed whose last position is `last`.
    pub(super) fn new(last: u64) -> Feed {
        Feed {
            next: Mutex::new(last + 1),
        }
    }

    /// Another process committed the feed up to `head`: positions up to it
    /// are taken.
    pub(super) fn observe(&self, head: u64) -> Result<()> {
        let mut next = self.next.lock().map_err(poisoned)?;
        *next = (*next).max(head + 1);
        Ok(())
    }

    /// Apply `batch`, a write of the document stored under `id` (known to its
    /// tenant `tenant` as `external`), whose copy was read when the
    /// document's feed position was `seen` (`None`: not in the feed), at the
    /// next feed position, with the document's feed entries moved there and
    /// whatever `at(seq)` adds (records that name the position).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn append(
        &self,
        backend: &dyn Backend,
        durable: &Durable,
        (id, external): (EntityId, EntityId),
        tenant: &str,
        seen: Option<u64>,
        mut batch: Vec<BatchOp>,
        mut at: impl FnMut(u64) -> Result<Vec<BatchOp>>,
    ) -> Result<Appended> {
        let mut next = self.next.lock().map_err(poisoned)?;
        let shared = backend.shared();
        for _ in 0..POSITION_ATTEMPTS {
            let seq = *next;
            // a retry needs the batch again: keep it where one may come
            let mut write = if shared {
                batch.clone()
            } else {
                std::mem::take(&mut batch)
            };
            write.extend(at(seq)?);
            if let Some(old) = seen {
                write.push((keys::feed(old), None));
                write.push((keys::tenant_feed(tenant, old), None));
            }
            write.push((keys::feed(seq), Some(id.as_bytes().to_vec())));
            write.push((
                keys::tenant_feed(tenant, seq),
                Some(external.as_bytes().to_vec()),
            ));
            write.push((keys::feed_pos(id), Some(seq.to_be_bytes().to_vec())));
            let check = Check {
                feed_seq: Some(seq),
                expect: vec![(keys::feed_pos(id), seen.map(|s| s.to_be_bytes().to_vec()))],
            };
            // a failed batch still uses up its number: a torn write may have
            // left feed entries under it, which a reused number would clobber
            *next += 1;
            match backend.apply_checked(write, &check).map_err(storage)? {
                Checked::Applied => {
                    durable.applied(seq);
                    return Ok(Appended::At(seq));
                }
                Checked::Changed => return Ok(Appended::Moved),
                Checked::FeedBehind { head } => {
                    tracing::debug!(seq, head, "feed position taken by another relay");
                    *next = (*next).max(head + 1);
                }
            }
        }
        Err(Error::storage(format!(
            "no feed position for a write of {id} after {POSITION_ATTEMPTS} attempts: \
             other relays took each one"
        )))
    }
}
