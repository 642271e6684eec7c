//! What a connection hears about a document its tenant may not use: exactly
//! what it would hear about a document this node does not have, so that a
//! sync message reveals nothing about other tenants' ids (see "Document ids
//! across tenants" in `docs/protocol.md`).

use automerge::sync::{self, SyncDoc};

use super::{Output, Session};
use crate::error::Error;
use crate::model::EntityId;
use crate::sync::storage::SyncStore;
use crate::wire::{DocumentId, Message};

impl<S: SyncStore> Session<S> {
    /// Answer a `sync` or `request` about document `id` that this
    /// connection may not use: unknown here (a `request`, or any message from
    /// a read-only token), or another tenant's (`exists`: stored or claimed).
    pub(super) fn answer_unavailable(
        &mut self,
        id: EntityId,
        msg: sync::Message,
        is_request: bool,
        foreign: bool,
    ) -> Result<Output, Error> {
        let mut out = Output::default();
        let Some(remote) = &self.remote else {
            return Ok(out);
        };
        let target = remote.peer.clone();
        let access = &self.cfg.access;
        if foreign && !is_request && !access.read_only && msg.changes.is_empty() {
            // a sync message without changes about an unknown document gets
            // the answer of an empty document; so does another tenant's
            // (only an upload then tells them apart, as any create does)
            self.load_state(id)?;
            let state = self.states.entry(id).or_default();
            let mut empty = automerge::Automerge::new();
            if let Err(e) = empty.receive_sync_message(state, msg) {
                return Ok(self.fail(format!("invalid changes for document {id}: {e}")));
            }
            if let Some(reply) = empty.generate_sync_message(state) {
                out.send.push(Message::Sync {
                    sender_id: self.cfg.local_peer.clone(),
                    target_id: target,
                    document_id: DocumentId::from(id.uuid()),
                    data: reply.encode(),
                });
            }
            return Ok(out);
        }
        if !foreign {
            // sent to the peer if it arrives while the connection is open
            self.wanted.insert(id);
        }
        self.pending.remove(&id);
        out.send.push(Message::DocUnavailable {
            sender_id: self.cfg.local_peer.clone(),
            target_id: target,
            document_id: DocumentId::from(id.uuid()),
        });
        Ok(out)
    }
}
