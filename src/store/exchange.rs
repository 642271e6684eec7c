//! The coarse calls a sync session makes: whether a connection may use a
//! document, and one call per received sync message (or feed entry) that
//! applies it, judges it, persists it and generates the answer under the
//! document's lock once. See `docs/architecture.md`, "The sync-store seam".

use automerge::sync;
use automerge::{Change, ChangeHash};

use super::cache::Slot;
use super::options::{ReceiveLimits, DEFAULT_TENANT};
use super::persist::Written;
use super::store::Store;
use crate::document::EntityDoc;
use crate::error::{Error, Result};
use crate::model::EntityId;
use crate::view::Rejection;

/// Whether a connection may use a document ([`Store::admit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// It may: the document is its tenant's, or new and now claimed for it.
    Open,
    /// It may not; `foreign` when the document exists or is claimed (another
    /// tenant's), otherwise it is unknown here. The connection must hear the
    /// same in both cases. On a handle in a tenant's id space
    /// ([`Store::in_tenant`]) another tenant's id is an unknown one, so
    /// `foreign` is never set there; a handle without a tenant (a node
    /// without tokens on a store that had tenants) still sets it.
    Unavailable {
        /// Another tenant's (stored or claimed).
        foreign: bool,
    },
    /// Another connection claimed the new document first: nothing to do.
    Contended,
}

/// What one received sync message did ([`Store::receive`]).
#[derive(Debug, Default)]
pub struct Received {
    /// Changes new to the store, durable once the handle is settled.
    pub new_changes: Vec<ChangeHash>,
    /// What the view rejected of them.
    pub rejections: Vec<Rejection>,
    /// Whether the document has open conflicts now.
    pub conflicts: bool,
    /// Whether the store holds the document (after the message).
    pub exists: bool,
    /// The answer to send the peer (none for a `request` about a document
    /// the store does not hold).
    pub reply: Option<sync::Message>,
    /// Whether the peer's last word was this store's exact heads.
    pub in_sync: bool,
}

/// The next sync message for a peer ([`Store::generate`]).
#[derive(Debug, Default)]
pub struct Generated {
    /// The message, if there is anything to say.
    pub message: Option<sync::Message>,
    /// Whether the peer's last word was this store's exact heads (or, for a
    /// peer that takes nothing, whether this store holds all of them).
    pub in_sync: bool,
}

/// What applying a feed entry's changes did ([`Store::take_changes`]).
#[derive(Debug, Default)]
pub struct Taken {
    /// Changes new to the store.
    pub new_changes: Vec<ChangeHash>,
    /// What the view rejected of them.
    pub rejections: Vec<Rejection>,
    /// Whether the document has open conflicts now.
    pub conflicts: bool,
    /// The document's heads afterwards; empty when the store does not hold it.
    pub heads: Vec<ChangeHash>,
}

/// Why a peer's changes were not taken. Callers answer each differently.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// A new document whose changes give it no valid entity type: nothing
    /// stored; sync starts over.
    #[error("changes without a valid entity type for {0}")]
    Untyped(EntityId),
    /// Over a limit before anything was applied; the connection's other
    /// documents go on.
    #[error(transparent)]
    OverLimit(Error),
    /// Not valid Automerge data, or changes whose dependencies are missing.
    #[error(transparent)]
    Invalid(Error),
    /// Storage failed: nothing may be acknowledged.
    #[error(transparent)]
    Failed(Error),
}

impl From<Error> for ReceiveError {
    fn from(e: Error) -> Self {
        match e {
            Error::UntypedDocument(id) => ReceiveError::Untyped(id),
            e @ Error::LimitExceeded(_) => ReceiveError::OverLimit(e),
            e @ (Error::Automerge(_) | Error::InvalidInput(_)) => ReceiveError::Invalid(e),
            e => ReceiveError::Failed(e),
        }
    }
}

fn sorted(mut v: Vec<ChangeHash>) -> Vec<ChangeHash> {
    v.sort();
    v
}

impl Store {
    /// Whether a connection of `tenant` (read-only or not) may use document
    /// `id` for a `sync` (or a `request`, `is_request`) that brings changes
    /// or not. A new document a connection may create is claimed for its
    /// tenant here.
    pub fn admit(
        &self,
        id: EntityId,
        tenant: &str,
        read_only: bool,
        is_request: bool,
        brings_changes: bool,
    ) -> Result<Admission> {
        // in a tenant's id space another tenant's id is simply one this
        // tenant does not hold yet (see `id_space.rs`): never `foreign`
        let internal = self.internal(id)?;
        let exists = self.contains_at(internal)?;
        let owner = self.owner_at(internal)?;
        let allowed = match &owner {
            Some(owner) => owner == tenant,
            None if exists => tenant == DEFAULT_TENANT,
            None => !read_only && !is_request,
        };
        if !allowed {
            return Ok(Admission::Unavailable {
                foreign: exists || owner.is_some(),
            });
        }
        if !exists && brings_changes && !self.claim(id, tenant)? {
            return Ok(Admission::Contended);
        }
        Ok(Admission::Open)
    }

    /// Take a sync message about document `id` from a peer whose sync state
    /// is `state`, all under the document's lock: apply it (after its cost
    /// is checked), persist what is new, read what the view rejected and
    /// whether conflicts are open, and generate the answer. Use a
    /// [`Store::deferring`] handle and settle it before the answer leaves.
    pub fn receive(
        &self,
        id: EntityId,
        state: &mut sync::State,
        msg: sync::Message,
        limits: &ReceiveLimits,
        is_request: bool,
    ) -> Result<Received, ReceiveError> {
        let id = self.internal(id)?;
        let slot = self.slot(id)?;
        let mut g = self.lock_loaded(id, &slot)?;
        let ours = sorted(g.doc.as_ref().map(EntityDoc::heads).unwrap_or_default());
        let carried_changes = !msg.changes.is_empty();
        // The peer announces heads we hold too, but we never told it so (we
        // got them elsewhere, after our last message to it): automerge takes
        // equal heads as known to both and stays silent, and the peer, whose
        // last word from us is older, waits for ever. Answer with our heads.
        let caught_up_unannounced = !ours.is_empty()
            && sorted(msg.heads.clone()) == ours
            && sorted(state.last_sent_heads.clone()) != ours;
        let (applied, written) = self.receive_locked(id, &mut g, state, msg, limits)?;
        if carried_changes || caught_up_unannounced {
            // A peer that sent changes waits to hear our heads. Automerge stays
            // silent when it believes the peer already knows them, which is
            // wrong after crossed messages: the peer sent the changes because
            // its last word from us was older. Always answer, so the peer's
            // round ends (the answer carries no changes it has).
            state.have_responded = false;
        }
        let mut received = self.judged(&g, &applied.new_changes, written);
        received.exists = g.doc.is_some();
        if received.exists || !is_request {
            let generated = self.generate_locked(id, &g, state)?;
            received.reply = generated.message;
            received.in_sync = generated.in_sync;
        }
        Ok(received)
    }

    /// The next sync message about document `id` for a peer whose sync
    /// state is `state`, and whether the peer is in sync. Nothing in it can
    /// be lost by a crash once the handle is settled.
    pub fn generate(&self, id: EntityId, state: &mut sync::State) -> Result<Generated> {
        let id = self.internal(id)?;
        let slot = self.slot(id)?;
        let g = self.lock_loaded(id, &slot)?;
        self.generate_locked(id, &g, state)
    }

    /// Apply a feed entry's changes to document `id` (created if new) under
    /// one lock: like [`Store::receive`] without a sync state.
    pub fn take_changes(
        &self,
        id: EntityId,
        changes: Vec<Change>,
        limits: &ReceiveLimits,
    ) -> Result<Taken, ReceiveError> {
        let id = self.internal(id)?;
        let slot = self.slot(id)?;
        let mut g = self.lock_loaded(id, &slot)?;
        let (applied, written) = self.apply_locked(id, &mut g, changes, limits)?;
        let received = self.judged(&g, &applied.new_changes, written);
        self.ensure_durable(g.last_seq)?;
        Ok(Taken {
            new_changes: received.new_changes,
            rejections: received.rejections,
            conflicts: received.conflicts,
            heads: g.doc.as_ref().map(EntityDoc::heads).unwrap_or_default(),
        })
    }

    /// What the view made of `new_changes`, read from the document and the
    /// summary its write produced.
    fn judged(&self, g: &Slot, new_changes: &[ChangeHash], written: Option<Written>) -> Received {
        let rejections = match (&g.doc, new_changes.is_empty()) {
            (Some(doc), false) => new_changes
                .iter()
                .flat_map(|h| doc.history().rejections_in(h))
                .collect(),
            _ => Vec::new(),
        };
        Received {
            new_changes: new_changes.to_vec(),
            rejections,
            conflicts: written.is_some_and(|w| w.summary.conflicts > 0),
            ..Received::default()
        }
    }

    fn generate_locked(
        &self,
        id: EntityId,
        g: &Slot,
        state: &mut sync::State,
    ) -> Result<Generated> {
        // what the peer says it needs, it did not keep (e.g. a change it held
        // back for a missing dependency and then lost): send it again
        if let Some(need) = state.their_need.clone() {
            for h in need {
                state.sent_hashes.remove(&h);
            }
        }
        // never send a peer a change that a crash could still lose (its actor
        // and sequence number would be reused); the lock keeps new writes out
        self.ensure_durable(g.last_seq)?;
        let (message, ours) = match &g.doc {
            Some(doc) => (doc.generate_sync(state), sorted(doc.heads())),
            None => {
                let empty = EntityDoc::new(id, self.inner.actor.clone());
                (empty.generate_sync(state), Vec::new())
            }
        };
        // in sync once the peer's last word was our exact heads; anything we
        // still send then is only the acknowledgement
        let theirs = state.their_heads.clone().map(sorted);
        let mut in_sync = !ours.is_empty() && theirs.as_ref() == Some(&ours);
        if !in_sync && state.peer_read_only {
            // a peer that will not take our changes: done once we have all of its
            if let (Some(theirs), Some(doc)) = (&theirs, &g.doc) {
                in_sync = theirs.iter().all(|h| doc.has_change(h));
            }
        }
        Ok(Generated { message, in_sync })
    }
}
