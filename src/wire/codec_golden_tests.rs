//! The encoder's output pinned byte for byte: what the hand-written CBOR
//! writer produced before minicbor's `Encoder` replaced it.

use std::collections::BTreeMap;

use super::codec_tests::{doc, metadata};
use super::{encode, Message, PeerId, Value, PROTOCOL_V1};

/// A message of every kind, and values that take every branch of the CBOR
/// writer: each length and integer head size, negative integers down to
/// -2^64, integers no CBOR integer holds (written as floats), floats,
/// nested containers, and counts and timestamps on both sides of 2^32 and
/// 2^53.
fn golden_messages() -> Vec<Message> {
    let (a, b) = (PeerId::from("peer-a"), PeerId::from("server"));
    let ints = [
        0i128,
        23,
        24,
        255,
        256,
        65_535,
        65_536,
        u32::MAX.into(),
        1 << 32,
        u64::MAX.into(),
        -1,
        -24,
        -25,
        -256,
        -257,
        -65_537,
        -(1 << 32),
        -(1 << 64),
        1 << 70,
        -(1 << 70),
    ];
    let body = BTreeMap::from([
        (
            "ints".to_string(),
            Value::Array(ints.map(Value::Int).to_vec()),
        ),
        (
            "floats".to_string(),
            Value::Array(
                [1.5, -0.0, 1e300, f64::INFINITY, f64::NEG_INFINITY, f64::NAN]
                    .map(Value::Float)
                    .to_vec(),
            ),
        ),
        (
            "misc".to_string(),
            Value::Array(vec![
                Value::Null,
                Value::Bool(true),
                Value::Bool(false),
                Value::Text(String::new()),
                Value::Text("a text longer than twenty-three bytes, é".into()),
                Value::Bytes(Vec::new()),
                Value::Bytes(vec![7; 24]),
                Value::Array(Vec::new()),
                Value::Map(BTreeMap::new()),
            ]),
        ),
        (
            "nested".to_string(),
            Value::Map(BTreeMap::from([(
                "inner".to_string(),
                Value::Array(vec![Value::Map(BTreeMap::from([(
                    "k".to_string(),
                    Value::Int(-3),
                )]))]),
            )])),
        ),
        // the routing keys of a body are not written twice
        ("type".to_string(), Value::Text("ignored".into())),
        ("senderId".to_string(), Value::Text("ignored".into())),
    ]);
    let ephemeral = |count: u64| Message::Ephemeral {
        sender_id: a.clone(),
        target_id: b.clone(),
        document_id: doc(),
        count,
        session_id: "s".into(),
        data: vec![1],
    };
    let mut meta = metadata();
    meta.storage_id = None;
    meta.extra
        .insert("storageId".into(), Value::Text("skipped".into()));
    meta.extra.insert("zeta".into(), Value::Int(-1));
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
            peer_metadata: Some(meta),
            selected_protocol_version: PROTOCOL_V1.into(),
        },
        Message::Peer {
            sender_id: b.clone(),
            target_id: a.clone(),
            peer_metadata: None,
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
            data: (0..=255).collect(),
        },
        Message::DocUnavailable {
            sender_id: b.clone(),
            target_id: a.clone(),
            document_id: doc(),
        },
        ephemeral(0),
        ephemeral(u32::MAX.into()),
        ephemeral(1 << 32),
        ephemeral(1 << 53),
        ephemeral((1 << 53) + 1),
        ephemeral(u64::MAX),
        Message::RemoteSubscriptionChange {
            sender_id: a.clone(),
            target_id: b.clone(),
            add: vec!["storage-1".into(), "storage-2".into()],
            remove: vec![],
        },
        Message::RemoteHeadsChanged {
            sender_id: b.clone(),
            target_id: a.clone(),
            document_id: doc(),
            new_heads: BTreeMap::from([
                (
                    "storage-1".into(),
                    (vec!["h1".into(), "h2".into()], 1_700_000_000_123),
                ),
                ("storage-2".into(), (vec![], u64::MAX)),
                ("storage-3".into(), (vec![], 5)),
            ]),
        },
        Message::Extension {
            type_name: "permitsync-feed".into(),
            sender_id: a,
            target_id: b,
            body,
        },
    ]
}

/// What the hand-written CBOR writer produced for [`golden_messages`], in
/// hex: the encoder must keep the wire byte for byte.
const GOLDEN: [&str; 18] = [
    "a46474797065646a6f696e6873656e646572496466706565722d617819737570706f7274656450726f746f636f6c56657273696f6e738161316c706565724d65746164617461a36973746f726167654964782438633362356164322d366130662d346334352d396432632d3366316630623666396530316b6973457068656d6572616cf46a7065726d697473796e63a26466656564016a72656a656374696f6e7301",
    "a36474797065646a6f696e6873656e646572496466706565722d617819737570706f7274656450726f746f636f6c56657273696f6e7380",
    "a5647479706564706565726873656e64657249646673657276657268746172676574496466706565722d617773656c656374656450726f746f636f6c56657273696f6e61316c706565724d65746164617461a36b6973457068656d6572616cf46a7065726d697473796e63a26466656564016a72656a656374696f6e7301647a65746120",
    "a4647479706564706565726873656e64657249646673657276657268746172676574496466706565722d617773656c656374656450726f746f636f6c56657273696f6e6131",
    "a26474797065656c656176656873656e646572496466706565722d61",
    "a26474797065656572726f72676d657373616765781c756e737570706f727465642070726f746f636f6c2076657273696f6e",
    "a5647479706567726571756573746873656e646572496466706565722d61687461726765744964667365727665726a646f63756d656e744964781c344e4d4e6e6b4d684c386a5872644a396a616d53353850415664587564646174614442000102",
    "a564747970656473796e636873656e64657249646673657276657268746172676574496466706565722d616a646f63756d656e744964781c344e4d4e6e6b4d684c386a5872644a396a616d5335385041566458756464617461590100000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
    "a464747970656f646f632d756e617661696c61626c656873656e64657249646673657276657268746172676574496466706565722d616a646f63756d656e744964781c344e4d4e6e6b4d684c386a5872644a396a616d533538504156645875",
    "a7647479706569657068656d6572616c6873656e646572496466706565722d61687461726765744964667365727665726a646f63756d656e744964781c344e4d4e6e6b4d684c386a5872644a396a616d53353850415664587565636f756e74006973657373696f6e4964617364646174614101",
    "a7647479706569657068656d6572616c6873656e646572496466706565722d61687461726765744964667365727665726a646f63756d656e744964781c344e4d4e6e6b4d684c386a5872644a396a616d53353850415664587565636f756e741affffffff6973657373696f6e4964617364646174614101",
    "a7647479706569657068656d6572616c6873656e646572496466706565722d61687461726765744964667365727665726a646f63756d656e744964781c344e4d4e6e6b4d684c386a5872644a396a616d53353850415664587565636f756e74fb41f00000000000006973657373696f6e4964617364646174614101",
    "a7647479706569657068656d6572616c6873656e646572496466706565722d61687461726765744964667365727665726a646f63756d656e744964781c344e4d4e6e6b4d684c386a5872644a396a616d53353850415664587565636f756e74fb43400000000000006973657373696f6e4964617364646174614101",
    "a7647479706569657068656d6572616c6873656e646572496466706565722d61687461726765744964667365727665726a646f63756d656e744964781c344e4d4e6e6b4d684c386a5872644a396a616d53353850415664587565636f756e741b00200000000000016973657373696f6e4964617364646174614101",
    "a7647479706569657068656d6572616c6873656e646572496466706565722d61687461726765744964667365727665726a646f63756d656e744964781c344e4d4e6e6b4d684c386a5872644a396a616d53353850415664587565636f756e741bffffffffffffffff6973657373696f6e4964617364646174614101",
    "a56474797065781a72656d6f74652d737562736372697074696f6e2d6368616e67656873656e646572496466706565722d616874617267657449646673657276657263616464826973746f726167652d316973746f726167652d326672656d6f766580",
    "a564747970657472656d6f74652d68656164732d6368616e6765646873656e64657249646673657276657268746172676574496466706565722d616a646f63756d656e744964781c344e4d4e6e6b4d684c386a5872644a396a616d533538504156645875686e65774865616473a36973746f726167652d31a2656865616473826268316268326974696d657374616d70fb4278bcfe5687b0006973746f726167652d32a2656865616473806974696d657374616d701bffffffffffffffff6973746f726167652d33a2656865616473806974696d657374616d7005",
    "a764747970656f7065726d697473796e632d666565646873656e646572496466706565722d616874617267657449646673657276657266666c6f61747386fb3ff8000000000000fb8000000000000000fb7e37e43c8800759cfb7ff0000000000000fbfff0000000000000fb7ff800000000000064696e7473940017181818ff19010019ffff1a000100001affffffff1b00000001000000001bffffffffffffffff2037381838ff3901003a000100003affffffff3bfffffffffffffffffb4450000000000000fbc450000000000000646d69736389f6f5f4607829612074657874206c6f6e676572207468616e207477656e74792d74687265652062797465732c20c3a940581807070707070707070707070707070707070707070707070780a0666e6573746564a165696e6e657281a1616b22",
];

#[test]
fn encoding_is_byte_identical_to_the_original_writer() {
    let messages = golden_messages();
    let kinds: std::collections::BTreeSet<_> = messages
        .iter()
        .map(|m| match m {
            Message::Extension { .. } => "extension",
            other => other.type_name(),
        })
        .collect();
    assert_eq!(kinds.len(), Message::TYPE_NAMES.len() + 1, "every kind");
    assert_eq!(messages.len(), GOLDEN.len());
    for (msg, golden) in messages.iter().zip(GOLDEN) {
        assert_eq!(hex::encode(encode(msg)), golden, "{msg:?}");
    }
}
