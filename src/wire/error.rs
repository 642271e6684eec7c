//! Errors of [`decode`](super::decode).

use super::DocumentIdError;

/// Why a frame could not be decoded into a [`Message`](super::Message).
///
/// Every variant's text says what was wrong, so it can be sent back to the
/// peer in an `error` message before closing the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame exceeds [`Limits::max_frame_bytes`](super::Limits); nothing
    /// of it was parsed.
    #[error("frame of {size} bytes is larger than the limit of {max} bytes")]
    FrameTooLarge {
        /// Size of the rejected frame.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The input ended in the middle of a CBOR item (includes empty input).
    #[error("truncated CBOR: the frame ends in the middle of a data item")]
    Truncated,
    /// The bytes are not well-formed CBOR.
    #[error("malformed CBOR: {0}")]
    Malformed(String),
    /// Well-formed CBOR that this codec does not accept (simple values other
    /// than booleans, null and undefined; map keys that are not text or
    /// integers).
    #[error("unsupported CBOR: {0}")]
    Unsupported(String),
    /// Bytes remain after the top-level item.
    #[error("{0} unexpected bytes after the message")]
    TrailingBytes(usize),
    /// Arrays, maps and tags nest deeper than allowed.
    #[error("CBOR nesting deeper than {max} levels")]
    TooDeep {
        /// The nesting limit.
        max: usize,
    },
    /// The frame holds more data items than allowed.
    #[error("frame holds more than {max} CBOR data items")]
    TooManyItems {
        /// The item limit.
        max: usize,
    },
    /// The top-level item is not a map.
    #[error("message is a CBOR {0}, expected a map")]
    NotAMap(&'static str),
    /// The map has no `type` key (or it is null).
    #[error("missing field type in message")]
    MissingType,
    /// The `type` value is not a text string.
    #[error("field type must be a text string, got {0}")]
    TypeNotText(&'static str),
    /// A `type` this codec does not know. The caller should answer with an
    /// `error` message.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// A required field is absent (or null/undefined).
    #[error("missing field {field} in {msg_type} message")]
    MissingField {
        /// Wire name of the field, e.g. `documentId`.
        field: &'static str,
        /// The message `type`, e.g. `sync`.
        msg_type: &'static str,
    },
    /// A field is present but has the wrong type or an unusable value.
    #[error("invalid field {field} in {msg_type} message: {reason}")]
    InvalidField {
        /// Wire name of the field.
        field: &'static str,
        /// The message `type`.
        msg_type: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The `documentId` field is not a valid document id.
    #[error("invalid document id in {msg_type} message: {source}")]
    InvalidDocumentId {
        /// The message `type`.
        msg_type: &'static str,
        /// Why the id was rejected.
        #[source]
        source: DocumentIdError,
    },
}

impl From<minicbor::decode::Error> for DecodeError {
    fn from(e: minicbor::decode::Error) -> Self {
        if e.is_end_of_input() {
            DecodeError::Truncated
        } else {
            DecodeError::Malformed(e.to_string())
        }
    }
}
