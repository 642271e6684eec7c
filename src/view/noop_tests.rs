//! The no-op rule, second version (DESIGN.md, "The no-op rule, precisely"):
//! an invalid operation has no effect at all. What it overwrote stays in force
//! only until a valid operation overwrites it too, and it shields nothing from
//! anyone else's overwrite. Each test is checked against a view built change
//! by change, in both orders, as well as a full load.

use super::test_doc::{field, reasons, Doc};

fn merged(base: &Doc, others: &[&Doc]) -> Doc {
    let mut m = base.fork(50);
    for o in others {
        m.merge(o);
    }
    m
}

#[test]
fn checklist_garbage_write_does_not_defeat_a_concurrent_untick() {
    // A ticks `a` (t1). B, having seen t1, writes `a = 1` (invalid). C, having
    // seen only t1, unticks it (c1, valid): c1 supersedes t1, so `a` is unticked.
    let mut a = Doc::new(1, "closeout");
    a.put_in("checklist", "a", true);
    let mut b = a.fork(2);
    b.put_in("checklist", "a", 1);
    let mut c = a.fork(3);
    c.put_in("checklist", "a", false);
    let m = merged(&a, &[&b, &c]);
    let v = m.view();
    assert_eq!(field(&v, "checklist")["a"], false);
    assert_eq!(
        reasons(&v),
        vec![("checklist.a".into(), "type_mismatch".into())]
    );
    m.assert_incremental_matches();
}

#[test]
fn title_garbage_write_does_not_bring_back_a_stale_value_as_a_conflict() {
    // A writes "X" (x1); B writes 42 over it (invalid); C, having seen x1,
    // writes "Y": the view shows "Y" and no conflict.
    let mut a = Doc::new(1, "permit");
    a.put("title", "X");
    let mut b = a.fork(2);
    b.put("title", 42);
    let mut c = a.fork(3);
    c.put("title", "Y");
    let m = merged(&a, &[&b, &c]);
    let v = m.view();
    assert_eq!(field(&v, "title"), "Y");
    assert!(v.conflicts.is_empty(), "{:?}", v.conflicts);
    assert_eq!(reasons(&v), vec![("title".into(), "type_mismatch".into())]);
    m.assert_incremental_matches();
}

#[test]
fn set_merge_garbage_write_does_not_keep_a_removed_item() {
    // A adds `mask`; B writes `mask = 5` over it (invalid); C, having seen the
    // add, removes `mask` (valid): the remove supersedes the add.
    let mut a = Doc::new(1, "permit");
    a.put_in("ppe_requirements", "mask", true);
    let mut b = a.fork(2);
    b.put_in("ppe_requirements", "mask", 5);
    let mut c = a.fork(3);
    c.delete_in("ppe_requirements", "mask");
    let m = merged(&a, &[&b, &c]);
    let v = m.view();
    assert_eq!(field(&v, "ppe_requirements"), &serde_json::json!([]));
    assert_eq!(
        reasons(&v),
        vec![("ppe_requirements.mask".into(), "type_mismatch".into())]
    );
    m.assert_incremental_matches();
}

#[test]
fn monotonic_garbage_write_concurrent_with_a_valid_raise() {
    // A sets `isolated`; B writes the number 7 over it (invalid); C, having seen
    // `isolated`, raises it to `verified`. A valid monotonic overwrite never goes
    // down, so supersession cannot lower the result: `verified`.
    let mut a = Doc::new(1, "isolation_point");
    a.put("status", "isolated");
    let mut b = a.fork(2);
    b.put("status", 7);
    let mut c = a.fork(3);
    c.put("status", "verified");
    let m = merged(&a, &[&b, &c]);
    let v = m.view();
    assert_eq!(field(&v, "status"), "verified");
    assert_eq!(reasons(&v), vec![("status".into(), "type_mismatch".into())]);
    m.assert_incremental_matches();
}

#[test]
fn workflow_garbage_write_does_not_undo_a_return_for_changes() {
    // A submits (s1). B writes "bogus" over it (invalid); C, having seen s1,
    // returns the permit to draft (valid, supersedes s1): `draft`. Under the
    // first version s1 stayed in force and precedence showed `submitted`.
    let mut a = Doc::new(1, "permit");
    a.put("status", "submitted");
    let mut b = a.fork(2);
    b.put("status", "bogus");
    let mut c = a.fork(3);
    c.put("status", "draft");
    let m = merged(&a, &[&b, &c]);
    let v = m.view();
    assert_eq!(field(&v, "status"), "draft");
    assert_eq!(reasons(&v), vec![("status".into(), "invalid_value".into())]);
    m.assert_incremental_matches();
}

#[test]
fn a_valid_write_over_an_invalid_one_supersedes_what_that_overwrote() {
    // A writes "X" (x1). B writes 42 over it (b1, invalid); C, having seen b1,
    // writes "Y" (pred b1, so it supersedes E(b1) = x1). D, having seen only
    // x1, writes `true` (invalid, so x1 is still in E of D's write). x1 is
    // superseded by C all the same: "Y", no conflict.
    let mut a = Doc::new(1, "permit");
    a.put("title", "X");
    let mut d = a.fork(4);
    a.put("title", 42);
    let mut c = a.fork(3);
    c.put("title", "Y");
    d.put("title", true);
    let m = merged(&a, &[&c, &d]);
    let v = m.view();
    assert_eq!(field(&v, "title"), "Y");
    assert!(v.conflicts.is_empty(), "{:?}", v.conflicts);
    assert_eq!(v.rejected.len(), 2);
    m.assert_incremental_matches();
}

#[test]
fn an_op_is_judged_by_what_its_own_past_superseded_not_by_concurrent_ops() {
    // The permit starts in `draft` (d0). B writes "bogus" over it (invalid). C,
    // concurrently, submits (valid, supersedes d0). D, having seen B's write
    // but not C's, submits: in D's past d0 is still in force, so D's write is
    // `draft -> submitted`, valid. C's supersession, concurrent with D, must
    // not make D's write look like a transition from nothing.
    let a = Doc::new(1, "permit");
    let mut b = a.fork(2);
    b.put("status", "bogus");
    let mut c = a.fork(3);
    c.put("status", "submitted");
    let mut d = b.fork(4);
    d.put("status", "submitted");
    let m = merged(&a, &[&c, &d]);
    let v = m.view();
    assert_eq!(field(&v, "status"), "submitted");
    assert_eq!(reasons(&v), vec![("status".into(), "invalid_value".into())]);
    m.assert_incremental_matches();
}

#[test]
fn the_guard_reads_the_checklist_under_the_same_rule() {
    // A ticks the checklist, submits and approves. B writes `a = 1` over the
    // tick (invalid); C unticks it (valid). D, having seen both, activates:
    // in D's past the item is unticked, so the guard fails.
    let mut a = Doc::new(1, "permit");
    a.put_in("safety_checklist", "a", true);
    a.put("status", "submitted");
    a.put("status", "approved");
    let mut b = a.fork(2);
    b.put_in("safety_checklist", "a", 1);
    let mut c = a.fork(3);
    c.put_in("safety_checklist", "a", false);
    let mut d = merged(&b, &[&c]);
    d.put("status", "active");
    let m = merged(&a, &[&d]);
    let v = m.view();
    assert_eq!(field(&v, "status"), "approved");
    assert_eq!(field(&v, "safety_checklist")["a"], false);
    let mut r = reasons(&v);
    r.sort();
    assert_eq!(
        r,
        vec![
            ("safety_checklist.a".into(), "type_mismatch".into()),
            ("status".into(), "guard_failed".into()),
        ]
    );
    m.assert_incremental_matches();
}
