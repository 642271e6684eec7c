//! The audit trail of an entity: every change, who made it and what it wrote
//! to the policed fields, with the view's verdict on each write.

use std::collections::HashMap;

use automerge::legacy::{ObjectId, OpType};
use automerge::{Automerge, ReadDoc};
use serde::Serialize;

use super::authorship::Author;
use super::history::{History, KeyRole};
use super::op::OpValue;
use crate::model::FieldPolicy;

/// One change of an entity's history.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeRecord {
    /// The change hash (hex).
    pub change: String,
    /// The Automerge actor (hex).
    pub actor: String,
    /// The actor's sequence number of the change.
    pub seq: u64,
    /// When the change was made, by its author's clock (Unix seconds).
    pub time: i64,
    /// The change message (a permitsync [`crate::write::ChangeNote`] as JSON,
    /// or whatever another client wrote).
    pub message: Option<String>,
    /// Who verifiably made it (never the note's claim: see
    /// `docs/identity.md`).
    pub author: Author,
    /// The writes to policed fields.
    pub ops: Vec<OpRecord>,
}

/// One write of a change.
#[derive(Clone, Debug, Serialize)]
pub struct OpRecord {
    /// The field's path (`title`, `safety_checklist.gas_test`, ...).
    pub field: String,
    /// `set`, `delete` or `edit_text` (characters inserted or deleted in a
    /// text field).
    pub action: &'static str,
    /// The value written (for `edit_text`, the number of characters inserted
    /// and deleted).
    pub value: serde_json::Value,
    /// The view's reason code when it turned the write into a no-op.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
}

/// The changes of `doc`, in causal order (the order the history processed
/// them), with their writes.
pub fn audit_trail(doc: &Automerge, h: &History) -> Vec<ChangeRecord> {
    let mut ops_of: HashMap<u32, Vec<OpRecord>> = HashMap::new();
    let mut text_objects: HashMap<(u64, u32), String> = HashMap::new();
    for op in &h.ops {
        let key = &h.keys[op.key as usize];
        if matches!(key.role, KeyRole::Root(FieldPolicy::Text)) {
            if let OpValue::Text { .. } = op.value {
                text_objects.insert((op.counter, op.actor), key.path.clone());
            }
        }
        let action = match op.value {
            OpValue::Delete => "delete",
            OpValue::Map | OpValue::List => continue, // containers: their items follow
            _ => "set",
        };
        ops_of.entry(op.change).or_default().push(OpRecord {
            field: key.path.clone(),
            action,
            value: op.value.to_json(),
            rejected: None,
        });
    }
    for (ci, r) in &h.rejected {
        if let Some(rec) = ops_of.get_mut(ci).and_then(|ops| {
            ops.iter_mut()
                .find(|o| o.field == r.field && o.rejected.is_none())
        }) {
            rec.rejected = Some(r.reason.clone());
        }
    }
    let actor_index: HashMap<_, u32> = (0..)
        .map_while(|i| h.actor(i).map(|a| (a.clone(), i)))
        .collect();
    h.changes
        .iter()
        .enumerate()
        .filter_map(|(ci, node)| {
            let change = doc.get_change_by_hash(&node.hash)?;
            let mut ops = ops_of.remove(&(ci as u32)).unwrap_or_default();
            ops.extend(text_edits(&change, &text_objects, &actor_index));
            Some(ChangeRecord {
                change: node.hash.to_string(),
                actor: change.actor_id().to_hex_string(),
                seq: change.seq(),
                time: change.timestamp(),
                message: change.message().map(str::to_string),
                author: Author::of(h.author(ci as u32)),
                ops,
            })
        })
        .collect()
}

/// Character edits a change made inside the Text objects of text fields.
fn text_edits(
    change: &automerge::Change,
    text_objects: &HashMap<(u64, u32), String>,
    actor_index: &HashMap<automerge::ActorId, u32>,
) -> Vec<OpRecord> {
    let mut counts: Vec<(String, u64, u64)> = Vec::new();
    for op in change.decode().operations {
        let ObjectId::Id(obj) = &op.obj else { continue };
        let Some(&actor) = actor_index.get(obj.actor()) else {
            continue;
        };
        let Some(field) = text_objects.get(&(obj.0, actor)) else {
            continue;
        };
        let (ins, del) = match op.action {
            OpType::Put(_) if op.insert => (1, 0),
            OpType::Delete => (0, 1),
            _ => continue,
        };
        match counts.iter_mut().find(|(f, ..)| f == field) {
            Some((_, i, d)) => {
                *i += ins;
                *d += del;
            }
            None => counts.push((field.clone(), ins, del)),
        }
    }
    counts
        .into_iter()
        .map(|(field, inserted, deleted)| OpRecord {
            field,
            action: "edit_text",
            value: serde_json::json!({"inserted": inserted, "deleted": deleted}),
            rejected: None,
        })
        .collect()
}
