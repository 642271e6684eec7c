//! The handshake: `join` answered with `peer` (a server), `peer` awaited
//! after `join` (a client); the remote's identity, the key its sync states
//! are kept under, and the extensions it announced.
//!
//! Epochs: both sides announce their store's epoch (written by each restore
//! from a backup) in their metadata, as `permitsync_epoch` (16 hex digits).
//! A side that sees a peer's epoch differ from the one it recorded for that
//! peer (none recorded counts as none announced) forgets every sync state
//! and cursor it kept for the peer before anything is synced: the peer may
//! have lost changes it had acknowledged, so this side pushes every document
//! again and reads the peer's whole feed, as on a first connection.

use super::{Output, Phase, Remote, Session};
use crate::error::Error;
use crate::sync::extension::{self, Extensions};
use crate::sync::identity_ext;
use crate::sync::storage::SyncStore;
use crate::wire::{Message, PeerId, PeerMetadata, Value, PROTOCOL_V1};

/// The metadata key of a store's epoch.
pub(crate) const EPOCH_KEY: &str = "permitsync_epoch";
/// The cursor under which the peer's epoch last seen is recorded.
const EPOCH_CURSOR: &str = "epoch";

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
        if let Err(e) = self.set_remote(sender.clone(), meta.as_ref()) {
            return self.storage_failure(e);
        }
        self.phase = Phase::Ready;
        // a server has no round of its own: it answers what the client asks
        self.round.feed_done = true;
        let mut out = Output {
            send: vec![Message::Peer {
                sender_id: self.cfg.local_peer.clone(),
                target_id: sender,
                peer_metadata: Some(self.local_metadata()),
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
        if let Err(e) = self.set_remote(sender, meta.as_ref()) {
            return self.storage_failure(e);
        }
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

    pub(super) fn set_remote(
        &mut self,
        peer: PeerId,
        meta: Option<&PeerMetadata>,
    ) -> Result<(), Error> {
        let who = meta
            .filter(|m| !m.is_ephemeral)
            .and_then(|m| m.storage_id.clone())
            .unwrap_or_else(|| peer.as_str().to_string());
        let key = format!("{}/{}", self.cfg.access.tenant, who);
        self.check_epoch(&key, meta)?;
        self.remote = Some(Remote {
            peer,
            key,
            ext: Extensions::of(meta),
        });
        Ok(())
    }

    /// The metadata this side announces: the extensions, and the store's
    /// epoch when it has one.
    pub(super) fn local_metadata(&self) -> PeerMetadata {
        let mut meta = extension::metadata(self.cfg.local_peer.as_str());
        identity_ext::announce(&mut meta, self.store.public_key());
        match self.store.epoch() {
            Ok(Some(epoch)) => {
                meta.extra
                    .insert(EPOCH_KEY.into(), Value::Text(format!("{epoch:016x}")));
            }
            Ok(None) => {}
            // announced without: the peer forgets its records of us at worst
            Err(e) => tracing::warn!(error = %e, "could not read the store's epoch"),
        }
        meta
    }

    /// Forget what is kept for the peer under `key` when its epoch changed.
    fn check_epoch(&mut self, key: &str, meta: Option<&PeerMetadata>) -> Result<(), Error> {
        let announced = meta
            .and_then(|m| m.extra.get(EPOCH_KEY))
            .and_then(|v| match v {
                Value::Text(hex) => u64::from_str_radix(hex, 16).ok(),
                _ => None,
            })
            .unwrap_or(0);
        let known = self.store.peer_cursor(key, EPOCH_CURSOR)?;
        if known == announced {
            return Ok(());
        }
        let forgotten = self.store.forget_peer(key)?;
        if announced != 0 {
            self.store.set_peer_cursor(key, EPOCH_CURSOR, announced)?;
        }
        tracing::info!(peer = %key, from = %format!("{known:016x}"), to = %format!("{announced:016x}"),
            forgotten, "the peer's epoch changed (it was restored from a backup): \
            its sync states and cursors are forgotten, everything is synced again");
        Ok(())
    }
}
