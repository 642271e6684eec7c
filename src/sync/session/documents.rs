//! Syncing one document with the peer: a received `sync` or `request` is
//! one call to the store (admit, then receive: apply, judge, persist and
//! answer under the document's lock); a push is one call (generate). The
//! sync states touched are written once per burst.

use automerge::sync::{self, ChunkList};

use super::{entity, sorted_hex, Output, Phase, Session};
use crate::error::Error;
use crate::model::EntityId;
use crate::store::{Admission, ReceiveError};
use crate::sync::extension;
use crate::sync::storage::SyncStore;
use crate::view::Rejection;
use crate::wire::{DocumentId, Message};

impl<S: SyncStore> Session<S> {
    /// Start syncing a local document unless the peer already had its heads
    /// when the last sync with it ended.
    pub(super) fn push_if_changed(&mut self, id: EntityId, out: &mut Output) -> Result<(), Error> {
        self.load_state(id)?;
        // compare with the heads kept in the summary: no document load
        let heads = self.store.summary(id)?.map(|s| s.heads).unwrap_or_default();
        let shared: Vec<String> = self
            .states
            .get(&id)
            .map(|s| s.shared_heads.iter().map(|h| h.to_string()).collect())
            .unwrap_or_default();
        if !heads.is_empty() && sorted_hex(&shared) == sorted_hex(&heads) {
            // the peer had exactly these heads when we last synced: skip, and
            // forget the state we loaded to decide that
            self.states.remove(&id);
            return Ok(());
        }
        self.sync_doc(id, false, out)
    }

    pub(super) fn load_state(&mut self, id: EntityId) -> Result<(), Error> {
        if self.states.contains_key(&id) {
            return Ok(());
        }
        let key = self
            .remote
            .as_ref()
            .map(|r| r.key.clone())
            .unwrap_or_default();
        let stored = self.store.load_sync_state(&key, id)?;
        if let Some(bytes) = &stored {
            self.stored_states.insert(id, fingerprint(bytes));
        }
        let mut state = stored
            .and_then(|b| sync::State::decode(&b).ok())
            .unwrap_or_default();
        state.read_only = self.cfg.access.read_only;
        self.states.insert(id, state);
        Ok(())
    }

    /// Note that the sync state of `id` changed: it is written at the end of
    /// the burst (see [`Session::write_states`]).
    pub(super) fn save_state(&mut self, id: EntityId) {
        self.dirty_states.insert(id);
    }

    /// Write the sync states changed in this burst, in one batch. A state
    /// whose persisted form (the heads both sides share) is what storage
    /// holds already is not written again: pushing a document to a peer
    /// changes only the in-memory part.
    pub(super) fn write_states(&mut self) -> Result<(), Error> {
        let Some(remote) = &self.remote else {
            self.dirty_states.clear();
            return Ok(());
        };
        let mut states: Vec<(EntityId, Vec<u8>)> = Vec::new();
        let mut prints = Vec::new();
        for id in self.dirty_states.drain() {
            let Some(state) = self.states.get(&id) else {
                continue;
            };
            let bytes = state.encode();
            let print = fingerprint(&bytes);
            if self.stored_states.get(&id) != Some(&print) {
                prints.push((id, print));
                states.push((id, bytes));
            }
        }
        if states.is_empty() {
            return Ok(());
        }
        self.store.save_sync_states(&remote.key, states)?;
        self.stored_states.extend(prints);
        Ok(())
    }

    /// Generate and queue the next sync message for `id`, if any.
    pub(super) fn sync_doc(
        &mut self,
        id: EntityId,
        as_request: bool,
        out: &mut Output,
    ) -> Result<(), Error> {
        self.load_state(id)?;
        if self.remote.is_none() {
            return Ok(());
        }
        let state = self.states.entry(id).or_default();
        let before = state.sent_hashes.clone();
        let generated = self.store.generate(id, state)?;
        let sent = newly_sent(&before, &state.sent_hashes);
        self.attest_sent(id, &sent, false, out)?;
        self.queue(id, generated.message, as_request, out);
        self.mark(id, generated.in_sync);
        Ok(())
    }

    /// Queue sync message `msg` about `id` (as a `request` or a `sync`).
    pub(super) fn queue(
        &mut self,
        id: EntityId,
        msg: Option<automerge::sync::Message>,
        as_request: bool,
        out: &mut Output,
    ) {
        let (Some(m), Some(remote)) = (msg, &self.remote) else {
            return;
        };
        let data = m.encode();
        let document_id = DocumentId::from(id.uuid());
        let (sender_id, target_id) = (self.cfg.local_peer.clone(), remote.peer.clone());
        out.send.push(if as_request {
            Message::Request {
                sender_id,
                target_id,
                document_id,
                data,
            }
        } else {
            Message::Sync {
                sender_id,
                target_id,
                document_id,
                data,
            }
        });
        self.sent_docs.insert(id);
    }

    /// Note whether `id` is in sync with the peer, and that its sync state
    /// changed.
    pub(super) fn mark(&mut self, id: EntityId, in_sync: bool) {
        if in_sync {
            self.pending.remove(&id);
        } else {
            self.pending.insert(id);
        }
        self.save_state(id);
    }

    pub(super) fn on_sync(&mut self, doc: DocumentId, data: &[u8], is_request: bool) -> Output {
        let id = entity(doc);
        let msg = match sync::Message::decode(data) {
            Ok(m) => m,
            Err(e) => {
                return self.fail(format!(
                    "invalid automerge sync message for document {doc}: {e}"
                ))
            }
        };
        if !blooms_are_sound(&msg) {
            // automerge 0.12 divides by zero on a filter with entries and no bits
            return self.fail(format!(
                "invalid automerge sync message for document {doc}: a bloom filter has entries but no bits"
            ));
        }
        match self.handle_sync(id, msg, is_request) {
            Ok(out) => out,
            Err(e) => self.storage_failure(e),
        }
    }

    pub(super) fn handle_sync(
        &mut self,
        id: EntityId,
        mut msg: sync::Message,
        is_request: bool,
    ) -> Result<Output, Error> {
        let mut out = Output::default();
        let Some(remote) = &self.remote else {
            return Ok(out);
        };
        let target = remote.peer.clone();
        let access = &self.cfg.access;
        let brings_changes = !msg.changes.is_empty();
        let admission = self.store.admit(
            id,
            &access.tenant,
            access.read_only,
            is_request,
            brings_changes,
        )?;
        match admission {
            Admission::Open => {}
            // unknown here, or another tenant's: the same answer for both
            Admission::Unavailable { foreign } => {
                return self.answer_unavailable(id, msg, is_request, foreign)
            }
            Admission::Contended => return Ok(out),
        }
        if access.read_only {
            msg.changes = ChunkList::from(Vec::<Vec<u8>>::new());
        }
        if !access.read_only {
            self.take_stashed(id)?;
        }
        self.load_state(id)?;
        let state = self.states.entry(id).or_default();
        let before = state.sent_hashes.clone();
        let limits = self.receive_limits;
        let received = self.store.receive(id, state, msg, &limits, is_request);
        let sent = newly_sent(&before, &state.sent_hashes);
        let received = match received {
            Ok(received) => received,
            Err(ReceiveError::Untyped(_)) => {
                // not a permitsync entity (yet): keep nothing, start over with it
                tracing::debug!(%id, "changes without a valid entity type were not stored");
                self.states.insert(id, sync::State::new());
                self.pending.remove(&id);
                return Ok(out);
            }
            Err(ReceiveError::OverLimit(e)) => {
                // refused before anything was applied; the connection's other
                // documents go on (the peer may close on the error)
                tracing::warn!(%id, error = %e, "sync message over a limit; nothing stored");
                self.states.insert(id, sync::State::new());
                self.pending.remove(&id);
                out.send.push(Message::Error {
                    message: format!("document {id}: {e}"),
                });
                return Ok(out);
            }
            Err(ReceiveError::Invalid(e)) => {
                out.merge(self.fail(format!("invalid changes for document {id}: {e}")));
                return Ok(out);
            }
            Err(ReceiveError::Failed(e)) => return Err(e),
        };
        self.took_changes(
            id,
            &received.new_changes,
            received.rejections,
            received.conflicts,
            &mut out,
        )?;
        if is_request && !received.exists {
            out.send.push(Message::DocUnavailable {
                sender_id: self.cfg.local_peer.clone(),
                target_id: target,
                document_id: DocumentId::from(id.uuid()),
            });
            return Ok(out);
        }
        // how this node vouched for the peer's unsigned uploads, then what
        // vouches for the changes the reply carries
        if self.cfg.role == super::Role::Server {
            self.attest_sent(id, &received.new_changes, true, &mut out)?;
        }
        self.attest_sent(id, &sent, false, &mut out)?;
        self.queue(id, received.reply, false, &mut out);
        self.mark(id, received.in_sync);
        self.advance_round(&mut out);
        Ok(out)
    }

    /// Account for changes of the peer's that document `id` took: report
    /// them, tell the peer what the view rejected, fetch missing photos.
    pub(super) fn took_changes(
        &mut self,
        id: EntityId,
        new_changes: &[automerge::ChangeHash],
        rejections: Vec<Rejection>,
        conflicts: bool,
        out: &mut Output,
    ) -> Result<(), Error> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        if new_changes.is_empty() {
            return Ok(());
        }
        let (target, ext) = (remote.peer.clone(), remote.ext);
        out.changed.push(id);
        out.changes_applied += new_changes.len();
        out.rejected += rejections.len();
        if conflicts {
            out.conflicts += 1;
        }
        if ext.rejections && !rejections.is_empty() {
            let json = serde_json::to_string(&rejections).unwrap_or_default();
            out.send
                .push(extension::rejected(&self.cfg.local_peer, &target, id, json));
        }
        if ext.blobs && !self.cfg.access.read_only {
            let ends = (&self.cfg.local_peer, &target);
            self.blobs
                .request_missing(&self.store, id, ends, &mut out.send)?;
        }
        Ok(())
    }

    /// A document changed elsewhere (a local edit, another peer): sync it with
    /// this peer if the peer is following it or may see it.
    pub fn on_doc_changed(&mut self, id: EntityId) -> Output {
        self.burst(|s| s.doc_changed(id))
    }

    pub(super) fn doc_changed(&mut self, id: EntityId) -> Output {
        let mut out = Output::default();
        if self.phase != Phase::Ready {
            return out;
        }
        let follows = self.states.contains_key(&id) || self.wanted.remove(&id);
        let ext = self.remote_extensions();
        let result = (|| -> Result<(), Error> {
            let may_see = self.store.visible_to(id, &self.cfg.access.tenant)?;
            if may_see && (follows || ext.feed) {
                self.sync_doc(id, false, &mut out)?;
            }
            if let Some(remote) = &self.remote {
                let ends = (&self.cfg.local_peer, &remote.peer);
                self.blobs.on_doc_changed(
                    &self.store,
                    &self.cfg.access,
                    id,
                    ends,
                    &mut out.send,
                )?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => out,
            Err(e) => self.storage_failure(e),
        }
    }
}

/// Whether every bloom filter of a sync message is one automerge can use
/// safely: encoded as `num_entries, bits_per_entry, probes` (LEB128) then the
/// bits, it must have bits for its entries (automerge 0.12 divides by zero
/// otherwise) and sane parameters (it allocates one slot per probe).
fn blooms_are_sound(msg: &sync::Message) -> bool {
    const MAX_PROBES: u64 = 64;
    const MAX_BITS_PER_ENTRY: u64 = 64;
    msg.have.iter().all(|have| {
        let bytes = have.bloom.to_bytes();
        if bytes.is_empty() {
            return true; // no entries
        }
        let mut rest: &[u8] = &bytes;
        let mut fields = [0u64; 3];
        for field in &mut fields {
            let Some(end) = rest.iter().position(|b| b & 0x80 == 0) else {
                return false;
            };
            if end >= 9 {
                return false; // more than a u64
            }
            *field = rest[..=end]
                .iter()
                .rev()
                .fold(0u64, |acc, b| (acc << 7) | u64::from(b & 0x7f));
            rest = &rest[end + 1..];
        }
        let [_, bits_per_entry, probes] = fields;
        !rest.is_empty()
            && (1..=MAX_BITS_PER_ENTRY).contains(&bits_per_entry)
            && (1..=MAX_PROBES).contains(&probes)
    })
}

/// A fingerprint of a persisted sync state, to tell whether it changed.
fn fingerprint(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// The hashes in `after` that were not in `before`: what a sync message
/// just generated carries.
fn newly_sent(
    before: &std::collections::BTreeSet<automerge::ChangeHash>,
    after: &std::collections::BTreeSet<automerge::ChangeHash>,
) -> Vec<automerge::ChangeHash> {
    after.difference(before).copied().collect()
}
