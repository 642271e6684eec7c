//! The bounded cache of loaded documents. Each document has a slot whose
//! mutex serializes every read-modify-write of it; idle slots beyond the
//! capacity are dropped, least recently used first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use automerge::{ActorId, ReadDoc};

use super::backend::Backend;
use super::failure::{poisoned, storage};
use super::keys;
use crate::document::EntityDoc;
use crate::error::Result;
use crate::model::EntityId;

/// A loaded (or not yet loaded) document and what the store tracks of its
/// storage.
#[derive(Default)]
pub(super) struct Slot {
    loaded: bool,
    pub(super) doc: Option<EntityDoc>,
    pub(super) next_chunk: u64,
    pub(super) chunks: u32,
    /// Bytes the document takes in storage (its save plus chunks).
    pub(super) stored_bytes: usize,
    /// Feed position of this process's last write of the document: nothing
    /// about the document is shown to a peer before this is durable.
    pub(super) last_seq: u64,
    /// The document's feed position in storage when its copy here was read
    /// or last written (`None`: not in the feed). A write commits only if it
    /// is still that ([`super::feed::Feed::append`]); one that is not was
    /// written by another relay sharing the storage.
    pub(super) stored_seq: Option<u64>,
    /// The identity generation the document was judged at (`identity.rs`).
    pub(super) judged_at: u64,
}

impl Slot {
    /// Load the document stored under `id` from `backend` unless it is
    /// loaded already, under the external id `external` gives. Returns
    /// whether it was loaded now (to be judged by the caller).
    pub(super) fn ensure_loaded(
        &mut self,
        id: EntityId,
        external: impl FnOnce() -> Result<EntityId>,
        backend: &dyn Backend,
        actor: &ActorId,
    ) -> Result<bool> {
        if self.loaded {
            return Ok(false);
        }
        // the position first: what is read after it is at least as new, so a
        // write based on this copy fails its check rather than losing a change
        self.stored_seq = backend
            .get(&keys::feed_pos(id))
            .map_err(storage)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(u64::from_be_bytes);
        let base = backend.get(&keys::doc(id)).map_err(storage)?;
        let chunks = backend
            .scan_prefix(&keys::chunk_prefix(id), None, usize::MAX)
            .map_err(storage)?;
        if base.is_none() && chunks.is_empty() {
            self.loaded = true;
            self.doc = None;
            return Ok(false);
        }
        let mut parts: Vec<&[u8]> = Vec::new();
        if let Some(base) = &base {
            parts.push(base);
        }
        parts.extend(chunks.iter().map(|(_, v)| v.as_slice()));
        let doc = EntityDoc::load(external()?, actor.clone(), &parts)?;
        self.next_chunk = chunks
            .last()
            .and_then(|(k, _)| keys::chunk_seq(k))
            .map(|s| s + 1)
            .unwrap_or(0);
        self.chunks = chunks.len() as u32;
        self.stored_bytes =
            base.as_ref().map_or(0, Vec::len) + chunks.iter().map(|(_, v)| v.len()).sum::<usize>();
        self.doc = Some(doc);
        self.loaded = true;
        Ok(true)
    }

    /// Forget the in-memory document: it is ahead of (or apart from) what is
    /// stored, so the next use loads it again.
    pub(super) fn forget(&mut self) {
        self.doc = None;
        self.loaded = false;
    }

    /// Forget the copy if it was read before feed position `seq` (another
    /// relay wrote the document there). Returns whether it did.
    pub(super) fn forget_before(&mut self, seq: u64) -> bool {
        let stale = self.loaded && self.stored_seq.is_none_or(|s| s < seq);
        if stale {
            self.forget();
        }
        stale
    }
}

#[derive(Default)]
struct Slots {
    slots: HashMap<EntityId, (Arc<Mutex<Slot>>, u64)>,
    tick: u64,
}

/// The document cache.
pub(super) struct DocCache {
    slots: Mutex<Slots>,
    capacity: usize,
}

/// Whether a slot's document holds changes Automerge set aside until their
/// dependencies arrive: they live only in memory, so the document must stay.
fn holds_queued(slot: &Mutex<Slot>) -> bool {
    match slot.try_lock() {
        Ok(g) => g
            .doc
            .as_ref()
            .is_some_and(|d| !d.doc().get_missing_deps(&[]).is_empty()),
        Err(_) => true, // in use: keep it
    }
}

impl DocCache {
    pub(super) fn new(capacity: usize) -> DocCache {
        DocCache {
            slots: Mutex::new(Slots::default()),
            capacity: capacity.max(1),
        }
    }

    /// The slot of document `id`, made if absent (which may drop idle ones).
    pub(super) fn slot(&self, id: EntityId) -> Result<Arc<Mutex<Slot>>> {
        let mut cache = self.slots.lock().map_err(poisoned)?;
        cache.tick += 1;
        let tick = cache.tick;
        if let Some((slot, used)) = cache.slots.get_mut(&id) {
            *used = tick;
            return Ok(slot.clone());
        }
        let slot = Arc::new(Mutex::new(Slot::default()));
        cache.slots.insert(id, (slot.clone(), tick));
        let cap = self.capacity;
        if cache.slots.len() > cap {
            // drop the least recently used slots that nobody is using, an
            // eighth of the cache at a time: the scan and sort then happen
            // once per cap/8 new documents instead of once per document
            let mut idle: Vec<(u64, EntityId)> = cache
                .slots
                .iter()
                .filter(|(_, (s, _))| Arc::strong_count(s) == 1 && !holds_queued(s))
                .map(|(k, (_, t))| (*t, *k))
                .collect();
            let excess = cache.slots.len() - cap + cap / 8;
            if idle.len() > excess {
                idle.select_nth_unstable(excess);
                idle.truncate(excess);
            }
            for (_, k) in idle {
                cache.slots.remove(&k);
            }
        }
        Ok(slot)
    }

    /// The slot of document `id` if the cache holds one (none is made).
    pub(super) fn peek(&self, id: EntityId) -> Result<Option<Arc<Mutex<Slot>>>> {
        let cache = self.slots.lock().map_err(poisoned)?;
        Ok(cache.slots.get(&id).map(|(slot, _)| slot.clone()))
    }

    /// Number of documents currently held in memory.
    pub(super) fn loaded_documents(&self) -> usize {
        self.slots
            .lock()
            .map(|c| {
                c.slots
                    .values()
                    .filter(|(s, _)| s.lock().map(|s| s.doc.is_some()).unwrap_or(false))
                    .count()
            })
            .unwrap_or(0)
    }
}
