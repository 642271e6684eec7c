//! Storage faults: a [`FaultyBackend`] fails flushes, fails applies or tears a
//! batch half-way, under a store, a REST node and a sync session. In every case
//! the failing write is reported (`Error::Storage`, a 5xx JSON error, a sync
//! connection closed with an error) and not acknowledged, the node keeps
//! serving reads, and once storage heals writes succeed again. A store reopened
//! on what the "disk" (the inner backend) holds after a fault opens without a
//! repair step and shows every acknowledged write.
//!
//! What a torn batch can leave behind. A write of the store is one batch:
//! `[doc or chunk, (chunk deletes when compacting), (child index), (old feed
//! entry deletes), feed entry, tenant feed entry, feed position, summary]`.
//! Cut after any prefix of it, the disk may hold
//! - a chunk (or a compacted save) without its feed entry or summary: the
//!   document loads with the unacknowledged change, the summary is stale until
//!   the next write of that document (tolerated);
//! - a compacted save beside the chunks it replaces: loading sees their changes
//!   twice, which Automerge ignores (tolerated);
//! - a child index entry without the child's new state (tolerated);
//! - a new document's save without its summary: the next create of that id
//!   replaces it (tolerated since the fix; regression test
//!   `a_torn_create_leaves_the_id_usable`);
//! - a feed entry that the document's feed position (`fpos/<id>`) does not
//!   point at: the document is listed twice in the feed, for good (not
//!   tolerated, see `a_torn_write_keeps_the_change_feed_exact`).
//!
//! The test marked `#[ignore]` states what the store does not give with a
//! backend that tears batches, which the `Backend` contract rules out (sled's
//! batches are atomic); it names the symptom and where it comes from. Run it
//! with `cargo test --test fault_injection -- --ignored`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use permitsync::model::EntityId;
use permitsync::node::{app, build_state, Access, NodeOptions, NodeState};
use permitsync::store::{Backend, MemBackend, Pair, SledBackend, Store, StoreOptions};
use permitsync::sync::Role;
use permitsync::wire::{self, Message};
use permitsync::write::{Edit, NewIsolationPoint, NewPermit};
use permitsync::Error;
use serde_json::{json, Value};
use tower::ServiceExt;

mod support;

use support::faulty_backend::{Fault, FaultyBackend};
use support::session::{pump, session};

// ---- helpers --------------------------------------------------------------

/// A store on a faulty backend over an in-memory "disk".
struct Rig {
    disk: Arc<MemBackend>,
    faulty: Arc<FaultyBackend>,
    store: Store,
}

fn rig() -> Rig {
    rig_with(StoreOptions::default())
}

fn rig_with(opts: StoreOptions) -> Rig {
    let disk = Arc::new(MemBackend::new());
    let faulty = Arc::new(FaultyBackend::new(disk.clone()));
    let store = Store::with_backend(faulty.clone(), opts).expect("open store");
    Rig {
        disk,
        faulty,
        store,
    }
}

impl Rig {
    /// A new store on what the disk holds (the old one is dropped first, as
    /// after a crash).
    fn reopen(self) -> Store {
        let Rig { disk, store, .. } = self;
        drop(store);
        Store::with_backend(disk, StoreOptions::default()).expect("reopen after the fault")
    }
}

fn snapshot(b: &dyn Backend) -> Vec<Pair> {
    b.scan_prefix(b"", None, usize::MAX).expect("scan the disk")
}

fn permit(store: &Store, title: &str) -> EntityId {
    store
        .create_permit(NewPermit {
            title: title.into(),
            safety_checklist: vec!["gas test".into()],
            ..Default::default()
        })
        .expect("create permit")
}

fn set(field: &str, value: &str) -> Edit {
    Edit::SetField {
        field: field.into(),
        value: value.into(),
    }
}

fn field(store: &Store, id: EntityId, name: &str) -> Option<String> {
    store
        .view(id)
        .expect("view")
        .str_field(name)
        .map(str::to_string)
}

fn is_storage(r: &Result<impl std::fmt::Debug, Error>) -> bool {
    matches!(r, Err(Error::Storage(_)))
}

/// What a reader of `store` would find broken: a summary without a loadable
/// view of the same type.
fn view_problems(store: &Store) -> Vec<String> {
    let summaries = match store.summaries() {
        Ok(s) => s,
        Err(e) => return vec![format!("summaries: {e}")],
    };
    let mut out = Vec::new();
    for s in &summaries {
        match store.view(s.id) {
            Ok(v) if v.entity_type.as_deref() == Some(s.entity_type.as_str()) => {}
            Ok(v) => out.push(format!("{}: view type {:?}", s.id, v.entity_type)),
            Err(e) => out.push(format!("{}: view: {e}", s.id)),
        }
    }
    out
}

/// What is wrong with the change feed: every entity must be listed exactly
/// once, and only entities that exist. The feed lists durable writes only, so
/// call this on a store whose writes were all flushed (e.g. a reopened one).
fn feed_problems(store: &Store) -> Vec<String> {
    let (summaries, feed) = match (store.summaries(), store.feed_since(0, usize::MAX)) {
        (Ok(s), Ok(f)) => (s, f),
        (Err(e), _) | (_, Err(e)) => return vec![format!("reading: {e}")],
    };
    let mut out = Vec::new();
    for s in &summaries {
        let listed = feed.iter().filter(|(_, id)| *id == s.id).count();
        if listed != 1 {
            out.push(format!("{} listed {listed} times in the feed", s.id));
        }
    }
    let known: BTreeSet<EntityId> = summaries.iter().map(|s| s.id).collect();
    for (seq, id) in &feed {
        if !known.contains(id) {
            out.push(format!("feed entry {seq} names {id}, which has no summary"));
        }
    }
    out
}

fn assert_consistent(store: &Store) {
    let p = [view_problems(store), feed_problems(store)].concat();
    assert!(p.is_empty(), "inconsistent store: {p:#?}");
}

// ---- the backend alone ----------------------------------------------------

/// The tool itself (moved from `src/store/faulty_backend.rs` with it).
#[test]
fn faults_fail_tear_and_heal() {
    use permitsync::store::BatchOp;
    fn put(k: &str) -> BatchOp {
        (k.as_bytes().to_vec(), Some(b"v".to_vec()))
    }
    fn keys(b: &dyn Backend) -> Vec<Vec<u8>> {
        b.scan_prefix(b"", None, usize::MAX)
            .expect("scan")
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }
    let mem = Arc::new(MemBackend::new());
    let f = FaultyBackend::new(mem.clone());
    f.inject(Fault::FailApply);
    assert!(f.apply(vec![put("a")]).is_err());
    assert!(keys(&*mem).is_empty());
    f.heal();
    f.inject(Fault::TearNextApply { keep: 1 });
    assert!(f.apply(vec![put("b"), put("c")]).is_err());
    assert_eq!(keys(&*mem), vec![b"b".to_vec()]);
    assert!(f.apply(vec![put("c")]).is_ok(), "a tear is used up");
    f.inject(Fault::FailApplyAfter(1));
    assert!(f.apply(vec![put("d")]).is_ok());
    assert!(f.apply(vec![put("e")]).is_err());
    assert!(f.apply(vec![put("e")]).is_err());
    f.inject(Fault::FailFlush);
    assert!(f.flush().is_err());
    f.heal();
    assert!(f.apply(vec![put("e")]).is_ok() && f.flush().is_ok());
    assert_eq!(
        (f.applies(), f.failed_applies(), f.torn_applies()),
        (7, 4, 1)
    );
    assert_eq!((f.flushes(), f.failed_flushes()), (2, 1));
}

/// How a test uses it (the example of its module docs when it was in the
/// library): a write under a failing flush is an `Error::Storage`, and
/// writes succeed again once healed.
#[test]
fn a_store_on_the_faulty_backend_fails_while_faulted_and_writes_once_healed(
) -> permitsync::Result<()> {
    let disk = Arc::new(MemBackend::new());
    let faulty = Arc::new(FaultyBackend::new(disk.clone()));
    let store = Store::with_backend(faulty.clone(), StoreOptions::default())?;
    let id = store.create_permit(NewPermit {
        title: "Pump".into(),
        ..Default::default()
    })?;

    faulty.inject(Fault::FailFlush);
    let edit = Edit::SetField {
        field: "title".into(),
        value: "Valve".into(),
    };
    assert!(matches!(store.edit(id, edit), Err(Error::Storage(_))));

    faulty.heal();
    let edit = Edit::SetField {
        field: "location".into(),
        value: "Bay 2".into(),
    };
    store.edit(id, edit)?;
    Ok(())
}

#[test]
fn faults_can_be_switched_from_another_thread_while_the_store_writes() {
    let r = rig();
    let id = permit(&r.store, "pump");
    let faulty = r.faulty.clone();
    std::thread::spawn(move || faulty.inject(Fault::FailApply))
        .join()
        .expect("injector thread");
    assert!(is_storage(&r.store.edit(id, set("title", "valve"))));
    let faulty = r.faulty.clone();
    std::thread::spawn(move || faulty.heal())
        .join()
        .expect("healer thread");
    r.store.edit(id, set("title", "valve")).expect("healed");
    assert_eq!(r.faulty.failed_applies(), 1);
}

// ---- a failing flush ------------------------------------------------------

#[test]
fn a_failed_flush_is_not_acknowledged_and_writes_succeed_after_heal() {
    let r = rig();
    let id = permit(&r.store, "replace pump seal");
    r.store
        .edit(id, set("location", "pump house 2"))
        .expect("acknowledged edit");

    r.faulty.inject(Fault::FailFlush);
    let flushes = r.faulty.failed_flushes();
    let result = r.store.edit(id, set("title", "unacknowledged title"));
    assert!(is_storage(&result), "{result:?}");
    assert!(r.faulty.failed_flushes() > flushes);
    // a second write while the flush still fails is refused as well
    assert!(is_storage(&r.store.edit(id, set("work_type", "hot_work"))));
    // creating an entity also needs a flush
    assert!(is_storage(&r.store.create_permit(NewPermit {
        title: "never acknowledged".into(),
        ..Default::default()
    })));

    r.faulty.heal();
    let ok_flushes = r.faulty.successful_flushes();
    r.store
        .edit(id, set("work_type", "mechanical"))
        .expect("a write after heal");
    assert!(
        r.faulty.successful_flushes() > ok_flushes,
        "acknowledged without a flush"
    );
    let other = permit(&r.store, "second permit");
    assert_consistent(&r.store);

    // reopen on the disk: every acknowledged write is there
    let store = r.reopen();
    assert_eq!(
        field(&store, id, "location").as_deref(),
        Some("pump house 2")
    );
    assert_eq!(
        field(&store, id, "work_type").as_deref(),
        Some("mechanical")
    );
    // the unacknowledged title may or may not have survived
    let title = field(&store, id, "title");
    assert!(
        matches!(
            title.as_deref(),
            Some("replace pump seal" | "unacknowledged title")
        ),
        "{title:?}"
    );
    assert_eq!(
        field(&store, other, "title").as_deref(),
        Some("second permit")
    );
    let view = store.view(id).expect("view");
    assert_eq!(view.entity_type.as_deref(), Some("permit"));
    assert!(view.rejected.is_empty(), "{:?}", view.rejected);
    assert_consistent(&store);
    store
        .edit(id, set("title", "after reopen"))
        .expect("write after reopen");
}

#[test]
fn a_failed_flush_on_sled_is_reported_and_the_store_reopens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || {
        let sled = SledBackend::open(dir.path()).expect("open sled");
        let faulty = Arc::new(FaultyBackend::new(Arc::new(sled)));
        let store = Store::with_backend(faulty.clone(), StoreOptions::default()).expect("store");
        (faulty, store)
    };
    let (faulty, store) = open();
    let id = permit(&store, "sled permit");
    store
        .edit(id, set("location", "tank farm"))
        .expect("acknowledged");
    faulty.inject(Fault::FailFlush);
    assert!(is_storage(&store.edit(id, set("title", "not acked"))));
    faulty.inject(Fault::FailApply);
    assert!(is_storage(&store.edit(id, set("work_type", "not acked"))));
    // a torn batch on sled (whose own batches are atomic) as from a non-atomic engine
    faulty.heal();
    faulty.inject(Fault::TearNextApply { keep: 1 });
    assert!(is_storage(&store.edit(id, set("work_type", "torn"))));
    faulty.heal();
    store
        .edit(id, set("work_type", "electrical"))
        .expect("after heal");
    drop((faulty, store));

    let (_faulty, store) = open();
    assert_eq!(field(&store, id, "location").as_deref(), Some("tank farm"));
    assert_eq!(
        field(&store, id, "work_type").as_deref(),
        Some("electrical")
    );
    assert_consistent(&store);
}

// ---- a failing apply ------------------------------------------------------

#[test]
fn a_failed_apply_writes_nothing_and_memory_does_not_run_ahead_of_storage() {
    let r = rig();
    let id = permit(&r.store, "confined space entry");
    let view_before = r.store.view(id).expect("view").to_json_string();
    let disk_before = snapshot(&*r.disk);

    r.faulty.inject(Fault::FailApply);
    let edit = set("title", "changed while the disk fails");
    assert!(is_storage(&r.store.edit(id, edit.clone())));
    assert!(is_storage(
        &r.store.edit(id, Edit::SetStatus("submitted".into()))
    ));
    assert_eq!(snapshot(&*r.disk), disk_before, "a failed apply wrote");
    assert_eq!(
        r.store.view(id).expect("view").to_json_string(),
        view_before,
        "the document in memory is ahead of storage"
    );
    // a new entity is not created either, and its id stays free
    let new_id = EntityId::new_random();
    let new = || NewPermit {
        id: Some(new_id),
        title: "new".into(),
        ..Default::default()
    };
    assert!(is_storage(&r.store.create_permit(new())));
    assert!(!r.store.contains(new_id).expect("contains"));
    // reads still work
    assert_consistent(&r.store);

    r.faulty.heal();
    r.store.edit(id, edit).expect("the same edit after heal");
    r.store
        .create_permit(new())
        .expect("the same create after heal");
    assert_eq!(
        field(&r.store, id, "title").as_deref(),
        Some("changed while the disk fails")
    );
    assert_eq!(field(&r.store, id, "status").as_deref(), Some("draft"));
    let store = r.reopen();
    assert_eq!(
        field(&store, id, "title").as_deref(),
        Some("changed while the disk fails")
    );
    assert!(store.contains(new_id).expect("contains"));
    assert_consistent(&store);
}

#[test]
fn a_disk_that_fills_up_fails_every_apply_after_the_allowed_ones() {
    let r = rig();
    let id = permit(&r.store, "pump");
    r.faulty.inject(Fault::FailApplyAfter(2));
    r.store.edit(id, set("title", "one")).expect("first");
    r.store.edit(id, set("title", "two")).expect("second");
    assert!(is_storage(&r.store.edit(id, set("title", "three"))));
    assert!(is_storage(&r.store.edit(id, set("title", "four"))));
    assert_eq!(field(&r.store, id, "title").as_deref(), Some("two"));
    r.faulty.heal();
    r.store.edit(id, set("title", "five")).expect("after heal");
    let store = r.reopen();
    assert_eq!(field(&store, id, "title").as_deref(), Some("five"));
    assert_consistent(&store);
}

// ---- torn writes ----------------------------------------------------------

/// More writes than any batch below holds (a compacting edit of a permit with
/// a few chunks is the largest): tearing after every prefix up to it covers
/// every cut, "everything written, then the crash" included.
const MAX_BATCH: usize = 16;

/// What a torn write left that the store does not (yet) tolerate. Everything
/// else is asserted by the scenarios; these are asserted by ignored tests.
#[derive(Debug, Default)]
struct Findings {
    /// The change feed lists an entity twice, not at all, or one that does
    /// not exist.
    feed: Vec<String>,
    /// Ids of entities that can be neither seen nor created.
    stuck: Vec<String>,
}

impl Findings {
    fn feed(&mut self, ctx: &str, store: &Store) {
        let problems = feed_problems(store);
        self.feed
            .extend(problems.into_iter().map(|p| format!("{ctx}: {p}")));
    }

    fn add(&mut self, other: Findings) {
        self.feed.extend(other.feed);
        self.stuck.extend(other.stuck);
    }
}

fn assert_views_load(ctx: &str, store: &Store) {
    let p = view_problems(store);
    assert!(p.is_empty(), "{ctx}: {p:#?}");
}

/// Tear an edit of an existing permit after `keep` writes, then either heal
/// and keep running (and reopen later), or crash: reopen on the disk at once.
/// With `compact` the torn edit is a compaction (a full save replacing the
/// document's chunks).
fn torn_edit(keep: usize, compact: bool, crash: bool) -> Findings {
    let ctx = format!("keep {keep}, compact {compact}, crash {crash}");
    let r = rig_with(StoreOptions {
        compact_after_chunks: if compact { 4 } else { 32 },
        ..Default::default()
    });
    let disk = r.disk.clone();
    let id = permit(&r.store, "hot work");
    let sibling = permit(&r.store, "sibling");
    for loc in ["a", "b", "c"] {
        r.store.edit(id, set("location", loc)).expect("acked");
    }
    r.faulty.inject(Fault::TearNextApply { keep });
    let torn = r.store.edit(id, set("title", "torn"));
    assert!(is_storage(&torn), "{ctx}: {torn:?}");
    assert_eq!(r.faulty.torn_applies(), 1);
    let store = if crash {
        r.reopen()
    } else {
        // reads work before storage heals
        assert_eq!(field(&r.store, id, "location").as_deref(), Some("c"));
        r.faulty.heal();
        r.store
    };

    // acknowledged data is intact; the torn title may or may not be there
    assert_eq!(field(&store, id, "location").as_deref(), Some("c"), "{ctx}");
    let title = field(&store, id, "title");
    assert!(
        matches!(title.as_deref(), Some("hot work" | "torn")),
        "{ctx}: {title:?}"
    );
    assert_eq!(
        field(&store, sibling, "title").as_deref(),
        Some("sibling"),
        "{ctx}"
    );
    assert_views_load(&ctx, &store);
    // and writes work
    store
        .edit(id, set("work_type", "after the tear"))
        .unwrap_or_else(|e| panic!("{ctx}: write after the tear: {e}"));
    store
        .edit(sibling, set("location", "moved"))
        .unwrap_or_else(|e| panic!("{ctx}: sibling write after the tear: {e}"));
    let mut findings = Findings::default();
    findings.feed(&ctx, &store);

    // everything acknowledged survives a reopen
    drop(store);
    let store = Store::with_backend(disk, StoreOptions::default()).expect("reopen");
    assert_eq!(field(&store, id, "location").as_deref(), Some("c"), "{ctx}");
    assert_eq!(
        field(&store, id, "work_type").as_deref(),
        Some("after the tear"),
        "{ctx}"
    );
    assert_eq!(
        field(&store, sibling, "location").as_deref(),
        Some("moved"),
        "{ctx}"
    );
    assert_views_load(&ctx, &store);
    findings.feed(&format!("{ctx}, reopened"), &store);
    findings
}

/// Tear the create of a new permit after `keep` writes, then heal and keep
/// running, or crash. The new entity must then be there (with a view) or be
/// absent and creatable again under the same id.
fn torn_create(keep: usize, crash: bool) -> Findings {
    let ctx = format!("keep {keep}, crash {crash}");
    let r = rig();
    let acked = permit(&r.store, "acked");
    let id = EntityId::new_random();
    let new = || NewPermit {
        id: Some(id),
        title: "new".into(),
        ..Default::default()
    };
    r.faulty.inject(Fault::TearNextApply { keep });
    assert!(is_storage(&r.store.create_permit(new())), "{ctx}");
    let store = if crash {
        r.reopen()
    } else {
        r.faulty.heal();
        r.store
    };
    let mut findings = Findings::default();
    assert_eq!(
        field(&store, acked, "title").as_deref(),
        Some("acked"),
        "{ctx}"
    );
    if store.contains(id).expect("contains") {
        store
            .view(id)
            .unwrap_or_else(|e| panic!("{ctx}: listed but without a view: {e}"));
    } else if let Err(e) = store.create_permit(new()) {
        findings
            .stuck
            .push(format!("{ctx}: absent, and creating it again fails: {e}"));
    }
    assert_views_load(&ctx, &store);
    store.edit(acked, set("location", "x")).expect("write");
    findings.feed(&ctx, &store);
    findings
}

/// Tear an edit of `a`, heal, then write `b` and `a` again.
fn torn_then_other_document(keep: usize) -> Findings {
    let ctx = format!("keep {keep}, a then b");
    let r = rig();
    let a = permit(&r.store, "a");
    let b = permit(&r.store, "b");
    r.faulty.inject(Fault::TearNextApply { keep });
    assert!(is_storage(&r.store.edit(a, set("title", "a torn"))));
    r.faulty.heal();
    r.store.edit(b, set("title", "b2")).expect("b");
    r.store.edit(a, set("title", "a2")).expect("a");
    assert_eq!(field(&r.store, b, "title").as_deref(), Some("b2"));
    assert_views_load(&ctx, &r.store);
    let mut findings = Findings::default();
    findings.feed(&ctx, &r.store);
    findings.feed(&format!("{ctx}, reopened"), &r.reopen());
    findings
}

/// Every torn-write scenario at every cut.
fn all_torn_findings() -> Findings {
    let mut all = Findings::default();
    for keep in 0..=MAX_BATCH {
        for compact in [false, true] {
            for crash in [false, true] {
                all.add(torn_edit(keep, compact, crash));
            }
        }
        for crash in [false, true] {
            all.add(torn_create(keep, crash));
        }
        all.add(torn_then_other_document(keep));
    }
    all
}

#[test]
fn a_torn_write_leaves_a_store_that_opens_with_acknowledged_data_and_works() {
    // the scenarios assert: no error or panic on open, acknowledged data
    // intact, every view loads, writes succeed, in the running store and after
    // a reopen; see the ignored test for what they find beyond that
    let _findings = all_torn_findings();
}

/// Regression (fixed: `Store::create` replaces the remains): a create torn
/// after the document's save (`doc/<id>`) but before its summary (`ent/<id>`)
/// leaves an entity that `contains`/`view` do not see (they read the
/// summary), while `create` refuses its id ("invalid input: entity <id>
/// already exists", because `ensure_loaded` finds the save). The id is stuck:
/// it can be neither created, nor viewed, nor edited through the REST API,
/// in the running store and after a reopen alike.
#[test]
fn a_torn_create_leaves_the_id_usable() {
    let mut stuck = Vec::new();
    for keep in 0..=MAX_BATCH {
        for crash in [false, true] {
            stuck.extend(torn_create(keep, crash).stuck);
        }
    }
    assert!(stuck.is_empty(), "{stuck:#?}");
}

/// Limitation (outside the `Backend` contract) of the change feed index
/// (`feed/<seq>` -> id, `fpos/<id>` -> seq) under torn writes, in
/// `Store::persist` (`src/store/store.rs`). A write's batch deletes the
/// document's old feed entries, then writes `feed/<seq>` and the tenant feed
/// entry, then `fpos/<id>` = seq. A batch torn after a new feed entry but
/// before `fpos` leaves an entry that `fpos` does not point at: the next write
/// of the document deletes the entry `fpos` names, never that one, so the
/// document is listed twice in the feed (feed-based sync, `GET /v1/entities`,
/// the `/metrics` document count), for good: in the running store and after a
/// reopen. Every finding of the scenarios is of this kind (torn creates,
/// edits with and without compaction, and a torn write followed by another
/// document's, at several cut points). A failed apply uses up its sequence
/// number, so another document's write never reuses a torn batch's
/// `feed/<seq>`, and the scenarios find no dangling feed entry.
///
/// A store that can meet a non-atomic engine should rebuild `fpos`/`feed` on
/// open (or keep the feed derivable from the summaries' `feed_seq`).
#[test]
#[ignore = "limitation: Backend::apply is atomic by contract (sled batches are); a backend that tears batches can leave a document listed twice in the feed"]
fn a_torn_write_keeps_the_change_feed_exact() {
    let feed = all_torn_findings().feed;
    assert!(feed.is_empty(), "{feed:#?}");
}

/// A torn write of an isolation point (whose batch also writes the permit's
/// child index) keeps the permit's cross-document view loadable.
#[test]
fn a_torn_write_of_a_child_keeps_the_permit_view_loadable() {
    for keep in 0..MAX_BATCH {
        let r = rig();
        let p = permit(&r.store, "permit");
        let iso = r
            .store
            .create_isolation_point(NewIsolationPoint {
                id: None,
                permit_id: p,
                description: "valve 7".into(),
                lock_ids: vec!["L1".into()],
            })
            .expect("isolation point");
        r.faulty.inject(Fault::TearNextApply { keep });
        assert!(is_storage(
            &r.store.edit(iso, Edit::SetStatus("isolated".into()))
        ));
        let store = r.reopen();
        store.view(p).expect("permit view");
        let status = store.view(iso).expect("iso view");
        assert!(
            matches!(status.str_field("status"), Some("assigned" | "isolated")),
            "keep {keep}: {:?}",
            status.str_field("status")
        );
        assert_eq!(store.children(p).expect("children"), vec![iso]);
        store
            .edit(iso, Edit::SetStatus("isolated".into()))
            .unwrap_or_else(|e| panic!("keep {keep}: {e}"));
    }
}

// ---- a node's REST API ----------------------------------------------------

struct Node {
    faulty: Arc<FaultyBackend>,
    state: Arc<NodeState>,
}

struct Reply {
    status: StatusCode,
    json: Value,
}

fn node() -> Node {
    let faulty = Arc::new(FaultyBackend::new(Arc::new(MemBackend::new())));
    let store = Store::with_backend(faulty.clone(), StoreOptions::default()).expect("store");
    let state = build_state(store, &NodeOptions::default()).expect("node state");
    Node { faulty, state }
}

impl Node {
    async fn send(&self, method: Method, uri: &str, body: Option<Value>) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_default();
        let res = app(self.state.clone())
            .oneshot(req.body(body).expect("request"))
            .await
            .expect("infallible");
        let status = res.status();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{status}: not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        Reply { status, json }
    }

    async fn create(&self, title: &str) -> Reply {
        self.send(
            Method::POST,
            "/v1/entities",
            Some(json!({"type": "permit", "title": title})),
        )
        .await
    }
}

fn id_of(r: &Reply) -> String {
    r.json["id"].as_str().expect("an id").to_string()
}

#[tokio::test]
async fn a_node_with_failing_storage_answers_5xx_keeps_serving_and_recovers() {
    let n = node();
    let created = n.create("existing").await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.json);
    let existing = id_of(&created);

    for fault in [Fault::FailFlush, Fault::FailApply] {
        n.faulty.inject(fault);
        let r = n.create("while storage fails").await;
        assert!(r.status.is_server_error(), "{fault:?}: {}", r.status);
        assert_eq!(r.json["error"], "internal", "{fault:?}: {:?}", r.json);
        assert!(r.json["detail"].is_string());
        let r = n
            .send(
                Method::PATCH,
                &format!("/v1/entities/{existing}"),
                Some(json!({"location": format!("{fault:?}")})),
            )
            .await;
        assert!(r.status.is_server_error(), "{fault:?}: {}", r.status);
        assert_eq!(r.json["error"], "internal");

        // reads go on
        let r = n.send(Method::GET, "/healthz", None).await;
        assert_eq!(r.status, StatusCode::OK);
        let r = n
            .send(Method::GET, &format!("/v1/entities/{existing}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        assert_eq!(r.json["fields"]["title"], "existing");
        let r = n.send(Method::GET, "/v1/entities", None).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        let r = n.send(Method::GET, "/v1/status", None).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        n.faulty.heal();
    }
    assert!(n.faulty.failed_flushes() > 0 && n.faulty.failed_applies() > 0);

    let r = n.create("after heal").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let after = id_of(&r);
    let r = n
        .send(
            Method::PATCH,
            &format!("/v1/entities/{existing}"),
            Some(json!({"location": "bay 4"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["fields"]["location"], "bay 4");
    let r = n
        .send(Method::GET, &format!("/v1/entities/{after}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_consistent(&n.state.store);
}

/// Regression (fixed: a retry by the creating device answers 200): a create whose flush failed (500,
/// not acknowledged) was still applied, so retrying the same request with the
/// same client-generated id after storage heals answers 409
/// `already_exists`: the client cannot tell its own unacknowledged entity from
/// someone else's, and nothing flushes it. Retrying an unacknowledged write
/// should succeed (and be durable).
#[tokio::test]
async fn retrying_a_create_that_failed_to_flush_succeeds() {
    let n = node();
    let id = EntityId::new_random().to_string();
    let body = json!({"type": "permit", "id": id, "title": "retried"});
    n.faulty.inject(Fault::FailFlush);
    let r = n
        .send(Method::POST, "/v1/entities", Some(body.clone()))
        .await;
    assert!(r.status.is_server_error());
    n.faulty.heal();
    let flushes = n.faulty.successful_flushes();
    let r = n.send(Method::POST, "/v1/entities", Some(body)).await;
    assert!(r.status.is_success(), "{}: {:?}", r.status, r.json);
    assert!(n.faulty.successful_flushes() > flushes, "not made durable");
}

// ---- a sync session -------------------------------------------------------

#[test]
fn a_sync_session_closes_with_an_error_instead_of_acknowledging_when_storage_fails() {
    for fault in [Fault::FailFlush, Fault::FailApply] {
        let device = Store::with_backend(Arc::new(MemBackend::new()), StoreOptions::default())
            .expect("device store");
        let relay = rig();
        let id = permit(&device, "synced permit");
        device
            .edit(id, set("location", "north gate"))
            .expect("device edit");

        relay.faulty.inject(fault);
        let mut c = session(&device, Role::Client, "device", Access::open("device"));
        let mut s = session(&relay.store, Role::Server, "relay", Access::open("relay"));
        let t = pump(&mut c, &mut s);
        let closed = t
            .server_closed()
            .unwrap_or_else(|| panic!("{fault:?}: the relay did not close: {t:?}"));
        let reason = closed.close.as_deref().unwrap_or_default();
        assert!(reason.contains("could not store"), "{fault:?}: {reason}");
        // the only thing sent is the error: no sync reply acknowledging the changes
        assert!(
            matches!(closed.send.as_slice(), [Message::Error { message }] if message == reason),
            "{fault:?}: {:?}",
            closed.send
        );
        assert_eq!(closed.changes_applied, 0);
        assert!(closed.changed.is_empty());
        let client_reason = t.client_closed().expect("the device saw the error");
        assert!(client_reason.contains("could not store"), "{client_reason}");

        // after heal a new connection syncs everything
        relay.faulty.heal();
        let mut c = session(&device, Role::Client, "device", Access::open("device"));
        let mut s = session(&relay.store, Role::Server, "relay", Access::open("relay"));
        let t = pump(&mut c, &mut s);
        assert!(t.server_closed().is_none(), "{fault:?}: {t:?}");
        assert!(t.client_closed().is_none(), "{fault:?}: {t:?}");
        assert!(c.is_idle());
        assert_eq!(
            device.view(id).expect("device view").to_json_string(),
            relay.store.view(id).expect("relay view").to_json_string()
        );
        // (the relay's feed is checked after the reopen: see the ignored test
        // below for why the running relay may not list the document yet)
        assert_views_load(&format!("{fault:?}"), &relay.store);
        let store = relay.reopen();
        assert_eq!(field(&store, id, "location").as_deref(), Some("north gate"));
        assert_consistent(&store);
    }
}

#[test]
fn a_burst_whose_flush_fails_acknowledges_none_of_its_frames() {
    let device = Store::with_backend(Arc::new(MemBackend::new()), StoreOptions::default())
        .expect("device store");
    let relay = rig();
    for i in 0..10 {
        permit(&device, &format!("p{i}"));
    }
    let mut c = session(&device, Role::Client, "device", Access::open("device"));
    let mut s = session(&relay.store, Role::Server, "relay", Access::open("relay"));
    let join = c.start().send;
    let peer = s.on_frame(&wire::encode(&join[0])).send;
    // the device's first messages carry heads; the relay's answers ask for
    // the changes, which come back as one burst
    let heads = c.on_frame(&wire::encode(&peer[0])).send;
    let asks = s.on_frames(heads.iter().map(wire::encode)).send;
    let push: Vec<Vec<u8>> = c
        .on_frames(asks.iter().map(wire::encode))
        .send
        .iter()
        .map(wire::encode)
        .collect();
    assert_eq!(push.len(), 10);
    relay.faulty.inject(Fault::FailFlush);
    let out = s.on_frames(&push);
    // every frame was applied, but the flush after them failed: the reply
    // is the error alone, not one acknowledgement
    assert!(
        matches!(out.send.as_slice(), [Message::Error { .. }]),
        "{:?}",
        out.send
    );
    assert!(out.close.is_some());
    assert_eq!(out.changes_applied, 0);
    assert!(out.changed.is_empty());
}

/// Regression (fixed: `Store::ensure_durable` before acknowledging):
/// after a failed flush the changes stay applied (in memory and in the
/// backend's unflushed writes). When the peer sends them again after storage
/// heals, `receive_sync` finds nothing new, skips `persist` and therefore the
/// flush, and the session's reply acknowledges heads that were never made
/// durable; the relay's change feed (durable writes only) does not list the
/// document either, until some later write flushes. A receive or edit that
/// finds its data present but not yet durable should wait for a flush.
#[test]
fn changes_whose_flush_failed_are_flushed_before_they_are_acknowledged() {
    let device = Store::with_backend(Arc::new(MemBackend::new()), StoreOptions::default())
        .expect("device store");
    let relay = rig();
    let id = permit(&device, "p");
    relay.faulty.inject(Fault::FailFlush);
    let mut c = session(&device, Role::Client, "device", Access::open("device"));
    let mut s = session(&relay.store, Role::Server, "relay", Access::open("relay"));
    assert!(pump(&mut c, &mut s).server_closed().is_some());
    relay.faulty.heal();
    let flushes = relay.faulty.successful_flushes();
    let mut c = session(&device, Role::Client, "device", Access::open("device"));
    let mut s = session(&relay.store, Role::Server, "relay", Access::open("relay"));
    let t = pump(&mut c, &mut s);
    assert!(t.server_closed().is_none());
    assert!(relay.store.contains(id).expect("contains"));
    assert!(
        relay.faulty.successful_flushes() > flushes,
        "the relay acknowledged the permit without flushing it"
    );
    // the feed lists durable writes only: a document acknowledged to a peer
    // must be in it (a third peer syncing by feed would miss it otherwise)
    let feed = relay.store.feed_since(0, usize::MAX).expect("feed");
    assert!(feed.iter().any(|(_, d)| *d == id), "{feed:?}");
}

/// Regression, the same for local edits (store.rs `Store::edit_all`): an edit
/// whose flush failed stays applied; retried after heal, it changes nothing,
/// returns `Ok(None)` without a flush, and the caller takes the edit as done.
#[test]
fn a_retried_edit_whose_flush_failed_is_flushed_before_it_is_acknowledged() {
    let r = rig();
    let id = permit(&r.store, "p");
    r.faulty.inject(Fault::FailFlush);
    assert!(is_storage(&r.store.edit(id, set("title", "retried"))));
    r.faulty.heal();
    let flushes = r.faulty.successful_flushes();
    let retried = r.store.edit(id, set("title", "retried"));
    assert!(retried.is_ok(), "{retried:?}");
    assert!(
        r.faulty.successful_flushes() > flushes,
        "the retried edit ({retried:?}) was acknowledged without a flush"
    );
}
