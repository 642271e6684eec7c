//! permitsync's protocol extensions, used only with peers that announce them
//! in `peerMetadata` (`"permitsync": {"feed": 1, "rejections": 1}`):
//!
//! - `permitsync-feed-request {cursor, limit, changes}` / `permitsync-feed
//!   {entries, next_cursor, has_more}`: the documents of the peer's tenant
//!   changed since a cursor, so a reconnecting device syncs only what changed;
//!   with `changes: 1` each entry also carries the changes the requester lacks;
//! - `permitsync-feed-ack {page, entries}`: the entries of a page whose
//!   inline changes brought the client to the entry's heads, sent only to a
//!   peer that announced `feed_ack`;
//! - `permitsync-rejected {documentId, rejected}`: the operations of the
//!   receiving peer's that the view rejected (`rejected` is the JSON list);
//! - `permitsync-blob-request {documentId, sha256}` / `permitsync-blob
//!   {documentId, sha256, mime, data}` (or `missing: true`): a photo a
//!   document refers to, fetched from the peer that sent the document.

use std::collections::BTreeMap;

use automerge::Change;

use crate::model::EntityId;
use crate::store::{parse_sha256, Sha256Hash};
use crate::wire::{DocumentId, Message, PeerId, PeerMetadata, Value};

/// Message type: ask for the feed.
pub const FEED_REQUEST: &str = "permitsync-feed-request";
/// Message type: a page of the feed.
pub const FEED: &str = "permitsync-feed";
/// Message type: what a client took of a page's inline changes.
pub const FEED_ACK: &str = "permitsync-feed-ack";
/// Message type: rejected operations.
pub const REJECTED: &str = "permitsync-rejected";
/// Message type: ask for a blob.
pub const BLOB_REQUEST: &str = "permitsync-blob-request";
/// Message type: a blob, or the news that the sender lacks it.
pub const BLOB: &str = "permitsync-blob";
/// The `peerMetadata` key of the extension flags.
pub const METADATA_KEY: &str = "permitsync";

/// Which extensions a peer supports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// The change feed.
    pub feed: bool,
    /// Takes `permitsync-feed-ack` (what a client took of inline changes).
    pub feed_ack: bool,
    /// Rejection notices.
    pub rejections: bool,
    /// Blob (photo) fetching.
    pub blobs: bool,
    /// Certificates, revocation lists and attestations (`identity_ext.rs`).
    pub identity: bool,
}

impl Extensions {
    /// Every extension.
    pub const ALL: Extensions = Extensions {
        feed: true,
        feed_ack: true,
        rejections: true,
        blobs: true,
        identity: true,
    };

    /// What a peer announced in its metadata.
    pub fn of(meta: Option<&PeerMetadata>) -> Extensions {
        let flags = meta
            .and_then(|m| m.extra.get(METADATA_KEY))
            .and_then(Value::as_map);
        let on = |k: &str| {
            flags
                .and_then(|f| f.get(k))
                .and_then(Value::as_i64)
                .is_some_and(|v| v >= 1)
        };
        Extensions {
            feed: on("feed"),
            feed_ack: on("feed_ack"),
            rejections: on("rejections"),
            blobs: on("blobs"),
            identity: on("identity"),
        }
    }
}

/// The metadata this node announces.
pub fn metadata(storage_id: &str) -> PeerMetadata {
    let mut flags = BTreeMap::new();
    flags.insert("feed".to_string(), Value::Int(1));
    flags.insert("feed_ack".to_string(), Value::Int(1));
    flags.insert("rejections".to_string(), Value::Int(1));
    flags.insert("blobs".to_string(), Value::Int(1));
    let mut extra = BTreeMap::new();
    extra.insert(METADATA_KEY.to_string(), Value::Map(flags));
    PeerMetadata {
        storage_id: Some(storage_id.to_string()),
        is_ephemeral: false,
        extra,
    }
}

fn message(kind: &str, from: &PeerId, to: &PeerId, body: BTreeMap<String, Value>) -> Message {
    Message::Extension {
        type_name: kind.to_string(),
        sender_id: from.clone(),
        target_id: to.clone(),
        body,
    }
}

/// Page size of a feed request that names none.
pub const DEFAULT_FEED_LIMIT: u64 = 1000;

/// A `permitsync-feed-request`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedRequest {
    /// List documents changed after this feed position.
    pub cursor: u64,
    /// Most entries in the page.
    pub limit: u64,
    /// The requester takes the changes it lacks inside the page (`changes: 1`).
    pub inline: bool,
}

/// `permitsync-feed-request`.
pub fn feed_request(from: &PeerId, to: &PeerId, req: FeedRequest) -> Message {
    let mut body = BTreeMap::new();
    body.insert("cursor".into(), Value::Int(req.cursor.into()));
    if req.limit != DEFAULT_FEED_LIMIT {
        body.insert("limit".into(), Value::Int(req.limit.into()));
    }
    if req.inline {
        body.insert("changes".into(), Value::Int(1));
    }
    message(FEED_REQUEST, from, to, body)
}

/// One document in a feed page.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedEntry {
    /// Its position in the sender's feed.
    pub seq: u64,
    /// The document.
    pub id: EntityId,
    /// The sender's heads of it (hex, sorted): a receiver that has the same
    /// heads has nothing to sync.
    pub heads: Vec<String>,
    /// The changes the receiver lacks, as the sender believes, when the
    /// request asked for them and they fit the page. A received entry whose
    /// changes do not all decode has none (the receiver syncs it instead).
    pub changes: Option<Vec<Change>>,
}

/// A page of the feed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeedPage {
    /// Documents changed: feed position, id, and the sender's heads (hex).
    pub entries: Vec<FeedEntry>,
    /// The cursor to ask from next.
    pub next_cursor: u64,
    /// Whether more entries follow.
    pub has_more: bool,
    /// The page's number in its connection, when it carries inline changes:
    /// a `permitsync-feed-ack` names the page by it.
    pub page: Option<u64>,
    /// Encode document ids (16 bytes) and heads (32 bytes each) as byte
    /// strings rather than text: the form sent to a client that asked for
    /// changes, about 40% smaller. [`parse_feed`] reads both forms.
    pub binary: bool,
}

/// `permitsync-feed`.
pub fn feed(from: &PeerId, to: &PeerId, page: &FeedPage) -> Message {
    let entries = page
        .entries
        .iter()
        .map(|e| {
            let (id, heads) = if page.binary {
                let carried: Vec<String> = e
                    .changes
                    .iter()
                    .flatten()
                    .map(|c| c.hash().to_string())
                    .collect();
                (
                    Value::Bytes(e.id.as_bytes().to_vec()),
                    e.heads
                        .iter()
                        .map(|h| match carried.iter().position(|c| c == h) {
                            Some(i) => Value::Int(i as i128),
                            None => match hex::decode(h) {
                                Ok(b) => Value::Bytes(b),
                                Err(_) => Value::Text(h.clone()),
                            },
                        })
                        .collect(),
                )
            } else {
                (
                    Value::Text(DocumentId::from(e.id.uuid()).to_string()),
                    e.heads.iter().cloned().map(Value::Text).collect(),
                )
            };
            let mut entry = vec![id, Value::Int(e.seq.into()), Value::Array(heads)];
            if let Some(changes) = &e.changes {
                entry.push(Value::Array(
                    changes
                        .iter()
                        .map(|c| Value::Bytes(c.raw_bytes().to_vec()))
                        .collect(),
                ));
            }
            Value::Array(entry)
        })
        .collect();
    let mut body = BTreeMap::new();
    body.insert("entries".into(), Value::Array(entries));
    body.insert("next_cursor".into(), Value::Int(page.next_cursor.into()));
    if page.has_more {
        body.insert("has_more".into(), Value::Bool(true));
    }
    if let Some(n) = page.page {
        body.insert("page".into(), Value::Int(n.into()));
    }
    message(FEED, from, to, body)
}

/// A `permitsync-feed-ack`: of page `page`, the entries (by their index in
/// the page) whose inline changes brought the client to exactly the entry's
/// heads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedAck {
    /// The page's number (its `page` field).
    pub page: u64,
    /// Indexes in the page's `entries`.
    pub entries: Vec<u64>,
}

/// `permitsync-feed-ack`.
pub fn feed_ack(from: &PeerId, to: &PeerId, ack: &FeedAck) -> Message {
    let mut body = BTreeMap::new();
    body.insert("page".into(), Value::Int(ack.page.into()));
    body.insert(
        "entries".into(),
        Value::Array(
            ack.entries
                .iter()
                .map(|i| Value::Int((*i).into()))
                .collect(),
        ),
    );
    message(FEED_ACK, from, to, body)
}

/// Parse a `permitsync-feed-ack`; `None` when it is malformed.
pub fn parse_feed_ack(body: &BTreeMap<String, Value>) -> Option<FeedAck> {
    let Value::Array(items) = body.get("entries")? else {
        return None;
    };
    Some(FeedAck {
        page: uint(body, "page")?,
        entries: items
            .iter()
            .map(|v| v.as_i64().and_then(|i| u64::try_from(i).ok()))
            .collect::<Option<Vec<_>>>()?,
    })
}

/// `permitsync-rejected`.
pub fn rejected(from: &PeerId, to: &PeerId, doc: EntityId, json: String) -> Message {
    let mut body = BTreeMap::new();
    body.insert(
        "documentId".into(),
        Value::Text(DocumentId::from(doc.uuid()).to_string()),
    );
    body.insert("rejected".into(), Value::Text(json));
    message(REJECTED, from, to, body)
}

fn doc_and_hash(doc: EntityId, sha: &Sha256Hash) -> BTreeMap<String, Value> {
    let mut body = BTreeMap::new();
    body.insert(
        "documentId".into(),
        Value::Text(DocumentId::from(doc.uuid()).to_string()),
    );
    body.insert("sha256".into(), Value::Text(hex::encode(sha)));
    body
}

/// `permitsync-blob-request`: the blob `sha` that document `doc` refers to.
pub fn blob_request(from: &PeerId, to: &PeerId, doc: EntityId, sha: &Sha256Hash) -> Message {
    message(BLOB_REQUEST, from, to, doc_and_hash(doc, sha))
}

/// `permitsync-blob`: the blob's bytes and media type, or `None` when the
/// sender lacks it (it sends the blob later, once it has it).
pub fn blob(
    from: &PeerId,
    to: &PeerId,
    doc: EntityId,
    sha: &Sha256Hash,
    content: Option<(Vec<u8>, String)>,
) -> Message {
    let mut body = doc_and_hash(doc, sha);
    match content {
        Some((data, mime)) => {
            body.insert("mime".into(), Value::Text(mime));
            body.insert("data".into(), Value::Bytes(data));
        }
        None => {
            body.insert("missing".into(), Value::Bool(true));
        }
    }
    message(BLOB, from, to, body)
}

/// Parse the document and hash of a blob message.
pub fn parse_blob_request(body: &BTreeMap<String, Value>) -> Option<(EntityId, Sha256Hash)> {
    let doc: DocumentId = body.get("documentId")?.as_text()?.parse().ok()?;
    let sha = parse_sha256(body.get("sha256")?.as_text()?).ok()?;
    Some((EntityId::from(uuid::Uuid::from(doc)), sha))
}

/// A parsed `permitsync-blob`.
pub struct BlobReply {
    /// The document that refers to the blob.
    pub doc: EntityId,
    /// The blob's hash.
    pub sha: Sha256Hash,
    /// Bytes and media type; `None` when the peer lacks the blob.
    pub content: Option<(Vec<u8>, String)>,
}

/// Parse a `permitsync-blob`.
pub fn parse_blob(body: &BTreeMap<String, Value>) -> Option<BlobReply> {
    let (doc, sha) = parse_blob_request(body)?;
    let content = match body.get("data") {
        Some(Value::Bytes(data)) => Some((
            data.clone(),
            body.get("mime")
                .and_then(Value::as_text)
                .unwrap_or("application/octet-stream")
                .to_string(),
        )),
        Some(_) => return None,
        None => None,
    };
    Some(BlobReply { doc, sha, content })
}

fn uint(body: &BTreeMap<String, Value>, key: &str) -> Option<u64> {
    body.get(key)
        .and_then(Value::as_i64)
        .and_then(|v| u64::try_from(v).ok())
}

/// Parse a feed request.
pub fn parse_feed_request(body: &BTreeMap<String, Value>) -> Option<FeedRequest> {
    Some(FeedRequest {
        cursor: uint(body, "cursor")?,
        limit: uint(body, "limit").unwrap_or(DEFAULT_FEED_LIMIT),
        inline: uint(body, "changes").is_some_and(|v| v >= 1),
    })
}

/// Parse a feed page.
pub fn parse_feed(body: &BTreeMap<String, Value>) -> Option<FeedPage> {
    let Value::Array(items) = body.get("entries")? else {
        return None;
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(pair) = item else {
            return None;
        };
        let id = match pair.first()? {
            Value::Text(t) => EntityId::from(uuid::Uuid::from(t.parse::<DocumentId>().ok()?)),
            Value::Bytes(b) => EntityId::from(uuid::Uuid::from_slice(b).ok()?),
            _ => return None,
        };
        let seq = u64::try_from(pair.get(1)?.as_i64()?).ok()?;
        let changes = match pair.get(3) {
            None => None,
            Some(Value::Array(c)) => {
                let raw = c
                    .iter()
                    .map(|v| match v {
                        Value::Bytes(b) => Some(b.clone()),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                raw.into_iter()
                    // plain change chunks only: a deflated one would inflate
                    // before any limit could look at it
                    .map(crate::store::cost::plain_change)
                    .collect::<Option<Vec<_>>>()
            }
            Some(_) => return None,
        };
        let heads = match pair.get(2) {
            Some(Value::Array(h)) => h
                .iter()
                .map(|v| match v {
                    Value::Text(t) => Some(t.clone()),
                    Value::Bytes(b) if b.len() == 32 => Some(hex::encode(b)),
                    // a carried change, by its index
                    Value::Int(i) => usize::try_from(*i)
                        .ok()
                        .and_then(|i| changes.as_ref()?.get(i))
                        .map(|c| c.hash().to_string()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?,
            _ => Vec::new(),
        };
        entries.push(FeedEntry {
            seq,
            id,
            heads,
            changes,
        });
    }
    Some(FeedPage {
        entries,
        next_cursor: uint(body, "next_cursor")?,
        has_more: body
            .get("has_more")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        page: uint(body, "page"),
        binary: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode, encode, Limits};

    #[test]
    fn feed_round_trips_through_the_codec() {
        use automerge::transaction::Transactable;
        let (a, b) = (PeerId::new("a"), PeerId::new("b"));
        let mut doc = automerge::AutoCommit::new();
        doc.put(automerge::ROOT, "title", "x").expect("put");
        let change = doc.get_changes(&[]).remove(0);
        let mut page = FeedPage {
            entries: vec![
                FeedEntry {
                    seq: 3,
                    id: EntityId::new_random(),
                    // one head is a carried change (sent as its index), one not
                    heads: vec![change.hash().to_string(), "ab".repeat(32)],
                    changes: Some(vec![change.clone()]),
                },
                FeedEntry {
                    seq: 9,
                    id: EntityId::new_random(),
                    heads: vec![],
                    changes: None,
                },
            ],
            next_cursor: 9,
            has_more: true,
            page: Some(4),
            binary: false,
        };
        let mut sizes = Vec::new();
        for binary in [false, true] {
            page.binary = binary;
            let frame = encode(&feed(&a, &b, &page));
            sizes.push(frame.len());
            let msg = decode(&frame, &Limits::default()).expect("decode");
            let Message::Extension {
                type_name, body, ..
            } = msg
            else {
                panic!("not an extension")
            };
            assert_eq!(type_name, FEED);
            if binary {
                // the carried change's head travels as its index
                let Some(Value::Array(entries)) = body.get("entries") else {
                    panic!("no entries")
                };
                let Value::Array(first) = &entries[0] else {
                    panic!("entry")
                };
                let Value::Array(heads) = &first[2] else {
                    panic!("heads")
                };
                assert!(matches!(heads[0], Value::Int(0)), "{heads:?}");
                assert!(matches!(&heads[1], Value::Bytes(b) if b.len() == 32));
            }
            let parsed = parse_feed(&body).expect("parse");
            assert_eq!(parsed.entries, page.entries, "binary: {binary}");
            assert_eq!(
                (parsed.next_cursor, parsed.has_more, parsed.page),
                (9, true, Some(4))
            );
        }
        assert!(sizes[1] < sizes[0], "{sizes:?}");
    }

    #[test]
    fn feed_ack_round_trips_and_refuses_malformed_bodies() {
        let (a, b) = (PeerId::new("device"), PeerId::new("relay"));
        // what it costs a reconnect: 10 documents of one page
        let ack = FeedAck {
            page: 3,
            entries: (0..10).collect(),
        };
        let frame = encode(&feed_ack(&a, &b, &ack));
        eprintln!("a permitsync-feed-ack of 10 documents: {} B", frame.len());
        assert!(frame.len() < 100, "{} B", frame.len());
        let Message::Extension {
            type_name, body, ..
        } = decode(&frame, &Limits::default()).expect("decode")
        else {
            panic!("not an extension")
        };
        assert_eq!(type_name, FEED_ACK);
        assert_eq!(parse_feed_ack(&body), Some(ack));
        for (page, entries) in [
            (Some(Value::Int(1)), Value::Int(1)),
            (Some(Value::Int(1)), Value::Array(vec![Value::Int(-1)])),
            (
                Some(Value::Int(1)),
                Value::Array(vec![Value::Text("0".into())]),
            ),
            (None, Value::Array(vec![Value::Int(0)])),
            (Some(Value::Int(-2)), Value::Array(vec![])),
        ] {
            let mut body = BTreeMap::new();
            body.insert("entries".to_string(), entries.clone());
            if let Some(page) = page.clone() {
                body.insert("page".to_string(), page);
            }
            assert_eq!(parse_feed_ack(&body), None, "{page:?} {entries:?}");
        }
    }

    #[test]
    fn extensions_are_read_from_metadata() {
        // identity is announced with the node's key (identity_ext::announce)
        let plain = Extensions {
            identity: false,
            ..Extensions::ALL
        };
        assert_eq!(Extensions::of(Some(&metadata("x"))), plain);
        let mut keyed = metadata("x");
        super::super::identity_ext::announce(&mut keyed, crate::identity::PublicKey([7; 32]));
        assert_eq!(Extensions::of(Some(&keyed)), Extensions::ALL);
        assert_eq!(Extensions::of(None), Extensions::default());
        assert_eq!(
            Extensions::of(Some(&PeerMetadata::default())),
            Extensions::default()
        );
    }
}
