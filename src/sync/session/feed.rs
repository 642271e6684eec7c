//! The change-feed extension of a session: a server answers
//! `permitsync-feed-request` with the documents of the requester's tenant
//! changed since a cursor; a client syncs the entries whose heads differ from
//! its own.
//!
//! A request with `changes: 1` also gets, inside each entry, the changes the
//! requester lacks, as far as the server knows from its saved sync state with
//! that peer (everything, for a document it never synced with it). The client
//! applies them directly; only a document where that does not bring it to the
//! server's heads (dependencies missing, or changes of its own) costs sync
//! messages. A reconnect after a few documents changed thus moves one feed page.
//!
//! The server does not assume that the client took the changes (the page may
//! be lost with the connection, or not apply): it records the heads as shared
//! only when the client says so in a `permitsync-feed-ack`, which names, by
//! page number and entry index, the entries the page brought to exactly the
//! entry's heads.

use automerge::{Change, ChangeHash};

use super::{sorted_hex, InlineSent, Output, Role, Session};
use crate::error::Error;
use crate::model::EntityId;
use crate::store::{Delta, ReceiveError};
use crate::sync::extension::{self, FeedAck, FeedEntry, FeedPage, FeedRequest};
use crate::sync::storage::SyncStore;
use crate::wire;

/// Inline changes of one entry are left out above this size (the client then
/// syncs that document with sync messages).
const ENTRY_INLINE_BYTES: usize = 64 * 1024;
/// A page with inline changes ends once they pass this size; the rest follows
/// on the next page.
const PAGE_INLINE_BYTES: usize = 1024 * 1024;
/// Unacknowledged pages remembered per connection; the oldest are forgotten
/// (their documents are then not recorded as shared: only a cost).
const PAGES_REMEMBERED: usize = 16;

type Body = std::collections::BTreeMap<String, wire::Value>;

impl<S: SyncStore> Session<S> {
    /// Server side: one page of the feed.
    pub(super) fn on_feed_request(&mut self, body: &Body) -> Result<Output, Error> {
        let Some(req) = extension::parse_feed_request(body) else {
            return Ok(self.fail("malformed permitsync-feed-request".into()));
        };
        let Some(remote) = &self.remote else {
            return Ok(Output::default());
        };
        let peer = remote.peer.clone();
        let limit = req.limit.clamp(1, 10_000) as usize;
        // at most half a frame of inline changes, whatever the budget above
        let budget = PAGE_INLINE_BYTES.min(self.cfg.limits.max_frame_bytes / 2);
        let listed =
            self.store
                .tenant_feed_since(&self.cfg.access.tenant, req.cursor, limit + 1)?;
        let mut has_more = listed.len() > limit;
        let mut entries = Vec::with_capacity(listed.len().min(limit));
        let mut inline_bytes = 0;
        let mut sent = InlineSent::new();
        for (seq, id) in listed.into_iter().take(limit) {
            let mut entry = match self.store.summary(id)? {
                Some(s) => FeedEntry {
                    seq,
                    id,
                    heads: s.heads,
                    changes: None,
                },
                None => continue,
            };
            if req.inline {
                if let Some(Delta { changes, heads }) = self.delta_for_peer(id)? {
                    let size: usize = changes.iter().map(|c| c.raw_bytes().len()).sum();
                    // nothing to carry: the peer holds the heads, or the
                    // shared heads we saved are wrong and it syncs anyway
                    if !changes.is_empty() && size <= ENTRY_INLINE_BYTES {
                        if inline_bytes + size > budget && !entries.is_empty() {
                            has_more = true;
                            break;
                        }
                        inline_bytes += size;
                        // shared only once the client acknowledges them
                        sent.push((entries.len() as u64, id, heads.clone()));
                        entry.heads = heads.iter().map(ChangeHash::to_string).collect();
                        entry.changes = Some(changes);
                    }
                }
            }
            entries.push(entry);
        }
        let next_cursor = entries.last().map(|e| e.seq).unwrap_or(req.cursor);
        let number = (!sent.is_empty()).then(|| {
            let n = self.pages_sent;
            self.pages_sent += 1;
            self.inline_pages.insert(n, sent);
            if self.inline_pages.len() > PAGES_REMEMBERED {
                let oldest = n.saturating_sub(PAGES_REMEMBERED as u64);
                self.inline_pages.retain(|k, _| *k > oldest);
            }
            n
        });
        // the inline changes' attestations go first, so each is judged once
        let mut out = Output::default();
        for e in &entries {
            if let Some(changes) = &e.changes {
                let hashes: Vec<ChangeHash> = changes.iter().map(|c| c.hash()).collect();
                self.attest_sent(e.id, &hashes, false, &mut out)?;
            }
        }
        let page = FeedPage {
            entries,
            next_cursor,
            has_more,
            page: number,
            binary: req.inline,
        };
        out.send
            .push(extension::feed(&self.cfg.local_peer, &peer, &page));
        Ok(out)
    }

    /// The changes the peer lacks of document `id` by our saved sync state
    /// with it, and the heads they lead to.
    fn delta_for_peer(&mut self, id: EntityId) -> Result<Option<Delta>, Error> {
        let known = match self.states.get(&id) {
            Some(state) => state.shared_heads.clone(),
            None => self.stored_shared_heads(id)?,
        };
        match self.store.delta_since(id, &known) {
            Err(Error::UnknownEntity(_)) => Ok(None),
            other => other,
        }
    }

    /// The shared heads of the sync state saved for `id` with the peer,
    /// without keeping the state in this session.
    fn stored_shared_heads(&self, id: EntityId) -> Result<Vec<ChangeHash>, Error> {
        let Some(remote) = &self.remote else {
            return Ok(Vec::new());
        };
        Ok(self
            .store
            .load_sync_state(&remote.key, id)?
            .and_then(|b| automerge::sync::State::decode(&b).ok())
            .map(|s| s.shared_heads)
            .unwrap_or_default())
    }

    /// Server side: the client took the inline changes of these entries of
    /// a page and holds their heads: record them as shared, so the next push
    /// to this peer and the next page skip what it has. Only a page sent in
    /// this connection and not acknowledged yet counts (a repeated or
    /// unasked-for acknowledgement changes nothing).
    pub(super) fn on_feed_ack(&mut self, body: &Body) -> Result<Output, Error> {
        let Some(ack) = extension::parse_feed_ack(body) else {
            return Ok(self.fail("malformed permitsync-feed-ack".into()));
        };
        let Some(sent) = self.inline_pages.remove(&ack.page) else {
            tracing::debug!(
                page = ack.page,
                "a feed acknowledgement for no page sent; ignored"
            );
            return Ok(Output::default());
        };
        for (index, id, heads) in sent {
            if ack.entries.contains(&index) {
                self.set_shared_heads(id, heads)?;
            }
        }
        Ok(Output::default())
    }

    /// Record in the sync state of `id` that both sides hold `heads`.
    fn set_shared_heads(&mut self, id: EntityId, heads: Vec<ChangeHash>) -> Result<(), Error> {
        self.load_state(id)?;
        if let Some(state) = self.states.get_mut(&id) {
            state.shared_heads = heads;
            self.save_state(id);
        }
        Ok(())
    }

    /// Client side: sync what a page lists, applying inline changes first.
    pub(super) fn on_feed(&mut self, body: &Body) -> Result<Output, Error> {
        if self.cfg.role != Role::Client || !self.round.feed_requested {
            // nobody asked: a page must not move cursors or bring changes,
            // and is not even parsed (its changes would be)
            return Ok(self.fail("a permitsync-feed page that was not asked for".into()));
        }
        let Some(page) = extension::parse_feed(body) else {
            return Ok(self.fail("malformed permitsync-feed".into()));
        };
        if self.round.feed_done {
            // a duplicate of a page already taken (the network may repeat
            // frames): nothing to do
            return Ok(Output::default());
        }
        let mut out = Output::default();
        let mut acks = Vec::new();
        let FeedPage {
            entries,
            next_cursor,
            has_more,
            page: number,
            ..
        } = page;
        for (index, mut entry) in entries.into_iter().enumerate() {
            let id = entry.id;
            // the peer changed it: sync (a request when we do not have it yet),
            // unless we already have exactly its heads
            let mine = self.store.summary(id)?;
            if let Some(mine) = &mine {
                if sorted_hex(&mine.heads) == sorted_hex(&entry.heads)
                    || !self.store.visible_to(id, &self.cfg.access.tenant)?
                {
                    continue;
                }
            }
            if let (Some(changes), false) = (entry.changes.take(), self.cfg.access.read_only) {
                match self.apply_inline(&entry, changes, mine.is_none(), &mut out) {
                    Ok(true) => {
                        acks.push(index as u64);
                        continue;
                    }
                    Ok(false) => {}
                    Err(e @ Error::LimitExceeded(_)) => {
                        tracing::warn!(error = %e, "feed page over a limit; closing");
                        out.merge(self.fail(e.to_string()));
                        return Ok(out);
                    }
                    Err(e) => return Err(e),
                }
            }
            // a request only for what we still lack (inline changes may have
            // created the document)
            let have = mine.is_some() || self.store.contains(id)?;
            self.sync_doc(id, !have, &mut out)?;
        }
        self.round.remote_feed = Some(next_cursor);
        if let (Some(remote), Some(page)) = (self.remote.as_ref(), number) {
            if remote.ext.feed_ack && !acks.is_empty() {
                let ack = FeedAck {
                    page,
                    entries: acks,
                };
                out.send.push(extension::feed_ack(
                    &self.cfg.local_peer,
                    &remote.peer,
                    &ack,
                ));
            }
        }
        if has_more {
            if let Some(remote) = &self.remote {
                out.send.push(extension::feed_request(
                    &self.cfg.local_peer,
                    &remote.peer,
                    self.next_feed_request(next_cursor),
                ));
            }
        } else {
            self.round.feed_done = true;
        }
        self.advance_round(&mut out);
        Ok(out)
    }

    /// The feed request a client sends from `cursor`.
    pub(super) fn next_feed_request(&self, cursor: u64) -> FeedRequest {
        FeedRequest {
            cursor,
            limit: self.cfg.feed_page,
            inline: true,
        }
    }

    /// Apply an entry's inline changes; whether that brought the document to
    /// the entry's heads (nothing left to sync). Changes that do not apply
    /// (dependencies missing) change nothing here, and an entry whose changes
    /// did not decode carries none: the document is then synced with sync
    /// messages.
    fn apply_inline(
        &mut self,
        entry: &FeedEntry,
        changes: Vec<Change>,
        new: bool,
        out: &mut Output,
    ) -> Result<bool, Error> {
        let id = entry.id;
        if new && !self.store.claim(id, &self.cfg.access.tenant)? {
            return Ok(false);
        }
        self.take_stashed(id)?;
        let limits = self.receive_limits;
        let taken = match self.store.take_changes(id, changes, &limits) {
            Ok(taken) => taken,
            Err(ReceiveError::Failed(e) | ReceiveError::OverLimit(e)) => return Err(e),
            Err(e) => {
                tracing::debug!(%id, error = %e, "inline feed changes did not apply; syncing instead");
                return Ok(false);
            }
        };
        if taken.heads.is_empty() {
            // a new document the changes did not create (there were none)
            return Ok(false);
        }
        self.took_changes(
            id,
            &taken.new_changes,
            taken.rejections,
            taken.conflicts,
            out,
        )?;
        let heads = taken.heads;
        let mine: Vec<String> = heads.iter().map(ChangeHash::to_string).collect();
        if sorted_hex(&mine) != sorted_hex(&entry.heads) {
            return Ok(false);
        }
        // both sides hold these heads now: the next push skips the document
        self.set_shared_heads(id, heads)?;
        Ok(true)
    }
}
