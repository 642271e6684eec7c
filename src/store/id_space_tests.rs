//! The tenant handle ([`Store::in_tenant`]) over an in-memory backend: the
//! same id in two tenants is two documents, stores of earlier versions keep
//! working, and a handle without a tenant reads nothing more than before.

use std::sync::{Arc, Mutex};

use super::backend::{Backend, BatchOp, MemBackend, Pair, StorageError};
use super::keys;
use super::options::StoreOptions;
use super::store::Store;
use crate::error::Error;
use crate::model::{EntityId, EntityType};
use crate::write::{Edit, NewIsolationPoint, NewPermit};

/// A backend that notes the table (key prefix) of every read.
#[derive(Default)]
struct Counting {
    inner: MemBackend,
    reads: Mutex<Vec<String>>,
}

impl Counting {
    fn note(&self, key: &[u8]) {
        let table = key
            .iter()
            .position(|b| *b == b'/')
            .map_or(key, |i| &key[..i]);
        self.reads
            .lock()
            .expect("store")
            .push(String::from_utf8_lossy(table).into_owned());
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.reads.lock().expect("reads"))
    }
}

impl Backend for Counting {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.note(key);
        self.inner.get(key)
    }
    fn scan_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Pair>, StorageError> {
        self.note(prefix);
        self.inner.scan_prefix(prefix, after, limit)
    }
    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StorageError> {
        self.note(prefix);
        self.inner.last_with_prefix(prefix)
    }
    fn apply(&self, batch: Vec<BatchOp>) -> Result<(), StorageError> {
        self.inner.apply(batch)
    }
    fn flush(&self) -> Result<(), StorageError> {
        self.inner.flush()
    }
}

fn store_on(backend: Arc<dyn Backend>) -> Store {
    Store::with_backend(backend, StoreOptions::default()).expect("store")
}

fn permit(id: EntityId, title: &str) -> NewPermit {
    NewPermit {
        id: Some(id),
        title: title.into(),
        ..Default::default()
    }
}

/// Create permit `id` in `tenant`'s space, as a node does (claim, then create).
fn create(store: &Store, tenant: &str, id: EntityId, title: &str) {
    let handle = store.in_tenant(tenant);
    assert!(
        handle.claim(id, tenant).expect("claim"),
        "{tenant} claims {id}"
    );
    handle.create_permit(permit(id, title)).expect("create");
}

fn title(store: &Store, id: EntityId) -> String {
    store.view(id).expect("view").fields["title"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_same_id_in_two_tenants_is_two_documents() {
    let store = store_on(Arc::new(MemBackend::new()));
    let id = EntityId::new_random();
    create(&store, "a", id, "A's permit");
    let (a, b) = (store.in_tenant("a"), store.in_tenant("b"));
    // before b holds it, a's id is unknown to b
    assert!(!b.contains(id).expect("store"));
    assert!(b.visible_summary(id, "b").expect("store").is_none());
    assert!(matches!(b.view(id), Err(Error::UnknownEntity(e)) if e == id));
    create(&store, "b", id, "B's permit");

    assert_eq!(title(&a, id), "A's permit");
    assert_eq!(title(&b, id), "B's permit");
    // each names the document by the id it knows
    assert_eq!(b.view(id).expect("store").id, id.to_string());
    assert_eq!(b.summary(id).expect("store").expect("store").id, id);
    assert_eq!(b.owner(id).expect("store").as_deref(), Some("b"));
    let feed_b = b.tenant_feed_since("b", 0, 10).expect("store");
    assert_eq!(feed_b.iter().map(|(_, i)| *i).collect::<Vec<_>>(), [id]);

    // edits stay in their tenant
    b.edit(
        id,
        Edit::SetField {
            field: "title".into(),
            value: "B renamed".into(),
        },
    )
    .expect("store");
    assert_eq!(title(&a, id), "A's permit");
    assert_eq!(title(&b, id), "B renamed");
    // a second create in b is b's own 409, and a claim by b stays b's
    assert!(b.create_permit(permit(id, "again")).is_err());
    assert!(b.claim(id, "b").expect("store"));
    // the store holds two documents
    assert_eq!(store.summaries().expect("store").len(), 2);
}

#[test]
fn children_link_to_the_permit_of_their_own_tenant() {
    let store = store_on(Arc::new(MemBackend::new()));
    let id = EntityId::new_random();
    create(&store, "a", id, "A's permit");
    create(&store, "b", id, "B's permit");
    let b = store.in_tenant("b");
    let point = EntityId::new_random();
    assert!(b.claim(point, "b").expect("store"));
    b.create_isolation_point(NewIsolationPoint {
        id: Some(point),
        permit_id: id,
        description: "valve".into(),
        lock_ids: Vec::new(),
    })
    .expect("store");
    assert_eq!(b.children(id).expect("store"), [point]);
    assert_eq!(b.cross_refs(id).expect("store").isolation_points.len(), 1);
    assert_eq!(
        b.cross_refs(id).expect("store").isolation_points[0].0,
        point
    );
    let a = store.in_tenant("a");
    assert!(a.children(id).expect("store").is_empty());
    assert!(a.cross_refs(id).expect("store").isolation_points.is_empty());
    let s = b.summary(point).expect("store").expect("store");
    assert_eq!((s.id, s.permit_id), (point, Some(id)));
}

#[test]
fn a_store_of_an_earlier_version_keeps_working() {
    // written as before tenant handles: claimed, then created without one
    let backend: Arc<dyn Backend> = Arc::new(MemBackend::new());
    let (owned, unowned) = (EntityId::new_random(), EntityId::new_random());
    {
        let old = store_on(backend.clone());
        assert!(old.claim(owned, "a").expect("store"));
        old.create_permit(permit(owned, "A's")).expect("store");
        old.create_permit(permit(unowned, "the CLI's"))
            .expect("store");
        old.flush().expect("store");
    }
    let store = store_on(backend.clone());
    let (a, b, default) = (
        store.in_tenant("a"),
        store.in_tenant("b"),
        store.in_tenant(super::DEFAULT_TENANT),
    );
    assert_eq!(title(&a, owned), "A's");
    a.edit(
        owned,
        Edit::SetField {
            field: "title".into(),
            value: "A's, edited".into(),
        },
    )
    .expect("store");
    assert_eq!(title(&default, unowned), "the CLI's");
    // another tenant's legacy ids, owned or not, are free in b's space
    assert!(!b.contains(owned).expect("store") && !b.contains(unowned).expect("store"));
    create(&store, "b", owned, "B's");
    create(&store, "b", unowned, "B's too");
    assert_eq!(title(&a, owned), "A's, edited");
    assert_eq!(title(&default, unowned), "the CLI's");
    assert_eq!(title(&b, unowned), "B's too");
    // the legacy keys are where they were: internal == external
    assert!(backend.get(&keys::doc(owned)).expect("store").is_some());
    assert_eq!(store.internal(owned).expect("store"), owned);
    assert_eq!(a.internal(owned).expect("store"), owned);
    assert_ne!(b.internal(owned).expect("store"), owned);

    // reopened, the mapping is the same
    let again = store_on(backend);
    assert_eq!(title(&again.in_tenant("b"), owned), "B's");
    let feed = again
        .in_tenant("b")
        .tenant_feed_since("b", 0, 10)
        .expect("store");
    let mut ids: Vec<EntityId> = feed.into_iter().map(|(_, i)| i).collect();
    ids.sort();
    let mut expected = vec![owned, unowned];
    expected.sort();
    assert_eq!(ids, expected);
}

#[test]
fn derived_ids_are_keyed_per_store_and_tenant() {
    let id = EntityId::new_random();
    let one = store_on(Arc::new(MemBackend::new()));
    create(&one, "a", id, "A's");
    let (b, c) = (one.in_tenant("b"), one.in_tenant("c"));
    let (ib, ic) = (
        b.internal(id).expect("store"),
        c.internal(id).expect("store"),
    );
    assert!(ib != id && ic != id && ib != ic);
    assert_eq!(
        b.internal(id).expect("store"),
        ib,
        "a pure function of its inputs"
    );
    let two = store_on(Arc::new(MemBackend::new()));
    create(&two, "a", id, "A's");
    assert_ne!(
        two.in_tenant("b").internal(id).expect("store"),
        ib,
        "another store, another key"
    );
}

#[test]
fn a_handle_without_a_tenant_reads_nothing_more() {
    let backend = Arc::new(Counting::default());
    let store = store_on(backend.clone());
    let id = EntityId::new_random();
    store.create_permit(permit(id, "one")).expect("store");
    store.view(id).expect("store");
    backend.take();
    store.view(id).expect("store");
    store.summary(id).expect("store");
    store
        .edit(
            id,
            Edit::SetField {
                field: "title".into(),
                value: "two".into(),
            },
        )
        .expect("store");
    // what these read before id spaces existed: the view its summary, the
    // permit's owner and children; the summary; the edit the owner (its
    // tenant feed) and the feed position. Nothing to map an id.
    assert_eq!(backend.take(), ["ent", "own", "kid", "ent", "own", "fpos"],);
    assert_eq!(store.internal(id).expect("store"), id);
    assert_eq!(store.external(id).expect("store"), id);
    assert!(backend.take().is_empty());
    assert_eq!(
        store.summary(id).expect("store").map(|s| s.entity_type),
        Some(EntityType::Permit)
    );
}
