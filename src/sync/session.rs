//! One sync connection's protocol logic, sans-IO: frames in, frames and
//! effects out. The caller moves frames over a WebSocket (or an in-memory
//! channel in tests) and tells the session about documents that changed
//! elsewhere. Durable storage goes through the [`Store`], so a reply that
//! acknowledges changes is generated only after they are durable.

use std::collections::{HashMap, HashSet};

use automerge::sync::{self, ChunkList};

mod feed;
mod unavailable;

use super::blob_fetch::BlobFetch;
use super::extension::{self, Extensions};
use crate::error::Error;
use crate::model::{Access, EntityId};
use crate::store::{ReceiveLimits, Store, DEFAULT_TENANT};
use crate::wire::{
    self, DecodeError, DocumentId, Limits, Message, PeerId, PeerMetadata, PROTOCOL_V1,
};

/// Which side of the handshake this session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Waits for `join`, answers `peer` (the node that was dialed).
    Server,
    /// Sends `join`, waits for `peer` (the node that dialed).
    Client,
}

/// How a session is set up.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// This node's peer id.
    pub local_peer: PeerId,
    /// Which side of the handshake.
    pub role: Role,
    /// What the remote peer may do here (its token's rights; full for peers we dial).
    pub access: Access,
    /// Frame limits.
    pub limits: Limits,
    /// Most feed entries asked for per page.
    pub feed_page: u64,
}

/// What the caller must do after the session handled an input.
#[derive(Debug, Default)]
pub struct Output {
    /// Messages to send, in order.
    pub send: Vec<Message>,
    /// Documents that got new changes from the peer (tell the other connections).
    pub changed: Vec<EntityId>,
    /// Close the connection (after sending `send`), with the reason.
    pub close: Option<String>,
    /// New changes applied from the peer.
    pub changes_applied: usize,
    /// Operations of the peer's that the view rejected.
    pub rejected: usize,
    /// Documents received with conflicts.
    pub conflicts: usize,
}

impl Output {
    fn merge(&mut self, other: Output) {
        self.send.extend(other.send);
        self.changed.extend(other.changed);
        self.close = self.close.take().or(other.close);
        self.changes_applied += other.changes_applied;
        self.rejected += other.rejected;
        self.conflicts += other.conflicts;
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    AwaitJoin,
    AwaitPeer,
    Ready,
    Closed,
}

struct Remote {
    peer: PeerId,
    /// Key under which sync states and cursors are kept for this peer.
    key: String,
    ext: Extensions,
}

/// Cursors to save once every document of the current round is in sync.
#[derive(Default)]
struct Round {
    remote_feed: Option<u64>,
    local_pushed: Option<u64>,
    feed_requested: bool,
    feed_done: bool,
}

/// One connection's sync state machine.
pub struct Session {
    cfg: SessionConfig,
    receive_limits: ReceiveLimits,
    store: Store,
    phase: Phase,
    remote: Option<Remote>,
    states: HashMap<EntityId, sync::State>,
    pending: HashSet<EntityId>,
    round: Round,
    /// Documents whose sync messages were sent at least once (counted once).
    sent_docs: HashSet<EntityId>,
    /// Documents the peer asked for that this node did not have: sent to the
    /// peer if they arrive later (JavaScript clients rely on this).
    wanted: HashSet<EntityId>,
    /// Photo blobs asked of and for the peer.
    blobs: BlobFetch,
    /// Documents whose sync state changed in the current burst.
    dirty_states: HashSet<EntityId>,
    /// Feed pages with inline changes sent and not acknowledged yet, by
    /// page number: per entry index, the document and the heads it carried
    /// (see `session/feed.rs`).
    inline_pages: HashMap<u64, feed::InlineSent>,
    /// Feed pages with inline changes sent in this connection.
    pages_sent: u64,
}

const REMOTE_FEED: &str = "remote_feed";
const LOCAL_PUSHED: &str = "local_pushed";

impl Session {
    /// A new session over `store`.
    pub fn new(cfg: SessionConfig, store: Store) -> Session {
        let phase = match cfg.role {
            Role::Server => Phase::AwaitJoin,
            Role::Client => Phase::AwaitPeer,
        };
        Session {
            cfg,
            receive_limits: ReceiveLimits::default(),
            store,
            phase,
            remote: None,
            states: HashMap::new(),
            pending: HashSet::new(),
            round: Round::default(),
            sent_docs: HashSet::new(),
            wanted: HashSet::new(),
            blobs: BlobFetch::default(),
            dirty_states: HashSet::new(),
            inline_pages: HashMap::new(),
            pages_sent: 0,
        }
    }

    /// Limit what one sync message from the peer may bring (changes, document
    /// size); a message over a limit closes the connection with an error and
    /// stores nothing.
    pub fn with_receive_limits(mut self, limits: ReceiveLimits) -> Session {
        self.receive_limits = limits;
        self
    }

    /// The remote peer's id, once the handshake is done.
    pub fn remote_peer(&self) -> Option<&PeerId> {
        self.remote.as_ref().map(|r| &r.peer)
    }

    /// The extensions the remote announced.
    pub fn remote_extensions(&self) -> Extensions {
        self.remote.as_ref().map(|r| r.ext).unwrap_or_default()
    }

    /// Whether the handshake is done and the session is open.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Documents with sync messages still to exchange.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Documents this session has sent sync messages for.
    pub fn docs_sent(&self) -> usize {
        self.sent_docs.len()
    }

    /// Whether the round that started with the handshake is finished: every
    /// document it touched is in sync and the feed was read to its end.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Ready && self.pending.is_empty() && self.round.feed_done
    }

    /// What to send first: `join` for a client, nothing for a server.
    pub fn start(&mut self) -> Output {
        let mut out = Output::default();
        if self.cfg.role == Role::Client {
            out.send.push(Message::Join {
                sender_id: self.cfg.local_peer.clone(),
                peer_metadata: Some(extension::metadata(self.cfg.local_peer.as_str())),
                supported_protocol_versions: vec![PROTOCOL_V1.to_string()],
            });
        }
        out
    }

    /// Handle one frame from the peer.
    pub fn on_frame(&mut self, frame: &[u8]) -> Output {
        self.on_frames([frame])
    }

    /// Handle frames that arrived together, in order, with one flush for all
    /// of them: their writes do not wait for the disk one by one; the store
    /// is settled once at the end, before any reply is returned, so every
    /// reply still acknowledges only durable data. After a frame that closes
    /// the session, the rest are ignored.
    pub fn on_frames<F: AsRef<[u8]>>(&mut self, frames: impl IntoIterator<Item = F>) -> Output {
        self.burst(|s| {
            let mut out = Output::default();
            for frame in frames {
                if s.phase == Phase::Closed {
                    break;
                }
                let one = match wire::decode(frame.as_ref(), &s.cfg.limits) {
                    Ok(msg) => s.handle_message(msg),
                    Err(e) => s.protocol_error(&e),
                };
                out.merge(one);
            }
            out
        })
    }

    /// Handle one decoded message from the peer.
    pub fn on_message(&mut self, msg: Message) -> Output {
        self.burst(|s| s.handle_message(msg))
    }

    /// Run `f` as one burst: against a deferring store, then the sync states
    /// it touched are written in one batch and the store is settled once.
    /// Only then is the output returned; if the settle fails, the failure
    /// is all that goes out.
    fn burst(&mut self, f: impl FnOnce(&mut Session) -> Output) -> Output {
        let deferring = self.store.deferring();
        let store = std::mem::replace(&mut self.store, deferring);
        let out = f(self);
        let written = self.write_states();
        let deferring = std::mem::replace(&mut self.store, store);
        let settled = deferring.settle();
        match written.and(settled) {
            Ok(()) => out,
            // nothing may be acknowledged, nor announced to other connections
            Err(e) => self.storage_failure(e),
        }
    }

    fn protocol_error(&mut self, e: &DecodeError) -> Output {
        tracing::warn!(error = %e, "bad frame from peer; closing");
        self.fail(format!("bad frame: {e}"))
    }

    fn fail(&mut self, message: String) -> Output {
        self.phase = Phase::Closed;
        Output {
            send: vec![Message::Error {
                message: message.clone(),
            }],
            close: Some(message),
            ..Default::default()
        }
    }

    fn handle_message(&mut self, msg: Message) -> Output {
        match (&self.phase, msg) {
            (
                Phase::AwaitJoin,
                Message::Join {
                    sender_id,
                    peer_metadata,
                    supported_protocol_versions,
                },
            ) => self.on_join(sender_id, peer_metadata, supported_protocol_versions),
            (
                Phase::AwaitPeer,
                Message::Peer {
                    sender_id,
                    peer_metadata,
                    selected_protocol_version,
                    ..
                },
            ) => self.on_peer(sender_id, peer_metadata, selected_protocol_version),
            (_, Message::Error { message }) => {
                self.phase = Phase::Closed;
                Output {
                    close: Some(format!("peer reported an error: {message}")),
                    ..Default::default()
                }
            }
            (_, Message::Leave { .. }) => {
                self.phase = Phase::Closed;
                Output {
                    close: Some("peer left".into()),
                    ..Default::default()
                }
            }
            (
                Phase::Ready,
                Message::Request {
                    document_id, data, ..
                },
            ) => self.on_sync(document_id, &data, true),
            (
                Phase::Ready,
                Message::Sync {
                    document_id, data, ..
                },
            ) => self.on_sync(document_id, &data, false),
            (Phase::Ready, Message::DocUnavailable { document_id, .. }) => {
                self.pending.remove(&entity(document_id));
                let mut out = Output::default();
                self.advance_round(&mut out);
                out
            }
            (
                Phase::Ready,
                Message::Extension {
                    type_name, body, ..
                },
            ) => self.on_extension(&type_name, &body),
            // relayed application data and heads gossip: not stored, not needed here
            (
                Phase::Ready,
                Message::Ephemeral { .. }
                | Message::RemoteSubscriptionChange { .. }
                | Message::RemoteHeadsChanged { .. },
            ) => Output::default(),
            (phase, other) => {
                let detail = format!("unexpected {} message while {:?}", other.type_name(), phase);
                self.fail(detail)
            }
        }
    }

    fn on_join(
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
                peer_metadata: Some(extension::metadata(self.cfg.local_peer.as_str())),
                selected_protocol_version: PROTOCOL_V1.to_string(),
            }],
            ..Default::default()
        };
        if let Err(e) = self.request_wanted_blobs(&mut out) {
            return self.storage_failure(e);
        }
        out
    }

    /// Ask a peer that fetches blobs for those this node still wants.
    fn request_wanted_blobs(&mut self, out: &mut Output) -> Result<(), Error> {
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

    fn on_peer(&mut self, sender: PeerId, meta: Option<PeerMetadata>, version: String) -> Output {
        if version != PROTOCOL_V1 {
            return self.fail(format!(
                "peer selected unsupported protocol version {version:?}"
            ));
        }
        self.set_remote(sender, meta.as_ref());
        self.phase = Phase::Ready;
        let mut out = Output::default();
        let result = self
            .begin_round(&mut out)
            .and_then(|()| self.request_wanted_blobs(&mut out));
        if let Err(e) = result {
            return self.storage_failure(e);
        }
        out
    }

    fn set_remote(&mut self, peer: PeerId, meta: Option<&PeerMetadata>) {
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

    /// A client's first round: ask for what changed on the peer, push what
    /// changed here.
    fn begin_round(&mut self, out: &mut Output) -> Result<(), Error> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let key = remote.key.clone();
        let tenant = self.cfg.access.tenant.clone();
        // first push what changed here; ask for the peer's feed once that is in
        // sync, so the feed cursor ends up past our own uploads
        self.round.feed_done = !remote.ext.feed;
        // push every local document changed since the last completed round
        let since = if remote.ext.feed {
            self.store.peer_cursor(&key, LOCAL_PUSHED)?
        } else {
            0
        };
        let head = self.store.feed_head();
        let mut cursor = since;
        loop {
            let page = self.store.tenant_feed_since(&tenant, cursor, 1000)?;
            let Some(&(last, _)) = page.last() else { break };
            for (_, id) in page {
                self.push_if_changed(id, out)?;
            }
            cursor = last;
        }
        self.round.local_pushed = Some(head.max(cursor));
        self.advance_round(out);
        Ok(())
    }

    /// Start syncing a local document unless the peer already had its heads
    /// when the last sync with it ended.
    fn push_if_changed(&mut self, id: EntityId, out: &mut Output) -> Result<(), Error> {
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

    fn load_state(&mut self, id: EntityId) -> Result<(), Error> {
        if self.states.contains_key(&id) {
            return Ok(());
        }
        let key = self
            .remote
            .as_ref()
            .map(|r| r.key.clone())
            .unwrap_or_default();
        let mut state = self
            .store
            .load_sync_state(&key, id)?
            .and_then(|b| sync::State::decode(&b).ok())
            .unwrap_or_default();
        state.read_only = self.cfg.access.read_only;
        self.states.insert(id, state);
        Ok(())
    }

    /// Note that the sync state of `id` changed: it is written at the end of
    /// the burst (see [`Session::write_states`]).
    fn save_state(&mut self, id: EntityId) {
        self.dirty_states.insert(id);
    }

    /// Write the sync states changed in this burst, in one batch.
    fn write_states(&mut self) -> Result<(), Error> {
        let Some(remote) = &self.remote else {
            self.dirty_states.clear();
            return Ok(());
        };
        let states: Vec<(EntityId, Vec<u8>)> = self
            .dirty_states
            .drain()
            .filter_map(|id| self.states.get(&id).map(|s| (id, s.encode())))
            .collect();
        if states.is_empty() {
            return Ok(());
        }
        self.store.save_sync_states(&remote.key, states)
    }

    /// Generate and queue the next sync message for `id`, if any.
    fn sync_doc(&mut self, id: EntityId, as_request: bool, out: &mut Output) -> Result<(), Error> {
        self.load_state(id)?;
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let target = remote.peer.clone();
        let state = self.states.entry(id).or_default();
        // what the peer says it needs, it did not keep (e.g. a change it held
        // back for a missing dependency and then lost): send it again
        if let Some(need) = state.their_need.clone() {
            for h in need {
                state.sent_hashes.remove(&h);
            }
        }
        let msg = self.store.generate_sync(id, state)?;
        // in sync once the peer's last word was our exact heads; anything we
        // still send then is only the acknowledgement
        let ours = sorted(self.store.heads(id).unwrap_or_default());
        let theirs = state.their_heads.clone().map(sorted);
        let mut in_sync = !ours.is_empty() && theirs.as_ref() == Some(&ours);
        if !in_sync && state.peer_read_only {
            // a peer that will not take our changes: done once we have all of its
            if let Some(theirs) = &theirs {
                in_sync = self.store.has_changes(id, theirs)?;
            }
        }
        if let Some(m) = msg {
            let data = m.encode();
            let document_id = DocumentId::from(id.uuid());
            let (sender_id, target_id) = (self.cfg.local_peer.clone(), target);
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
        if in_sync {
            self.pending.remove(&id);
        } else {
            self.pending.insert(id);
        }
        self.save_state(id);
        Ok(())
    }

    fn on_sync(&mut self, doc: DocumentId, data: &[u8], is_request: bool) -> Output {
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

    fn handle_sync(
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
        let access = self.cfg.access.clone();
        let exists = self.store.contains(id)?;
        let allowed = match self.store.owner(id)? {
            Some(owner) => owner == access.tenant,
            None if exists => access.tenant == DEFAULT_TENANT,
            None => !access.read_only && !is_request,
        };
        if !allowed {
            // unknown here, or another tenant's: the same answer for both
            let foreign = exists || self.store.owner(id)?.is_some();
            return self.answer_unavailable(id, msg, is_request, foreign);
        }
        if !exists && !msg.changes.is_empty() && !self.store.claim(id, &access.tenant)? {
            return Ok(out);
        }
        if access.read_only {
            msg.changes = ChunkList::from(Vec::<Vec<u8>>::new());
        }
        self.load_state(id)?;
        let ours = sorted(self.store.heads(id).unwrap_or_default());
        let state = self.states.entry(id).or_default();
        let carried_changes = !msg.changes.is_empty();
        // The peer announces heads we hold too, but we never told it so (we
        // got them elsewhere, after our last message to it): automerge takes
        // equal heads as known to both and stays silent, and the peer, whose
        // last word from us is older, waits for ever. Answer with our heads.
        let caught_up_unannounced = !ours.is_empty()
            && sorted(msg.heads.clone()) == ours
            && sorted(state.last_sent_heads.clone()) != ours;
        let received = self
            .store
            .receive_sync_limited(id, state, msg, &self.receive_limits);
        if carried_changes || caught_up_unannounced {
            // A peer that sent changes waits to hear our heads. Automerge stays
            // silent when it believes the peer already knows them, which is
            // wrong after crossed messages: the peer sent the changes because
            // its last word from us was older. Always answer, so the peer's
            // round ends (the answer carries no changes it has).
            state.have_responded = false;
        }
        match received {
            Ok(applied) => self.took_changes(id, &applied.new_changes, &mut out)?,
            Err(Error::UntypedDocument(_)) => {
                // not a permitsync entity (yet): keep nothing, start over with it
                tracing::debug!(%id, "changes without a valid entity type were not stored");
                self.states.insert(id, sync::State::new());
                self.pending.remove(&id);
                return Ok(out);
            }
            Err(e @ Error::LimitExceeded(_)) => {
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
            Err(e @ (Error::Automerge(_) | Error::InvalidInput(_))) => {
                out.merge(self.fail(format!("invalid changes for document {id}: {e}")));
                return Ok(out);
            }
            Err(e) => return Err(e),
        }
        if is_request && !self.store.contains(id)? {
            out.send.push(Message::DocUnavailable {
                sender_id: self.cfg.local_peer.clone(),
                target_id: target,
                document_id: DocumentId::from(id.uuid()),
            });
            return Ok(out);
        }
        self.pending.insert(id);
        self.sync_doc(id, false, &mut out)?;
        self.advance_round(&mut out);
        Ok(out)
    }

    /// Account for changes of the peer's that document `id` took: report
    /// them, tell the peer what the view rejected, fetch missing photos.
    fn took_changes(
        &mut self,
        id: EntityId,
        new_changes: &[automerge::ChangeHash],
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
        let rejections = self.store.rejections_in(id, new_changes)?;
        out.rejected += rejections.len();
        let summary = self.store.summary(id)?;
        if summary.is_some_and(|s| s.conflicts > 0) {
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

    fn on_extension(
        &mut self,
        kind: &str,
        body: &std::collections::BTreeMap<String, wire::Value>,
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
            other => Ok(self.fail(format!("unknown extension message {other}"))),
        };
        result.unwrap_or_else(|e| self.storage_failure(e))
    }

    fn on_blob_request(
        &mut self,
        body: &std::collections::BTreeMap<String, wire::Value>,
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

    fn on_blob(
        &mut self,
        body: &std::collections::BTreeMap<String, wire::Value>,
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

    /// Move the round on once every document it touched is in sync: a client
    /// then asks for the peer's feed (once), and when that is read to its end
    /// too, saves the round's cursors.
    fn advance_round(&mut self, out: &mut Output) {
        if !self.pending.is_empty() || self.phase != Phase::Ready {
            return;
        }
        let Some(remote) = &self.remote else { return };
        let key = remote.key.clone();
        if self.cfg.role == Role::Client && remote.ext.feed && !self.round.feed_requested {
            self.round.feed_requested = true;
            let cursor = match self.store.peer_cursor(&key, REMOTE_FEED) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read a sync cursor");
                    0
                }
            };
            let req = self.next_feed_request(cursor);
            out.send.push(extension::feed_request(
                &self.cfg.local_peer,
                &remote.peer,
                req,
            ));
            return;
        }
        if !self.round.feed_done {
            return;
        }
        for (name, value) in [
            (REMOTE_FEED, self.round.remote_feed.take()),
            (LOCAL_PUSHED, self.round.local_pushed.take()),
        ] {
            if let Some(v) = value {
                if let Err(e) = self.store.set_peer_cursor(&key, name, v) {
                    tracing::warn!(error = %e, "could not save a sync cursor");
                }
            }
        }
    }

    /// A document changed elsewhere (a local edit, another peer): sync it with
    /// this peer if the peer is following it or may see it.
    pub fn on_doc_changed(&mut self, id: EntityId) -> Output {
        self.burst(|s| s.doc_changed(id))
    }

    fn doc_changed(&mut self, id: EntityId) -> Output {
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

    fn storage_failure(&mut self, e: Error) -> Output {
        tracing::error!(error = %e, "storage failed during sync; closing the connection");
        self.fail(format!("the node could not store or read data: {e}"))
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

fn entity(doc: DocumentId) -> EntityId {
    EntityId::from(uuid::Uuid::from(doc))
}

fn sorted_hex(v: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = v.iter().map(String::as_str).collect();
    v.sort_unstable();
    v
}

fn sorted(mut v: Vec<automerge::ChangeHash>) -> Vec<automerge::ChangeHash> {
    v.sort();
    v
}
