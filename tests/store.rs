//! Store behaviour on every storage engine (real sled files, a real
//! PostgreSQL: each test runs as `sled::NAME` and `postgres::NAME`):
//! durability across reopen, validated writes, indexes and cross-document
//! rules, the change feed, the cache and compaction, sync between two
//! stores, and bad input that must change nothing; group commit on sled.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, AutomergeError, ROOT};
use permitsync::bundle;
use permitsync::model::EntityId;
use permitsync::store::{
    Backend, BatchOp, Pair, SledBackend, StorageError, Store, StoreOptions, FORMAT_VERSION,
};
use permitsync::write::{Edit, NewCloseout, NewGasReading, NewIsolationPoint, NewPermit};
use permitsync::Error;

mod support;

use permitsync::node::Access;
use permitsync::sync::Role;
use support::engine::{Engine, Kind};
use support::session::{pump, session};

engine_tests!(sled, postgres;
    everything_written_is_there_after_reopen,
    invalid_writes_are_refused_with_a_clear_error_and_change_nothing,
    isolation_status_never_goes_back_and_children_need_their_permit,
    cross_document_rules_are_reported_as_violations,
    feed_lists_each_changed_document_once_in_write_order,
    documents_leave_memory_and_compact_without_losing_anything,
    bundles_carry_documents_between_stores,
    bad_bundles_are_refused_and_change_nothing,
    foreign_changes_with_missing_dependencies_or_no_type_are_refused,
    a_bundle_that_cannot_merge_imports_nothing,
    a_device_syncs_with_a_relay_and_resumes_after_the_relay_reopens,
    a_store_of_a_newer_format_is_refused_on_every_engine,
);

fn permit(store: &Store, title: &str) -> EntityId {
    store
        .create_permit(NewPermit {
            title: title.into(),
            location: "Unit 3".into(),
            work_type: "hot_work".into(),
            description: "Weld bracket".into(),
            ppe_requirements: vec!["gloves".into()],
            safety_checklist: vec!["fire watch".into()],
            ..Default::default()
        })
        .expect("create permit")
}

fn status(store: &Store, id: EntityId, s: &str) -> Result<(), Error> {
    store.edit(id, Edit::SetStatus(s.into())).map(|_| ())
}

fn tick(store: &Store, id: EntityId, item: &str) {
    store
        .edit(
            id,
            Edit::Tick {
                field: "safety_checklist".into(),
                item: item.into(),
                ticked: true,
            },
        )
        .expect("tick");
}

/// An in-range gas test: hot work needs one before activation.
fn gas_test(store: &Store, id: EntityId) {
    store
        .edit(
            id,
            Edit::AddGasReading(NewGasReading {
                gas: "LEL".into(),
                value: 2.0,
                unit: "%".into(),
                min: 0.0,
                max: 10.0,
                ..Default::default()
            }),
        )
        .expect("gas test");
}

/// A foreign client's status write, merged: never refused, whatever the
/// interlocks say (the view reports the rule as a violation instead).
fn merged_status(store: &Store, id: EntityId, s: &str) {
    let mut am = Automerge::load(&store.save_doc(id).expect("save")).expect("load");
    am.set_actor(ActorId::random());
    let heads = am.get_heads();
    am.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "status", s))
        .expect("raw write");
    store
        .apply_changes(id, am.get_changes(&heads))
        .expect("merge");
}

fn activate(store: &Store, id: EntityId) {
    tick(store, id, "fire watch");
    gas_test(store, id);
    for s in ["submitted", "approved", "active"] {
        status(store, id, s).expect(s);
    }
}

fn everything_written_is_there_after_reopen(kind: Kind) {
    let engine = kind.engine();
    let (id, before) = {
        let store = engine.open();
        let id = permit(&store, "Hot work");
        store
            .edit(
                id,
                Edit::SetText {
                    field: "description".into(),
                    text: "Weld the bracket".into(),
                },
            )
            .expect("text");
        activate(&store, id);
        (id, store.view(id).expect("view"))
    };
    let store = engine.open();
    let after = store.view(id).expect("view");
    assert_eq!(before.to_json_string(), after.to_json_string());
    assert_eq!(after.str_field("status"), Some("active"));
    assert_eq!(after.str_field("description"), Some("Weld the bracket"));
}

fn invalid_writes_are_refused_with_a_clear_error_and_change_nothing(kind: Kind) {
    let engine = kind.engine();
    let store = engine.open();
    let id = permit(&store, "Confined space");
    let heads = store.heads(id).expect("heads");
    let err = status(&store, id, "active").expect_err("draft -> active");
    assert_eq!(err.to_string(), "invalid transition draft -> active");
    assert_eq!(store.heads(id).expect("heads"), heads);

    status(&store, id, "submitted").expect("submit");
    status(&store, id, "approved").expect("approve");
    // hot work without a gas test: the interlock refuses, naming what is missing
    let err = status(&store, id, "active").expect_err("interlock");
    assert_eq!(
        err.to_string(),
        "cannot activate the permit: work type hot_work needs a gas test and none is recorded"
    );
    let approved = store.heads(id).expect("heads");
    assert!(status(&store, id, "active").is_err());
    assert_eq!(
        store.heads(id).expect("heads"),
        approved,
        "refused: nothing written"
    );
    gas_test(&store, id);
    // the checklist is not ticked: the guard fails
    let err = status(&store, id, "active").expect_err("guard");
    assert!(
        err.to_string()
            .starts_with("guard failed: safety checklist items not ticked"),
        "{err}"
    );
    tick(&store, id, "fire watch");
    store
        .edit(
            id,
            Edit::AddGasReading(NewGasReading {
                gas: "H2S".into(),
                value: 12.0,
                unit: "ppm".into(),
                min: 0.0,
                max: 10.0,
                ..Default::default()
            }),
        )
        .expect("reading");
    let err = status(&store, id, "active").expect_err("gas guard");
    assert_eq!(
        err.to_string(),
        "guard failed: gas H2S latest reading 12.0 outside [0, 10]"
    );
    assert_eq!(
        store.view(id).expect("view").str_field("status"),
        Some("approved")
    );

    let unknown = EntityId::new_random();
    let err = status(&store, unknown, "submitted").expect_err("unknown");
    assert_eq!(err.to_string(), format!("unknown entity {unknown}"));

    let err = store
        .edit(
            id,
            Edit::SetField {
                field: "permit_id".into(),
                value: "x".into(),
            },
        )
        .expect_err("not a permit field");
    assert!(err.to_string().contains("has no field permit_id"), "{err}");
}

fn isolation_status_never_goes_back_and_children_need_their_permit(kind: Kind) {
    let engine = kind.engine();
    let store = engine.open();
    let missing = EntityId::new_random();
    let err = store
        .create_isolation_point(NewIsolationPoint {
            id: None,
            permit_id: missing,
            description: "valve".into(),
            lock_ids: vec![],
        })
        .expect_err("no permit");
    assert!(matches!(err, Error::UnknownEntity(id) if id == missing));
    let p = permit(&store, "Pump");
    let iso = store
        .create_isolation_point(NewIsolationPoint {
            id: None,
            permit_id: p,
            description: "valve".into(),
            lock_ids: vec!["L1".into()],
        })
        .expect("iso");
    status(&store, iso, "verified").expect("verified");
    let err = status(&store, iso, "assigned").expect_err("regression");
    assert_eq!(
        err.to_string(),
        "status cannot go back: verified -> assigned"
    );
    assert_eq!(store.children(p).expect("children"), vec![iso]);
}

fn cross_document_rules_are_reported_as_violations(kind: Kind) {
    let engine = kind.engine();
    let store = engine.open();
    let p = permit(&store, "Line break");
    let iso = store
        .create_isolation_point(NewIsolationPoint {
            id: None,
            permit_id: p,
            description: "valve".into(),
            lock_ids: vec![],
        })
        .expect("iso");
    // a local activation with the valve only assigned is refused...
    let heads = store.heads(p).expect("heads");
    tick(&store, p, "fire watch");
    gas_test(&store, p);
    status(&store, p, "submitted").expect("submit");
    status(&store, p, "approved").expect("approve");
    let err = status(&store, p, "active").expect_err("interlock");
    assert_eq!(
        err.to_string(),
        "cannot activate the permit: isolation point \"valve\" is assigned, not verified"
    );
    assert_ne!(store.heads(p).expect("heads"), heads);
    // ...but an activation merged from another device is never refused: the
    // rule shows as a violation on every replica
    merged_status(&store, p, "active");
    let rules: Vec<String> = store
        .view(p)
        .expect("view")
        .violations
        .into_iter()
        .map(|v| v.rule)
        .collect();
    assert_eq!(rules, vec!["isolation_not_verified"]);
    status(&store, iso, "verified").expect("verify");
    assert!(store.view(p).expect("view").violations.is_empty());

    status(&store, p, "completed").expect("complete");
    let err = status(&store, p, "closed").expect_err("interlock");
    assert_eq!(
        err.to_string(),
        "cannot close the permit: the permit has no completed closeout"
    );
    merged_status(&store, p, "closed");
    let rules: Vec<String> = store
        .view(p)
        .expect("view")
        .violations
        .into_iter()
        .map(|v| v.rule)
        .collect();
    assert_eq!(rules, vec!["closeout_missing"]);
    let c = store
        .create_closeout(NewCloseout {
            id: None,
            permit_id: p,
            checklist: vec![],
            notes: "done".into(),
        })
        .expect("closeout");
    store
        .edit(
            c,
            Edit::SetFlag {
                field: "completed".into(),
                value: true,
            },
        )
        .expect("completed");
    assert!(store.view(p).expect("view").violations.is_empty());
}

fn feed_lists_each_changed_document_once_in_write_order(kind: Kind) {
    let engine = kind.engine();
    let store = engine.open();
    let a = permit(&store, "a");
    let b = permit(&store, "b");
    let cursor = store.feed_head();
    status(&store, a, "submitted").expect("a");
    status(&store, b, "submitted").expect("b");
    status(&store, a, "draft").expect("a again");
    let changed: Vec<EntityId> = store
        .feed_since(cursor, 100)
        .expect("feed")
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(changed, vec![b, a]);
    assert!(store
        .feed_since(store.feed_head(), 100)
        .expect("feed")
        .is_empty());
}

fn documents_leave_memory_and_compact_without_losing_anything(kind: Kind) {
    let engine = kind.engine();
    let opts = StoreOptions {
        cache_capacity: 2,
        compact_after_chunks: 3,
        ..Default::default()
    };
    let store = engine.open_with(opts);
    let ids: Vec<EntityId> = (0..6).map(|i| permit(&store, &format!("p{i}"))).collect();
    for (i, id) in ids.iter().enumerate() {
        for j in 0..7 {
            store
                .edit(
                    *id,
                    Edit::SetField {
                        field: "title".into(),
                        value: format!("p{i} v{j}"),
                    },
                )
                .expect("edit");
        }
    }
    assert!(
        store.cached_documents() <= 2,
        "{}",
        store.cached_documents()
    );
    drop(store);
    let store = engine.open();
    for (i, id) in ids.iter().enumerate() {
        let v = store.view(*id).expect("view");
        assert_eq!(v.str_field("title"), Some(format!("p{i} v6").as_str()));
    }
}

/// A sled backend (real files) whose flushes can be held, counting the
/// batches applied and the flushes started.
struct GatedSled {
    sled: SledBackend,
    held: Mutex<bool>,
    released: Condvar,
    applies: AtomicU64,
    flushes: AtomicU64,
}

impl GatedSled {
    fn open(path: &Path) -> GatedSled {
        GatedSled {
            sled: SledBackend::open(path).expect("open sled"),
            held: Mutex::new(false),
            released: Condvar::new(),
            applies: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        }
    }

    fn hold(&self, held: bool) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = held;
        self.released.notify_all();
    }
}

impl Backend for GatedSled {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.sled.get(key)
    }

    fn scan_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Pair>, StorageError> {
        self.sled.scan_prefix(prefix, after, limit)
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StorageError> {
        self.sled.last_with_prefix(prefix)
    }

    fn apply(&self, batch: Vec<BatchOp>) -> Result<(), StorageError> {
        self.sled.apply(batch)?;
        self.applies.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        while *held {
            held = self.released.wait(held).unwrap_or_else(|e| e.into_inner());
        }
        drop(held);
        self.sled.flush()
    }
}

/// Writers that wait for their flush at the same time share it (group
/// commit), and every write is durable. Each round holds the disk's flush
/// until all 8 writers have applied their write: the first writer's flush is
/// under way and the other 7 wait behind it, so one more flush covers them
/// all. One flush per write would take 8 per round. The flushes are counted
/// where they happen, in the backend.
#[test]
fn concurrent_writers_are_all_durable_and_share_flushes() {
    const WRITERS: usize = 8;
    const ROUNDS: usize = 5;
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = Arc::new(GatedSled::open(dir.path()));
    let store = Store::with_backend(disk.clone(), StoreOptions::default()).expect("open");
    let ids: Vec<EntityId> = (0..WRITERS)
        .map(|i| permit(&store, &format!("p{i}")))
        .collect();
    let edit = |store: &Store, id: EntityId, item: String| {
        store
            .edit(
                id,
                Edit::AddItem {
                    field: "ppe_requirements".into(),
                    item,
                },
            )
            .expect("edit")
    };
    let (flushes_before, counted_before) =
        (disk.flushes.load(Ordering::SeqCst), store.flush_count());
    for round in 0..ROUNDS {
        disk.hold(true);
        let applied_before = disk.applies.load(Ordering::SeqCst);
        let writers: Vec<_> = ids
            .iter()
            .map(|id| {
                let (store, id) = (store.clone(), *id);
                std::thread::spawn(move || edit(&store, id, format!("round{round}")))
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        while disk.applies.load(Ordering::SeqCst) < applied_before + WRITERS as u64 {
            assert!(
                Instant::now() < deadline,
                "round {round}: the writers did not apply their writes"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        disk.hold(false);
        for w in writers {
            w.join().expect("a writer");
        }
    }
    let flushes = disk.flushes.load(Ordering::SeqCst) - flushes_before;
    let writes = (WRITERS * ROUNDS) as u64;
    assert_eq!(
        store.flush_count() - counted_before,
        flushes,
        "Store::flush_count counts the backend's flushes"
    );
    // 2 a round when every waiting writer joined the second flush; a writer
    // that got to wait only after that flush started costs one more
    assert!(
        flushes <= writes / 2,
        "{writes} writes took {flushes} flushes: writers that wait at the same time do not \
         share flushes"
    );

    // and more writes, free running, from 8 threads at once
    let threads: Vec<_> = ids
        .iter()
        .map(|id| {
            let (store, id) = (store.clone(), *id);
            std::thread::spawn(move || {
                for j in 0..20 {
                    edit(&store, id, format!("item{j}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("join");
    }
    drop(store);
    drop(disk);
    let store = Store::open(dir.path()).expect("reopen");
    for id in ids {
        let v = store.view(id).expect("view");
        assert_eq!(
            v.fields["ppe_requirements"].as_array().expect("list").len(),
            1 + ROUNDS + 20
        );
    }
}

fn bundles_carry_documents_between_stores(kind: Kind) {
    let (a_engine, b_engine) = (kind.engine(), kind.engine());
    let (a, b) = (a_engine.open(), b_engine.open());
    let p = permit(&a, "Scaffold");
    activate(&a, p);
    let bytes = bundle::export(&a, None, 0).expect("export");
    let report = bundle::import(&b, &bytes).expect("import");
    assert_eq!((report.documents, report.created), (1, 1));
    assert_eq!(
        a.view(p).expect("a").to_json_string(),
        b.view(p).expect("b").to_json_string()
    );
    // importing again changes nothing
    let again = bundle::import(&b, &bytes).expect("again");
    assert_eq!(again.new_changes, 0);
}

fn snapshot(store: &Store) -> Vec<String> {
    store
        .summaries()
        .expect("summaries")
        .into_iter()
        .map(|s| store.view(s.id).expect("view").to_json_string())
        .collect()
}

fn bad_bundles_are_refused_and_change_nothing(kind: Kind) {
    let (a_engine, b_engine) = (kind.engine(), kind.engine());
    let (a, b) = (a_engine.open(), b_engine.open());
    permit(&a, "one");
    permit(&b, "already here");
    let good = bundle::export(&a, None, 0).expect("export");
    let before = snapshot(&b);

    let truncated = &good[..good.len() - 10];
    let err = bundle::import(&b, truncated).expect_err("truncated");
    assert!(err.to_string().starts_with("invalid bundle"), "{err}");

    let mut corrupted = good.clone();
    corrupted[30] ^= 0xff;
    let err = bundle::import(&b, &corrupted).expect_err("corrupted");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");

    let err =
        bundle::import(&b, "not a bundle at all. ".repeat(5).as_bytes()).expect_err("garbage");
    assert!(err.to_string().contains("wrong magic"), "{err}");

    // well-framed, but garbage Automerge bytes inside
    let garbage = bundle::encode(&[bundle::BundleEntry {
        id: EntityId::new_random(),
        bytes: vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3, 4, 5],
    }])
    .expect("encode");
    let err = bundle::import(&b, &garbage).expect_err("garbage automerge");
    assert!(err.to_string().contains("invalid automerge data"), "{err}");

    // a valid Automerge document of an unknown entity type
    let mut doc = Automerge::new();
    doc.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "type", "spaceship"))
        .expect("doc");
    let alien = bundle::encode(&[bundle::BundleEntry {
        id: EntityId::new_random(),
        bytes: doc.save(),
    }])
    .expect("encode");
    let err = bundle::import(&b, &alien).expect_err("unknown type");
    assert!(err.to_string().contains("no valid entity type"), "{err}");

    assert_eq!(snapshot(&b), before);
}

fn foreign_changes_with_missing_dependencies_or_no_type_are_refused(kind: Kind) {
    let engine = kind.engine();
    let store = engine.open();
    let p = permit(&store, "x");
    let mut doc = Automerge::load(&store.save_doc(p).expect("save")).expect("load");
    doc.set_actor(ActorId::random());
    let h0 = doc.get_heads();
    doc.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "title", "one"))
        .expect("one");
    let h1 = doc.get_heads();
    doc.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "title", "two"))
        .expect("two");
    let second_only = doc.get_changes(&h1);
    let before = store.view(p).expect("view").to_json_string();
    let err = store
        .apply_changes(p, second_only)
        .expect_err("missing deps");
    assert!(err.to_string().contains("depend on 1 change"), "{err}");
    assert_eq!(store.view(p).expect("view").to_json_string(), before);
    // with its dependency it applies
    let applied = store.apply_changes(p, doc.get_changes(&h0)).expect("apply");
    assert_eq!(applied.new_changes.len(), 2);
    assert_eq!(store.view(p).expect("view").str_field("title"), Some("two"));

    let mut untyped = Automerge::new();
    untyped
        .transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "title", "no type"))
        .expect("untyped");
    let stray = EntityId::new_random();
    let err = store
        .apply_changes(stray, untyped.get_changes(&[]))
        .expect_err("untyped");
    assert!(matches!(err, Error::UntypedDocument(_)));
    assert!(!store.contains(stray).expect("contains"));
}

/// Found by the bundle fuzz target: a bundle whose second document cannot
/// merge (its changes reuse an actor's sequence numbers with other content)
/// used to leave the first document imported.
fn a_bundle_that_cannot_merge_imports_nothing(kind: Kind) {
    let actor = ActorId::from([7u8; 16].as_slice());
    let with_actor = |engine: &Engine| {
        engine.open_with(StoreOptions {
            actor: Some(actor.clone()),
            ..StoreOptions::default()
        })
    };
    let (da, db) = (kind.engine(), kind.engine());
    let (a, b) = (with_actor(&da), with_actor(&db));
    let shared = EntityId::new_random();
    let new = |title: &str, id| NewPermit {
        id: Some(id),
        title: title.into(),
        ..Default::default()
    };
    a.create_permit(new("in a", shared)).expect("a's permit");
    let fresh = b
        .create_permit(new("only in b", EntityId::new_random()))
        .expect("b");
    b.create_permit(new("same id and actor, other content", shared))
        .expect("b's permit");
    let bytes = bundle::export(&b, None, 0).expect("export");
    let before = (a.feed_head(), a.summaries().expect("summaries").len());
    let err = bundle::import(&a, &bytes).expect_err("the bundle cannot merge");
    assert!(err.to_string().contains("does not merge"), "{err}");
    assert_eq!(
        before,
        (a.feed_head(), a.summaries().expect("summaries").len())
    );
    assert!(
        !a.contains(fresh).expect("contains"),
        "nothing of the bundle was imported"
    );
}

fn same_view(a: &Store, b: &Store, id: EntityId) {
    assert_eq!(
        a.view(id).expect("a").to_json_string(),
        b.view(id).expect("b").to_json_string()
    );
}

/// A device (sled) syncs its documents to a relay on this engine over the
/// sync protocol; the relay closes and opens again (a restart) and still
/// holds them; then each side edits a document, and the next sync moves
/// only those: the relay kept its feed, its cursors and the sync states.
fn a_device_syncs_with_a_relay_and_resumes_after_the_relay_reopens(kind: Kind) {
    let device_dir = tempfile::tempdir().expect("tempdir");
    let device = Store::open(device_dir.path()).expect("device");
    let relay_engine = kind.engine();
    let tablet = Access {
        tenant: "default".into(),
        device: "tablet".into(),
        read_only: false,
        roles: None,
        person: None,
    };
    let ids: Vec<EntityId> = (0..5).map(|i| permit(&device, &format!("p{i}"))).collect();
    activate(&device, ids[4]);
    {
        let relay = relay_engine.open();
        let first = pump(
            &mut session(&device, Role::Client, "tablet", Access::open("relay")),
            &mut session(&relay, Role::Server, "relay", tablet.clone()),
        );
        assert!(first.closed().is_none(), "{first:?}");
        for id in &ids {
            same_view(&device, &relay, *id);
        }
    }
    let relay = relay_engine.open();
    for id in &ids {
        same_view(&device, &relay, *id);
    }
    assert_eq!(relay.feed_since(0, 100).expect("feed").len(), ids.len());
    status(&device, ids[0], "submitted").expect("on the device");
    relay
        .edit(
            ids[1],
            Edit::SetField {
                field: "title".into(),
                value: "changed on the relay".into(),
            },
        )
        .expect("on the relay");
    let again = pump(
        &mut session(&device, Role::Client, "tablet", Access::open("relay")),
        &mut session(&relay, Role::Server, "relay", tablet),
    );
    assert!(again.closed().is_none(), "{again:?}");
    for id in &ids {
        same_view(&device, &relay, *id);
    }
    assert_eq!(
        device.view(ids[1]).expect("view").str_field("title"),
        Some("changed on the relay")
    );
    // the device's document goes as one exchange (two round trips), the
    // relay's in the feed page: nothing about the three unchanged documents
    assert!(again.sync_messages() <= 4, "{again:?}");
}

/// The store's format version (`meta/format`, docs/storage.md) is checked on
/// every engine: a store written by a newer permitsync is refused before
/// anything is written (on PostgreSQL, beside the tables' schema version).
fn a_store_of_a_newer_format_is_refused_on_every_engine(kind: Kind) {
    let engine = kind.engine();
    let newer = (FORMAT_VERSION + 1).to_be_bytes().to_vec();
    {
        let backend = engine.backend();
        backend
            .apply(vec![(b"meta/format".to_vec(), Some(newer.clone()))])
            .expect("write");
        backend.flush().expect("flush");
    }
    let backend = engine.backend();
    match Store::with_backend(backend.clone(), StoreOptions::default()) {
        Err(Error::NewerFormat { found, supported }) => {
            assert_eq!((found, supported), (FORMAT_VERSION + 1, FORMAT_VERSION));
        }
        Err(e) => panic!("refused for the wrong reason: {e}"),
        Ok(_) => panic!("a newer store must be refused"),
    }
    assert_eq!(backend.get(b"meta/actor").expect("read"), None);
    assert_eq!(backend.get(b"meta/format").expect("read"), Some(newer));
}
