//! Property tests: the decoder never panics, and encoding round-trips.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use super::{decode, encode, DocumentId, Limits, Message, PeerId, PeerMetadata, Value};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9_-]{0,12}",
        1 => ".{0,8}",
    ]
}

fn peer() -> impl Strategy<Value = PeerId> {
    text().prop_map(PeerId)
}

fn doc() -> impl Strategy<Value = DocumentId> {
    any::<[u8; 16]>().prop_map(DocumentId::from_bytes)
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..64)
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| Value::Int(i.into())),
        any::<u64>().prop_map(|i| Value::Int(i.into())),
        (-1e15f64..1e15).prop_map(Value::Float),
        text().prop_map(Value::Text),
        bytes().prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(text(), inner, 0..4).prop_map(Value::Map),
        ]
    })
}

fn metadata() -> impl Strategy<Value = Option<PeerMetadata>> {
    let extra = btree_map(text(), value(), 0..3).prop_map(|mut m| {
        m.remove("storageId");
        m.remove("isEphemeral");
        m
    });
    proptest::option::of(
        (proptest::option::of(text()), any::<bool>(), extra).prop_map(
            |(storage_id, is_ephemeral, extra)| PeerMetadata {
                storage_id,
                is_ephemeral,
                extra,
            },
        ),
    )
}

fn message() -> impl Strategy<Value = Message> {
    let heads = btree_map(text(), (vec(text(), 0..3), any::<u64>()), 0..3);
    prop_oneof![
        (peer(), metadata(), vec(text(), 0..3)).prop_map(|(s, m, v)| Message::Join {
            sender_id: s,
            peer_metadata: m,
            supported_protocol_versions: v,
        }),
        (peer(), peer(), metadata(), text()).prop_map(|(s, t, m, v)| Message::Peer {
            sender_id: s,
            target_id: t,
            peer_metadata: m,
            selected_protocol_version: v,
        }),
        peer().prop_map(|s| Message::Leave { sender_id: s }),
        text().prop_map(|message| Message::Error { message }),
        (peer(), peer(), doc(), bytes()).prop_map(|(s, t, d, data)| Message::Request {
            sender_id: s,
            target_id: t,
            document_id: d,
            data,
        }),
        (peer(), peer(), doc(), bytes()).prop_map(|(s, t, d, data)| Message::Sync {
            sender_id: s,
            target_id: t,
            document_id: d,
            data,
        }),
        (peer(), peer(), doc()).prop_map(|(s, t, d)| Message::DocUnavailable {
            sender_id: s,
            target_id: t,
            document_id: d,
        }),
        (peer(), peer(), doc(), any::<u64>(), text(), bytes()).prop_map(
            |(s, t, d, count, session_id, data)| Message::Ephemeral {
                sender_id: s,
                target_id: t,
                document_id: d,
                count,
                session_id,
                data,
            }
        ),
        (peer(), peer(), vec(text(), 0..3), vec(text(), 0..3)).prop_map(|(s, t, add, remove)| {
            Message::RemoteSubscriptionChange {
                sender_id: s,
                target_id: t,
                add,
                remove,
            }
        }),
        (peer(), peer(), doc(), heads).prop_map(|(s, t, d, new_heads)| {
            Message::RemoteHeadsChanged {
                sender_id: s,
                target_id: t,
                document_id: d,
                new_heads: new_heads.into_iter().collect::<BTreeMap<_, _>>(),
            }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(msg in message()) {
        let bytes = encode(&msg);
        prop_assert_eq!(decode(&bytes, &Limits::default()), Ok(msg));
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes, &Limits::default());
    }

    #[test]
    fn mutated_frames_never_panic(
        msg in message(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode(&msg);
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let _ = decode(&bytes, &Limits::default());
        let keep = cut.index(bytes.len() + 1);
        let _ = decode(&bytes[..keep], &Limits::default());
    }
}
