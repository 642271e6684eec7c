//! The store: entity documents in a [`Backend`], with a change feed, indexes,
//! a bounded cache of loaded documents and group-committed durable writes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use automerge::{ActorId, Change, ChangeHash, ReadDoc};

use super::backend::{Backend, BatchOp, StorageError};
use super::clock::{Clock, SystemClock};
use super::cost::{self, CostLimits};
use super::durability::Owed;
use super::group_commit::GroupCommit;
use super::keys;
use super::sled_backend::SledBackend;
use super::summary::Summary;
use crate::document::EntityDoc;
use crate::error::{Error, Result};
use crate::model::{EntityId, EntityType};
use crate::view::CrossRefs;
use crate::write::{self, Edit, NewCloseout, NewIsolationPoint, NewPermit, WriteCtx};

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

/// A loaded (or not yet loaded) document slot. The slot's mutex serializes
/// every read-modify-write of one document.
#[derive(Default)]
struct Slot {
    loaded: bool,
    doc: Option<EntityDoc>,
    next_chunk: u64,
    chunks: u32,
    /// Bytes the document takes in storage (its save plus chunks).
    stored_bytes: usize,
    /// Feed position of this process's last write of the document: nothing
    /// about the document is shown to a peer before this is durable.
    last_seq: u64,
}

#[derive(Default)]
struct Cache {
    slots: HashMap<EntityId, (Arc<Mutex<Slot>>, u64)>,
    tick: u64,
}

pub(super) struct Inner {
    pub(super) backend: Arc<dyn Backend>,
    node_id: ActorId,
    actor: ActorId,
    device: String,
    pub(super) opts: StoreOptions,
    cache: Mutex<Cache>,
    /// Next feed sequence number; held while a write's batch is applied so the
    /// feed's order is the order in which writes hit the backend.
    feed_next: Mutex<u64>,
    pub(super) applied_seq: AtomicU64,
    pub(super) durable_seq: AtomicU64,
    pub(super) commit: GroupCommit,
    pub(super) claim_lock: Mutex<()>,
}

/// Limits on what one sync message may bring (see [`Store::receive_sync_limited`]).
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

/// Whether a write waits for its flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Return once the write is durable.
    Wait,
    /// Return once the write is applied; the caller flushes before it
    /// acknowledges anything.
    Deferred,
}

/// The tenant of documents nobody claimed (local edits, nodes without tokens).
pub const DEFAULT_TENANT: &str = "default";

/// A handle to a store; cheap to clone and safe to share between threads.
#[derive(Clone)]
pub struct Store {
    pub(super) inner: Arc<Inner>,
    /// The device recorded as the author of writes made through this handle
    /// (see [`Store::acting_as`]); the store's own device when `None`.
    pub(super) acting_device: Option<Arc<str>>,
    /// Set on a [`Store::deferring`] handle: what its writes and reads still
    /// owe to a flush (see [`Owed`]).
    pub(super) owed: Option<Arc<Owed>>,
}

/// What a peer lacks of a document ([`Store::delta_since`]).
#[derive(Clone, Debug)]
pub struct Delta {
    /// The changes it lacks, in dependency order.
    pub changes: Vec<Change>,
    /// The document's heads once they are applied.
    pub heads: Vec<ChangeHash>,
}

/// What [`Store::apply_changes`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// Hashes of the changes that were new to the store.
    pub new_changes: Vec<ChangeHash>,
    /// Whether the document was new to the store.
    pub created: bool,
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

pub(super) fn poisoned<T>(_: T) -> Error {
    Error::Storage("a store lock was poisoned by a panicking thread".into())
}

pub(super) fn storage(e: StorageError) -> Error {
    Error::Storage(e.0)
}

impl Store {
    /// Open (or create) a sled store in `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, StoreOptions::default())
    }

    /// Open (or create) a sled store in `path`.
    pub fn open_with(path: impl AsRef<Path>, opts: StoreOptions) -> Result<Store> {
        let path = path.as_ref();
        std::fs::create_dir_all(path)?;
        let backend = SledBackend::open_with_cache(path, opts.page_cache_bytes)?;
        Store::with_backend(Arc::new(backend), opts)
    }

    /// A store on any backend.
    pub fn with_backend(backend: Arc<dyn Backend>, opts: StoreOptions) -> Result<Store> {
        let mut init: Vec<BatchOp> = Vec::new();
        // the node's lasting identity; writes use a fresh actor every time the
        // store opens, so a change lost in a crash (never acknowledged) can
        // never have its actor and sequence number reused by a different change
        let node_id = match backend.get(&keys::meta("actor")).map_err(storage)? {
            Some(bytes) => ActorId::from(bytes),
            None => {
                let a = ActorId::random();
                init.push((keys::meta("actor"), Some(a.to_bytes().to_vec())));
                a
            }
        };
        let actor = opts.actor.clone().unwrap_or_else(ActorId::random);
        let device = match backend.get(&keys::meta("device")).map_err(storage)? {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            None => {
                let d = opts
                    .device
                    .clone()
                    .unwrap_or_else(|| format!("device-{}", &node_id.to_hex_string()[..8]));
                init.push((keys::meta("device"), Some(d.as_bytes().to_vec())));
                d
            }
        };
        if !init.is_empty() {
            backend.apply(init).map_err(storage)?;
            backend.flush().map_err(storage)?;
        }
        let last = backend
            .last_with_prefix(keys::FEED)
            .map_err(storage)?
            .and_then(|(k, _)| keys::feed_seq(&k))
            .unwrap_or(0);
        Ok(Store {
            acting_device: None,
            owed: None,
            inner: Arc::new(Inner {
                backend,
                node_id,
                actor,
                device,
                opts,
                cache: Mutex::new(Cache::default()),
                feed_next: Mutex::new(last + 1),
                applied_seq: AtomicU64::new(last),
                durable_seq: AtomicU64::new(last),
                commit: GroupCommit::new(),
                claim_lock: Mutex::new(()),
            }),
        })
    }

    /// This store's device id.
    pub fn device_id(&self) -> &str {
        &self.inner.device
    }

    /// The device recorded as the author of writes through this handle.
    pub fn author_device(&self) -> &str {
        self.acting_device.as_deref().unwrap_or(&self.inner.device)
    }

    /// The Automerge actor id this store writes with (new every time it opens).
    pub fn actor(&self) -> &ActorId {
        &self.inner.actor
    }

    /// The store's lasting identity (kept across restarts; the node's peer id
    /// and storage id derive from it).
    pub fn node_id(&self) -> &ActorId {
        &self.inner.node_id
    }

    /// The storage backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner.backend
    }

    /// The write context of this handle: its device, the clock's time, no note.
    pub(crate) fn ctx(&self) -> WriteCtx {
        WriteCtx {
            now_ms: self.inner.opts.clock.now_ms(),
            device: self
                .acting_device
                .as_deref()
                .map(str::to_string)
                .unwrap_or_else(|| self.inner.device.clone()),
            note: None,
        }
    }

    /// A handle on the same store whose writes record `device` as their author
    /// (`created_by`, `taken_by`): a node writing on behalf of an authenticated
    /// device.
    pub fn acting_as(&self, device: &str) -> Store {
        Store {
            inner: self.inner.clone(),
            acting_device: Some(Arc::from(device)),
            owed: self.owed.clone(),
        }
    }

    // ---- the cache -------------------------------------------------------

    fn slot(&self, id: EntityId) -> Result<Arc<Mutex<Slot>>> {
        let mut cache = self.inner.cache.lock().map_err(poisoned)?;
        cache.tick += 1;
        let tick = cache.tick;
        if let Some((slot, used)) = cache.slots.get_mut(&id) {
            *used = tick;
            return Ok(slot.clone());
        }
        let slot = Arc::new(Mutex::new(Slot::default()));
        cache.slots.insert(id, (slot.clone(), tick));
        let cap = self.inner.opts.cache_capacity.max(1);
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

    /// Number of documents currently held in memory.
    pub fn cached_documents(&self) -> usize {
        self.inner
            .cache
            .lock()
            .map(|c| {
                c.slots
                    .values()
                    .filter(|(s, _)| s.lock().map(|s| s.doc.is_some()).unwrap_or(false))
                    .count()
            })
            .unwrap_or(0)
    }

    fn ensure_loaded(&self, id: EntityId, slot: &mut Slot) -> Result<()> {
        if slot.loaded {
            return Ok(());
        }
        let b = &self.inner.backend;
        let base = b.get(&keys::doc(id)).map_err(storage)?;
        let chunks = b
            .scan_prefix(&keys::chunk_prefix(id), None, usize::MAX)
            .map_err(storage)?;
        if base.is_none() && chunks.is_empty() {
            slot.loaded = true;
            slot.doc = None;
            return Ok(());
        }
        let mut parts: Vec<&[u8]> = Vec::new();
        if let Some(base) = &base {
            parts.push(base);
        }
        parts.extend(chunks.iter().map(|(_, v)| v.as_slice()));
        let doc = EntityDoc::load(id, self.inner.actor.clone(), &parts)?;
        slot.next_chunk = chunks
            .last()
            .and_then(|(k, _)| keys::chunk_seq(k))
            .map(|s| s + 1)
            .unwrap_or(0);
        slot.chunks = chunks.len() as u32;
        slot.stored_bytes =
            base.as_ref().map_or(0, Vec::len) + chunks.iter().map(|(_, v)| v.len()).sum::<usize>();
        slot.doc = Some(doc);
        slot.loaded = true;
        Ok(())
    }

    fn lock_loaded<'a>(&self, id: EntityId, slot: &'a Mutex<Slot>) -> Result<MutexGuard<'a, Slot>> {
        let mut g = slot.lock().map_err(poisoned)?;
        self.ensure_loaded(id, &mut g)?;
        Ok(g)
    }

    /// Run `f` on the loaded document `id`.
    pub fn with_doc<T>(&self, id: EntityId, f: impl FnOnce(&EntityDoc) -> T) -> Result<T> {
        let slot = self.slot(id)?;
        let g = self.lock_loaded(id, &slot)?;
        match &g.doc {
            Some(doc) => Ok(f(doc)),
            None => Err(Error::UnknownEntity(id)),
        }
    }

    /// Like [`Store::with_doc`], for reads that leave the node (sync, bundles):
    /// waits first until the document's last write is durable, so nothing that
    /// leaves can be lost by a crash here.
    pub fn with_durable_doc<T>(&self, id: EntityId, f: impl FnOnce(&EntityDoc) -> T) -> Result<T> {
        let slot = self.slot(id)?;
        let g = self.lock_loaded(id, &slot)?;
        self.ensure_durable(g.last_seq)?;
        match &g.doc {
            Some(doc) => Ok(f(doc)),
            None => Err(Error::UnknownEntity(id)),
        }
    }

    // ---- writes ----------------------------------------------------------

    /// Persist the document in `slot` after it moved on from `before`, then wait
    /// until the write is durable.
    /// `extra` holds metadata keys written in the same atomic batch (e.g. the
    /// classic API's idempotency record of the write).
    fn persist(
        &self,
        id: EntityId,
        slot: MutexGuard<'_, Slot>,
        before: &[ChangeHash],
        extra: Vec<BatchOp>,
    ) -> Result<()> {
        self.persist_then(id, slot, before, extra, Durability::Wait)
    }

    /// [`Store::persist`], waiting for the flush or not.
    fn persist_then(
        &self,
        id: EntityId,
        mut slot: MutexGuard<'_, Slot>,
        before: &[ChangeHash],
        extra: Vec<BatchOp>,
        durability: Durability,
    ) -> Result<()> {
        let inner = &self.inner;
        let compact_after = inner.opts.compact_after_chunks.max(1);
        let Some(doc) = slot.doc.as_ref() else {
            return Err(Error::UnknownEntity(id));
        };
        if let Err(e) = inner
            .opts
            .cost
            .check_document(id, doc.doc().stats().num_ops)
        {
            // over the limit in memory only: forget it, nothing is stored
            slot.doc = None;
            slot.loaded = false;
            return Err(e);
        }
        let ty = doc.entity_type().ok_or(Error::UntypedDocument(id))?;
        let view = doc.view(&CrossRefs::default());
        let changes = doc.history().change_count();
        let mut batch: Vec<BatchOp> = extra;
        let compact = before.is_empty() || slot.chunks + 1 >= compact_after;
        let written;
        if compact {
            let saved = doc.save();
            written = saved.len();
            batch.push((keys::doc(id), Some(saved)));
            for (k, _) in inner
                .backend
                .scan_prefix(&keys::chunk_prefix(id), None, usize::MAX)
                .map_err(storage)?
            {
                batch.push((k, None));
            }
        } else {
            let chunk = doc.save_after(before);
            written = chunk.len();
            batch.push((keys::chunk(id, slot.next_chunk), Some(chunk)));
        }
        {
            let mut next = inner.feed_next.lock().map_err(poisoned)?;
            let seq = *next;
            let summary = Summary::of(&view, ty, changes, seq).ok_or(Error::UnknownEntity(id))?;
            if let Some(permit) = summary.permit_id {
                batch.push((keys::child(permit, id), Some(vec![ty.code()])));
            }
            let tenant = self
                .owner(id)?
                .unwrap_or_else(|| DEFAULT_TENANT.to_string());
            if let Some(old) = inner.backend.get(&keys::feed_pos(id)).map_err(storage)? {
                if let Ok(old) = <[u8; 8]>::try_from(old.as_slice()) {
                    batch.push((keys::feed(u64::from_be_bytes(old)), None));
                    batch.push((keys::tenant_feed(&tenant, u64::from_be_bytes(old)), None));
                }
            }
            batch.push((keys::feed(seq), Some(id.as_bytes().to_vec())));
            batch.push((
                keys::tenant_feed(&tenant, seq),
                Some(id.as_bytes().to_vec()),
            ));
            batch.push((keys::feed_pos(id), Some(seq.to_be_bytes().to_vec())));
            let summary_json =
                serde_json::to_vec(&summary).map_err(|e| Error::Storage(e.to_string()))?;
            batch.push((keys::entity(id), Some(summary_json)));
            // a failed batch still uses up its number: a torn write may have left
            // feed entries under it, which a reused number would clobber
            *next += 1;
            if let Err(e) = inner.backend.apply(batch) {
                // the document in memory is ahead of storage: reload it next time
                slot.doc = None;
                slot.loaded = false;
                return Err(storage(e));
            }
            slot.last_seq = seq;
            inner.applied_seq.fetch_max(seq, Ordering::SeqCst);
        }
        if compact {
            slot.chunks = 0;
            slot.stored_bytes = written;
        } else {
            slot.stored_bytes += written;
            slot.chunks += 1;
            slot.next_chunk += 1;
        }
        let seq = slot.last_seq;
        drop(slot);
        match durability {
            Durability::Wait => self.ensure_durable(seq),
            Durability::Deferred => Ok(()),
        }
    }

    /// Create an entity written with `ctx`, with `extra` metadata keys in the
    /// same atomic batch.
    pub(crate) fn create_with(
        &self,
        new: write::NewEntityRef<'_>,
        id: Option<EntityId>,
        ctx: &WriteCtx,
        extra: Vec<BatchOp>,
        durability: Durability,
    ) -> Result<EntityId> {
        let id = id.unwrap_or_else(EntityId::new_random);
        self.inner
            .opts
            .cost
            .check_strings(cost::new_entity_strings(&new))?;
        if let Some(permit) = new.permit_id() {
            match self.summary(permit)? {
                Some(s) if s.entity_type == EntityType::Permit => {}
                Some(s) => {
                    return Err(Error::WrongType {
                        id: permit,
                        expected: EntityType::Permit,
                        actual: s.entity_type,
                    })
                }
                None => return Err(Error::UnknownEntity(permit)),
            }
        }
        let slot = self.slot(id)?;
        let mut g = self.lock_loaded(id, &slot)?;
        if g.doc.is_some() {
            if self.summary(id)?.is_some() {
                return Err(Error::InvalidInput(format!("entity {id} already exists")));
            }
            // a document without a summary is what a torn first write leaves:
            // never acknowledged, so the new entity replaces it
            tracing::warn!(%id, "replacing the remains of an unacknowledged create");
        }
        g.doc = Some(write::create_doc(id, self.inner.actor.clone(), &new, ctx)?);
        self.persist_then(id, g, &[], extra, durability)?;
        Ok(id)
    }

    /// Create a permit (status `draft`). Returns its id once durable.
    pub fn create_permit(&self, p: NewPermit) -> Result<EntityId> {
        self.create_with(
            write::NewEntityRef::Permit(&p),
            p.id,
            &self.ctx(),
            Vec::new(),
            Durability::Wait,
        )
    }

    /// Create an isolation point of an existing permit (status `assigned`).
    pub fn create_isolation_point(&self, p: NewIsolationPoint) -> Result<EntityId> {
        self.create_with(
            write::NewEntityRef::IsolationPoint(&p),
            p.id,
            &self.ctx(),
            Vec::new(),
            Durability::Wait,
        )
    }

    /// Create the closeout of an existing permit.
    pub fn create_closeout(&self, c: NewCloseout) -> Result<EntityId> {
        self.create_with(
            write::NewEntityRef::Closeout(&c),
            c.id,
            &self.ctx(),
            Vec::new(),
            Durability::Wait,
        )
    }

    /// Apply a validated edit. Returns the new change's hash once it is durable,
    /// or `None` when the edit changed nothing. An edit the policies would reject
    /// returns [`Error::Rejected`] and writes nothing.
    pub fn edit(&self, id: EntityId, edit: Edit) -> Result<Option<ChangeHash>> {
        self.edit_all(id, std::slice::from_ref(&edit))
    }

    /// Apply several edits as one change: all of them or none.
    pub fn edit_all(&self, id: EntityId, edits: &[Edit]) -> Result<Option<ChangeHash>> {
        self.check_edits(edits)?;
        self.check_interlocks(id, edits)?;
        let slot = self.slot(id)?;
        let mut g = self.lock_loaded(id, &slot)?;
        let ctx = self.ctx();
        let Some(doc) = g.doc.as_mut() else {
            return Err(Error::UnknownEntity(id));
        };
        let before = doc.heads();
        match write::apply_edits(doc, edits, &ctx) {
            Ok(Some(hash)) => {
                self.persist(id, g, &before, Vec::new())?;
                Ok(Some(hash))
            }
            Ok(None) => {
                // nothing new, but an earlier write may still await its flush
                self.ensure_durable(g.last_seq)?;
                Ok(None)
            }
            Err(e) => {
                if doc.heads() != before {
                    // committed in memory but refused: forget it, reload from storage
                    g.doc = None;
                    g.loaded = false;
                }
                Err(e)
            }
        }
    }

    /// One durable write of document `id`: `f` changes the document (with the
    /// write context of this handle, carrying `note`) and returns its result
    /// plus metadata keys to write in the same atomic batch. When `f` fails,
    /// nothing is stored and the in-memory document is dropped if `f` had
    /// already changed it. When `f` changes nothing, its keys are still
    /// written, durably.
    pub(crate) fn transact<T>(
        &self,
        id: EntityId,
        note: Option<write::ChangeNote>,
        f: impl FnOnce(&mut EntityDoc, &WriteCtx) -> Result<(T, Vec<BatchOp>)>,
    ) -> Result<T> {
        self.transact_then(id, note, Durability::Wait, f)
    }

    /// [`Store::transact`], waiting for the flush or not. A caller that
    /// defers must call [`Store::flush`] before it acknowledges the write
    /// (several writes then share one flush); nothing leaves the node before
    /// that anyway (see [`Store::with_durable_doc`]).
    pub(crate) fn transact_then<T>(
        &self,
        id: EntityId,
        note: Option<write::ChangeNote>,
        durability: Durability,
        f: impl FnOnce(&mut EntityDoc, &WriteCtx) -> Result<(T, Vec<BatchOp>)>,
    ) -> Result<T> {
        let slot = self.slot(id)?;
        let mut g = self.lock_loaded(id, &slot)?;
        let mut ctx = self.ctx();
        ctx.note = note;
        let Some(doc) = g.doc.as_mut() else {
            return Err(Error::UnknownEntity(id));
        };
        let before = doc.heads();
        match f(doc, &ctx) {
            Ok((value, extra)) => {
                if doc.heads() != before {
                    self.persist_then(id, g, &before, extra, durability)?;
                } else {
                    let last = g.last_seq;
                    drop(g);
                    let wrote = !extra.is_empty();
                    if wrote {
                        self.inner.backend.apply(extra).map_err(storage)?;
                    }
                    match durability {
                        Durability::Wait if wrote => self.wait_durable()?,
                        Durability::Wait => self.ensure_durable(last)?,
                        Durability::Deferred => {}
                    }
                }
                Ok(value)
            }
            Err(e) => {
                if doc.heads() != before {
                    g.doc = None;
                    g.loaded = false;
                }
                Err(e)
            }
        }
    }

    /// Write metadata keys (not documents) in one atomic batch and wait until
    /// they are durable.
    pub(crate) fn put_records(&self, ops: Vec<BatchOp>) -> Result<()> {
        self.inner.backend.apply(ops).map_err(storage)?;
        self.wait_durable()
    }

    /// A metadata record.
    pub(crate) fn get_record(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.backend.get(key).map_err(storage)
    }

    /// Metadata records under `prefix`, in key order, after key `after`.
    pub(crate) fn scan_records(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner
            .backend
            .scan_prefix(prefix, after, limit)
            .map_err(storage)
    }

    /// Apply foreign changes to document `id` (created if new). Merging never
    /// refuses a valid change; the view judges it. Refused as a whole, with
    /// nothing stored: changes whose dependencies are missing, and changes that
    /// would create a document without a valid entity type.
    pub fn apply_changes(&self, id: EntityId, changes: Vec<Change>) -> Result<Applied> {
        let unlimited = ReceiveLimits {
            max_changes: usize::MAX,
            max_document_bytes: usize::MAX,
            max_blob_bytes: usize::MAX,
        };
        self.apply_changes_limited(id, changes, &unlimited)
    }

    /// [`Store::apply_changes`] that refuses, storing nothing, changes over
    /// `limits` (as [`Store::receive_sync_limited`] does).
    pub fn apply_changes_limited(
        &self,
        id: EntityId,
        changes: Vec<Change>,
        limits: &ReceiveLimits,
    ) -> Result<Applied> {
        let cost = cost::measure(changes.iter().map(Change::raw_bytes), &self.inner.opts.cost)?;
        let slot = self.slot(id)?;
        let mut g = self.lock_loaded(id, &slot)?;
        self.check_growth(id, g.doc.as_ref(), &cost)?;
        let created = g.doc.is_none();
        let mut doc = g
            .doc
            .take()
            .unwrap_or_else(|| EntityDoc::new(id, self.inner.actor.clone()));
        let incoming: std::collections::HashSet<ChangeHash> =
            changes.iter().map(|c| c.hash()).collect();
        let missing: Vec<ChangeHash> = changes
            .iter()
            .flat_map(|c| c.deps().to_vec())
            .filter(|d| !incoming.contains(d) && !doc.has_change(d))
            .collect();
        if !missing.is_empty() {
            if !created {
                g.doc = Some(doc);
            }
            return Err(Error::InvalidInput(format!(
                "changes for {id} depend on {} change(s) the store does not have (first: {})",
                missing.len(),
                missing[0]
            )));
        }
        let before = doc.heads();
        let new_changes = match doc.apply_changes(changes) {
            Ok(new) => new,
            Err(e) => {
                // possibly half-applied: reload from storage next time
                g.loaded = false;
                return Err(e.into());
            }
        };
        self.store_foreign(id, g, doc, created, &before, new_changes, limits)
    }

    /// Receive an automerge sync message about document `id` (created if new)
    /// from a peer whose sync state is `state`. New changes are durable when
    /// this returns (on a [`Store::deferring`] handle: once it is settled), so
    /// a reply sent afterwards acknowledges only durable data. A new document
    /// whose changes give it no valid entity type is not stored
    /// ([`Error::UntypedDocument`]).
    pub fn receive_sync(
        &self,
        id: EntityId,
        state: &mut automerge::sync::State,
        msg: automerge::sync::Message,
    ) -> Result<Applied> {
        self.receive_sync_limited(id, state, msg, &ReceiveLimits::default())
    }

    /// [`Store::receive_sync`] that refuses, storing nothing, a message that
    /// brings more than `limits.max_changes` new changes or that would grow the
    /// document's stored size past `limits.max_document_bytes`.
    pub fn receive_sync_limited(
        &self,
        id: EntityId,
        state: &mut automerge::sync::State,
        msg: automerge::sync::Message,
        limits: &ReceiveLimits,
    ) -> Result<Applied> {
        // what the message will cost, before Automerge expands any of it
        let cost = cost::measure(msg.changes.iter(), &self.inner.opts.cost)?;
        let slot = self.slot(id)?;
        let mut g = self.lock_loaded(id, &slot)?;
        self.check_growth(id, g.doc.as_ref(), &cost)?;
        let created = g.doc.is_none();
        let mut doc = g
            .doc
            .take()
            .unwrap_or_else(|| EntityDoc::new(id, self.inner.actor.clone()));
        let before = doc.heads();
        let new_changes = match doc.receive_sync(state, msg) {
            Ok(new) => new,
            Err(e) => {
                g.loaded = false; // possibly half-applied: reload from storage
                return Err(e.into());
            }
        };
        self.store_foreign(id, g, doc, created, &before, new_changes, limits)
    }

    /// The shared end of taking foreign changes into document `id`: nothing
    /// new (make sure what we hold is durable), refused (no valid type, over a
    /// limit: forget the in-memory copy, nothing is stored), or persisted.
    #[allow(clippy::too_many_arguments)]
    fn store_foreign(
        &self,
        id: EntityId,
        mut g: MutexGuard<'_, Slot>,
        doc: EntityDoc,
        created: bool,
        before: &[ChangeHash],
        new_changes: Vec<ChangeHash>,
        limits: &ReceiveLimits,
    ) -> Result<Applied> {
        if new_changes.is_empty() {
            if !created {
                g.doc = Some(doc);
            }
            // nothing new, but what we hold may still await its flush
            self.ensure_durable(g.last_seq)?;
            return Ok(Applied {
                new_changes,
                created: false,
            });
        }
        if doc.entity_type().is_none() {
            g.loaded = false;
            return Err(Error::UntypedDocument(id));
        }
        if new_changes.len() > limits.max_changes {
            g.loaded = false; // forget the in-memory copy: nothing was stored
            return Err(Error::LimitExceeded(format!(
                "a sync message brought {} changes for {id}; the limit is {}",
                new_changes.len(),
                limits.max_changes
            )));
        }
        let grown = g.stored_bytes.saturating_add(doc.save_after(before).len());
        if grown > limits.max_document_bytes {
            g.loaded = false;
            return Err(Error::LimitExceeded(format!(
                "document {id} would take {grown} bytes; the limit is {}",
                limits.max_document_bytes
            )));
        }
        g.doc = Some(doc);
        self.persist(id, g, before, Vec::new())?;
        Ok(Applied {
            new_changes,
            created,
        })
    }

    /// The next sync message about document `id` for a peer whose sync state is
    /// `state`. For a document the store does not have, the message of an empty
    /// document (which asks the peer for everything).
    pub fn generate_sync(
        &self,
        id: EntityId,
        state: &mut automerge::sync::State,
    ) -> Result<Option<automerge::sync::Message>> {
        let slot = self.slot(id)?;
        let g = self.lock_loaded(id, &slot)?;
        // never send a peer a change that a crash could still lose (its actor
        // and sequence number would be reused); the lock keeps new writes out
        self.ensure_durable(g.last_seq)?;
        Ok(match &g.doc {
            Some(doc) => doc.generate_sync(state),
            None => EntityDoc::new(id, self.inner.actor.clone()).generate_sync(state),
        })
    }
}
