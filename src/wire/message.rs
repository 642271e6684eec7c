//! The messages of the automerge-repo wire protocol.

use std::collections::BTreeMap;

use super::{DocumentId, PeerId, Value};

/// The only protocol version that exists: `"1"`.
pub const PROTOCOL_V1: &str = "1";

/// Metadata a peer presents in the `join` and `peer` handshake messages.
///
/// On the wire this is the `peerMetadata` map (the README's CDDL calls the
/// key `metadata`; the JavaScript code sends `peerMetadata`; both are read).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PeerMetadata {
    /// `storageId`: the id of the peer's persistent storage, if it has one.
    /// Many peer ids may share one storage id (browser tabs over one
    /// IndexedDB); sync state may be saved per storage id.
    pub storage_id: Option<String>,
    /// `isEphemeral`: true if the peer does not expect to reconnect with
    /// this storage id. Absent on the wire means `false`.
    pub is_ephemeral: bool,
    /// Every other key of the metadata map, kept as sent. permitsync puts
    /// its extension flags here (e.g. `"permitsync": {"feed": 1}`).
    ///
    /// The keys `storageId` and `isEphemeral` are never stored here by the
    /// decoder and are skipped by the encoder.
    pub extra: BTreeMap<String, Value>,
}

/// A wire protocol message (protocol version `"1"`).
///
/// Field names follow the wire keys in snake case (`senderId` is
/// `sender_id`, and so on). The `type` string of each variant is given by
/// [`Message::type_name`].
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `join`: the first message of the initiating peer (the client).
    Join {
        /// `senderId`: the initiating peer.
        sender_id: PeerId,
        /// `peerMetadata`: omitted on the wire when `None`.
        peer_metadata: Option<PeerMetadata>,
        /// `supportedProtocolVersions`. Decoded as empty when the peer did
        /// not send the key (the JavaScript server then assumes `"1"`). When
        /// sending, use `vec![PROTOCOL_V1.into()]`: the JavaScript server
        /// answers an empty list with an `error`.
        supported_protocol_versions: Vec<String>,
    },
    /// `peer`: the receiving peer's (the server's) answer to `join`.
    Peer {
        /// `senderId`: the receiving peer.
        sender_id: PeerId,
        /// `targetId`: the initiating peer.
        target_id: PeerId,
        /// `peerMetadata`: omitted on the wire when `None`.
        peer_metadata: Option<PeerMetadata>,
        /// `selectedProtocolVersion`: `"1"`.
        selected_protocol_version: String,
    },
    /// `leave`: advisory, the sender is about to disconnect.
    Leave {
        /// `senderId`.
        sender_id: PeerId,
    },
    /// `error`: a protocol error; the sender closes the connection.
    ///
    /// The JavaScript server also puts `senderId`/`targetId` in it; they are
    /// ignored when decoding and not sent when encoding.
    Error {
        /// `message`: a human readable description.
        message: String,
    },
    /// `request`: like [`Message::Sync`], but asks for a
    /// [`Message::DocUnavailable`] answer if the target lacks the document.
    Request {
        /// `senderId`.
        sender_id: PeerId,
        /// `targetId`.
        target_id: PeerId,
        /// `documentId`.
        document_id: DocumentId,
        /// `data`: the automerge sync message.
        data: Vec<u8>,
    },
    /// `sync`: an automerge sync message about one document.
    Sync {
        /// `senderId`.
        sender_id: PeerId,
        /// `targetId`.
        target_id: PeerId,
        /// `documentId`.
        document_id: DocumentId,
        /// `data`: the automerge sync message.
        data: Vec<u8>,
    },
    /// `doc-unavailable`: neither the sender nor its peers have the document.
    DocUnavailable {
        /// `senderId`.
        sender_id: PeerId,
        /// `targetId`.
        target_id: PeerId,
        /// `documentId`.
        document_id: DocumentId,
    },
    /// `ephemeral`: an application message that is relayed, never stored.
    Ephemeral {
        /// `senderId`.
        sender_id: PeerId,
        /// `targetId`.
        target_id: PeerId,
        /// `documentId`: the document the message relates to.
        document_id: DocumentId,
        /// `count`: sequence number within the session.
        count: u64,
        /// `sessionId`: random id of the sender's session; with `count` it
        /// lets relays drop messages they have already seen.
        session_id: String,
        /// `data`: the payload (in practice CBOR chosen by the application).
        data: Vec<u8>,
    },
    /// `remote-subscription-change`: change the set of storage ids whose
    /// heads the sender wants to hear about.
    RemoteSubscriptionChange {
        /// `senderId`.
        sender_id: PeerId,
        /// `targetId`.
        target_id: PeerId,
        /// `add`: storage ids to add (absent on the wire means empty).
        add: Vec<String>,
        /// `remove`: storage ids to remove (absent on the wire means empty).
        remove: Vec<String>,
    },
    /// A permitsync extension message (`type` starting with `permitsync-`),
    /// sent only to peers that announced support in their `peerMetadata`.
    Extension {
        /// The wire `type`, e.g. `permitsync-feed-request`.
        type_name: String,
        /// `senderId`.
        sender_id: PeerId,
        /// `targetId`.
        target_id: PeerId,
        /// Every other key of the message.
        body: BTreeMap<String, Value>,
    },
    /// `remote-heads-changed`: the heads some storage id has for a document.
    RemoteHeadsChanged {
        /// `senderId`.
        sender_id: PeerId,
        /// `targetId`.
        target_id: PeerId,
        /// `documentId`.
        document_id: DocumentId,
        /// `newHeads`: storage id to `(heads, timestamp)`, where `heads` are
        /// the change hashes as strings and `timestamp` is milliseconds since
        /// the Unix epoch on the node that first reported them.
        new_heads: BTreeMap<String, (Vec<String>, u64)>,
    },
}

impl Message {
    /// The prefix of permitsync's extension message types.
    pub const EXTENSION_PREFIX: &'static str = "permitsync-";

    /// Every `type` string of the base protocol this codec understands.
    pub const TYPE_NAMES: [&'static str; 10] = [
        "join",
        "peer",
        "leave",
        "error",
        "request",
        "sync",
        "doc-unavailable",
        "ephemeral",
        "remote-subscription-change",
        "remote-heads-changed",
    ];

    /// The wire `type` string of this message.
    pub fn type_name(&self) -> &str {
        match self {
            Message::Extension { type_name, .. } => type_name,
            Message::Join { .. } => "join",
            Message::Peer { .. } => "peer",
            Message::Leave { .. } => "leave",
            Message::Error { .. } => "error",
            Message::Request { .. } => "request",
            Message::Sync { .. } => "sync",
            Message::DocUnavailable { .. } => "doc-unavailable",
            Message::Ephemeral { .. } => "ephemeral",
            Message::RemoteSubscriptionChange { .. } => "remote-subscription-change",
            Message::RemoteHeadsChanged { .. } => "remote-heads-changed",
        }
    }

    /// The `senderId`, for every message type that has one.
    pub fn sender_id(&self) -> Option<&PeerId> {
        match self {
            Message::Error { .. } => None,
            Message::Join { sender_id, .. }
            | Message::Peer { sender_id, .. }
            | Message::Leave { sender_id }
            | Message::Request { sender_id, .. }
            | Message::Sync { sender_id, .. }
            | Message::DocUnavailable { sender_id, .. }
            | Message::Ephemeral { sender_id, .. }
            | Message::RemoteSubscriptionChange { sender_id, .. }
            | Message::RemoteHeadsChanged { sender_id, .. }
            | Message::Extension { sender_id, .. } => Some(sender_id),
        }
    }

    /// The `targetId`, for every message type that has one.
    pub fn target_id(&self) -> Option<&PeerId> {
        match self {
            Message::Join { .. } | Message::Leave { .. } | Message::Error { .. } => None,
            Message::Peer { target_id, .. }
            | Message::Request { target_id, .. }
            | Message::Sync { target_id, .. }
            | Message::DocUnavailable { target_id, .. }
            | Message::Ephemeral { target_id, .. }
            | Message::RemoteSubscriptionChange { target_id, .. }
            | Message::RemoteHeadsChanged { target_id, .. }
            | Message::Extension { target_id, .. } => Some(target_id),
        }
    }

    /// The `documentId`, for every message type that has one.
    pub fn document_id(&self) -> Option<&DocumentId> {
        match self {
            Message::Request { document_id, .. }
            | Message::Sync { document_id, .. }
            | Message::DocUnavailable { document_id, .. }
            | Message::Ephemeral { document_id, .. }
            | Message::RemoteHeadsChanged { document_id, .. } => Some(document_id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let doc = DocumentId::from_bytes([7; 16]);
        let sync = Message::Sync {
            sender_id: "a".into(),
            target_id: "b".into(),
            document_id: doc,
            data: vec![1],
        };
        assert_eq!(sync.type_name(), "sync");
        assert_eq!(sync.sender_id(), Some(&PeerId::from("a")));
        assert_eq!(sync.target_id(), Some(&PeerId::from("b")));
        assert_eq!(sync.document_id(), Some(&doc));
        let err = Message::Error {
            message: "x".into(),
        };
        assert_eq!(err.sender_id(), None);
        assert_eq!(err.target_id(), None);
        assert_eq!(err.document_id(), None);
        assert!(Message::TYPE_NAMES.contains(&err.type_name()));
    }
}
