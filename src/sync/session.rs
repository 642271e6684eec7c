//! One sync connection's protocol logic, sans-IO: frames in, frames and
//! effects out. The caller moves frames over a WebSocket (or an in-memory
//! channel in tests) and tells the session about documents that changed
//! elsewhere. Storage goes through the [`SyncStore`] seam (the sled [`Store`]
//! by default), settled once per burst of frames, so a reply that
//! acknowledges changes leaves only after they are durable.
//!
//! The parts: `handshake.rs` (join/peer), `documents.rs` (one document's
//! sync), `round.rs` (a client's push-then-feed round), `extensions.rs` and
//! `feed.rs` (permitsync's extension messages), `unavailable.rs` (what a
//! connection hears about documents it may not use).

use std::collections::{HashMap, HashSet};

use automerge::sync;

mod documents;
mod extensions;
mod feed;
mod handshake;
mod identity;
mod identity_state;
mod round;
mod unavailable;

use super::blob_fetch::BlobFetch;
use super::extension::Extensions;
use super::storage::SyncStore;
use crate::error::Error;
use crate::model::{Access, EntityId};
use crate::store::{ReceiveLimits, Store};
use crate::wire::{self, DecodeError, DocumentId, Limits, Message, PeerId, PROTOCOL_V1};

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
    /// A newer revocation list was learnt from the peer (tell the other
    /// connections: [`Session::on_identity_changed`]).
    pub identity_changed: bool,
}

impl Output {
    fn merge(&mut self, other: Output) {
        self.send.extend(other.send);
        self.changed.extend(other.changed);
        self.close = self.close.take().or(other.close);
        self.changes_applied += other.changes_applied;
        self.rejected += other.rejected;
        self.conflicts += other.conflicts;
        self.identity_changed |= other.identity_changed;
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

/// Of one page sent: per entry index with inline changes, the document and
/// the heads the entry carried.
type InlineSent = Vec<(u64, EntityId, Vec<automerge::ChangeHash>)>;

/// One connection's sync state machine, over a store `S` (a deferring
/// handle, settled at the end of every burst).
pub struct Session<S: SyncStore = Store> {
    cfg: SessionConfig,
    receive_limits: ReceiveLimits,
    store: S,
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
    /// Fingerprints of the sync states storage holds for this peer (those
    /// loaded or written by this session).
    stored_states: HashMap<EntityId, u64>,
    /// Feed pages with inline changes sent and not acknowledged yet, by
    /// page number: per entry index, the document and the heads it carried
    /// (see `session/feed.rs`).
    inline_pages: HashMap<u64, InlineSent>,
    /// Feed pages with inline changes sent in this connection.
    pages_sent: u64,
    /// The identity extension's state (`session/identity.rs`).
    identity: identity_state::IdentityState,
}

const REMOTE_FEED: &str = "remote_feed";
const LOCAL_PUSHED: &str = "local_pushed";

impl<S: SyncStore> Session<S> {
    /// A new session over `store`.
    pub fn new(cfg: SessionConfig, store: S) -> Session<S> {
        let phase = match cfg.role {
            Role::Server => Phase::AwaitJoin,
            Role::Client => Phase::AwaitPeer,
        };
        Session {
            cfg,
            receive_limits: ReceiveLimits::default(),
            store: store.deferring(),
            phase,
            remote: None,
            states: HashMap::new(),
            pending: HashSet::new(),
            round: Round::default(),
            sent_docs: HashSet::new(),
            wanted: HashSet::new(),
            blobs: BlobFetch::default(),
            dirty_states: HashSet::new(),
            stored_states: HashMap::new(),
            inline_pages: HashMap::new(),
            pages_sent: 0,
            identity: identity_state::IdentityState::default(),
        }
    }

    /// Limit what one sync message from the peer may bring (changes, document
    /// size); a message over a limit closes the connection with an error and
    /// stores nothing.
    pub fn with_receive_limits(mut self, limits: ReceiveLimits) -> Session<S> {
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
                peer_metadata: Some(self.local_metadata()),
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

    /// Run `f` as one burst: its writes do not wait for the disk; then the
    /// sync states it touched are written in one batch and the store (a
    /// deferring handle) is settled once. Only then is the output returned;
    /// if the settle fails, the failure is all that goes out.
    fn burst(&mut self, f: impl FnOnce(&mut Session<S>) -> Output) -> Output {
        let out = f(self);
        let written = self.write_states();
        let settled = self.store.settle();
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

    pub(super) fn storage_failure(&mut self, e: Error) -> Output {
        tracing::error!(error = %e, "storage failed during sync; closing the connection");
        self.fail(format!("the node could not store or read data: {e}"))
    }
}

pub(super) fn entity(doc: DocumentId) -> EntityId {
    EntityId::from(uuid::Uuid::from(doc))
}

pub(super) fn sorted_hex(v: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = v.iter().map(String::as_str).collect();
    v.sort_unstable();
    v
}
