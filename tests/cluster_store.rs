//! Several stores over one PostgreSQL database, as several relays use it
//! (each store has an engine, a cache and a feed counter of its own, as a
//! relay process has): a write through a stale copy merges what another
//! wrote, concurrent appends and compactions of one document lose nothing,
//! the same change received by two is stored once, and feed readers never
//! skip an entry under concurrent commits. Real PostgreSQL: `scripts/test.sh`
//! starts one (`tests/support/pg.rs`).

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, AutomergeError, ChangeHash, ROOT};
use permitsync::model::EntityId;
use permitsync::store::{PgBackend, Store, StoreOptions};
use permitsync::write::{Edit, NewGasReading, NewPermit};

mod support;

use support::pg::TestDatabase;

/// A store over the database at `url`, as one relay opens it.
fn relay(url: &str, opts: StoreOptions) -> Store {
    let backend = PgBackend::connect(url).expect("connect");
    Store::with_backend(Arc::new(backend), opts).expect("open")
}

fn permit(store: &Store, title: &str) -> EntityId {
    store
        .create_permit(NewPermit {
            title: title.into(),
            location: "Unit 3".into(),
            work_type: "hot_work".into(),
            safety_checklist: vec!["fire watch".into()],
            ..Default::default()
        })
        .expect("create permit")
}

fn set_field(store: &Store, id: EntityId, field: &str, value: &str) -> ChangeHash {
    store
        .edit(
            id,
            Edit::SetField {
                field: field.into(),
                value: value.into(),
            },
        )
        .expect("edit")
        .expect("a change")
}

fn gas_reading(store: &Store, id: EntityId, value: f64) -> ChangeHash {
    store
        .edit(
            id,
            Edit::AddGasReading(NewGasReading {
                gas: "LEL".into(),
                value,
                unit: "%".into(),
                min: 0.0,
                max: 100.0,
                ..Default::default()
            }),
        )
        .expect("gas reading")
        .expect("a change")
}

fn change_count(store: &Store, id: EntityId) -> usize {
    store
        .with_doc(id, |d| d.history().change_count())
        .expect("doc")
}

/// Relay B holds a copy of a permit; relay A changes it; B's next write,
/// made on its stale copy before it caught up, merges A's change instead
/// of overwriting it; catching up drops B's copy of what A wrote next.
#[test]
fn a_write_through_a_stale_copy_keeps_what_another_relay_wrote() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let a = relay(&db.url, StoreOptions::default());
    let b = relay(&db.url, StoreOptions::default());
    let id = permit(&a, "first");
    assert_eq!(
        b.view(id).expect("b reads").str_field("title"),
        Some("first")
    );
    let head = b.stored_feed_head().expect("head");
    set_field(&a, id, "title", "from A");
    // B's copy is stale; it writes another field through it
    set_field(&b, id, "location", "from B");
    let fresh = relay(&db.url, StoreOptions::default());
    let v = fresh.view(id).expect("view");
    assert_eq!(v.str_field("title"), Some("from A"), "A's change kept");
    assert_eq!(v.str_field("location"), Some("from B"));
    assert_eq!(change_count(&fresh, id), 3);
    // A writes again; B catches up: its copy goes, the next read has it
    set_field(&a, id, "title", "A again");
    let caught = b.catch_up(head, 100).expect("catch up");
    assert!(caught.dropped >= 1, "{caught:?}");
    assert!(
        caught
            .caught
            .iter()
            .any(|c| c.internal == id && c.external == id),
        "{caught:?}"
    );
    assert_eq!(b.view(id).expect("b").str_field("title"), Some("A again"));
    // B's own write was not reported back to it
    let own = set_field(&b, id, "location", "B again");
    let again = b.catch_up(caught.cursor, 100).expect("catch up");
    assert!(again.caught.is_empty(), "{again:?}");
    assert!(a.catch_up(caught.cursor, 100).expect("a").caught.len() == 1);
    assert!(a
        .with_doc(id, |d| d.has_change(&own))
        .expect("a has B's change"));
}

/// Two relays append changes to one document at once, compacting every
/// second chunk: every change either acknowledged is in storage.
#[test]
fn two_relays_appending_and_compacting_one_document_lose_nothing() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    const EACH: usize = 25;
    let opts = || StoreOptions {
        compact_after_chunks: 2,
        ..StoreOptions::default()
    };
    let first = relay(&db.url, opts());
    let id = permit(&first, "busy");
    let start = Arc::new(Barrier::new(2));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let store = if w == 0 {
                first.clone()
            } else {
                relay(&db.url, opts())
            };
            let start = start.clone();
            std::thread::spawn(move || {
                store.view(id).expect("loaded");
                start.wait();
                (0..EACH)
                    .map(|i| gas_reading(&store, id, (w * 100 + i) as f64))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let acknowledged: Vec<ChangeHash> = writers
        .into_iter()
        .flat_map(|t| t.join().expect("writer"))
        .collect();
    assert_eq!(acknowledged.len(), 2 * EACH);
    let fresh = relay(&db.url, StoreOptions::default());
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|h| !fresh.with_doc(id, |d| d.has_change(h)).expect("doc"))
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert_eq!(change_count(&fresh, id), 1 + 2 * EACH);
}

/// The same foreign change reaches two relays at once (a device that sent
/// it to one, then to the other): it is stored once, one chunk.
#[test]
fn two_relays_receiving_the_same_change_store_it_once() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let a = relay(&db.url, StoreOptions::default());
    let b = relay(&db.url, StoreOptions::default());
    let id = permit(&a, "shared");
    let mut am = Automerge::load(&a.save_doc(id).expect("save")).expect("load");
    am.set_actor(ActorId::random());
    let heads = am.get_heads();
    am.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "location", "Unit 9"))
        .expect("raw write");
    let changes = am.get_changes(&heads);
    let hash = changes[0].hash();
    let head = a.stored_feed_head().expect("head");
    let start = Arc::new(Barrier::new(2));
    let appliers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|store| {
            let (start, changes) = (start.clone(), changes.clone());
            std::thread::spawn(move || {
                store.view(id).expect("loaded");
                start.wait();
                store.apply_changes(id, changes).expect("applied")
            })
        })
        .collect();
    for t in appliers {
        assert_eq!(t.join().expect("applier").new_changes, vec![hash]);
    }
    let mut chunk_prefix = b"chk/".to_vec();
    chunk_prefix.extend_from_slice(id.as_bytes());
    let chunks = a
        .backend()
        .scan_prefix(&chunk_prefix, None, 100)
        .expect("chunks");
    assert_eq!(chunks.len(), 1, "the change is stored in one chunk");
    assert_eq!(
        a.stored_feed_head().expect("head"),
        head + 1,
        "the document was written once"
    );
    let fresh = relay(&db.url, StoreOptions::default());
    assert_eq!(change_count(&fresh, id), 2);
    assert_eq!(
        fresh.view(id).expect("view").str_field("location"),
        Some("Unit 9")
    );
}

/// Several relays create documents at once while a reader follows the
/// feed a few entries at a time: positions only grow, and the reader sees
/// every document (each is written once, so its entry never moves: a
/// reader that passed a position committed later would never see it).
#[test]
fn feed_readers_never_skip_an_entry_under_concurrent_commits() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    const WRITERS: usize = 4;
    const EACH: usize = 20;
    let reader = relay(&db.url, StoreOptions::default());
    let stores: Vec<Store> = (0..WRITERS)
        .map(|_| relay(&db.url, StoreOptions::default()))
        .collect();
    let start = Arc::new(Barrier::new(WRITERS + 1));
    let writers: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(w, store)| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                (0..EACH)
                    .map(|i| permit(&store, &format!("w{w} p{i}")))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    start.wait();
    let mut seen: Vec<(u64, EntityId)> = Vec::new();
    let mut cursor = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < WRITERS * EACH && Instant::now() < deadline {
        // small pages, read while the writers commit
        let page = reader.catch_up(cursor, 3).expect("catch up");
        seen.extend(page.caught.iter().map(|c| (c.seq, c.internal)));
        cursor = page.cursor;
        if page.caught.is_empty() {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let written: HashSet<EntityId> = writers
        .into_iter()
        .flat_map(|t| t.join().expect("writer"))
        .collect();
    assert_eq!(written.len(), WRITERS * EACH);
    let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "positions only grow: {seqs:?}"
    );
    let ids: HashSet<EntityId> = seen.iter().map(|(_, id)| *id).collect();
    let skipped: BTreeSet<String> = written.difference(&ids).map(|id| id.to_string()).collect();
    assert!(skipped.is_empty(), "the reader skipped {skipped:?}");
}
