//! permitsync's extension messages on a session: feed requests and pages
//! (see `feed.rs`), rejection notices, and photo blobs.

use std::collections::BTreeMap;

use super::{Output, Session};
use crate::error::Error;
use crate::sync::storage::SyncStore;
use crate::sync::{extension, identity_ext};
use crate::wire;

impl<S: SyncStore> Session<S> {
    pub(super) fn on_extension(
        &mut self,
        kind: &str,
        body: &BTreeMap<String, wire::Value>,
    ) -> Output {
        let result = match kind {
            extension::FEED_REQUEST => self.on_feed_request(body),
            extension::FEED => self.on_feed(body),
            extension::FEED_ACK => self.on_feed_ack(body),
            extension::REJECTED => {
                tracing::warn!(?body, "the peer's view rejected operations of ours");
                Ok(Output::default())
            }
            extension::BLOB_REQUEST => self.on_blob_request(body),
            extension::BLOB => self.on_blob(body),
            identity_ext::IDENTITY => self.on_identity(body),
            identity_ext::ATTEST => self.on_attest(body),
            other => Ok(self.fail(format!("unknown extension message {other}"))),
        };
        result.unwrap_or_else(|e| self.storage_failure(e))
    }

    pub(super) fn on_blob_request(
        &mut self,
        body: &BTreeMap<String, wire::Value>,
    ) -> Result<Output, Error> {
        let Some(request) = extension::parse_blob_request(body) else {
            return Ok(self.fail("malformed permitsync-blob-request".into()));
        };
        let mut out = Output::default();
        if let Some(remote) = &self.remote {
            let ends = (&self.cfg.local_peer, &remote.peer);
            self.blobs.on_request(
                &self.store,
                &self.cfg.access,
                request,
                self.receive_limits.max_blob_bytes,
                ends,
                &mut out.send,
            )?;
        }
        Ok(out)
    }

    pub(super) fn on_blob(
        &mut self,
        body: &BTreeMap<String, wire::Value>,
    ) -> Result<Output, Error> {
        let Some(reply) = extension::parse_blob(body) else {
            return Ok(self.fail("malformed permitsync-blob".into()));
        };
        let max = self.receive_limits.max_blob_bytes;
        let mut out = Output::default();
        if let Some(doc) = self.blobs.on_blob(&self.store, reply, max)? {
            out.changed.push(doc);
        }
        if self.blobs.has_room() {
            self.request_wanted_blobs(&mut out)?;
        }
        Ok(out)
    }
}
