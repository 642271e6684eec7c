//! The handshake: `join` answered with `peer` (a server), `peer` awaited
//! after `join` (a client); the remote's identity, the key its sync states
//! are kept under, and the extensions it announced.

use super::{Output, Phase, Remote, Session};
use crate::error::Error;
use crate::sync::extension::Extensions;
use crate::sync::identity_ext;
use crate::sync::storage::SyncStore;
use crate::wire::{Message, PeerId, PeerMetadata, PROTOCOL_V1};

impl<S: SyncStore> Session<S> {
    pub(super) fn on_join(
        &mut self,
        sender: PeerId,
        meta: Option<PeerMetadata>,
        versions: Vec<String>,
    ) -> Output {
        if !versions.is_empty() && !versions.iter().any(|v| v == PROTOCOL_V1) {
            return self.fail(format!(
                "unsupported protocol version(s) {versions:?}; this node speaks \"1\""
            ));
        }
        self.set_remote(sender.clone(), meta.as_ref());
        self.phase = Phase::Ready;
        // a server has no round of its own: it answers what the client asks
        self.round.feed_done = true;
        let mut out = Output {
            send: vec![Message::Peer {
                sender_id: self.cfg.local_peer.clone(),
                target_id: sender,
                peer_metadata: Some(self.metadata()),
                selected_protocol_version: PROTOCOL_V1.to_string(),
            }],
            ..Default::default()
        };
        let key = identity_ext::announced_key(meta.as_ref());
        let result = self
            .identity_hello(key, &mut out)
            .and_then(|()| self.request_wanted_blobs(&mut out));
        if let Err(e) = result {
            return self.storage_failure(e);
        }
        out
    }

    /// Ask a peer that fetches blobs for those this node still wants.
    pub(super) fn request_wanted_blobs(&mut self, out: &mut Output) -> Result<(), Error> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        if !remote.ext.blobs || self.cfg.access.read_only {
            return Ok(());
        }
        let ends = (&self.cfg.local_peer, &remote.peer);
        self.blobs
            .request_wanted(&self.store, &self.cfg.access, ends, &mut out.send)
    }

    pub(super) fn on_peer(
        &mut self,
        sender: PeerId,
        meta: Option<PeerMetadata>,
        version: String,
    ) -> Output {
        if version != PROTOCOL_V1 {
            return self.fail(format!(
                "peer selected unsupported protocol version {version:?}"
            ));
        }
        self.set_remote(sender, meta.as_ref());
        self.phase = Phase::Ready;
        let mut out = Output::default();
        let result = self
            .identity_hello(None, &mut out)
            .and_then(|()| self.begin_round(&mut out))
            .and_then(|()| self.request_wanted_blobs(&mut out));
        if let Err(e) = result {
            return self.storage_failure(e);
        }
        out
    }

    pub(super) fn set_remote(&mut self, peer: PeerId, meta: Option<&PeerMetadata>) {
        let who = meta
            .filter(|m| !m.is_ephemeral)
            .and_then(|m| m.storage_id.clone())
            .unwrap_or_else(|| peer.as_str().to_string());
        self.remote = Some(Remote {
            peer,
            key: format!("{}/{}", self.cfg.access.tenant, who),
            ext: Extensions::of(meta),
        });
    }
}
