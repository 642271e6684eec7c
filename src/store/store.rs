//! The store: entity documents in a [`Backend`], with a change feed, indexes,
//! a bounded cache of loaded documents and group-committed durable writes.
//!
//! This file holds the handle and what every part shares: opening, identity,
//! access to loaded documents, metadata records and durability. The parts
//! that act on documents extend [`Store`] in files of their own: `persist.rs`
//! (writing a changed document), `writes.rs` (local writes), `foreign.rs`
//! (changes from peers), `reads.rs`, `tenancy.rs`, `blobs.rs`.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use automerge::{ActorId, Change, ChangeHash};

use super::backend::{Backend, BatchOp, Check, Checked};
use super::cache::{DocCache, Slot};
use super::durability::{Debt, Durable, Owed};
use super::failure::{poisoned, renamed, storage};
use super::feed::Feed;
use super::format;
use super::identity::Identity;
use super::identity_marking::Marking;
use super::keys;
use super::options::StoreOptions;
use super::sled_backend::SledBackend;
use super::write_gate::Gated;
use crate::document::EntityDoc;
use crate::error::{Error, Result};
use crate::identity::RoleSet;
use crate::model::EntityId;
use crate::write::WriteCtx;

pub(super) struct Inner {
    pub(super) backend: Arc<dyn Backend>,
    node_id: ActorId,
    pub(super) actor: ActorId,
    device: String,
    pub(super) opts: StoreOptions,
    pub(super) cache: DocCache,
    pub(super) feed: Feed,
    pub(super) durable: Durable,
    pub(super) claim_lock: Mutex<()>,
    /// Whether the store holds any derived internal id (`xid/` records): until
    /// it does, mapping an internal id back to its external one reads nothing.
    pub(super) mapped: AtomicBool,
    /// The store's id key once read or made (`id_key.rs`); its lock orders
    /// making it, apart from claims (a claim derives ids under its own lock).
    pub(super) id_key: Mutex<Option<Vec<u8>>>,
    /// Every write passes it; a snapshot closes it (`snapshot.rs`).
    pub(super) gate: Arc<RwLock<()>>,
    /// On storage shared with other relays: this store's own feed positions
    /// not caught up with yet (`cluster.rs`).
    pub(super) own_writes: Mutex<std::collections::BTreeSet<u64>>,
    /// The node's key, authorities, certificates (`identity.rs`).
    pub(super) identity: Identity,
}

/// A handle to a store; cheap to clone and safe to share between threads.
#[derive(Clone)]
pub struct Store {
    pub(super) inner: Arc<Inner>,
    /// The device recorded as the author of writes made through this handle
    /// (see [`Store::acting_as`]); the store's own device when `None`.
    pub(super) acting_device: Option<Arc<str>>,
    /// The roles of the token the handle writes for ([`Store::with_roles`]):
    /// a relay attests its writes on that device's behalf.
    pub(super) acting_roles: Option<Arc<RoleSet>>,
    /// The person the token of [`Store::with_roles`] names, if any (named
    /// in what the relay attests for it).
    pub(super) acting_person: Option<Arc<str>>,
    /// Set on a [`Store::deferring`] handle: what its writes and reads still
    /// owe to a flush (see [`Owed`]).
    owed: Option<Arc<Owed>>,
    /// The tenant whose id space this handle works in ([`Store::in_tenant`]);
    /// `None`: ids are taken as stored.
    pub(super) tenant: Option<Arc<str>>,
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
        // relays over one database: their identity caches follow each other
        let backend: Arc<dyn Backend> = if backend.shared() {
            Arc::new(Marking::new(backend))
        } else {
            backend
        };
        // every write passes the gate a snapshot closes (outermost)
        let gated = Gated::new(backend);
        let gate = gated.gate.clone();
        Store::open_on(Arc::new(gated), gate, opts, 1)
    }

    fn open_on(
        backend: Arc<dyn Backend>,
        gate: Arc<RwLock<()>>,
        opts: StoreOptions,
        attempt: u32,
    ) -> Result<Store> {
        let mut init: Vec<BatchOp> = Vec::new();
        // refuse a newer store before reading anything else of it
        format::check(backend.as_ref(), &mut init)?;
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
        let identity = Identity::open(backend.as_ref(), &mut init)?;
        if !init.is_empty() {
            if backend.shared() {
                // only where still absent: relays opening a new database
                // together must all keep what one of them wrote
                let check = Check {
                    feed_seq: None,
                    expect: init.iter().map(|(k, _)| (k.clone(), None)).collect(),
                };
                if backend.apply_checked(init, &check).map_err(storage)? != Checked::Applied {
                    if attempt >= 3 {
                        return Err(Error::storage("the store's records keep changing"));
                    }
                    return Store::open_on(backend, gate, opts, attempt + 1);
                }
            } else {
                backend.apply(init).map_err(storage)?;
            }
            backend.flush().map_err(storage)?;
        }
        // another relay may map ids at any time: always look
        let mapped = backend.shared()
            || !backend
                .scan_prefix(keys::EXTERNAL, None, 1)
                .map_err(storage)?
                .is_empty();
        let last = backend
            .last_with_prefix(keys::FEED)
            .map_err(storage)?
            .and_then(|(k, _)| keys::feed_seq(&k))
            .unwrap_or(0);
        Ok(Store {
            acting_device: None,
            acting_roles: None,
            acting_person: None,
            owed: None,
            tenant: None,
            inner: Arc::new(Inner {
                backend,
                node_id,
                actor,
                device,
                cache: DocCache::new(opts.cache_capacity),
                opts,
                feed: Feed::new(last),
                durable: Durable::new(last),
                claim_lock: Mutex::new(()),
                mapped: AtomicBool::new(mapped),
                id_key: Mutex::new(None),
                gate,
                own_writes: Mutex::new(Default::default()),
                identity,
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
            signer: None,
        }
    }

    /// A handle on the same store whose writes record `device` as their author
    /// (`created_by`, `taken_by`): a node writing on behalf of an authenticated
    /// device.
    pub fn acting_as(&self, device: &str) -> Store {
        Store {
            inner: self.inner.clone(),
            acting_device: Some(Arc::from(device)),
            acting_roles: self.acting_roles.clone(),
            acting_person: self.acting_person.clone(),
            owed: self.owed.clone(),
            tenant: self.tenant.clone(),
        }
    }

    /// A handle whose writes are made for a token holding `roles` (with
    /// [`Store::acting_as`] its device): on a tenant authority they are
    /// attested on that device's behalf and checked against those roles.
    pub fn with_roles(&self, roles: RoleSet) -> Store {
        let mut handle = self.clone();
        handle.acting_roles = Some(Arc::new(roles));
        handle
    }

    /// This handle, naming `person` (its token's) in what the relay attests
    /// for its writes and uploads.
    pub fn with_person(&self, person: Option<&str>) -> Store {
        let mut handle = self.clone();
        handle.acting_person = person.map(Arc::from);
        handle
    }

    /// The write context for the document stored under `id`: [`Store::ctx`]
    /// with what attests its writes.
    pub(crate) fn ctx_for(&self, id: EntityId) -> Result<WriteCtx> {
        let mut ctx = self.ctx();
        ctx.signer = self.signer_for(id)?;
        Ok(ctx)
    }

    // ---- loaded documents ------------------------------------------------

    /// The cache slot of the document stored under `id` (an internal id).
    pub(super) fn slot(&self, id: EntityId) -> Result<Arc<Mutex<Slot>>> {
        self.inner.cache.slot(id)
    }

    /// Number of documents currently held in memory.
    pub fn cached_documents(&self) -> usize {
        self.inner.cache.loaded_documents()
    }

    /// Lock `slot` (that of the document stored under `id`) with its
    /// document loaded, under its external id.
    pub(super) fn lock_loaded<'a>(
        &self,
        id: EntityId,
        slot: &'a Mutex<Slot>,
    ) -> Result<MutexGuard<'a, Slot>> {
        let mut g = slot.lock().map_err(poisoned)?;
        let fresh = g.ensure_loaded(
            id,
            || self.external(id),
            self.inner.backend.as_ref(),
            &self.inner.actor,
        )?;
        let generation = self.inner.identity.generation();
        if fresh || g.judged_at != generation {
            g.judged_at = generation;
            if let Some(mut doc) = g.doc.take() {
                let judged = self.judge(id, &mut doc);
                g.doc = Some(doc);
                if let Err(e) = judged {
                    g.forget();
                    return Err(e);
                }
            }
        }
        Ok(g)
    }

    /// Run `f` on the loaded document `id`.
    pub fn with_doc<T>(&self, id: EntityId, f: impl FnOnce(&EntityDoc) -> T) -> Result<T> {
        let internal = self.internal(id)?;
        self.with_doc_at(internal, f)
            .map_err(|e| renamed(e, internal, id))
    }

    /// [`Store::with_doc`] of the document stored under `id`.
    pub(super) fn with_doc_at<T>(
        &self,
        id: EntityId,
        f: impl FnOnce(&EntityDoc) -> T,
    ) -> Result<T> {
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
        let internal = self.internal(id)?;
        let slot = self.slot(internal)?;
        let g = self.lock_loaded(internal, &slot)?;
        self.ensure_durable(g.last_seq)?;
        match &g.doc {
            Some(doc) => Ok(f(doc)),
            None => Err(Error::UnknownEntity(id)),
        }
    }

    // ---- durability -------------------------------------------------------

    /// Number of flushes so far (group commit makes this smaller than the
    /// number of writes under concurrency).
    pub fn flush_count(&self) -> u64 {
        self.inner.durable.flushes()
    }

    /// A handle on the same store whose writes do not wait for their flush
    /// and whose reads do not flush what they are about to show: it only
    /// records what it owes. The caller runs [`Store::settle`] on this handle
    /// before anything it produced leaves the node, so one flush covers a
    /// whole burst of writes (a connection's ready frames, a classic batch)
    /// instead of one flush each.
    pub fn deferring(&self) -> Store {
        Store {
            inner: self.inner.clone(),
            acting_device: self.acting_device.clone(),
            acting_roles: self.acting_roles.clone(),
            acting_person: self.acting_person.clone(),
            owed: Some(Arc::new(Owed::default())),
            tenant: self.tenant.clone(),
        }
    }

    /// Make durable everything this handle wrote or read since the last
    /// settle (a flush only when some of it is not durable yet). Nothing to do
    /// on a handle that is not [`Store::deferring`].
    pub fn settle(&self) -> Result<()> {
        let Some(owed) = &self.owed else {
            return Ok(());
        };
        match owed.take() {
            Debt::None => Ok(()),
            Debt::UpTo(seq) if self.inner.durable.covers(seq) => Ok(()),
            Debt::UpTo(_) | Debt::Flush => self.flush_now(),
        }
    }

    /// Make sure the write at feed position `seq` is durable (flushing if not):
    /// called before anything about a document is acknowledged or shown to a
    /// peer, so a write whose flush failed is flushed before it is acknowledged
    /// by a later call, and no peer ever gets a change a crash could still lose.
    /// A deferring handle only notes the position (see [`Store::settle`]).
    pub(super) fn ensure_durable(&self, seq: u64) -> Result<()> {
        if self.inner.durable.covers(seq) {
            return Ok(());
        }
        if let Some(owed) = &self.owed {
            owed.up_to(seq);
            return Ok(());
        }
        self.flush_now()
    }

    /// Wait until everything written so far is durable; a deferring handle
    /// only notes that it owes a flush.
    pub(super) fn wait_durable(&self) -> Result<()> {
        if let Some(owed) = &self.owed {
            owed.flush();
            return Ok(());
        }
        self.flush_now()
    }

    /// Flush (sharing the flush with concurrent writers) and wait for it.
    fn flush_now(&self) -> Result<()> {
        self.inner
            .durable
            .flush(self.inner.backend.as_ref())
            .map_err(storage)
    }

    /// The latest durable feed position.
    pub fn feed_head(&self) -> u64 {
        self.inner.durable.durable_seq()
    }

    /// Flush everything to disk (also on a deferring handle).
    pub fn flush(&self) -> Result<()> {
        self.flush_now()
    }

    // ---- metadata records -------------------------------------------------

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
}
