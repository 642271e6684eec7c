//! Fetching photo blobs over a sync connection (the `permitsync-blob*`
//! extension messages). A document that arrives referring to photos its
//! tenant has no copy of here makes the node ask the peer that sent it; a
//! peer that asks for a blob this node lacks is answered `missing` and
//! served as soon as the blob arrives here (from another connection or an
//! upload).
//!
//! What a peer can make a node do is bounded: a blob is served only to a
//! tenant that may read it, for a document that tenant may see and that
//! refers to it; at most [`MAX_IN_FLIGHT`] requests are outstanding per
//! connection and at most [`MAX_WAITING`] of the peer's requests wait for a
//! blob; a blob is accepted only when asked for (and then for the document it
//! was asked for), with the right hash and within the size limit. A wrong
//! blob is dropped and not asked of that peer again on the connection; the
//! connection stays up.

use std::collections::{HashMap, HashSet};

use super::extension::{self, BlobReply};
use super::storage::SyncStore;
use crate::error::{Error, Result};
use crate::model::{Access, EntityId};
use crate::store::Sha256Hash;
use crate::wire::{Message, PeerId};

/// Most blob requests outstanding on one connection.
pub(crate) const MAX_IN_FLIGHT: usize = 32;
/// Most of the peer's requests kept waiting for a blob this node lacks.
pub(crate) const MAX_WAITING: usize = 64;

/// One connection's blob traffic.
#[derive(Default)]
pub(crate) struct BlobFetch {
    /// Blobs asked of the peer and not received yet, with the document each
    /// was asked for.
    requested: HashMap<Sha256Hash, EntityId>,
    /// Blobs the peer sent wrong (hash, size): not asked of it again.
    refused: HashSet<Sha256Hash>,
    /// Blobs the peer asked for that this node lacked, with their document.
    waiting: HashMap<Sha256Hash, EntityId>,
}

/// The two peer ids of a connection (ours first).
pub(crate) type Ends<'a> = (&'a PeerId, &'a PeerId);

impl BlobFetch {
    fn ask(&mut self, doc: EntityId, sha: Sha256Hash, ends: Ends<'_>, out: &mut Vec<Message>) {
        if self.requested.len() >= MAX_IN_FLIGHT
            || self.refused.contains(&sha)
            || self.requested.contains_key(&sha)
        {
            return;
        }
        self.requested.insert(sha, doc);
        out.push(extension::blob_request(ends.0, ends.1, doc, &sha));
    }

    /// Ask the peer for the photos of `doc` its tenant lacks here.
    pub(crate) fn request_missing(
        &mut self,
        store: &impl SyncStore,
        doc: EntityId,
        ends: Ends<'_>,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        for sha in store.missing_blobs(doc)? {
            self.ask(doc, sha, ends, out);
        }
        Ok(())
    }

    /// Ask the peer for blobs the connection's tenant still wants (from
    /// earlier connections, or beyond the in-flight limit).
    pub(crate) fn request_wanted(
        &mut self,
        store: &impl SyncStore,
        access: &Access,
        ends: Ends<'_>,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        let mut after = None;
        while self.requested.len() < MAX_IN_FLIGHT {
            let page = store.wanted_blobs(&access.tenant, after.as_ref(), MAX_IN_FLIGHT)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(*last);
            for (sha, doc) in page {
                if !self.requested.contains_key(&sha) && !self.refused.contains(&sha) {
                    self.ask(doc, sha, ends, out);
                }
            }
        }
        Ok(())
    }

    /// The peer asks for blob `sha` of document `doc`. `max_bytes` is this
    /// node's blob limit (a blob over it is not sent: it may not fit a frame).
    pub(crate) fn on_request(
        &mut self,
        store: &impl SyncStore,
        access: &Access,
        (doc, sha): (EntityId, Sha256Hash),
        max_bytes: usize,
        (me, peer): Ends<'_>,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        let referenced = store.contains(doc)?
            && store.visible_to(doc, &access.tenant)?
            && store.photo_blobs(doc)?.contains(&sha);
        let content = if referenced {
            store
                .blob_for(&sha, &access.tenant)?
                .filter(|(bytes, _)| bytes.len() <= max_bytes)
        } else {
            None
        };
        if referenced && content.is_none() && self.waiting.len() < MAX_WAITING {
            // noted as wanted here too; sent to the peer once it arrives
            store.missing_blobs(doc)?;
            self.waiting.insert(sha, doc);
        }
        // an unknown or foreign document answers like a missing blob
        out.push(extension::blob(me, peer, doc, &sha, content));
        Ok(())
    }

    /// The peer sends a blob. Returns the document it belongs to when it was
    /// stored (so other connections waiting for it are woken).
    pub(crate) fn on_blob(
        &mut self,
        store: &impl SyncStore,
        reply: BlobReply,
        max_bytes: usize,
    ) -> Result<Option<EntityId>> {
        // the peer's media type is not trusted: the store keeps the type the
        // bytes show, and refuses bytes that are not a photo
        let Some((data, _claimed_type)) = reply.content else {
            // the peer lacks it for now and sends it once it has it
            return Ok(None);
        };
        let Some(doc) = self.requested.remove(&reply.sha) else {
            tracing::warn!(sha = %hex::encode(reply.sha), "ignored a blob nobody asked for");
            return Ok(None);
        };
        match store.receive_blob(doc, &reply.sha, &data, max_bytes) {
            Ok(_) => {
                tracing::debug!(%doc, sha = %hex::encode(reply.sha), bytes = data.len(), "blob received");
                Ok(Some(doc))
            }
            Err(e @ (Error::InvalidInput(_) | Error::LimitExceeded(_))) => {
                tracing::warn!(%doc, sha = %hex::encode(reply.sha), error = %e, "refused a blob from the peer");
                self.refused.insert(reply.sha);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Document `doc` changed here (or one of its blobs arrived): serve the
    /// blobs the peer waits for that are here now.
    pub(crate) fn on_doc_changed(
        &mut self,
        store: &impl SyncStore,
        access: &Access,
        doc: EntityId,
        (me, peer): Ends<'_>,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        let ready: Vec<Sha256Hash> = self
            .waiting
            .iter()
            .filter(|(_, d)| **d == doc)
            .map(|(sha, _)| *sha)
            .collect();
        for sha in ready {
            if let Some(content) = store.blob_for(&sha, &access.tenant)? {
                out.push(extension::blob(me, peer, doc, &sha, Some(content)));
                self.waiting.remove(&sha);
            }
        }
        Ok(())
    }

    /// Whether requests can be sent (room under the in-flight limit).
    pub(crate) fn has_room(&self) -> bool {
        self.requested.len() < MAX_IN_FLIGHT
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sha2::{Digest, Sha256};

    use super::*;
    use crate::store::{MemBackend, Store, StoreOptions};
    use crate::wire::Message;
    use crate::write::{Edit, NewPermit, NewPhoto};

    fn store() -> Store {
        Store::with_backend(Arc::new(MemBackend::default()), StoreOptions::default())
            .expect("store")
    }

    fn access(tenant: &str) -> Access {
        Access {
            tenant: tenant.into(),
            device: "d".into(),
            read_only: false,
            roles: None,
            person: None,
        }
    }

    /// A permit of `tenant` with a photo of `bytes`.
    fn permit_with_photo(store: &Store, tenant: &str, bytes: &[u8]) -> (EntityId, Sha256Hash) {
        let sha: Sha256Hash = Sha256::digest(bytes).into();
        let id = EntityId::new_random();
        assert!(store.claim(id, tenant).expect("claim"));
        store
            .create_permit(NewPermit {
                id: Some(id),
                title: "p".into(),
                ..Default::default()
            })
            .expect("permit");
        store
            .edit(
                id,
                Edit::AddPhoto(NewPhoto {
                    sha256: hex::encode(sha),
                    mime: "image/png".into(),
                    ..Default::default()
                }),
            )
            .expect("photo");
        (id, sha)
    }

    fn reply(msg: &Message) -> BlobReply {
        let Message::Extension { body, .. } = msg else {
            panic!("not an extension: {msg:?}")
        };
        extension::parse_blob(body).expect("a blob reply")
    }

    #[test]
    fn a_known_hash_does_not_open_another_tenants_blob() {
        let s = store();
        let secret = [&[0xFF, 0xD8, 0xFF][..], b"acme's photo"].concat();
        let (_, sha) = permit_with_photo(&s, "acme", &secret);
        s.put_blob(&sha, &secret, "acme", 1 << 20).expect("put");
        // globex refers to the same hash from its own permit
        let (globex_doc, _) = permit_with_photo(&s, "globex", &secret);
        let (a, b) = (PeerId::new("a"), PeerId::new("b"));
        let mut fetch = BlobFetch::default();
        let mut out = Vec::new();
        fetch
            .on_request(
                &s,
                &access("globex"),
                (globex_doc, sha),
                1 << 20,
                (&a, &b),
                &mut out,
            )
            .expect("request");
        assert!(reply(&out[0]).content.is_none(), "globex got acme's bytes");
        // it is wanted for globex instead: fetched from globex's own device
        assert_eq!(s.missing_blobs(globex_doc).expect("missing"), vec![sha]);
    }

    #[test]
    fn only_requested_blobs_with_the_right_hash_are_stored() {
        let s = store();
        let bytes = b"\x89PNG\r\n\x1a\nphoto".to_vec();
        let (doc, sha) = permit_with_photo(&s, "acme", &bytes);
        let (a, b) = (PeerId::new("a"), PeerId::new("b"));
        let mut fetch = BlobFetch::default();
        let blob = |data: &[u8]| BlobReply {
            doc,
            sha,
            content: Some((data.to_vec(), "image/png".into())),
        };
        // unsolicited: ignored
        assert_eq!(fetch.on_blob(&s, blob(&bytes), 1 << 20).expect("ok"), None);
        assert!(!s.has_blob(&sha).expect("has"));
        // asked for, but the bytes are wrong: dropped, not asked again
        let mut out = Vec::new();
        fetch
            .request_missing(&s, doc, (&a, &b), &mut out)
            .expect("ask");
        assert_eq!(out.len(), 1);
        assert_eq!(
            fetch.on_blob(&s, blob(b"forged"), 1 << 20).expect("ok"),
            None
        );
        assert!(!s.has_blob(&sha).expect("has"));
        out.clear();
        fetch
            .request_missing(&s, doc, (&a, &b), &mut out)
            .expect("ask");
        assert!(out.is_empty(), "a refused blob is not asked again: {out:?}");
        // from a fresh connection, the right bytes are stored for the document's tenant
        let mut fresh = BlobFetch::default();
        fresh
            .request_missing(&s, doc, (&a, &b), &mut out)
            .expect("ask");
        assert_eq!(
            fresh.on_blob(&s, blob(&bytes), 1 << 20).expect("ok"),
            Some(doc)
        );
        assert!(s.blob_visible_to(&sha, "acme").expect("visible"));
        assert!(s.missing_blobs(doc).expect("missing").is_empty());
    }

    #[test]
    fn a_peer_cannot_deliver_a_page_as_a_photo() {
        let s = store();
        let page = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>".to_vec();
        let (doc, sha) = permit_with_photo(&s, "acme", &page);
        let (a, b) = (PeerId::new("a"), PeerId::new("b"));
        let mut fetch = BlobFetch::default();
        let mut out = Vec::new();
        fetch
            .request_missing(&s, doc, (&a, &b), &mut out)
            .expect("ask");
        let reply = BlobReply {
            doc,
            sha,
            content: Some((page.clone(), "image/png".into())),
        };
        // the hash is right, the claimed type is a photo's: the bytes decide
        assert_eq!(fetch.on_blob(&s, reply, 1 << 20).expect("ok"), None);
        assert!(!s.has_blob(&sha).expect("has"));
    }

    #[test]
    fn requests_in_flight_are_bounded() {
        let s = store();
        let (a, b) = (PeerId::new("a"), PeerId::new("b"));
        let id = EntityId::new_random();
        s.create_permit(NewPermit {
            id: Some(id),
            title: "many photos".into(),
            ..Default::default()
        })
        .expect("permit");
        for i in 0..(MAX_IN_FLIGHT + 10) {
            let sha: Sha256Hash = Sha256::digest(i.to_le_bytes()).into();
            s.edit(
                id,
                Edit::AddPhoto(NewPhoto {
                    sha256: hex::encode(sha),
                    ..Default::default()
                }),
            )
            .expect("photo");
        }
        let mut fetch = BlobFetch::default();
        let mut out = Vec::new();
        fetch
            .request_missing(&s, id, (&a, &b), &mut out)
            .expect("ask");
        assert_eq!(out.len(), MAX_IN_FLIGHT);
        // the rest stay wanted, asked for as answers come in
        assert_eq!(
            s.wanted_blobs(crate::store::DEFAULT_TENANT, None, 1000)
                .expect("wanted")
                .len(),
            MAX_IN_FLIGHT + 10
        );
    }
}
