//! Fetching photo blobs over a sync connection (the `permitsync-blob*`
//! extension messages). A document that arrives referring to photos this
//! node lacks makes it ask the peer that sent it; a peer that asks for a blob
//! this node lacks is answered `missing` and served as soon as the blob
//! arrives here (from another connection or an upload). A blob is served
//! only for a document the asking peer's tenant may see and that refers to
//! it, and accepted only when asked for, with the right hash and size.

use std::collections::{HashMap, HashSet};

use super::extension::{self, BlobReply};
use crate::error::{Error, Result};
use crate::model::EntityId;
use crate::node::Access;
use crate::store::{Sha256Hash, Store};
use crate::wire::{Message, PeerId};

/// Most wanted blobs asked for when a connection starts.
const WANTED_AT_START: usize = 256;

/// One connection's blob traffic.
#[derive(Default)]
pub(crate) struct BlobFetch {
    /// Blobs asked of the peer and not received yet.
    requested: HashSet<Sha256Hash>,
    /// Blobs the peer asked for that this node lacked, by document.
    waiting: HashMap<EntityId, HashSet<Sha256Hash>>,
}

/// The two peer ids of a connection (ours first).
pub(crate) type Ends<'a> = (&'a PeerId, &'a PeerId);

impl BlobFetch {
    /// Ask the peer for the photos of `doc` this node lacks.
    pub(crate) fn request_missing(
        &mut self,
        store: &Store,
        doc: EntityId,
        (me, peer): Ends<'_>,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        for sha in store.missing_blobs(doc)? {
            if self.requested.insert(sha) {
                out.push(extension::blob_request(me, peer, doc, &sha));
            }
        }
        Ok(())
    }

    /// Ask the peer for blobs this node has wanted since earlier connections.
    pub(crate) fn request_wanted(
        &mut self,
        store: &Store,
        access: &Access,
        (me, peer): Ends<'_>,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        for (sha, doc) in store.wanted_blobs(WANTED_AT_START)? {
            if store.visible_to(doc, &access.tenant)? && self.requested.insert(sha) {
                out.push(extension::blob_request(me, peer, doc, &sha));
            }
        }
        Ok(())
    }

    /// The peer asks for blob `sha` of document `doc`.
    pub(crate) fn on_request(
        &mut self,
        store: &Store,
        access: &Access,
        (doc, sha): (EntityId, Sha256Hash),
        (me, peer): Ends<'_>,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        let referenced = store.contains(doc)?
            && store.visible_to(doc, &access.tenant)?
            && store.photo_blobs(doc)?.contains(&sha);
        let content = if referenced { store.blob(&sha)? } else { None };
        if referenced && content.is_none() {
            // note it as wanted here too, and serve it once it arrives
            store.missing_blobs(doc)?;
            self.waiting.entry(doc).or_default().insert(sha);
        }
        // an unknown or foreign document answers like a missing blob
        out.push(extension::blob(me, peer, doc, &sha, content));
        Ok(())
    }

    /// The peer sends a blob. Returns the document it belongs to when the
    /// blob is new here (so other connections waiting for it are woken).
    pub(crate) fn on_blob(
        &mut self,
        store: &Store,
        reply: BlobReply,
        max_bytes: usize,
    ) -> Result<Option<EntityId>> {
        let Some((data, mime)) = reply.content else {
            return Ok(None); // the peer lacks it for now and sends it later
        };
        if !self.requested.remove(&reply.sha) {
            tracing::warn!(sha = %hex::encode(reply.sha), "ignored a blob nobody asked for");
            return Ok(None);
        }
        store.receive_blob(reply.doc, &reply.sha, &data, &mime, max_bytes)?;
        tracing::debug!(doc = %reply.doc, sha = %hex::encode(reply.sha), bytes = data.len(), "blob received");
        Ok(Some(reply.doc))
    }

    /// Document `doc` changed here (or one of its blobs arrived): serve the
    /// blobs the peer waits for that are here now.
    pub(crate) fn on_doc_changed(
        &mut self,
        store: &Store,
        doc: EntityId,
        (me, peer): Ends<'_>,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        let Some(waiting) = self.waiting.get_mut(&doc) else {
            return Ok(());
        };
        let mut served = Vec::new();
        for sha in waiting.iter() {
            if let Some(content) = store.blob(sha)? {
                out.push(extension::blob(me, peer, doc, sha, Some(content)));
                served.push(*sha);
            }
        }
        for sha in served {
            waiting.remove(&sha);
        }
        if waiting.is_empty() {
            self.waiting.remove(&doc);
        }
        Ok(())
    }
}

/// Whether an error of a blob from the peer is the peer's fault (a wrong
/// hash, too large): the connection is closed with it.
pub(crate) fn is_peer_fault(e: &Error) -> bool {
    matches!(e, Error::InvalidInput(_) | Error::LimitExceeded(_))
}
