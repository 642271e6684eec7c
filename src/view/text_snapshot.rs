//! The content of a Text object as of the change that created it.
//!
//! JavaScript clients write every string as a Text object: a `makeText` op on
//! the key followed by character inserts in the same change. For fields whose
//! value is an identifier or enum, the value is the text as that change left it,
//! so we rebuild it from that change's own ops (an RGA over one change), which
//! costs in proportion to the change rather than to the document's history.

use std::collections::HashMap;

use automerge::legacy::{ElementId, Key, ObjectId, OpId, OpType};
use automerge::{ExpandedChange, ScalarValue};

/// The text of the Text object `text` (created by an op of `change`) as of the
/// end of `change`.
pub(crate) fn text_as_of_creation(change: &ExpandedChange, text: &OpId) -> String {
    // children of each element (None = head), with each inserted element's value
    let mut children: HashMap<Option<OpId>, Vec<OpId>> = HashMap::new();
    let mut values: HashMap<OpId, Option<String>> = HashMap::new();
    for (i, op) in change.operations.iter().enumerate() {
        if op.obj != ObjectId::Id(text.clone()) {
            continue;
        }
        let id = OpId(change.start_op.get() + i as u64, change.actor_id.clone());
        let Key::Seq(elem) = &op.key else { continue };
        let target = match elem {
            ElementId::Head => None,
            ElementId::Id(e) => Some(e.clone()),
        };
        match (&op.action, op.insert) {
            (OpType::Put(v), true) => {
                children.entry(target).or_default().push(id.clone());
                values.insert(id, Some(scalar_text(v)));
            }
            (OpType::Put(v), false) => {
                if let Some(e) = target {
                    values.insert(e, Some(scalar_text(v)));
                }
            }
            (OpType::Delete, _) => {
                if let Some(e) = target {
                    values.insert(e, None);
                }
            }
            _ => {}
        }
    }
    // RGA order: depth first, siblings by descending op id (counter, then actor)
    for list in children.values_mut() {
        list.sort_by(|a, b| (b.0, b.1.to_bytes()).cmp(&(a.0, a.1.to_bytes())));
    }
    let mut out = String::new();
    let mut stack: Vec<OpId> = children.get(&None).cloned().unwrap_or_default();
    stack.reverse();
    while let Some(id) = stack.pop() {
        if let Some(Some(v)) = values.get(&id) {
            out.push_str(v);
        }
        if let Some(kids) = children.get(&Some(id)) {
            stack.extend(kids.iter().rev().cloned());
        }
    }
    out
}

fn scalar_text(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Str(s) => s.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{Automerge, ObjType, ROOT};

    fn snapshot_of_last_change(doc: &Automerge, key_op_index: usize) -> String {
        let change = doc.get_changes(&[]).pop().expect("a change").decode();
        let text = OpId(
            change.start_op.get() + key_op_index as u64,
            change.actor_id.clone(),
        );
        text_as_of_creation(&change, &text)
    }

    #[test]
    fn rebuilds_text_spliced_in_the_creating_change() {
        let mut doc = Automerge::new();
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            let t = tx.put_object(ROOT, "status", ObjType::Text)?;
            tx.splice_text(&t, 0, 0, "dat")?;
            tx.splice_text(&t, 1, 0, "r")?;
            tx.splice_text(&t, 3, 0, "fx")?;
            tx.splice_text(&t, 4, 1, "")?;
            Ok(())
        })
        .expect("transaction");
        assert_eq!(snapshot_of_last_change(&doc, 0), "draft");
    }

    #[test]
    fn ignores_later_edits() {
        let mut doc = Automerge::new();
        let t = doc
            .transact::<_, _, automerge::AutomergeError>(|tx| {
                let t = tx.put_object(ROOT, "status", ObjType::Text)?;
                tx.splice_text(&t, 0, 0, "draft")?;
                Ok(t)
            })
            .expect("transaction")
            .result;
        let first = doc.get_changes(&[]).pop().expect("change").decode();
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.splice_text(&t, 0, 5, "active")?;
            Ok(())
        })
        .expect("transaction");
        let text = OpId(first.start_op.get(), first.actor_id.clone());
        assert_eq!(text_as_of_creation(&first, &text), "draft");
    }
}
