//! Policy view tests on raw Automerge documents: foreign writers that bypass the
//! write API, concurrent edits, and the worked examples of `docs/policies.md`.

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjType, ReadDoc, ROOT};

use super::test_doc::{actor, field, reasons, Doc};
use crate::document::EntityDoc;
use crate::model::EntityId;
use crate::view::CrossRefs;

#[test]
fn worked_example_isolation_status() {
    // A: isolated (a1), verified (a2). B, having seen a2, sets assigned (b1): invalid.
    // C, having seen only a1, sets deisolated (c1): valid. Result: deisolated.
    let mut a = Doc::new(1, "isolation_point");
    a.put("status", "isolated");
    let mut c = a.fork(3);
    a.put("status", "verified");
    let mut b = a.fork(2);
    b.put("status", "assigned");
    c.put("status", "deisolated");
    a.merge(&b);
    a.merge(&c);
    let v = a.view();
    assert_eq!(field(&v, "status"), "deisolated");
    assert_eq!(
        reasons(&v),
        vec![("status".into(), "monotonic_regression".into())]
    );
    assert_eq!(v.rejected[0].detail, "verified -> assigned");
}

#[test]
fn invalid_op_that_overwrote_a_valid_one_leaves_it_in_force() {
    let mut a = Doc::new(1, "isolation_point");
    a.put("status", "verified");
    a.put("status", "assigned");
    // raw Automerge shows "assigned"; the view keeps "verified"
    assert_eq!(
        a.inner
            .get(ROOT, "status")
            .expect("get")
            .expect("some")
            .0
            .as_str(),
        Some("assigned")
    );
    assert_eq!(field(&a.view(), "status"), "verified");
}

#[test]
fn workflow_rejects_illegal_transition_and_keeps_previous_status() {
    let mut a = Doc::new(1, "permit");
    a.put("status", "active");
    let v = a.view();
    assert_eq!(field(&v, "status"), "draft");
    assert_eq!(v.rejected[0].reason, "invalid_transition");
    assert_eq!(v.rejected[0].detail, "draft -> active");
}

#[test]
fn guard_is_judged_in_the_changes_causal_past() {
    let mut a = Doc::new(1, "permit");
    a.put_in("safety_checklist", "isolation", false);
    a.put("status", "submitted");
    a.put("status", "approved");
    // B activates having seen an unticked checklist; A ticks concurrently.
    let mut b = a.fork(2);
    a.put_in("safety_checklist", "isolation", true);
    b.put("status", "active");
    a.merge(&b);
    let v = a.view();
    assert_eq!(field(&v, "status"), "approved");
    assert_eq!(v.rejected[0].reason, "guard_failed");
    assert!(
        v.rejected[0].detail.contains("isolation"),
        "{}",
        v.rejected[0].detail
    );
    // the same activation after seeing the tick is valid. (Automerge turns a
    // put of the value it already shows into a conflict-resolving delete or
    // nothing at all, so write it as a Text object, as JavaScript clients do.)
    a.inner
        .transact::<_, _, AutomergeError>(|tx| {
            let t = tx.put_object(ROOT, "status", ObjType::Text)?;
            tx.splice_text(&t, 0, 0, "active")
        })
        .expect("activate");
    let v = a.view();
    assert_eq!(field(&v, "status"), "active");
    assert_eq!(v.rejected.len(), 1);
}

#[test]
fn guard_checks_latest_gas_reading() {
    let mut a = Doc::new(1, "permit");
    a.put_in("safety_checklist", "isolation", true);
    a.put("status", "submitted");
    a.put("status", "approved");
    a.reading("r1", "H2S", 3.0, 1);
    a.reading("r2", "H2S", 12.0, 2);
    a.put("status", "active");
    let v = a.view();
    assert_eq!(field(&v, "status"), "approved");
    assert_eq!(
        v.rejected[0].detail,
        "gas H2S latest reading 12.0 outside [0, 10]"
    );
}

#[test]
fn concurrent_statuses_resolve_by_safety_precedence() {
    let mut a = Doc::new(1, "permit");
    a.put_in("safety_checklist", "x", true);
    a.put("status", "submitted");
    a.put("status", "approved");
    a.put("status", "active");
    let mut b = a.fork(2);
    a.put("status", "completed");
    b.put("status", "suspended");
    a.merge(&b);
    assert_eq!(field(&a.view(), "status"), "suspended");
    // and a later writer who saw both moves on from the resolved status
    a.put("status", "completed");
    let v = a.view();
    assert_eq!(field(&v, "status"), "completed");
    assert!(v.rejected.is_empty());
}

#[test]
fn true_wins_and_sequential_untick() {
    let mut a = Doc::new(1, "permit");
    a.put_in("safety_checklist", "gas_test", false);
    let mut b = a.fork(2);
    a.put_in("safety_checklist", "gas_test", true);
    b.put_in("safety_checklist", "gas_test", false);
    a.merge(&b);
    assert_eq!(field(&a.view(), "safety_checklist")["gas_test"], true);
    // deleting a checklist item is not allowed (it would bypass the guard)
    a.delete_in("safety_checklist", "gas_test");
    let v = a.view();
    assert_eq!(field(&v, "safety_checklist")["gas_test"], true);
    assert_eq!(v.rejected[0].reason, "delete_not_allowed");
}

#[test]
fn set_merge_is_add_wins() {
    let mut a = Doc::new(1, "permit");
    a.put_in("ppe_requirements", "gloves", true);
    let mut b = a.fork(2);
    a.delete_in("ppe_requirements", "gloves");
    // B removes and adds gloves again while A removes it: the add wins
    b.delete_in("ppe_requirements", "gloves");
    b.put_in("ppe_requirements", "gloves", true);
    b.put_in("ppe_requirements", "helmet", true);
    a.merge(&b);
    assert_eq!(
        field(&a.view(), "ppe_requirements"),
        &serde_json::json!(["gloves", "helmet"])
    );
    a.put_in("ppe_requirements", "boots", "yes");
    assert_eq!(a.view().rejected[0].reason, "type_mismatch");
}

#[test]
fn immutable_field_cannot_be_changed_even_through_delete_and_reput() {
    let mut a = Doc::new(1, "isolation_point");
    a.put("permit_id", "00000000-0000-0000-0000-000000000002");
    let v = a.view();
    assert_eq!(
        field(&v, "permit_id"),
        "00000000-0000-0000-0000-000000000001"
    );
    assert_eq!(v.rejected[0].reason, "immutable");
    let mut b = a.fork(2);
    b.inner
        .transact::<_, _, AutomergeError>(|tx| tx.delete(ROOT, "permit_id"))
        .expect("delete");
    b.put("permit_id", "00000000-0000-0000-0000-000000000003");
    let v = b.view();
    assert_eq!(
        field(&v, "permit_id"),
        "00000000-0000-0000-0000-000000000001"
    );
    assert_eq!(v.rejected.len(), 3);
}

#[test]
fn last_writer_wins_surfaces_conflict_and_a_new_write_settles_it() {
    let mut a = Doc::new(1, "permit");
    let mut b = a.fork(2);
    a.put("title", "A");
    b.put("title", "B");
    a.merge(&b);
    let v = a.view();
    assert_eq!(v.conflicts.len(), 1);
    assert_eq!(v.conflicts[0].values.len(), 2);
    assert_eq!(&v.conflicts[0].winner, field(&v, "title"));
    a.put("title", "C");
    let v = a.view();
    assert!(v.conflicts.is_empty());
    assert_eq!(field(&v, "title"), "C");
}

#[test]
fn javascript_style_text_status_is_read_as_of_its_creating_change() {
    let mut a = Doc::new(1, "permit");
    let t = a
        .inner
        .transact::<_, _, AutomergeError>(|tx| {
            let t = tx.put_object(ROOT, "status", ObjType::Text)?;
            tx.splice_text(&t, 0, 0, "submitted")?;
            Ok(t)
        })
        .expect("text status")
        .result;
    assert_eq!(field(&a.view(), "status"), "submitted");
    // editing the text afterwards is a no-op with a reason
    a.inner
        .transact::<_, _, AutomergeError>(|tx| tx.splice_text(&t, 0, 9, "active"))
        .expect("edit");
    let v = a.view();
    assert_eq!(field(&v, "status"), "submitted");
    assert_eq!(v.rejected[0].reason, "text_edit_ignored");
}

#[test]
fn append_only_entries_cannot_change() {
    let mut a = Doc::new(1, "permit");
    a.reading("r1", "H2S", 3.0, 1);
    let readings = a.obj("gas_readings");
    let (_, r1) = a.inner.get(&readings, "r1").expect("get").expect("r1");
    a.inner
        .transact::<_, _, AutomergeError>(|tx| tx.put(&r1, "value", 0.5))
        .expect("overwrite");
    let v = a.view();
    assert_eq!(field(&v, "gas_readings")["r1"]["value"], 3.0);
    assert_eq!(v.rejected[0].reason, "append_only");
    assert_eq!(v.rejected[0].field, "gas_readings.r1.value");
}

#[test]
fn view_is_identical_whatever_the_merge_order() {
    let base = Doc::new(1, "permit");
    let mut x = base.fork(2);
    let mut y = base.fork(3);
    x.put("title", "x");
    x.put("status", "active");
    y.put("title", "y");
    y.put_in("ppe_requirements", "mask", true);
    let mut m1 = base.fork(4);
    m1.merge(&x);
    m1.merge(&y);
    let mut m2 = base.fork(5);
    m2.merge(&y);
    m2.merge(&x);
    assert_eq!(m1.view().to_json_string(), m2.view().to_json_string());
}

#[test]
fn incremental_update_matches_a_fresh_build() {
    let mut a = Doc::new(1, "permit");
    let mut doc =
        EntityDoc::load(EntityId::from_bytes([7; 16]), actor(9), &[&a.inner.save()]).expect("load");
    for i in 0..20 {
        let heads = a.inner.get_heads();
        a.put("title", format!("t{i}").as_str());
        a.put("status", if i % 2 == 0 { "submitted" } else { "active" });
        doc.apply_changes(a.inner.get_changes(&heads))
            .expect("apply");
    }
    assert_eq!(
        doc.view(&CrossRefs::default()).to_json_string(),
        a.view().to_json_string()
    );
}
