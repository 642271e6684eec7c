//! Codec for the automerge-repo network wire protocol, version `"1"`.
//!
//! This is the protocol of the JavaScript package
//! `@automerge/automerge-repo-network-websocket` (and of Rust peers such as
//! `samod`). Each WebSocket binary message carries one CBOR map with a text
//! `type` key; the other keys are camelCase (`senderId`, `targetId`,
//! `documentId`, `data`, ...).
//!
//! A connection goes through two phases:
//!
//! 1. **Handshake.** The initiating peer (the client) sends `join` with its
//!    `senderId`, its `peerMetadata` (`storageId`, `isEphemeral`) and
//!    `supportedProtocolVersions: ["1"]`. The receiving peer (the server)
//!    answers `peer` with its own id and metadata, the client's id as
//!    `targetId`, and `selectedProtocolVersion: "1"`, or sends `error` and
//!    closes if it cannot agree on a version.
//! 2. **Sync.** Either side sends `request` (begin syncing a document, and
//!    please answer `doc-unavailable` if you lack it), `sync` (an automerge
//!    sync message in `data`), `doc-unavailable`, `ephemeral` (relayed
//!    application data, de-duplicated by `sessionId` and `count`), and the
//!    remote-heads gossip messages `remote-subscription-change` and
//!    `remote-heads-changed`. `leave` announces a disconnect; `error`
//!    reports a protocol error before the sender closes.
//!
//! Document ids travel as bs58check text of 16 UUID bytes (see
//! [`DocumentId`]).
//!
//! The codec is sans-IO: [`decode`] turns one frame into a [`Message`] and
//! [`encode`] does the reverse. The decoder is written for untrusted input:
//! it rejects frames over [`Limits::max_frame_bytes`] before parsing, caps
//! nesting at 32 levels and the number of CBOR items per frame, never sizes
//! an allocation from a length header, and reports every problem as a
//! [`DecodeError`] whose text can be sent back to the peer in an `error`
//! message. Unknown message types are [`DecodeError::UnknownType`].

mod cbor;
mod codec;
mod document_id;
mod error;
mod message;
mod peer_id;
mod value;

#[cfg(test)]
mod codec_golden_tests;
#[cfg(test)]
mod codec_tests;
#[cfg(test)]
mod proptests;

pub use codec::{decode, encode, Limits};
pub use document_id::{DocumentId, DocumentIdError, URL_PREFIX};
pub use error::DecodeError;
pub use message::{Message, PeerMetadata, PROTOCOL_V1};
pub use peer_id::PeerId;
pub use value::Value;
