//! [`decode`] and [`encode`]: frames to [`Message`]s and back.

use std::collections::BTreeMap;

use super::cbor::{self, Writer};
use super::{DecodeError, DocumentId, Message, PeerId, PeerMetadata, Value};

/// Size limits applied by [`decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted, in bytes. Larger frames are rejected with
    /// [`DecodeError::FrameTooLarge`] before any parsing. Default: 8 MiB.
    pub max_frame_bytes: usize,
}

impl Limits {
    /// The default frame limit: 8 MiB.
    pub const DEFAULT_MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: Self::DEFAULT_MAX_FRAME_BYTES,
        }
    }
}

/// Longest piece of peer-supplied text quoted back in an error.
const MAX_QUOTED_CHARS: usize = 64;

/// 2^64 as a float: the first integral `f64` that no longer fits a `u64`.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// Decodes one frame (one WebSocket binary message) into a [`Message`].
///
/// Tolerates what the JavaScript implementation sends: integers encoded as
/// floats, `undefined` or `null` for absent optional fields, a `documentId`
/// as bs58check text or as 16 raw bytes, `peerMetadata` or `metadata`,
/// `data` wrapped in a typed-array tag, map keys in any order, unknown keys.
/// Never panics; every failure is a [`DecodeError`]. An unknown `type` gives
/// [`DecodeError::UnknownType`] (its text is cut to 64 characters).
///
/// # Errors
///
/// Any [`DecodeError`]: the frame is too large, is not well-formed CBOR,
/// exceeds the nesting or item limits, is not a map, or lacks a field (or
/// has one of the wrong type) that its `type` requires.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Message, DecodeError> {
    if bytes.len() > limits.max_frame_bytes {
        return Err(DecodeError::FrameTooLarge {
            size: bytes.len(),
            max: limits.max_frame_bytes,
        });
    }
    let mut map = match cbor::parse(bytes)? {
        Value::Map(map) => map,
        other => return Err(DecodeError::NotAMap(other.kind())),
    };
    let type_name = match map.remove("type") {
        None | Some(Value::Null) => return Err(DecodeError::MissingType),
        Some(Value::Text(t)) => t,
        Some(other) => return Err(DecodeError::TypeNotText(other.kind())),
    };
    if type_name.starts_with(Message::EXTENSION_PREFIX) && type_name.len() <= MAX_QUOTED_CHARS {
        let mut f = Fields {
            map,
            msg_type: "extension",
        };
        let sender_id = f.peer_id("senderId")?;
        let target_id = f.peer_id("targetId")?;
        return Ok(Message::Extension {
            type_name,
            sender_id,
            target_id,
            body: f.map,
        });
    }
    let Some(msg_type) = Message::TYPE_NAMES
        .iter()
        .copied()
        .find(|name| *name == type_name)
    else {
        return Err(DecodeError::UnknownType(quote(&type_name)));
    };
    let mut f = Fields { map, msg_type };
    let message = match msg_type {
        "join" => Message::Join {
            sender_id: f.peer_id("senderId")?,
            peer_metadata: f.peer_metadata()?,
            supported_protocol_versions: f.text_list("supportedProtocolVersions", true)?,
        },
        "peer" => Message::Peer {
            sender_id: f.peer_id("senderId")?,
            target_id: f.peer_id("targetId")?,
            peer_metadata: f.peer_metadata()?,
            selected_protocol_version: f.text("selectedProtocolVersion")?,
        },
        "leave" => Message::Leave {
            sender_id: f.peer_id("senderId")?,
        },
        "error" => Message::Error {
            message: f.text("message")?,
        },
        "request" => Message::Request {
            sender_id: f.peer_id("senderId")?,
            target_id: f.peer_id("targetId")?,
            document_id: f.document_id()?,
            data: f.bytes("data")?,
        },
        "sync" => Message::Sync {
            sender_id: f.peer_id("senderId")?,
            target_id: f.peer_id("targetId")?,
            document_id: f.document_id()?,
            data: f.bytes("data")?,
        },
        "doc-unavailable" => Message::DocUnavailable {
            sender_id: f.peer_id("senderId")?,
            target_id: f.peer_id("targetId")?,
            document_id: f.document_id()?,
        },
        "ephemeral" => Message::Ephemeral {
            sender_id: f.peer_id("senderId")?,
            target_id: f.peer_id("targetId")?,
            document_id: f.document_id()?,
            count: f.uint("count")?,
            session_id: f.text("sessionId")?,
            data: f.bytes("data")?,
        },
        "remote-subscription-change" => Message::RemoteSubscriptionChange {
            sender_id: f.peer_id("senderId")?,
            target_id: f.peer_id("targetId")?,
            add: f.text_list("add", false)?,
            remove: f.text_list("remove", false)?,
        },
        "remote-heads-changed" => Message::RemoteHeadsChanged {
            sender_id: f.peer_id("senderId")?,
            target_id: f.peer_id("targetId")?,
            document_id: f.document_id()?,
            new_heads: f.new_heads()?,
        },
        _ => return Err(DecodeError::UnknownType(quote(&type_name))),
    };
    Ok(message)
}

/// Encodes a [`Message`] as one frame, the way the JavaScript client and
/// server expect it: a definite-length CBOR map with camelCase text keys,
/// `type` first, `documentId` as bs58check text, `data` as a byte string,
/// and counts/timestamps as JavaScript-safe numbers (integers up to 32 bits,
/// 64-bit floats up to 2^53). `None` metadata is left out.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut w = Writer::default();
    match msg {
        Message::Join {
            sender_id,
            peer_metadata,
            supported_protocol_versions,
        } => {
            w.map(3 + usize::from(peer_metadata.is_some()));
            w.entry("type", msg.type_name());
            w.entry("senderId", sender_id.as_str());
            w.text("supportedProtocolVersions");
            w.text_array(supported_protocol_versions);
            write_metadata(&mut w, peer_metadata.as_ref());
        }
        Message::Peer {
            sender_id,
            target_id,
            peer_metadata,
            selected_protocol_version,
        } => {
            w.map(4 + usize::from(peer_metadata.is_some()));
            w.entry("type", msg.type_name());
            w.entry("senderId", sender_id.as_str());
            w.entry("targetId", target_id.as_str());
            w.entry("selectedProtocolVersion", selected_protocol_version);
            write_metadata(&mut w, peer_metadata.as_ref());
        }
        Message::Leave { sender_id } => {
            w.map(2);
            w.entry("type", msg.type_name());
            w.entry("senderId", sender_id.as_str());
        }
        Message::Error { message } => {
            w.map(2);
            w.entry("type", msg.type_name());
            w.entry("message", message);
        }
        Message::Request {
            sender_id,
            target_id,
            document_id,
            data,
        }
        | Message::Sync {
            sender_id,
            target_id,
            document_id,
            data,
        } => {
            w.map(5);
            write_routing(&mut w, msg.type_name(), sender_id, target_id);
            w.entry("documentId", &document_id.to_string());
            w.text("data");
            w.bytes(data);
        }
        Message::DocUnavailable {
            sender_id,
            target_id,
            document_id,
        } => {
            w.map(4);
            write_routing(&mut w, msg.type_name(), sender_id, target_id);
            w.entry("documentId", &document_id.to_string());
        }
        Message::Ephemeral {
            sender_id,
            target_id,
            document_id,
            count,
            session_id,
            data,
        } => {
            w.map(7);
            write_routing(&mut w, msg.type_name(), sender_id, target_id);
            w.entry("documentId", &document_id.to_string());
            w.text("count");
            w.js_number(*count);
            w.entry("sessionId", session_id);
            w.text("data");
            w.bytes(data);
        }
        Message::RemoteSubscriptionChange {
            sender_id,
            target_id,
            add,
            remove,
        } => {
            w.map(5);
            write_routing(&mut w, msg.type_name(), sender_id, target_id);
            w.text("add");
            w.text_array(add);
            w.text("remove");
            w.text_array(remove);
        }
        Message::RemoteHeadsChanged {
            sender_id,
            target_id,
            document_id,
            new_heads,
        } => {
            w.map(5);
            write_routing(&mut w, msg.type_name(), sender_id, target_id);
            w.entry("documentId", &document_id.to_string());
            w.text("newHeads");
            w.map(new_heads.len());
            for (storage_id, (heads, timestamp)) in new_heads {
                w.text(storage_id);
                w.map(2);
                w.text("heads");
                w.text_array(heads);
                w.text("timestamp");
                w.js_number(*timestamp);
            }
        }
        Message::Extension {
            sender_id,
            target_id,
            body,
            ..
        } => {
            let own = |k: &String| matches!(k.as_str(), "type" | "senderId" | "targetId");
            w.map(3 + body.keys().filter(|k| !own(k)).count());
            write_routing(&mut w, msg.type_name(), sender_id, target_id);
            for (k, v) in body.iter().filter(|(k, _)| !own(k)) {
                w.text(k);
                w.value(v);
            }
        }
    }
    w.into_bytes()
}

fn write_routing(w: &mut Writer, type_name: &str, sender_id: &PeerId, target_id: &PeerId) {
    w.entry("type", type_name);
    w.entry("senderId", sender_id.as_str());
    w.entry("targetId", target_id.as_str());
}

/// Keys of `peerMetadata` that have their own [`PeerMetadata`] fields.
const RESERVED_METADATA_KEYS: [&str; 2] = ["storageId", "isEphemeral"];

fn write_metadata(w: &mut Writer, meta: Option<&PeerMetadata>) {
    let Some(meta) = meta else { return };
    let extra = || {
        meta.extra
            .iter()
            .filter(|(k, _)| !RESERVED_METADATA_KEYS.contains(&k.as_str()))
    };
    w.text("peerMetadata");
    w.map(1 + usize::from(meta.storage_id.is_some()) + extra().count());
    if let Some(storage_id) = &meta.storage_id {
        w.entry("storageId", storage_id);
    }
    w.text("isEphemeral");
    w.bool(meta.is_ephemeral);
    for (key, value) in extra() {
        w.text(key);
        w.value(value);
    }
}

/// Cuts peer-supplied text to a length fit for an error message.
fn quote(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

/// Reads a count or timestamp: a non-negative integer, or a whole float
/// (cbor-x sends integers beyond 32 bits as 64-bit floats).
fn as_u64(value: &Value) -> Result<u64, String> {
    match value {
        Value::Int(i) => {
            u64::try_from(*i).map_err(|_| format!("{i} is not a non-negative 64-bit integer"))
        }
        Value::Float(f) if f.fract() == 0.0 && (0.0..TWO_POW_64).contains(f) => Ok(*f as u64),
        Value::Float(f) => Err(format!("{f} is not a non-negative whole number")),
        other => Err(format!("expected a number, got {}", other.kind())),
    }
}

/// The top-level map of a message whose `type` is known.
struct Fields {
    map: BTreeMap<String, Value>,
    msg_type: &'static str,
}

impl Fields {
    fn missing(&self, field: &'static str) -> DecodeError {
        DecodeError::MissingField {
            field,
            msg_type: self.msg_type,
        }
    }

    fn invalid(&self, field: &'static str, reason: impl Into<String>) -> DecodeError {
        DecodeError::InvalidField {
            field,
            msg_type: self.msg_type,
            reason: reason.into(),
        }
    }

    fn wrong_type(&self, field: &'static str, expected: &str, got: &Value) -> DecodeError {
        self.invalid(field, format!("expected {expected}, got {}", got.kind()))
    }

    /// Removes a field; `null` (and `undefined`) count as absent.
    fn take(&mut self, field: &str) -> Option<Value> {
        match self.map.remove(field) {
            Some(Value::Null) | None => None,
            some => some,
        }
    }

    fn required(&mut self, field: &'static str) -> Result<Value, DecodeError> {
        self.take(field).ok_or_else(|| self.missing(field))
    }

    fn text(&mut self, field: &'static str) -> Result<String, DecodeError> {
        match self.required(field)? {
            Value::Text(s) => Ok(s),
            other => Err(self.wrong_type(field, "a text string", &other)),
        }
    }

    fn peer_id(&mut self, field: &'static str) -> Result<PeerId, DecodeError> {
        self.text(field).map(PeerId)
    }

    fn bytes(&mut self, field: &'static str) -> Result<Vec<u8>, DecodeError> {
        match self.required(field)? {
            Value::Bytes(b) => Ok(b),
            other => Err(self.wrong_type(field, "a byte string", &other)),
        }
    }

    fn uint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let value = self.required(field)?;
        as_u64(&value).map_err(|reason| self.invalid(field, reason))
    }

    fn document_id(&mut self) -> Result<DocumentId, DecodeError> {
        const FIELD: &str = "documentId";
        let parsed = match self.required(FIELD)? {
            Value::Text(s) => s.parse(),
            Value::Bytes(b) => DocumentId::from_slice(&b),
            other => return Err(self.wrong_type(FIELD, "a text or byte string", &other)),
        };
        parsed.map_err(|source| DecodeError::InvalidDocumentId {
            msg_type: self.msg_type,
            source,
        })
    }

    /// An optional list of text strings; absent means empty. With
    /// `single_ok`, a lone text string counts as a list of one (the README's
    /// CDDL writes `supportedProtocolVersions` that way).
    fn text_list(
        &mut self,
        field: &'static str,
        single_ok: bool,
    ) -> Result<Vec<String>, DecodeError> {
        match self.take(field) {
            None => Ok(Vec::new()),
            Some(Value::Text(s)) if single_ok => Ok(vec![s]),
            Some(Value::Array(items)) => texts(items).map_err(|r| self.invalid(field, r)),
            Some(other) => Err(self.wrong_type(field, "an array of text strings", &other)),
        }
    }

    fn peer_metadata(&mut self) -> Result<Option<PeerMetadata>, DecodeError> {
        const FIELD: &str = "peerMetadata";
        let legacy = self.take("metadata");
        let Some(value) = self.take(FIELD).or(legacy) else {
            return Ok(None);
        };
        let Value::Map(mut map) = value else {
            return Err(self.wrong_type(FIELD, "a map", &value));
        };
        let storage_id = match map.remove("storageId") {
            None | Some(Value::Null) => None,
            Some(Value::Text(s)) => Some(s),
            Some(other) => return Err(self.wrong_type(FIELD, "storageId as text", &other)),
        };
        let is_ephemeral = match map.remove("isEphemeral") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(other) => return Err(self.wrong_type(FIELD, "isEphemeral as a boolean", &other)),
        };
        Ok(Some(PeerMetadata {
            storage_id,
            is_ephemeral,
            extra: map,
        }))
    }

    fn new_heads(&mut self) -> Result<BTreeMap<String, (Vec<String>, u64)>, DecodeError> {
        const FIELD: &str = "newHeads";
        let entries = match self.required(FIELD)? {
            Value::Map(entries) => entries,
            other => return Err(self.wrong_type(FIELD, "a map", &other)),
        };
        let mut out = BTreeMap::new();
        for (storage_id, entry) in entries {
            let at = |what: String| {
                self.invalid(FIELD, format!("entry {:?}: {what}", quote(&storage_id)))
            };
            let Value::Map(mut entry) = entry else {
                return Err(at(format!("expected a map, got {}", entry.kind())));
            };
            let heads = match entry.remove("heads") {
                Some(Value::Array(items)) => texts(items).map_err(&at)?,
                None | Some(Value::Null) => return Err(at("missing heads".into())),
                Some(other) => {
                    return Err(at(format!("heads must be an array, got {}", other.kind())))
                }
            };
            let timestamp = match entry.remove("timestamp") {
                None | Some(Value::Null) => return Err(at("missing timestamp".into())),
                Some(v) => as_u64(&v).map_err(|r| at(format!("timestamp: {r}")))?,
            };
            out.insert(storage_id, (heads, timestamp));
        }
        Ok(out)
    }
}

/// Unwraps an array of text strings.
fn texts(items: Vec<Value>) -> Result<Vec<String>, String> {
    items
        .into_iter()
        .map(|item| match item {
            Value::Text(s) => Ok(s),
            other => Err(format!("expected text strings, found {}", other.kind())),
        })
        .collect()
}
