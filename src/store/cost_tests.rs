//! Tests of [`super::cost`]: what chunks are measured to cost, and what is
//! refused before Automerge sees it.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT};

use super::cost::*;
use crate::error::Error;

fn text_doc(chars: usize) -> AutoCommit {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "type", "permit").expect("put");
    let text = doc
        .put_object(ROOT, "description", ObjType::Text)
        .expect("text");
    doc.splice_text(&text, 0, 0, &"x".repeat(chars))
        .expect("splice");
    doc.commit();
    doc
}

fn limits(ops: u64) -> CostLimits {
    CostLimits {
        max_ops_per_change: ops,
        max_ops_per_message: ops,
        max_text_chars: ops,
        max_value_bytes: 1024 * 1024,
        max_document_ops: ops,
    }
}

#[test]
fn counts_operations_inserts_and_values_of_changes_and_documents() {
    let mut doc = text_doc(500);
    let saved = doc.save();
    let cost = measure([saved.as_slice()], &CostLimits::default()).expect("measure");
    assert_eq!(cost.document_ops, 502, "{cost:?}");
    assert_eq!(cost.inserts, 500);
    assert!(cost.value_bytes >= 500, "{cost:?}");
    let changes = doc.get_changes(&[]);
    let raw: Vec<&[u8]> = changes.iter().map(|c| c.raw_bytes()).collect();
    let cost = measure(raw, &CostLimits::default()).expect("measure");
    assert_eq!(cost.change_ops, 502, "{cost:?}");
    assert_eq!(cost.inserts, 500);
    // deflated change chunks measure the same
    let mut change = changes[0].clone();
    let deflated = change.bytes().into_owned();
    assert_ne!(deflated.as_slice(), change.raw_bytes(), "compressed");
    let cost = measure([deflated.as_slice()], &CostLimits::default()).expect("measure");
    assert_eq!(cost.change_ops, 502, "{cost:?}");
}

#[test]
fn a_bomb_is_refused_from_its_headers() {
    let mut doc = text_doc(200_000);
    let saved = doc.save();
    assert!(saved.len() < 4096, "a small chunk: {}", saved.len());
    let e = measure([saved.as_slice()], &limits(100_000)).expect_err("refused");
    assert!(matches!(e, Error::LimitExceeded(_)), "{e}");
    let mut change = doc.get_changes(&[])[0].clone();
    let deflated = change.bytes().into_owned();
    let e = measure([deflated.as_slice()], &limits(100_000)).expect_err("refused");
    assert!(
        e.to_string().contains("a change of 200002 operations"),
        "{e}"
    );
    // characters and value bytes are limits of their own
    let few_chars = CostLimits {
        max_text_chars: 100,
        ..CostLimits::default()
    };
    let e = measure([text_doc(101).save().as_slice()], &few_chars).expect_err("chars");
    assert!(e.to_string().contains("characters"), "{e}");
    let few_bytes = CostLimits {
        max_value_bytes: 100,
        ..CostLimits::default()
    };
    let e = measure([text_doc(101).save().as_slice()], &few_bytes).expect_err("bytes");
    assert!(e.to_string().contains("bytes of values"), "{e}");
}

#[test]
fn inflating_stops_at_the_budget() {
    // a deflated value column of 64 MiB of zeros: inflated only into the
    // budget, then refused
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "blob", vec![0u8; 64 * 1024 * 1024])
        .expect("put");
    doc.commit();
    let saved = doc.save();
    assert!(saved.len() < 1024 * 1024, "{}", saved.len());
    let e = measure([saved.as_slice()], &CostLimits::default()).expect_err("refused");
    assert!(matches!(e, Error::LimitExceeded(_)), "{e}");
}

#[test]
fn garbage_and_other_chunk_types_are_refused_cleanly() {
    let saved = text_doc(10).save();
    for cut in 0..saved.len() {
        // every prefix: an error, never a panic
        let _ = measure([&saved[..cut]], &CostLimits::default());
    }
    assert!(measure([b"not automerge".as_slice()], &CostLimits::default()).is_err());
    let mut bundle = saved.clone();
    bundle[8] = 3;
    let e = measure([bundle.as_slice()], &CostLimits::default()).expect_err("bundle");
    assert!(e.to_string().contains("type 3"), "{e}");
    assert!(plain_change(saved).is_none(), "a document is not a change");
}

#[test]
fn local_writes_count_their_strings() {
    let l = limits(10);
    assert!(l.check_strings(["0123456789"]).is_ok());
    assert!(l.check_strings(["0123456789", "x"]).is_err());
}

#[test]
fn bundles_and_feed_changes_are_measured_before_they_load() {
    use crate::bundle::{self, BundleEntry};
    use crate::model::EntityId;
    use crate::store::{MemBackend, Store, StoreOptions};

    let store = Store::with_backend(
        std::sync::Arc::new(MemBackend::default()),
        StoreOptions {
            cost: limits(1_000),
            ..Default::default()
        },
    )
    .expect("store");
    let big = bundle::encode(&[BundleEntry {
        id: EntityId::new_random(),
        bytes: text_doc(5_000).save(),
    }])
    .expect("encode");
    let e = bundle::import(&store, &big).expect_err("refused");
    assert!(e.to_string().contains("limit exceeded"), "{e}");
    assert!(store.summaries().expect("summaries").is_empty());
    // a feed page's changes: plain change chunks only
    let mut change = text_doc(5_000).get_changes(&[])[0].clone();
    assert!(plain_change(change.raw_bytes().to_vec()).is_some());
    assert!(plain_change(change.bytes().into_owned()).is_none());
    let e = store
        .apply_changes(EntityId::new_random(), vec![change])
        .expect_err("over the limit");
    assert!(e.to_string().contains("limit exceeded"), "{e}");
}

#[test]
fn a_feed_change_over_the_default_limits_is_refused_before_automerge_parses_it() {
    // automerge walks every operation a change claims while parsing it, so a
    // feed page's change is measured against the default limits first
    let over = CostLimits::default().max_ops_per_change as usize + 1;
    let change = text_doc(over).get_changes(&[])[0].clone();
    assert!(plain_change(change.raw_bytes().to_vec()).is_none());
    let change = text_doc(1_000).get_changes(&[])[0].clone();
    assert!(plain_change(change.raw_bytes().to_vec()).is_some());
}
