//! Entry points of the fuzz targets, shared with the corpus replay test.
//!
//! Each `fuzz_targets/<name>.rs` calls the function of the same name, and
//! `tests/fuzz_corpus.rs` in the main crate includes this very file (with
//! `#[path]`) and feeds every file of `fuzz/corpus/<name>/` through it, so CI
//! replays the corpus without libFuzzer. Keep this file free of anything the
//! main crate's tests cannot compile: only `permitsync`, `automerge` and `sha2`.
//!
//! Besides "never panics", the targets check a few properties the library
//! documents: an encoded wire message decodes to the same message, a failed
//! bundle import stores nothing, the incrementally maintained view equals one
//! rebuilt from scratch and does not depend on the order changes arrive in,
//! and every frame a session sends decodes.

use std::sync::{Arc, OnceLock};

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Automerge, ObjId, ObjType, ReadDoc, ScalarValue, ROOT};
use sha2::{Digest, Sha256};

use permitsync::model::{EntityId, IsolationStatus};
use permitsync::node::Access;
use permitsync::store::{Backend, BatchOp, FixedClock, MemBackend, Pair, Store, StoreOptions};
use permitsync::sync::{extension, Role, Session, SessionConfig};
use permitsync::view::{CrossRefs, History, View};
use permitsync::wire::{self, DocumentId, Limits, Message, PROTOCOL_V1};
use permitsync::write::{Edit, NewCloseout, NewGasReading, NewIsolationPoint, NewPermit};
use permitsync::{bundle, EntityDoc};

/// The names of the fuzz targets, which are also the corpus folders.
pub const TARGETS: [&str; 5] = ["wire", "bundle", "doc_load", "doc_ops", "session"];

/// Runs the entry point of `target` on `data`. Unknown targets do nothing.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "wire" => wire(data),
        "bundle" => bundle(data),
        "doc_load" => doc_load(data),
        "doc_ops" => doc_ops(data),
        "session" => session(data),
        _ => {}
    }
}

// ---- fixtures -------------------------------------------------------------

/// The permit every fixture store holds.
const PERMIT: [u8; 16] = [0x11; 16];
/// An isolation point of [`PERMIT`].
const ISOLATION_POINT: [u8; 16] = [0x22; 16];
/// A closeout of [`PERMIT`].
const CLOSEOUT: [u8; 16] = [0x33; 16];
/// An id no fixture store holds.
const UNKNOWN: [u8; 16] = [0x44; 16];

fn eid(bytes: [u8; 16]) -> EntityId {
    EntityId::from_bytes(bytes)
}

const NOW_MS: i64 = 1_700_000_000_000;

/// An in-memory store holding `pairs`, whose device is `device` and whose
/// Automerge actor (and node id) is made of the device name's bytes, so runs
/// are repeatable.
fn store_with(device: &str, pairs: &[Pair]) -> Store {
    let backend = MemBackend::new();
    let mut batch: Vec<BatchOp> = pairs
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    batch.push((b"meta/actor".to_vec(), Some(device.as_bytes().to_vec())));
    batch.push((b"meta/device".to_vec(), Some(device.as_bytes().to_vec())));
    backend.apply(batch).expect("fill an in-memory backend");
    let opts = StoreOptions {
        clock: Arc::new(FixedClock(NOW_MS)),
        actor: Some(ActorId::from(device.as_bytes())),
        ..StoreOptions::default()
    };
    Store::with_backend(Arc::new(backend), opts).expect("an in-memory store opens")
}

/// An empty in-memory store with a fixed clock, device and actor.
fn mem_store(device: &str) -> Store {
    store_with(device, &[])
}

/// A store with [`PERMIT`] (submitted, with a gas reading), [`ISOLATION_POINT`]
/// and [`CLOSEOUT`]: a copy of one built once per process.
fn fixture_store(device: &str) -> Store {
    static PAIRS: OnceLock<Vec<Pair>> = OnceLock::new();
    let pairs = PAIRS.get_or_init(|| {
        build_fixture_store()
            .backend()
            .scan_prefix(b"", None, usize::MAX)
            .expect("scan the fixture store")
            .into_iter()
            .filter(|(k, _)| !k.starts_with(b"meta/"))
            .collect()
    });
    store_with(device, pairs)
}

fn build_fixture_store() -> Store {
    let store = mem_store("fixture");
    store
        .create_permit(NewPermit {
            id: Some(eid(PERMIT)),
            title: "Replace pump seal".into(),
            location: "Pump house 2".into(),
            work_type: "hot_work".into(),
            description: "Drain, isolate, replace".into(),
            ppe_requirements: vec!["helmet".into(), "gloves".into()],
            safety_checklist: vec!["isolation confirmed".into()],
        })
        .expect("create the fixture permit");
    let edits = [
        Edit::SetStatus("submitted".into()),
        Edit::AddGasReading(NewGasReading {
            id: Some(uuid_of(0x55)),
            gas: "O2".into(),
            value: 20.9,
            unit: "%".into(),
            min: 19.5,
            max: 23.5,
            taken_at: Some(NOW_MS),
        }),
        Edit::Tick {
            field: "safety_checklist".into(),
            item: "isolation confirmed".into(),
            ticked: true,
        },
    ];
    for edit in edits {
        store
            .edit(eid(PERMIT), edit)
            .expect("edit the fixture permit");
    }
    store
        .create_isolation_point(NewIsolationPoint {
            id: Some(eid(ISOLATION_POINT)),
            permit_id: eid(PERMIT),
            description: "Valve V-12".into(),
            lock_ids: vec!["L-1".into()],
        })
        .expect("create the fixture isolation point");
    store
        .create_closeout(NewCloseout {
            id: Some(eid(CLOSEOUT)),
            permit_id: eid(PERMIT),
            checklist: vec!["area clean".into()],
            notes: "ok".into(),
        })
        .expect("create the fixture closeout");
    store
}

fn uuid_of(byte: u8) -> uuid::Uuid {
    uuid::Uuid::from_bytes([byte; 16])
}

/// Saved bytes of the three fixture documents, made once.
fn fixture_docs() -> &'static [(EntityId, Vec<u8>); 3] {
    static DOCS: OnceLock<[(EntityId, Vec<u8>); 3]> = OnceLock::new();
    DOCS.get_or_init(|| {
        let store = fixture_store("fixture");
        [PERMIT, ISOLATION_POINT, CLOSEOUT].map(eid).map(|id| {
            let bytes = store.save_doc(id).expect("save a fixture document");
            (id, bytes)
        })
    })
}

/// Cross-document facts for rendering, chosen by `pick`.
fn cross_refs(pick: u8) -> CrossRefs {
    let statuses = [
        None,
        Some(IsolationStatus::Assigned),
        Some(IsolationStatus::Verified),
        Some(IsolationStatus::Deisolated),
    ];
    let mut refs = CrossRefs::default();
    if pick & 1 != 0 {
        refs.isolation_points
            .push((eid(ISOLATION_POINT), statuses[usize::from(pick >> 1) % 4]));
        refs.isolation_points.push((eid(UNKNOWN), statuses[2]));
    }
    if pick & 8 != 0 {
        refs.closeouts.push((eid(CLOSEOUT), pick & 16 != 0));
    }
    refs
}

/// Everything a caller may do with a view.
fn use_view(view: &View) -> String {
    let _ = view.permit_status();
    let _ = view.isolation_status();
    let _ = view.is_deleted();
    for field in ["status", "title", "type", "permit_id"] {
        let _ = view.str_field(field);
    }
    view.to_json_string()
}

/// Renders an entity document's view and reads its history.
fn render(doc: &EntityDoc, pick: u8) -> String {
    let history = doc.history();
    let _ = history.entity_type();
    let _ = history.change_count();
    for head in doc.heads() {
        let _ = history.rejections_in(&head);
    }
    let _ = use_view(&doc.view(&cross_refs(pick)));
    use_view(&doc.view(&CrossRefs::default()))
}

/// Reads everything a store shows about its documents.
fn use_store(store: &Store) {
    let summaries = store.summaries().expect("summaries of an in-memory store");
    for s in summaries {
        let view = store.view(s.id).expect("the view of a stored document");
        let _ = use_view(&view);
        let _ = store.cross_refs(s.id);
    }
    let _ = store.conflicts().expect("conflicts of an in-memory store");
}

// ---- wire -----------------------------------------------------------------

/// The wire decoder: arbitrary bytes as one frame. A decoded message must
/// encode to a frame that decodes to the same message.
pub fn wire(data: &[u8]) {
    let _ = wire::decode(
        data,
        &Limits {
            max_frame_bytes: 64,
        },
    );
    let Ok(msg) = wire::decode(data, &Limits::default()) else {
        return;
    };
    let _ = (msg.type_name(), msg.sender_id(), msg.target_id());
    if let Some(doc) = msg.document_id() {
        let text = doc.to_string();
        let again: DocumentId = text.parse().expect("a document id parses back");
        assert_eq!(&again, doc);
    }
    let frame = wire::encode(&msg);
    let again = wire::decode(&frame, &Limits::default()).expect("an encoded message decodes");
    assert_eq!(again, msg, "wire round trip changed the message");
}

// ---- bundle ---------------------------------------------------------------

/// Bundle import. The first byte picks the mode: bit 0 set means the rest is a
/// bundle without its checksum (the target appends a correct SHA-256, so the
/// fuzzer gets past it), bit 1 set imports into a store that already holds the
/// fixture documents. A failed import must leave the store unchanged.
pub fn bundle(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 != 0 {
        bytes.extend_from_slice(&Sha256::digest(rest));
    }
    let _ = bundle::decode(&bytes);
    let store = if mode & 2 != 0 {
        fixture_store("fuzz")
    } else {
        mem_store("fuzz")
    };
    let before = (
        store.feed_head(),
        store.summaries().expect("summaries").len(),
    );
    match bundle::import(&store, &bytes) {
        Ok(report) => {
            assert!(report.created <= report.documents);
            use_store(&store);
            // what was imported exports and imports again
            let exported = bundle::export(&store, None, 0).expect("export after import");
            let other = mem_store("other");
            bundle::import(&other, &exported).expect("re-import an exported bundle");
        }
        Err(_) => {
            let after = (
                store.feed_head(),
                store.summaries().expect("summaries").len(),
            );
            assert_eq!(before, after, "a failed bundle import changed the store");
        }
    }
}

// ---- doc_load -------------------------------------------------------------

fn actor(n: u8) -> ActorId {
    ActorId::from([n; 16].as_slice())
}

/// Arbitrary bytes as a saved document or change chunk: `Automerge::load`,
/// `EntityDoc::load_incremental` (whole, and split in two at a point the
/// first byte picks), the history and the view, and `Store::apply_changes`.
pub fn doc_load(data: &[u8]) {
    let pick = data.first().copied().unwrap_or(0);
    if let Ok(doc) = Automerge::load(data) {
        let changes = doc.get_changes(&[]);
        let history = History::from_changes(changes.clone());
        let _ = (history.entity_type(), history.change_count());
        let mut entity = EntityDoc::new(eid(PERMIT), actor(1));
        if entity.apply_changes(changes.clone()).is_ok() {
            render(&entity, pick);
        }
        let store = fixture_store("fuzz");
        for id in [PERMIT, UNKNOWN, ISOLATION_POINT].map(eid) {
            let _ = store.apply_changes(id, changes.clone());
        }
        use_store(&store);
    }
    let mut entity = EntityDoc::new(eid(PERMIT), actor(1));
    if entity.load_incremental(data).is_ok() {
        render(&entity, pick);
    }
    // onto an existing permit, in two chunks
    let (_, permit) = &fixture_docs()[0];
    let Ok(mut entity) = EntityDoc::load(eid(PERMIT), actor(1), &[permit]) else {
        panic!("the fixture permit loads");
    };
    let split = if data.is_empty() {
        0
    } else {
        usize::from(pick) % (data.len() + 1)
    };
    let (a, b) = data.split_at(split);
    for chunk in [a, b] {
        if entity.load_incremental(chunk).is_ok() {
            render(&entity, pick);
        }
    }
    let _ = EntityDoc::load(eid(UNKNOWN), actor(2), &[a, b]).map(|d| render(&d, pick));
}

// ---- doc_ops --------------------------------------------------------------

/// A cursor over the fuzzer's bytes; reads zeros once they run out.
struct Bytes<'a> {
    data: &'a [u8],
}

impl Bytes<'_> {
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        let mut buf = [0u8; 8];
        for b in &mut buf {
            *b = self.u8();
        }
        u64::from_le_bytes(buf)
    }

    fn pick<'s, T: ?Sized>(&mut self, items: &[&'s T]) -> &'s T {
        items[usize::from(self.u8()) % items.len()]
    }

    /// A small signed number, mostly, or any 64-bit value.
    fn int(&mut self) -> i64 {
        match self.u8() % 4 {
            0 => i64::from(self.u8() as i8),
            1 => NOW_MS + i64::from(self.u8() as i8) * 1000,
            2 => [i64::MIN, i64::MAX, -1, 0][usize::from(self.u8()) % 4],
            _ => self.u64() as i64,
        }
    }
}

/// Root keys of every entity type, and a few others.
const ROOT_KEYS: [&str; 20] = [
    "type",
    "created_at",
    "created_by",
    "deleted",
    "title",
    "location",
    "work_type",
    "description",
    "ppe_requirements",
    "safety_checklist",
    "status",
    "gas_readings",
    "photos",
    "permit_id",
    "lock_ids",
    "checklist",
    "completed",
    "notes",
    "extra",
    "",
];

/// Keys inside maps: entry fields, set items, entry ids.
const INNER_KEYS: [&str; 16] = [
    "gas",
    "value",
    "unit",
    "min",
    "max",
    "taken_at",
    "taken_by",
    "sha256",
    "mime",
    "size",
    "caption",
    "helmet",
    "isolation confirmed",
    "55555555-5555-5555-5555-555555555555",
    "66666666-6666-6666-6666-666666666666",
    "x",
];

/// String values: statuses, type names, ids, gases, edge cases.
const STRINGS: [&str; 24] = [
    "draft",
    "submitted",
    "approved",
    "active",
    "suspended",
    "completed",
    "closed",
    "cancelled",
    "assigned",
    "isolated",
    "verified",
    "deisolated",
    "permit",
    "isolation_point",
    "closeout",
    "11111111-1111-1111-1111-111111111111",
    "22222222-2222-2222-2222-222222222222",
    "not-a-uuid",
    "O2",
    "H2S",
    "%",
    "",
    "ü\u{1F525}\u{0}",
    "fuzz",
];

fn scalar(b: &mut Bytes<'_>) -> ScalarValue {
    match b.u8() % 11 {
        0 | 1 => ScalarValue::Str(b.pick(&STRINGS).into()),
        2 => ScalarValue::Int(b.int()),
        3 => ScalarValue::Uint(b.int() as u64),
        4 => ScalarValue::F64(match b.u8() % 4 {
            0 => f64::NAN,
            1 => f64::INFINITY,
            2 => b.int() as f64 / 10.0,
            _ => f64::from_bits(b.u64()),
        }),
        5 => ScalarValue::Boolean(b.u8() & 1 != 0),
        6 => ScalarValue::Timestamp(b.int()),
        7 => ScalarValue::counter(b.int()),
        8 => ScalarValue::Null,
        9 => ScalarValue::Bytes(vec![b.u8(); usize::from(b.u8() % 4)]),
        // a value type from a future automerge: codes 10 to 15 (0 to 9 are
        // known types; a local `Unknown` with a known code makes automerge
        // 0.12 panic in `get_changes`, which no peer's bytes can produce)
        _ => ScalarValue::Unknown {
            type_code: 10 + b.u8() % 6,
            bytes: vec![b.u8()],
        },
    }
}

fn obj_type(b: &mut Bytes<'_>) -> ObjType {
    [ObjType::Map, ObjType::Text, ObjType::List][usize::from(b.u8()) % 3]
}

/// The document's objects up to three levels deep, root first.
fn objects(doc: &AutoCommit) -> Vec<(ObjId, ObjType)> {
    let mut out = vec![(ROOT, ObjType::Map)];
    let mut i = 0;
    while i < out.len() && out.len() < 64 {
        let (obj, ty) = out[i].clone();
        i += 1;
        if i > 16 {
            break;
        }
        let children: Vec<(ObjId, ObjType)> = match ty {
            ObjType::Map | ObjType::Table => doc
                .keys(&obj)
                .filter_map(|k| match doc.get(&obj, k.as_str()) {
                    Ok(Some((automerge::Value::Object(t), id))) => Some((id, t)),
                    _ => None,
                })
                .collect(),
            ObjType::List => (0..doc.length(&obj).min(8))
                .filter_map(|n| match doc.get(&obj, n) {
                    Ok(Some((automerge::Value::Object(t), id))) => Some((id, t)),
                    _ => None,
                })
                .collect(),
            ObjType::Text => Vec::new(),
        };
        out.extend(children);
    }
    out
}

/// One random edit, written with raw automerge (as any peer could). Errors
/// (wrong object type, out-of-range index) are ignored: automerge refuses them.
fn random_op(doc: &mut AutoCommit, b: &mut Bytes<'_>) {
    let objs = objects(doc);
    let (obj, ty) = objs[usize::from(b.u8()) % objs.len()].clone();
    let at_root = obj == ROOT;
    let key = if at_root {
        b.pick(&ROOT_KEYS)
    } else {
        b.pick(&INNER_KEYS)
    };
    let len = doc.length(&obj);
    let index = usize::from(b.u8()) % (len + 1);
    let _ = match (b.u8() % 8, ty) {
        (0 | 1, ObjType::Map) => doc.put(&obj, key, scalar(b)),
        (2, ObjType::Map) => doc.put_object(&obj, key, obj_type(b)).map(drop),
        // a string the JavaScript way: a new Text object with its characters
        (3, ObjType::Map) => doc
            .put_object(&obj, key, ObjType::Text)
            .and_then(|t| doc.splice_text(&t, 0, 0, b.pick(&STRINGS))),
        (4, ObjType::Map) => doc.delete(&obj, key),
        (5, ObjType::Map) => doc.increment(&obj, key, b.int()),
        (_, ObjType::Map) => {
            let inner = doc.put_object(&obj, key, ObjType::Map);
            inner.and_then(|m| {
                for _ in 0..b.u8() % 4 {
                    let k = b.pick(&INNER_KEYS);
                    doc.put(&m, k, scalar(b))?;
                }
                Ok(())
            })
        }
        (0..=3, ObjType::Text) => {
            let del = isize::from(b.u8() % 4);
            doc.splice_text(&obj, index, del, b.pick(&STRINGS))
        }
        (_, ObjType::Text) => doc.delete(&obj, index),
        (0 | 1, _) => doc.insert(&obj, index, scalar(b)),
        (2, _) => doc.insert_object(&obj, index, obj_type(b)).map(drop),
        (3, _) => doc.put(&obj, index, scalar(b)),
        (4, _) => doc.increment(&obj, index, b.int()),
        _ => doc.delete(&obj, index),
    };
}

/// Random valid automerge operations on a permit (or isolation point, or
/// closeout) from three concurrent actors, with commits and merges in
/// between, then the view. Checks that the incrementally maintained history
/// gives the same view as one rebuilt from the saved document, whatever the
/// order the actors' changes arrive in, and that the store takes the changes.
pub fn doc_ops(data: &[u8]) {
    let mut b = Bytes { data };
    let (id, base) = &fixture_docs()[usize::from(b.u8()) % 3];
    let pick = b.u8();
    let Ok(mut first) = AutoCommit::load(base) else {
        panic!("a fixture document loads");
    };
    let mut forks: Vec<AutoCommit> = (1..=3).map(|n| first.fork().with_actor(actor(n))).collect();
    let mut steps = 0;
    while !b.is_empty() && steps < 256 {
        steps += 1;
        let op = b.u8();
        let who = usize::from(op >> 4) % forks.len();
        match op % 16 {
            0 => {
                let _ = forks[who].commit();
            }
            1 => {
                let from = usize::from(b.u8()) % forks.len();
                if from != who {
                    let mut other = std::mem::replace(&mut forks[from], AutoCommit::new());
                    let _ = forks[who].merge(&mut other);
                    forks[from] = other;
                }
            }
            _ => random_op(&mut forks[who], &mut b),
        }
    }
    let changes: Vec<Vec<automerge::Change>> =
        forks.iter_mut().map(|f| f.get_changes(&[])).collect();

    // incrementally, in the actors' order, rendering after each
    let Ok(mut forward) = EntityDoc::load(*id, actor(9), &[base]) else {
        panic!("a fixture document loads");
    };
    for c in &changes {
        forward
            .apply_changes(c.clone())
            .expect("valid automerge changes apply");
        render(&forward, pick);
    }
    let view = render(&forward, pick);

    // the same from scratch
    let rebuilt = EntityDoc::load(*id, actor(9), &[&forward.save()]).expect("a saved doc loads");
    assert_eq!(
        view,
        render(&rebuilt, pick),
        "incremental view differs from the rebuilt one"
    );

    // the other way round, one change at a time
    let Ok(mut backward) = EntityDoc::load(*id, actor(9), &[base]) else {
        panic!("a fixture document loads");
    };
    for c in changes.iter().rev() {
        for change in c {
            // a change whose dependencies are missing waits in automerge's queue
            backward
                .apply_changes(vec![change.clone()])
                .expect("valid automerge changes apply");
        }
    }
    assert_eq!(
        view,
        render(&backward, pick),
        "the view depends on the order changes arrived in"
    );

    // and through the store, onto its own copy of the fixtures
    let store = fixture_store("fuzz");
    for c in &changes {
        let _ = store.apply_changes(*id, c.clone());
    }
    use_store(&store);
}

// ---- session --------------------------------------------------------------

fn encode_checked(msg: &Message) -> Vec<u8> {
    let frame = wire::encode(msg);
    let again = wire::decode(&frame, &Limits::default()).expect("a sent frame decodes");
    assert_eq!(&again, msg, "a sent frame does not decode to what was sent");
    frame
}

fn session_config(peer: &str, role: Role) -> SessionConfig {
    SessionConfig {
        local_peer: peer.into(),
        role,
        access: Access::open(peer),
        limits: Limits::default(),
        feed_page: 2,
    }
}

/// Frames for a session after its handshake. The first byte picks the role
/// (bit 0: client, else server) and whether the peer is read-only (bit 1).
/// The rest is a list of `(tag, length u16 le, bytes)`; the tag's low two bits
/// say what the bytes are: 0 a raw frame, 1 the data of a `sync` message, 2
/// the data of a `request`, 3 a local change of the document (`on_doc_changed`).
/// The tag's next bits pick the document id. Every frame the session sends
/// must decode.
pub fn session(data: &[u8]) {
    let mut b = Bytes { data };
    let mode = b.u8();
    let role = if mode & 1 != 0 {
        Role::Client
    } else {
        Role::Server
    };
    let mut cfg = session_config("node", role);
    cfg.access.read_only = mode & 2 != 0;
    let mut s = Session::new(cfg, fixture_store("node"));
    let mut sent = s.start().send;
    let handshake = match role {
        Role::Server => Message::Join {
            sender_id: "peer".into(),
            peer_metadata: Some(extension::metadata("peer")),
            supported_protocol_versions: vec![PROTOCOL_V1.into()],
        },
        Role::Client => Message::Peer {
            sender_id: "peer".into(),
            target_id: "node".into(),
            peer_metadata: Some(extension::metadata("peer")),
            selected_protocol_version: PROTOCOL_V1.into(),
        },
    };
    let out = s.on_frame(&wire::encode(&handshake));
    sent.extend(out.send);
    assert!(s.is_ready(), "the handshake completes");
    let ids = [PERMIT, ISOLATION_POINT, UNKNOWN, CLOSEOUT].map(eid);
    let mut frames = 0;
    while !b.is_empty() && frames < 64 {
        frames += 1;
        let tag = b.u8();
        let len = usize::from(u16::from_le_bytes([b.u8(), b.u8()])).min(b.data.len());
        let (chunk, rest) = b.data.split_at(len);
        b.data = rest;
        let id = ids[usize::from(tag >> 2) % ids.len()];
        let routing = |data: Vec<u8>| {
            (
                "peer".into(),
                "node".into(),
                DocumentId::from(id.uuid()),
                data,
            )
        };
        let out = match tag % 4 {
            0 => s.on_frame(chunk),
            1 => {
                let (sender_id, target_id, document_id, data) = routing(chunk.to_vec());
                s.on_frame(&wire::encode(&Message::Sync {
                    sender_id,
                    target_id,
                    document_id,
                    data,
                }))
            }
            2 => {
                let (sender_id, target_id, document_id, data) = routing(chunk.to_vec());
                s.on_frame(&wire::encode(&Message::Request {
                    sender_id,
                    target_id,
                    document_id,
                    data,
                }))
            }
            _ => s.on_doc_changed(id),
        };
        let closed = out.close.is_some();
        sent.extend(out.send);
        let _ = (s.pending(), s.docs_sent(), s.is_idle(), s.remote_peer());
        if closed {
            break;
        }
    }
    for msg in &sent {
        encode_checked(msg);
    }
}

// ---- seeds ----------------------------------------------------------------

/// A `session` input frame: tag, little-endian u16 length, bytes.
fn session_frame(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.push(tag);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&bytes[..usize::from(len)]);
}

/// Runs a client and a server session over two stores until quiet and
/// returns every frame the client sent after its `join`.
fn client_frames() -> Vec<Message> {
    let client_store = fixture_store("client");
    let server_store = mem_store("server");
    // the server has a permit of its own, so documents flow both ways
    let other = server_store
        .create_permit(NewPermit {
            id: Some(EntityId::from_bytes([0x66; 16])),
            title: "Other".into(),
            ..NewPermit::default()
        })
        .expect("create a permit");
    let _ = server_store.edit(other, Edit::Delete);
    let mut client = Session::new(session_config("peer", Role::Client), client_store);
    let mut server = Session::new(session_config("node", Role::Server), server_store);
    let mut to_server = client.start().send;
    let mut recorded = Vec::new();
    let mut first = true;
    for _ in 0..64 {
        if to_server.is_empty() {
            break;
        }
        let mut to_client = Vec::new();
        for msg in to_server.drain(..) {
            if !first {
                recorded.push(msg.clone());
            }
            first = false;
            to_client.extend(server.on_frame(&wire::encode(&msg)).send);
        }
        for msg in to_client {
            to_server.extend(client.on_frame(&wire::encode(&msg)).send);
        }
    }
    recorded
}

/// Valid inputs for each target, made with the library: `(target, name, bytes)`.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let docs = fixture_docs();

    // wire: the messages of a real sync, and one of each other kind
    let frames = client_frames();
    let doc_id = DocumentId::from(eid(PERMIT).uuid());
    let mut messages = frames.clone();
    messages.push(Message::Join {
        sender_id: "peer".into(),
        peer_metadata: Some(extension::metadata("peer")),
        supported_protocol_versions: vec![PROTOCOL_V1.into()],
    });
    messages.push(Message::Peer {
        sender_id: "node".into(),
        target_id: "peer".into(),
        peer_metadata: None,
        selected_protocol_version: PROTOCOL_V1.into(),
    });
    messages.push(Message::Leave {
        sender_id: "peer".into(),
    });
    messages.push(Message::Error {
        message: "bad".into(),
    });
    messages.push(Message::DocUnavailable {
        sender_id: "peer".into(),
        target_id: "node".into(),
        document_id: doc_id,
    });
    messages.push(Message::Ephemeral {
        sender_id: "peer".into(),
        target_id: "node".into(),
        document_id: doc_id,
        count: 3,
        session_id: "s".into(),
        data: vec![0xa0],
    });
    messages.push(Message::RemoteSubscriptionChange {
        sender_id: "peer".into(),
        target_id: "node".into(),
        add: vec!["storage-a".into()],
        remove: vec![],
    });
    messages.push(Message::RemoteHeadsChanged {
        sender_id: "peer".into(),
        target_id: "node".into(),
        document_id: doc_id,
        new_heads: [("storage-a".to_string(), (vec!["ab".to_string()], 5))].into(),
    });
    messages.push(extension::feed_request(
        &"peer".into(),
        &"node".into(),
        extension::FeedRequest {
            cursor: 0,
            limit: 100,
            inline: true,
        },
    ));
    for (i, msg) in messages.iter().enumerate() {
        out.push((
            "wire",
            format!("seed-{i:02}-{}", msg.type_name()),
            wire::encode(msg),
        ));
    }

    // bundle: checksum appended by the target (mode 1) and complete (mode 0)
    let entries: Vec<bundle::BundleEntry> = docs
        .iter()
        .map(|(id, bytes)| bundle::BundleEntry {
            id: *id,
            bytes: bytes.clone(),
        })
        .collect();
    for (name, slice) in [("all", &entries[..]), ("permit", &entries[..1])] {
        let full = bundle::encode(slice).expect("encode a bundle");
        let body = &full[..full.len() - 32];
        for mode in [1u8, 3] {
            let mut seed = vec![mode];
            seed.extend_from_slice(body);
            out.push(("bundle", format!("seed-{name}-mode{mode}"), seed));
        }
        let mut seed = vec![0u8];
        seed.extend_from_slice(&full);
        out.push(("bundle", format!("seed-{name}-mode0"), seed));
    }

    // doc_load: saved documents, an incremental chunk, a change
    for (i, (_, bytes)) in docs.iter().enumerate() {
        out.push(("doc_load", format!("seed-doc-{i}"), bytes.clone()));
    }
    let store = fixture_store("seed");
    let heads = store.heads(eid(PERMIT)).expect("heads");
    store
        .edit(eid(PERMIT), Edit::SetStatus("approved".into()))
        .expect("approve");
    let changes = store.changes_since(eid(PERMIT), &heads).expect("changes");
    for (i, change) in changes.iter().enumerate() {
        out.push((
            "doc_load",
            format!("seed-change-{i}"),
            change.raw_bytes().to_vec(),
        ));
    }

    // doc_ops: a few op scripts for each document
    let scripts: [&[u8]; 4] = [
        &[
            0, 7, 0x02, 0, 0, 0, 0, 0, 0, 0x00, 0x12, 3, 10, 0, 3, 3, 0x10,
        ],
        &[
            1, 1, 0x03, 0, 10, 0, 3, 1, 0x13, 0, 10, 0, 3, 4, 0x01, 1, 0x11, 0,
        ],
        &[2, 9, 0x02, 0, 16, 0, 5, 1, 0x22, 0, 3, 0, 4, 0x20, 0x01, 2],
        &[0, 3, 0x02, 0, 11, 0, 6, 0, 0x02, 1, 0, 0, 3, 0x00],
    ];
    for (i, script) in scripts.iter().enumerate() {
        out.push(("doc_ops", format!("seed-{i}"), script.to_vec()));
    }

    // session: the client's frames of a real sync, raw and as sync data
    for mode in [0u8, 2] {
        let mut raw = vec![mode];
        let mut data = vec![mode];
        for msg in &frames {
            session_frame(&mut raw, 0, &wire::encode(msg));
            if let Message::Sync { data: d, .. } | Message::Request { data: d, .. } = msg {
                session_frame(&mut data, 1, d);
            }
        }
        out.push(("session", format!("seed-raw-mode{mode}"), raw));
        out.push(("session", format!("seed-data-mode{mode}"), data));
    }
    let mut client = vec![1u8];
    session_frame(&mut client, 3, &[]);
    out.push(("session", "seed-client".into(), client));
    out
}
