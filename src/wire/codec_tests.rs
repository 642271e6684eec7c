//! Example-based tests of [`decode`] and [`encode`].

use std::collections::BTreeMap;
use std::error::Error;

use minicbor::data::Tag;
use minicbor::Encoder;

use super::cbor::parse;
use super::{decode, encode, DecodeError, DocumentId, DocumentIdError, Limits, Message};
use super::{PeerId, PeerMetadata, Value, PROTOCOL_V1};

type TestResult = Result<(), Box<dyn Error>>;

/// Document id from automerge-repo's AutomergeUrl tests.
const DOC_TEXT: &str = "4NMNnkMhL8jXrdJ9jamS58PAVdXu";
const DOC_BYTES: [u8; 16] = [
    241, 194, 156, 132, 116, 200, 74, 222, 184, 0, 190, 71, 98, 125, 51, 191,
];

pub(super) fn doc() -> DocumentId {
    DocumentId::from_bytes(DOC_BYTES)
}

fn dec(bytes: &[u8]) -> Result<Message, DecodeError> {
    decode(bytes, &Limits::default())
}

pub(super) fn metadata() -> PeerMetadata {
    let flags = BTreeMap::from([
        ("feed".to_string(), Value::Int(1)),
        ("rejections".to_string(), Value::Int(1)),
    ]);
    PeerMetadata {
        storage_id: Some("8c3b5ad2-6a0f-4c45-9d2c-3f1f0b6f9e01".into()),
        is_ephemeral: false,
        extra: BTreeMap::from([("permitsync".to_string(), Value::Map(flags))]),
    }
}

fn every_kind() -> Vec<Message> {
    let (a, b) = (PeerId::from("peer-a"), PeerId::from("server"));
    vec![
        Message::Join {
            sender_id: a.clone(),
            peer_metadata: Some(metadata()),
            supported_protocol_versions: vec![PROTOCOL_V1.into()],
        },
        Message::Join {
            sender_id: a.clone(),
            peer_metadata: None,
            supported_protocol_versions: vec![],
        },
        Message::Peer {
            sender_id: b.clone(),
            target_id: a.clone(),
            peer_metadata: Some(PeerMetadata {
                is_ephemeral: true,
                ..PeerMetadata::default()
            }),
            selected_protocol_version: PROTOCOL_V1.into(),
        },
        Message::Leave {
            sender_id: a.clone(),
        },
        Message::Error {
            message: "unsupported protocol version".into(),
        },
        Message::Request {
            sender_id: a.clone(),
            target_id: b.clone(),
            document_id: doc(),
            data: vec![0x42, 0, 1, 2],
        },
        Message::Sync {
            sender_id: b.clone(),
            target_id: a.clone(),
            document_id: doc(),
            data: vec![0x42; 1000],
        },
        Message::DocUnavailable {
            sender_id: b.clone(),
            target_id: a.clone(),
            document_id: doc(),
        },
        Message::Ephemeral {
            sender_id: a.clone(),
            target_id: b.clone(),
            document_id: doc(),
            count: 1 << 40,
            session_id: "f3a1c9".into(),
            data: vec![0xa1, 0x61, b'x', 0x01],
        },
        Message::RemoteSubscriptionChange {
            sender_id: a.clone(),
            target_id: b.clone(),
            add: vec!["storage-1".into(), "storage-2".into()],
            remove: vec![],
        },
        Message::RemoteHeadsChanged {
            sender_id: b,
            target_id: a,
            document_id: doc(),
            new_heads: BTreeMap::from([
                (
                    "storage-1".into(),
                    (vec!["h1".into(), "h2".into()], 1_700_000_000_123),
                ),
                ("storage-2".into(), (vec![], u64::MAX)),
            ]),
        },
    ]
}

#[test]
fn every_message_kind_round_trips() -> TestResult {
    let messages = every_kind();
    let kinds: std::collections::BTreeSet<_> = messages.iter().map(Message::type_name).collect();
    assert_eq!(kinds.len(), Message::TYPE_NAMES.len());
    for msg in messages {
        let bytes = encode(&msg);
        assert_eq!(dec(&bytes)?, msg);
    }
    Ok(())
}

#[test]
fn encoding_has_the_shape_js_expects() -> TestResult {
    let Message::Sync { .. } = &every_kind()[6] else {
        return Err("fixture order changed".into());
    };
    let bytes = encode(&every_kind()[6]);
    assert_eq!(bytes[0], 0xa5, "definite map of 5 entries");
    assert_eq!(&bytes[1..11], b"\x64type\x64sync", "type comes first");
    let Value::Map(map) = parse(&bytes)? else {
        return Err("not a map".into());
    };
    let keys: Vec<_> = map.keys().map(String::as_str).collect();
    assert_eq!(keys, ["data", "documentId", "senderId", "targetId", "type"]);
    assert_eq!(map["documentId"], Value::Text(DOC_TEXT.into()));
    assert!(matches!(map["data"], Value::Bytes(_)));

    // Timestamps beyond 32 bits go out as floats, like cbor-x sends them.
    let heads = encode(&every_kind()[10]);
    let Value::Map(map) = parse(&heads)? else {
        return Err("not a map".into());
    };
    let entry = map["newHeads"].as_map().and_then(|m| m.get("storage-1"));
    let ts = entry.and_then(Value::as_map).map(|m| &m["timestamp"]);
    assert_eq!(ts, Some(&Value::Float(1_700_000_000_123.0)));
    Ok(())
}

/// Writes a map header the way cbor-x does for plain objects: always the
/// 16-bit length form (0xb9).
fn js_map(e: &mut Encoder<Vec<u8>>, len: u8) {
    e.writer_mut().extend_from_slice(&[0xb9, 0, len]);
}

#[test]
fn decodes_a_frame_shaped_like_the_js_client_sends() -> TestResult {
    // join: peerMetadata with storageId undefined and extension flags.
    let mut e = Encoder::new(Vec::new());
    js_map(&mut e, 5);
    e.str("supportedProtocolVersions")?.array(1)?.str("1")?;
    e.str("senderId")?.str("peer-a")?;
    e.str("somethingNew")?.array(2)?.u8(1)?.null()?;
    e.str("peerMetadata")?;
    js_map(&mut e, 3);
    e.str("storageId")?.undefined()?;
    e.str("isEphemeral")?.bool(true)?;
    e.str("permitsync")?;
    js_map(&mut e, 2);
    e.str("feed")?.u8(1)?.str("ratio")?.f64(0.5)?;
    e.str("type")?.str("join")?;
    let msg = dec(e.writer())?;
    let flags = BTreeMap::from([
        ("feed".to_string(), Value::Int(1)),
        ("ratio".to_string(), Value::Float(0.5)),
    ]);
    let expected = Message::Join {
        sender_id: "peer-a".into(),
        peer_metadata: Some(PeerMetadata {
            storage_id: None,
            is_ephemeral: true,
            extra: BTreeMap::from([("permitsync".to_string(), Value::Map(flags))]),
        }),
        supported_protocol_versions: vec!["1".into()],
    };
    assert_eq!(msg, expected);

    // ephemeral: count as a float, data in a tag-64 typed array, binary doc id.
    let mut e = Encoder::new(Vec::new());
    js_map(&mut e, 8);
    e.str("type")?.str("ephemeral")?;
    e.str("count")?.f64(3.0)?;
    e.str("data")?.tag(Tag::new(64))?.bytes(&[9, 8, 7])?;
    e.str("documentId")?.bytes(&DOC_BYTES)?;
    e.str("sessionId")?.str("s1")?;
    e.str("targetId")?.str("server")?;
    e.str("senderId")?.str("peer-a")?;
    e.str("extra")?.undefined()?;
    let msg = dec(e.writer())?;
    assert_eq!(
        msg,
        Message::Ephemeral {
            sender_id: "peer-a".into(),
            target_id: "server".into(),
            document_id: doc(),
            count: 3,
            session_id: "s1".into(),
            data: vec![9, 8, 7],
        }
    );
    Ok(())
}

#[test]
fn accepts_legacy_and_absent_fields() -> TestResult {
    // README spelling: `metadata`, and a single version string.
    let mut e = Encoder::new(Vec::new());
    e.map(4)?
        .str("type")?
        .str("peer")?
        .str("senderId")?
        .str("s")?;
    e.str("targetId")?
        .str("c")?
        .str("selectedProtocolVersion")?
        .str("1")?;
    let peer = dec(e.writer())?;
    assert!(matches!(
        peer,
        Message::Peer {
            peer_metadata: None,
            ..
        }
    ));

    let mut e = Encoder::new(Vec::new());
    e.map(4)?
        .str("type")?
        .str("join")?
        .str("senderId")?
        .str("c")?;
    e.str("supportedProtocolVersions")?.str("1")?;
    e.str("metadata")?.map(1)?.str("storageId")?.str("st")?;
    let Message::Join {
        peer_metadata,
        supported_protocol_versions,
        ..
    } = dec(e.writer())?
    else {
        return Err("not a join".into());
    };
    assert_eq!(supported_protocol_versions, ["1"]);
    assert_eq!(
        peer_metadata.and_then(|m| m.storage_id).as_deref(),
        Some("st")
    );

    // Subscription change with `remove: undefined` and no `add`.
    let mut e = Encoder::new(Vec::new());
    e.map(4)?.str("type")?.str("remote-subscription-change")?;
    e.str("senderId")?.str("a")?.str("targetId")?.str("b")?;
    e.str("remove")?.undefined()?;
    let msg = dec(e.writer())?;
    assert!(
        matches!(msg, Message::RemoteSubscriptionChange { add, remove, .. }
        if add.is_empty() && remove.is_empty())
    );
    Ok(())
}

#[test]
fn known_document_id_in_a_frame() -> TestResult {
    let mut e = Encoder::new(Vec::new());
    e.map(4)?.str("type")?.str("doc-unavailable")?;
    e.str("senderId")?.str("a")?.str("targetId")?.str("b")?;
    e.str("documentId")?.str(DOC_TEXT)?;
    let msg = dec(e.writer())?;
    let id = msg.document_id().ok_or("no document id")?;
    assert_eq!(id.as_bytes(), &DOC_BYTES);
    assert_eq!(id.to_string(), DOC_TEXT);
    assert_eq!(encode(&msg), e.into_writer(), "re-encodes byte for byte");
    Ok(())
}

fn sync_without(skip: &str) -> Result<Vec<u8>, Box<dyn Error>> {
    let fields: [(&str, &[u8]); 4] = [
        ("senderId", b"\x61a"),
        ("targetId", b"\x61b"),
        ("documentId", b"\x78\x1c4NMNnkMhL8jXrdJ9jamS58PAVdXu"),
        ("data", b"\x41\x01"),
    ];
    let kept: Vec<_> = fields.iter().filter(|(k, _)| *k != skip).collect();
    let mut e = Encoder::new(Vec::new());
    e.map(1 + kept.len() as u64)?.str("type")?.str("sync")?;
    for (k, v) in kept {
        e.str(k)?;
        e.writer_mut().extend_from_slice(v);
    }
    Ok(e.into_writer())
}

#[test]
fn errors_name_what_is_wrong() -> TestResult {
    let limits = Limits::default();
    assert!(matches!(dec(&sync_without("")?), Ok(Message::Sync { .. })));
    let err = decode(&sync_without("documentId")?, &limits)
        .err()
        .ok_or("decoded")?;
    assert_eq!(err.to_string(), "missing field documentId in sync message");
    let err = dec(&sync_without("data")?).err().ok_or("decoded")?;
    assert_eq!(
        err,
        DecodeError::MissingField {
            field: "data",
            msg_type: "sync"
        }
    );

    let mut e = Encoder::new(Vec::new());
    e.map(5)?
        .str("type")?
        .str("request")?
        .str("senderId")?
        .str("a")?;
    e.str("targetId")?.str("b")?.str("data")?.bytes(&[1])?;
    e.str("documentId")?.str("badbadbad")?;
    let err = dec(e.writer()).err().ok_or("decoded")?;
    assert_eq!(
        err,
        DecodeError::InvalidDocumentId {
            msg_type: "request",
            source: DocumentIdError::BadChecksum
        }
    );
    assert!(err
        .to_string()
        .starts_with("invalid document id in request message"));

    let mut e = Encoder::new(Vec::new());
    e.map(2)?.str("type")?.str("error")?.str("message")?.u8(7)?;
    let err = dec(e.writer()).err().ok_or("decoded")?;
    assert_eq!(
        err.to_string(),
        "invalid field message in error message: expected a text string, got integer"
    );
    Ok(())
}

#[test]
fn rejects_bad_counts() -> TestResult {
    for bad in [3.5, -1.0, f64::NAN, f64::INFINITY, 1e20] {
        let mut e = Encoder::new(Vec::new());
        e.map(7)?
            .str("type")?
            .str("ephemeral")?
            .str("senderId")?
            .str("a")?;
        e.str("targetId")?
            .str("b")?
            .str("documentId")?
            .str(DOC_TEXT)?;
        e.str("count")?
            .f64(bad)?
            .str("sessionId")?
            .str("s")?
            .str("data")?
            .bytes(&[1])?;
        let err = dec(e.writer()).err().ok_or("decoded")?;
        assert!(
            matches!(err, DecodeError::InvalidField { field: "count", .. }),
            "{bad}: {err}"
        );
    }
    Ok(())
}

#[test]
fn unknown_type_and_type_problems() -> TestResult {
    let mut e = Encoder::new(Vec::new());
    e.map(2)?
        .str("type")?
        .str("teleport-now")?
        .str("senderId")?
        .str("a")?;
    assert_eq!(
        dec(e.writer()),
        Err(DecodeError::UnknownType("teleport-now".into()))
    );
    // permitsync extension messages decode, with their routing checked
    let mut e = Encoder::new(Vec::new());
    e.map(2)?
        .str("type")?
        .str("permitsync-feed")?
        .str("senderId")?
        .str("a")?;
    assert!(matches!(
        dec(e.writer()),
        Err(DecodeError::MissingField {
            field: "targetId",
            ..
        })
    ));
    let long = "x".repeat(10_000);
    let mut e = Encoder::new(Vec::new());
    e.map(1)?.str("type")?.str(&long)?;
    match dec(e.writer()) {
        Err(DecodeError::UnknownType(t)) => assert!(t.chars().count() <= 65),
        other => return Err(format!("{other:?}").into()),
    }
    assert_eq!(
        dec(&[0xa1, 0x61, b'x', 0x01]),
        Err(DecodeError::MissingType)
    );
    assert_eq!(
        dec(&[0xa1, 0x64, b't', b'y', b'p', b'e', 0x01]),
        Err(DecodeError::TypeNotText("integer"))
    );
    assert_eq!(dec(&[0x80]), Err(DecodeError::NotAMap("array")));
    Ok(())
}

#[test]
fn malformed_truncated_and_oversized_frames() {
    let full = encode(&every_kind()[0]);
    for cut in 0..full.len() {
        assert_eq!(
            dec(&full[..cut]),
            Err(DecodeError::Truncated),
            "cut at {cut}"
        );
    }
    let mut trailing = full.clone();
    trailing.push(0x00);
    assert_eq!(dec(&trailing), Err(DecodeError::TrailingBytes(1)));
    assert!(matches!(dec(&[0xa1, 0xff]), Err(DecodeError::Malformed(_))));

    let small = Limits {
        max_frame_bytes: 16,
    };
    assert_eq!(
        decode(&full, &small),
        Err(DecodeError::FrameTooLarge {
            size: full.len(),
            max: 16
        })
    );
    // A huge declared byte-string length must not be allocated up front.
    let mut e = vec![
        0xa2, 0x64, b't', b'y', b'p', b'e', 0x64, b's', b'y', b'n', b'c',
    ];
    e.extend_from_slice(&[
        0x64, b'd', b'a', b't', b'a', 0x5b, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    assert_eq!(dec(&e), Err(DecodeError::Truncated));
}

#[test]
fn deep_nesting_in_metadata_is_refused() -> TestResult {
    let mut e = Encoder::new(Vec::new());
    e.map(3)?
        .str("type")?
        .str("join")?
        .str("senderId")?
        .str("a")?;
    e.str("peerMetadata")?.map(1)?.str("deep")?;
    e.writer_mut().extend(std::iter::repeat_n(0x81, 10_000));
    e.writer_mut().push(0x00);
    assert_eq!(dec(e.writer()), Err(DecodeError::TooDeep { max: 32 }));
    Ok(())
}
