//! An entity document: the Automerge document plus its policy history, kept in
//! step so that the view costs in proportion to new operations.

use std::cell::OnceCell;

use std::sync::Arc;

use automerge::{ActorId, Automerge, Change, ChangeHash};

use crate::identity::{Attestation, Signer, TenantAuthority};
use crate::model::{EntityId, EntityType};
use crate::view::{self, Authorities, CrossRefs, History, Ingest, View};

/// One entity's Automerge document and the policy history derived from it.
///
/// The history is built on first use: a document loaded only to answer a
/// sync request (a fresh device asking for everything) never needs it, and
/// building it means materializing every change.
#[derive(Debug)]
pub struct EntityDoc {
    id: EntityId,
    doc: Automerge,
    history: OnceCell<History>,
    /// The authority and attestations the history is judged by.
    auth: Authorities,
    /// Attestations made or received since the store last persisted them.
    unsaved: Vec<Attestation>,
}

impl EntityDoc {
    /// A new, empty document written by `actor`.
    pub fn new(id: EntityId, actor: ActorId) -> Self {
        EntityDoc {
            id,
            doc: Automerge::new().with_actor(actor),
            history: OnceCell::from(History::default()),
            auth: Authorities::open(),
            unsaved: Vec::new(),
        }
    }

    /// A document loaded from saved bytes (a `save()` and any incremental chunks).
    pub fn load(
        id: EntityId,
        actor: ActorId,
        chunks: &[&[u8]],
    ) -> Result<Self, automerge::AutomergeError> {
        let mut doc = Automerge::new().with_actor(actor);
        for chunk in chunks {
            doc.load_incremental(chunk)?;
        }
        Ok(EntityDoc {
            id,
            doc,
            history: OnceCell::new(),
            auth: Authorities::open(),
            unsaved: Vec::new(),
        })
    }

    /// The entity id.
    pub fn id(&self) -> EntityId {
        self.id
    }

    /// The Automerge document.
    pub fn doc(&self) -> &Automerge {
        &self.doc
    }

    /// The Automerge document, for writing. Call [`EntityDoc::catch_up`] after.
    pub(crate) fn doc_mut(&mut self) -> &mut Automerge {
        &mut self.doc
    }

    /// The policy history.
    pub fn history(&self) -> &History {
        self.history
            .get_or_init(|| History::judged_by(self.doc.get_changes(&[]), &self.auth))
    }

    /// The authority and attestations the document is judged by.
    pub fn authorities(&self) -> &Authorities {
        &self.auth
    }

    /// Judge the document by `authority` (`None`: open mode), with the
    /// stored attestations `held` (not marked unsaved). What was judged
    /// otherwise is judged again.
    pub fn set_authority(
        &mut self,
        authority: Option<Arc<TenantAuthority>>,
        held: impl IntoIterator<Item = Attestation>,
    ) {
        let same = match (self.auth.authority(), &authority) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        self.auth.set_authority(authority);
        let mut touched = Vec::new();
        for a in held {
            let change = a.change;
            if self.auth.add(a) {
                touched.push(change);
            }
        }
        if !same {
            self.rejudge_if_needed(None);
        } else if !touched.is_empty() {
            self.rejudge_if_needed(Some(&touched));
        }
    }

    /// Hold attestations of this document's changes (made here or received).
    /// New ones are marked unsaved for the store to persist; what they change
    /// is judged again. Returns how many were new.
    pub fn attest(&mut self, atts: impl IntoIterator<Item = Attestation>) -> usize {
        let mut touched = Vec::new();
        for a in atts {
            if self.auth.add(a.clone()) {
                touched.push(a.change);
                self.unsaved.push(a);
            }
        }
        if !touched.is_empty() {
            self.rejudge_if_needed(Some(&touched));
        }
        touched.len()
    }

    /// Attest `changes` of this document with `signer` (this node's own
    /// signature, or its attestation on a device's behalf): held as known
    /// good, marked unsaved, judged again where they change something.
    pub fn attest_with(&mut self, signer: &Signer, changes: impl IntoIterator<Item = ChangeHash>) {
        let key = signer.public_key();
        let mut touched = Vec::new();
        for hash in changes {
            let a = signer.attest(hash);
            if self.auth.add_own(a.clone(), &key) {
                touched.push(hash);
                self.unsaved.push(a);
            }
        }
        if !touched.is_empty() {
            self.rejudge_if_needed(Some(&touched));
        }
    }

    /// The attestations not yet persisted, taken.
    pub(crate) fn take_unsaved(&mut self) -> Vec<Attestation> {
        std::mem::take(&mut self.unsaved)
    }

    /// Drop the history when the context judges a processed change (of
    /// `only`, or any) differently; it is rebuilt on next use.
    fn rejudge_if_needed(&mut self, only: Option<&[ChangeHash]>) {
        let Some(h) = self.history.get() else { return };
        let doc = &self.doc;
        let time = |hash: &ChangeHash| doc.get_change_meta_by_hash(hash).map_or(0, |m| m.timestamp);
        if h.judged_differently(&self.auth, time, only) {
            self.history = OnceCell::new();
        }
    }

    /// The entity type, once a valid `type` was written.
    pub fn entity_type(&self) -> Option<EntityType> {
        self.history().entity_type()
    }

    /// The current heads.
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Apply foreign changes (merging never refuses a change) and update the
    /// history. Returns the hashes of the changes that were new.
    pub fn apply_changes(
        &mut self,
        changes: Vec<Change>,
    ) -> Result<Vec<ChangeHash>, automerge::AutomergeError> {
        let before = self.doc.get_heads();
        self.doc.apply_changes(changes)?;
        Ok(self.catch_up(&before))
    }

    /// Load incremental bytes (changes or a saved document) and update the history.
    pub fn load_incremental(
        &mut self,
        bytes: &[u8],
    ) -> Result<Vec<ChangeHash>, automerge::AutomergeError> {
        let before = self.doc.get_heads();
        self.doc.load_incremental(bytes)?;
        Ok(self.catch_up(&before))
    }

    /// Receive an automerge sync message from a peer whose sync state is
    /// `state`, and update the history. Returns the new change hashes.
    pub fn receive_sync(
        &mut self,
        state: &mut automerge::sync::State,
        msg: automerge::sync::Message,
    ) -> Result<Vec<ChangeHash>, automerge::AutomergeError> {
        self.receive_sync_delivered(state, msg, None)
    }

    /// [`EntityDoc::receive_sync`] from a peer whose unsigned changes
    /// `delivery` attests (a relay vouching for what an authenticated device
    /// uploaded): each new change without any attestation gets one, before
    /// the history judges it.
    pub fn receive_sync_delivered(
        &mut self,
        state: &mut automerge::sync::State,
        msg: automerge::sync::Message,
        delivery: Option<&Signer>,
    ) -> Result<Vec<ChangeHash>, automerge::AutomergeError> {
        use automerge::sync::SyncDoc;
        let before = self.doc.get_heads();
        self.doc.receive_sync_message(state, msg)?;
        if let Some(signer) = delivery {
            // a change that no valid attestation vouches for (one that
            // only names an unknown serial is vouched for all the same)
            let unattested: Vec<ChangeHash> = self
                .doc
                .get_changes_meta(&before)
                .iter()
                .filter(|m| {
                    self.auth.author_of(&m.hash, m.timestamp).verification
                        == crate::identity::Verification::Unverified
                })
                .map(|m| m.hash)
                .collect();
            self.attest_with(signer, unattested);
        }
        Ok(self.catch_up(&before))
    }

    /// The next sync message for a peer whose sync state is `state`, if any.
    pub fn generate_sync(
        &self,
        state: &mut automerge::sync::State,
    ) -> Option<automerge::sync::Message> {
        use automerge::sync::SyncDoc;
        self.doc.generate_sync_message(state)
    }

    /// Bring the history up to date with the document after it changed from
    /// `before`. Returns the new change hashes.
    pub(crate) fn catch_up(&mut self, before: &[ChangeHash]) -> Vec<ChangeHash> {
        let Some(history) = self.history.get_mut() else {
            // not built yet: it will include these changes when it is
            return self
                .doc
                .get_changes_meta(before)
                .iter()
                .map(|m| m.hash)
                .collect();
        };
        let new = self.doc.get_changes(before);
        let hashes = new.iter().map(|c| c.hash()).collect();
        if history.ingest(new, &self.auth) == Ingest::Rebuild {
            self.history = OnceCell::new();
        }
        hashes
    }

    /// The view, with the cross-document facts the store supplies.
    pub fn view(&self, refs: &CrossRefs) -> View {
        view::render(self.id, &self.doc, self.history(), refs)
    }

    /// What the store keeps of the view (status, title, counts), without
    /// rendering the rest.
    pub fn headline(&self) -> view::Headline {
        view::headline(&self.doc, self.history())
    }

    /// One field of the view (and its conflict), without rendering the rest.
    pub fn field(&self, name: &str) -> (serde_json::Value, Option<view::Conflict>) {
        view::render_field(&self.doc, self.history(), name)
    }

    /// Changes the document holds that are not in the past of `heads`.
    pub fn changes_since(&self, heads: &[ChangeHash]) -> Vec<Change> {
        self.doc.get_changes(heads)
    }

    /// The compacted document bytes.
    pub fn save(&self) -> Vec<u8> {
        self.doc.save()
    }

    /// The bytes of the changes after `heads` (an incremental chunk).
    pub fn save_after(&self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    /// Whether the document already has the change.
    pub fn has_change(&self, hash: &ChangeHash) -> bool {
        self.doc.get_change_meta_by_hash(hash).is_some()
    }
}
