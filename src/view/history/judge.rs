//! The ingest pass: each operation on a policed key is judged once, against
//! the key's effective state in its own causal past, and its verdict, its
//! effective set and what it supersedes are recorded.

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{ExpandedChange, ObjType};

use super::{History, KeyRole, ObjRole, TYPE_FIELD};
use crate::model::{FieldPolicy, ScalarKind, Schema};
use crate::view::authority;
use crate::view::bitset::BitSet;
use crate::view::op::{ChangeIdx, OpIdx, OpRec, OpValue};
use crate::view::rejection::{RejectReason, Rejection};
use crate::view::text_snapshot::text_as_of_creation;
use crate::view::validate::{self, Prior};

impl History {
    pub(super) fn process_change(&mut self, ci: ChangeIdx, change: &ExpandedChange, pass: Pass) {
        let actor = self.actor_index(&change.actor_id);
        let mut past: Option<BitSet> = None;
        for (i, op) in change.operations.iter().enumerate() {
            let counter = change.start_op.get() + i as u64;
            let name = match &op.key {
                Key::Map(name) => name.as_str(),
                Key::Seq(_) => "", // inside a list or text: only judged for snapshot texts
            };
            let is_type = op.obj == ObjectId::Root && name == TYPE_FIELD;
            if is_type != (pass == Pass::TypeOnly) {
                continue;
            }
            let at = OpAt {
                change: ci,
                counter,
                actor,
                index: i as u32,
            };
            self.process_op(at, change, op, name, &mut past);
        }
    }

    fn process_op(
        &mut self,
        at: OpAt,
        change: &ExpandedChange,
        op: &automerge::legacy::Op,
        name: &str,
        past: &mut Option<BitSet>,
    ) {
        // Which key, with which role?
        let (obj, role, path) = match &op.obj {
            ObjectId::Root => {
                let policy = if name == TYPE_FIELD {
                    FieldPolicy::Immutable(ScalarKind::EntityType)
                } else {
                    match self.schema_type.map(Schema::of) {
                        Some(schema) => match schema.policy(name) {
                            Some(p) => p,
                            None => return, // a field the schema does not know
                        },
                        None => {
                            self.skipped_untyped = true;
                            return;
                        }
                    }
                };
                (None, KeyRole::Root(policy), name.to_string())
            }
            ObjectId::Id(id) => {
                let Some(&actor) = self.actor_idx.get(&id.1) else {
                    return;
                };
                let Some(&obj) = self.op_ids.get(&(id.0, actor)) else {
                    return; // an object outside the policed fields
                };
                let parent_path = self.keys[self.ops[obj as usize].key as usize].path.clone();
                let role = match self.objects.get(&obj) {
                    None => return,
                    Some(ObjRole::SnapshotText) => {
                        if self.ops[obj as usize].change != at.change {
                            self.reject_text_edit(at, op, parent_path);
                        }
                        return;
                    }
                    Some(_) if !op.key.is_map_key() => return,
                    Some(ObjRole::Container(FieldPolicy::SetMerge)) => KeyRole::SetItem,
                    Some(ObjRole::Container(FieldPolicy::TrueWinsMap)) => KeyRole::TrueWinsItem,
                    Some(ObjRole::Container(FieldPolicy::AppendOnly(s))) => KeyRole::Entry(*s),
                    Some(ObjRole::Container(_)) => return,
                    Some(ObjRole::Entry(schema)) => match schema.field(name) {
                        Some(f) => KeyRole::EntryField(f),
                        None => return,
                    },
                };
                (Some(obj), role, format!("{parent_path}.{name}"))
            }
        };
        let value = match &op.action {
            OpType::Put(v) => OpValue::Scalar(v.clone()),
            OpType::Make(ObjType::Text) => {
                let id = automerge::legacy::OpId(at.counter, change.actor_id.clone());
                OpValue::Text {
                    snapshot: text_as_of_creation(change, &id),
                }
            }
            OpType::Make(ObjType::Map) | OpType::Make(ObjType::Table) => OpValue::Map,
            OpType::Make(ObjType::List) => OpValue::List,
            OpType::Delete => OpValue::Delete,
            // increments and marks do not overwrite anything
            OpType::Increment(_) | OpType::MarkBegin(_) | OpType::MarkEnd(_) => return,
        };
        let key = self.key_for(obj, name, role, path);
        // What it overwrote: Automerge's pred, plus delete tombstones in its past.
        let mut pred: Vec<OpIdx> = op
            .pred
            .iter()
            .filter_map(|p| {
                let a = self.actor_idx.get(&p.1)?;
                self.op_ids.get(&(p.0, *a)).copied()
            })
            .filter(|p| self.ops[*p as usize].key == key)
            .collect();
        // Delete tombstones and, for a delete, the values it leaves in place:
        // read from the key as the op's author saw it (its causal past), never
        // from what this replica happens to have processed, so every replica
        // judges the op alike. Only keys that ever had a delete need this.
        let mut remaining: Vec<OpIdx> = Vec::new();
        if self.keys[key as usize].has_deletes || value == OpValue::Delete {
            let past = past.get_or_insert_with(|| self.past_of(at.change));
            let visible = self.visible_in_past(key, at.change, past);
            for o in visible {
                if pred.contains(&o) {
                    continue;
                }
                if self.ops[o as usize].value == OpValue::Delete {
                    pred.push(o);
                } else if value == OpValue::Delete {
                    remaining.push(o);
                }
            }
        }
        pred.sort_unstable();
        pred.dedup();
        // E(pred): what the op overwrote, seeing through invalid ops. It is
        // judged against the part of it still in force in its own causal past
        // (minus what a valid op of that past superseded).
        let overwritten = self.eff_union(&pred);
        let prior = self.in_force_at(&overwritten, at.change);
        // A delete that leaves other values of the key in place is how Automerge
        // resolves a conflict in favour of the value already shown: judge it by
        // the value that remains.
        let remaining = self.in_force_at(&self.eff_union(&remaining), at.change);
        let role = self.keys[key as usize].role.clone();
        let prior = Prior {
            overwritten: &prior,
            remaining: &remaining,
        };
        let verdict =
            validate::judge(self, &role, &value, &prior, Some(at.change)).and_then(|()| {
                if !self.enforced {
                    return Ok(());
                }
                let op = self.policed_op(&role, &self.keys[key as usize].path, &value, &prior);
                authority::authorize(op, self.author(at.change), self.role_table.as_ref())
            });
        let idx = self.ops.len() as OpIdx;
        let valid = verdict.is_ok();
        let eff = match (&verdict, &value) {
            (Ok(()), OpValue::Delete) => Vec::new(),
            (Ok(()), _) => vec![idx],
            (Err(_), _) => overwritten.clone(),
        };
        if valid {
            // a valid op supersedes everything in E(pred), in force or not
            for &o in &overwritten {
                self.ops[o as usize].superseded_by.push(idx);
            }
        }
        let path = self.keys[key as usize].path.clone();
        match (&verdict, &value, &role) {
            (Ok(()), OpValue::Map, KeyRole::Root(p)) => {
                self.objects.insert(idx, ObjRole::Container(*p));
            }
            (Ok(()), OpValue::Map, KeyRole::Entry(s)) => {
                self.objects.insert(idx, ObjRole::Entry(*s));
            }
            (_, OpValue::Text { .. }, r) if snapshot_role(r) => {
                self.objects.insert(idx, ObjRole::SnapshotText);
            }
            _ => {}
        }
        if let Err(reason) = &verdict {
            let rejection = Rejection {
                change: self.changes[at.change as usize].hash.to_string(),
                actor: self.actor_hex(at.actor),
                field: path.clone(),
                value: value.to_json(),
                reason: reason.code().to_string(),
                detail: reason.detail(&path),
                kind: Some(reason.clone()),
                op_index: at.index,
            };
            self.rejected.push((at.change, rejection));
        }
        self.ops.push(OpRec {
            counter: at.counter,
            actor: at.actor,
            change: at.change,
            key,
            pred: pred.clone(),
            value,
            valid,
            eff,
            superseded_by: Vec::new(),
        });
        self.op_ids.insert((at.counter, at.actor), idx);
        let state = &mut self.keys[key as usize];
        state.has_deletes |= self.ops[idx as usize].value == OpValue::Delete;
        state.ops.push(idx);
        state.frontier.retain(|f| !pred.contains(f));
        state.frontier.push(idx);
    }

    fn reject_text_edit(&mut self, at: OpAt, op: &automerge::legacy::Op, path: String) {
        let value = match &op.action {
            OpType::Put(v) => crate::view::op::scalar_to_json(v),
            _ => serde_json::Value::Null,
        };
        let reason = RejectReason::TextEditIgnored;
        // one entry per change and field is enough to explain it
        let change = self.changes[at.change as usize].hash.to_string();
        if self
            .rejected
            .iter()
            .any(|(c, r)| *c == at.change && r.field == path && r.reason == reason.code())
        {
            return;
        }
        self.rejected.push((
            at.change,
            Rejection {
                change,
                actor: self.actor_hex(at.actor),
                field: path.clone(),
                value,
                reason: reason.code().to_string(),
                detail: reason.detail(&path),
                kind: Some(reason),
                op_index: at.index,
            },
        ));
    }
}

/// Whether a Text object written to a key of this role holds a value fixed at
/// creation (so later edits inside it are ignored).
fn snapshot_role(role: &KeyRole) -> bool {
    match role {
        KeyRole::Root(FieldPolicy::Immutable(_))
        | KeyRole::Root(FieldPolicy::Workflow)
        | KeyRole::Root(FieldPolicy::Monotonic) => true,
        KeyRole::EntryField(f) => matches!(f.kind, ScalarKind::String | ScalarKind::Uuid),
        _ => false,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Pass {
    TypeOnly,
    Fields,
}

#[derive(Clone, Copy)]
struct OpAt {
    change: ChangeIdx,
    counter: u64,
    actor: u32,
    index: u32,
}
