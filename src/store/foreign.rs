//! Changes from peers: applied as they come (merging never refuses a valid
//! change; the view judges it), after what they will cost is checked, and
//! durable before anything acknowledges them. Sync messages are received
//! and generated here, under the document's lock.

use automerge::{Change, ChangeHash};

use super::cache::Slot;
use super::cost;
use super::options::ReceiveLimits;
use super::persist::Written;
use super::store::{Applied, Store};
use crate::document::EntityDoc;
use crate::error::{Error, Result};
use crate::model::EntityId;

impl Store {
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
        let id = self.internal(id)?;
        self.take_durably(id, |store, g| store.apply_locked(id, g, changes, limits))
    }

    /// Run `take` on the locked slot of the document stored under `id`,
    /// then, with the lock let go, make what it wrote (or what the document
    /// held) durable.
    fn take_durably(
        &self,
        id: EntityId,
        take: impl FnOnce(&Store, &mut Slot) -> Result<(Applied, Option<Written>)>,
    ) -> Result<Applied> {
        let slot = self.slot(id)?;
        let mut g = self.lock_loaded(id, &slot)?;
        let (applied, written) = take(self, &mut g)?;
        let seq = written.map_or(g.last_seq, |w| w.seq);
        drop(g);
        self.ensure_durable(seq)?;
        Ok(applied)
    }

    /// [`Store::apply_changes_limited`] on the locked slot of the document
    /// stored under `id`; the write is not durable yet.
    pub(super) fn apply_locked(
        &self,
        id: EntityId,
        g: &mut Slot,
        changes: Vec<Change>,
        limits: &ReceiveLimits,
    ) -> Result<(Applied, Option<Written>)> {
        let cost = cost::measure(changes.iter().map(Change::raw_bytes), &self.inner.opts.cost)?;
        self.check_growth(id, g.doc.as_ref(), &cost)?;
        let created = g.doc.is_none();
        let mut doc = g.doc.take().map_or_else(|| self.new_doc(id), Ok)?;
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
                g.forget();
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
        let id = self.internal(id)?;
        self.take_durably(id, |store, g| {
            store.receive_locked(id, g, state, msg, limits)
        })
    }

    /// [`Store::receive_sync_limited`] on the locked slot of the document
    /// stored under `id`; the write is not durable yet.
    pub(super) fn receive_locked(
        &self,
        id: EntityId,
        g: &mut Slot,
        state: &mut automerge::sync::State,
        msg: automerge::sync::Message,
        limits: &ReceiveLimits,
    ) -> Result<(Applied, Option<Written>)> {
        // what the message will cost, before Automerge expands any of it
        let cost = cost::measure(msg.changes.iter(), &self.inner.opts.cost)?;
        self.check_growth(id, g.doc.as_ref(), &cost)?;
        let created = g.doc.is_none();
        let mut doc = g.doc.take().map_or_else(|| self.new_doc(id), Ok)?;
        let before = doc.heads();
        let delivery = self.delivery_signer(id)?;
        let new_changes = match doc.receive_sync_delivered(state, msg, delivery.as_ref()) {
            Ok(new) => new,
            Err(e) => {
                g.forget(); // possibly half-applied: reload from storage
                return Err(e.into());
            }
        };
        self.store_foreign(id, g, doc, created, &before, new_changes, limits)
    }

    /// A new, empty document to be stored under `id`, named by its external id.
    pub(super) fn new_doc(&self, id: EntityId) -> Result<EntityDoc> {
        let mut doc = EntityDoc::new(self.external(id)?, self.inner.actor.clone());
        self.judge(id, &mut doc)?;
        Ok(doc)
    }

    /// The shared end of taking foreign changes into document `id`: nothing
    /// new, refused (no valid type, over a limit: forget the in-memory copy,
    /// nothing is stored), or persisted (not yet durable: the caller makes
    /// sure of that before it acknowledges anything).
    #[allow(clippy::too_many_arguments)]
    fn store_foreign(
        &self,
        id: EntityId,
        g: &mut Slot,
        doc: EntityDoc,
        created: bool,
        before: &[ChangeHash],
        new_changes: Vec<ChangeHash>,
        limits: &ReceiveLimits,
    ) -> Result<(Applied, Option<Written>)> {
        if new_changes.is_empty() {
            if !created {
                g.doc = Some(doc);
            }
            let applied = Applied {
                new_changes,
                created: false,
            };
            return Ok((applied, None));
        }
        if doc.entity_type().is_none() {
            g.forget();
            return Err(Error::UntypedDocument(id));
        }
        if new_changes.len() > limits.max_changes {
            g.forget(); // nothing was stored
            return Err(Error::LimitExceeded(format!(
                "a sync message brought {} changes for {id}; the limit is {}",
                new_changes.len(),
                limits.max_changes
            )));
        }
        let grown = g.stored_bytes.saturating_add(doc.save_after(before).len());
        if grown > limits.max_document_bytes {
            g.forget();
            return Err(Error::LimitExceeded(format!(
                "document {id} would take {grown} bytes; the limit is {}",
                limits.max_document_bytes
            )));
        }
        g.doc = Some(doc);
        let written = self.persist(id, g, before, Vec::new())?;
        let applied = Applied {
            new_changes,
            created,
        };
        Ok((applied, Some(written)))
    }

    /// The next sync message about document `id` for a peer whose sync state is
    /// `state`. For a document the store does not have, the message of an empty
    /// document (which asks the peer for everything).
    pub fn generate_sync(
        &self,
        id: EntityId,
        state: &mut automerge::sync::State,
    ) -> Result<Option<automerge::sync::Message>> {
        let id = self.internal(id)?;
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
