//! The per-key operation history of one document, kept incrementally.
//!
//! Changes are processed in causal order. Each operation on a policed key is
//! judged once, against the effective state of the key in its own causal past,
//! and its effective set is memoized: an operation's verdict never changes when
//! later changes arrive, so new changes cost in proportion to their own ops.

use std::collections::{BTreeMap, HashMap, HashSet};

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{ActorId, Change, ChangeHash, ExpandedChange, ObjType};

use super::bitset::BitSet;
use super::op::{ChangeIdx, KeyIdx, OpIdx, OpRec, OpValue};
use super::rejection::{RejectReason, Rejection};
use super::text_snapshot::text_as_of_creation;
use super::validate::{self, Prior};
use crate::model::{EntityType, EntryField, EntrySchema, FieldPolicy, ScalarKind, Schema};

/// A change as the history keeps it.
#[derive(Clone, Debug)]
pub(crate) struct ChangeNode {
    pub hash: ChangeHash,
    pub deps: Vec<ChangeIdx>,
}

/// What a key is, which decides the policy of the ops written to it.
#[derive(Clone, Debug)]
pub(crate) enum KeyRole {
    /// A root field of the schema.
    Root(FieldPolicy),
    /// An item of a set-merge map (`ppe_requirements`, `lock_ids`).
    SetItem,
    /// An item of a true-wins map (`safety_checklist`, `checklist`).
    TrueWinsItem,
    /// An entry of an append-only map (`gas_readings`, `photos`).
    Entry(EntrySchema),
    /// A field inside an append-only entry.
    EntryField(EntryField),
}

/// What an object created under a policed key is.
#[derive(Clone, Debug)]
enum ObjRole {
    /// The map of a set-merge, true-wins or append-only field.
    Container(FieldPolicy),
    /// One entry of an append-only map.
    Entry(EntrySchema),
    /// A Text object holding a value fixed at creation (status, ids, entry strings);
    /// edits in later changes are rejected.
    SnapshotText,
}

/// One key (a root field, a map item or an entry field) and its operations.
#[derive(Clone, Debug)]
pub(crate) struct KeyState {
    /// The path shown in the view (`status`, `safety_checklist.gas_test`, ...).
    pub path: String,
    /// The item / field name (last path segment).
    pub name: String,
    pub role: KeyRole,
    /// Every op ever written to the key.
    pub ops: Vec<OpIdx>,
    /// The ops not overwritten by any other op (including delete tombstones).
    pub frontier: Vec<OpIdx>,
    /// Whether any delete was ever written to the key.
    pub has_deletes: bool,
}

/// The operation history of one document.
#[derive(Clone, Debug, Default)]
pub struct History {
    actors: Vec<ActorId>,
    actor_idx: HashMap<ActorId, u32>,
    pub(crate) changes: Vec<ChangeNode>,
    change_idx: HashMap<ChangeHash, ChangeIdx>,
    pub(crate) ops: Vec<OpRec>,
    op_ids: HashMap<(u64, u32), OpIdx>,
    pub(crate) keys: Vec<KeyState>,
    key_idx: HashMap<(Option<OpIdx>, String), KeyIdx>,
    objects: HashMap<OpIdx, ObjRole>,
    /// Keys inside each container or entry object.
    pub(crate) children: HashMap<OpIdx, Vec<KeyIdx>>,
    pub(crate) rejected: Vec<(ChangeIdx, Rejection)>,
    schema_type: Option<EntityType>,
    skipped_untyped: bool,
}

/// The result of [`History::ingest`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ingest {
    /// The changes were processed.
    Done,
    /// The entity type became known (or changed) after ops were judged without
    /// it: rebuild from all changes.
    Rebuild,
}

const TYPE_FIELD: &str = "type";

impl History {
    /// A history of all of `changes` (any order).
    pub fn from_changes(changes: Vec<Change>) -> History {
        let mut h = History::default();
        let _ = h.ingest(changes);
        h
    }

    /// The entity type, from the first valid write of `type`.
    pub fn entity_type(&self) -> Option<EntityType> {
        self.resolve_winner(self.root_key(TYPE_FIELD)?, None)
            .and_then(|op| op.value.as_str()?.parse().ok())
    }

    /// Whether the history already holds the change.
    pub fn has_change(&self, hash: &ChangeHash) -> bool {
        self.change_idx.contains_key(hash)
    }

    /// The index of a change the history holds.
    pub(crate) fn change_index(&self, hash: &ChangeHash) -> Option<ChangeIdx> {
        self.change_idx.get(hash).copied()
    }

    /// The actor of an actor index.
    pub(crate) fn actor(&self, idx: u32) -> Option<&ActorId> {
        self.actors.get(idx as usize)
    }

    /// Number of changes processed.
    pub fn change_count(&self) -> usize {
        self.changes.len()
    }

    /// Rejections of ops carried by the change `hash`.
    pub fn rejections_in(&self, hash: &ChangeHash) -> Vec<Rejection> {
        let Some(&c) = self.change_idx.get(hash) else {
            return Vec::new();
        };
        self.rejected
            .iter()
            .filter(|(ci, _)| *ci == c)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// The hex id of an actor index.
    pub(crate) fn actor_hex(&self, actor: u32) -> String {
        self.actors
            .get(actor as usize)
            .map(|a| a.to_hex_string())
            .unwrap_or_default()
    }

    /// Process new changes. Changes already known are skipped; the rest are
    /// processed in a causal order whatever order they come in.
    pub(crate) fn ingest(&mut self, changes: Vec<Change>) -> Ingest {
        let ordered = self.causal_order(changes);
        let decoded: Vec<(ChangeIdx, ExpandedChange)> = ordered
            .into_iter()
            .map(|c| {
                let idx = self.register_change(&c);
                (idx, c.decode())
            })
            .collect();
        // Pass 1: the immutable `type` field, which decides the schema.
        for (ci, change) in &decoded {
            self.process_change(*ci, change, Pass::TypeOnly);
        }
        let ty = self.entity_type();
        if ty != self.schema_type {
            let judged_without = self.skipped_untyped || self.schema_type.is_some();
            self.schema_type = ty;
            if judged_without {
                return Ingest::Rebuild;
            }
        }
        // Pass 2: every other field.
        for (ci, change) in &decoded {
            self.process_change(*ci, change, Pass::Fields);
        }
        Ingest::Done
    }

    fn causal_order(&self, changes: Vec<Change>) -> Vec<Change> {
        let mut pending: Vec<Change> = Vec::new();
        let mut seen: HashSet<ChangeHash> = HashSet::new();
        for c in changes {
            if !self.change_idx.contains_key(&c.hash()) && seen.insert(c.hash()) {
                pending.push(c);
            }
        }
        let mut done: HashSet<ChangeHash> = HashSet::new();
        let mut out = Vec::with_capacity(pending.len());
        loop {
            let before = pending.len();
            let mut rest = Vec::new();
            for c in pending {
                let ready = c
                    .deps()
                    .iter()
                    .all(|d| self.change_idx.contains_key(d) || done.contains(d));
                if ready {
                    done.insert(c.hash());
                    out.push(c);
                } else {
                    rest.push(c);
                }
            }
            pending = rest;
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        if !pending.is_empty() {
            tracing::warn!(
                missing = pending.len(),
                "changes with missing dependencies were not judged"
            );
        }
        out
    }

    fn actor_index(&mut self, actor: &ActorId) -> u32 {
        if let Some(&i) = self.actor_idx.get(actor) {
            return i;
        }
        let i = self.actors.len() as u32;
        self.actors.push(actor.clone());
        self.actor_idx.insert(actor.clone(), i);
        i
    }

    fn register_change(&mut self, c: &Change) -> ChangeIdx {
        self.actor_index(c.actor_id());
        let deps = c
            .deps()
            .iter()
            .filter_map(|d| self.change_idx.get(d).copied())
            .collect();
        let idx = self.changes.len() as ChangeIdx;
        self.changes.push(ChangeNode {
            hash: c.hash(),
            deps,
        });
        self.change_idx.insert(c.hash(), idx);
        idx
    }

    fn process_change(&mut self, ci: ChangeIdx, change: &ExpandedChange, pass: Pass) {
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
        let verdict = validate::judge(
            self,
            &role,
            &value,
            &Prior {
                overwritten: &prior,
                remaining: &remaining,
            },
            Some(at.change),
        );
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
            OpType::Put(v) => super::op::scalar_to_json(v),
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

    fn key_for(&mut self, obj: Option<OpIdx>, name: &str, role: KeyRole, path: String) -> KeyIdx {
        if let Some(&k) = self.key_idx.get(&(obj, name.to_string())) {
            return k;
        }
        let k = self.keys.len() as KeyIdx;
        self.keys.push(KeyState {
            path,
            name: name.to_string(),
            role,
            ops: Vec::new(),
            frontier: Vec::new(),
            has_deletes: false,
        });
        self.key_idx.insert((obj, name.to_string()), k);
        if let Some(o) = obj {
            self.children.entry(o).or_default().push(k);
        }
        k
    }

    /// The root key called `name`, if any op wrote it.
    pub(crate) fn root_key(&self, name: &str) -> Option<KeyIdx> {
        self.key_idx.get(&(None, name.to_string())).copied()
    }

    /// The ops of `key` its author could see when writing an op of change `c`:
    /// those of `c`'s causal past (and earlier ops of `c` itself) that no op
    /// of that same past overwrote.
    fn visible_in_past(&self, key: KeyIdx, c: ChangeIdx, past: &BitSet) -> Vec<OpIdx> {
        let seen = |o: &OpIdx| {
            let ch = self.ops[*o as usize].change;
            ch == c || past.contains(ch as usize)
        };
        let ops: Vec<OpIdx> = self.keys[key as usize]
            .ops
            .iter()
            .copied()
            .filter(seen)
            .collect();
        let overwritten: HashSet<OpIdx> = ops
            .iter()
            .flat_map(|o| self.ops[*o as usize].pred.iter().copied())
            .collect();
        ops.into_iter()
            .filter(|o| !overwritten.contains(o))
            .collect()
    }

    /// The changes in the causal past of change `c` (its deps and their ancestors),
    /// excluding `c` itself.
    pub(crate) fn past_of(&self, c: ChangeIdx) -> BitSet {
        let mut seen = BitSet::new(self.changes.len());
        let mut stack = self.changes[c as usize].deps.clone();
        while let Some(x) = stack.pop() {
            if seen.insert(x as usize) {
                stack.extend(self.changes[x as usize].deps.iter().copied());
            }
        }
        seen
    }

    /// The ops of `ops` that no valid op of change `c`'s causal past (or an
    /// earlier op of `c` itself) supersedes. Concurrent ops do not count: an op
    /// is judged only by what its author could have seen.
    fn in_force_at(&self, ops: &[OpIdx], c: ChangeIdx) -> Vec<OpIdx> {
        ops.iter()
            .copied()
            .filter(|o| {
                !self.ops[*o as usize].superseded_by.iter().any(|s| {
                    let by = self.ops[*s as usize].change;
                    by == c || self.is_ancestor(by, c)
                })
            })
            .collect()
    }

    /// Whether change `a` is in the causal past of change `c`. Change indexes
    /// follow a causal order, so the search never goes below `a`.
    fn is_ancestor(&self, a: ChangeIdx, c: ChangeIdx) -> bool {
        if a >= c {
            return false;
        }
        let mut seen: HashSet<ChangeIdx> = HashSet::new();
        let mut stack: Vec<ChangeIdx> = self.changes[c as usize].deps.clone();
        while let Some(x) = stack.pop() {
            if x == a {
                return true;
            }
            if x > a && seen.insert(x) {
                stack.extend(self.changes[x as usize].deps.iter().copied());
            }
        }
        false
    }

    /// The union of the effective sets of `ops`, sorted.
    pub(crate) fn eff_union(&self, ops: &[OpIdx]) -> Vec<OpIdx> {
        let mut out: Vec<OpIdx> = ops
            .iter()
            .flat_map(|o| self.ops[*o as usize].eff.iter().copied())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The effective ops of `key`, now (`at = None`) or as of a causal past:
    /// `E(heads)` minus every op that a valid op of the same set supersedes.
    pub(crate) fn effective(&self, key: KeyIdx, at: Option<&BitSet>) -> Vec<OpIdx> {
        let state = &self.keys[key as usize];
        match at {
            None => {
                let mut eff = self.eff_union(&state.frontier);
                eff.retain(|o| self.ops[*o as usize].superseded_by.is_empty());
                eff
            }
            Some(past) => {
                let in_past: Vec<OpIdx> = state
                    .ops
                    .iter()
                    .copied()
                    .filter(|o| past.contains(self.ops[*o as usize].change as usize))
                    .collect();
                let overwritten: HashSet<OpIdx> = in_past
                    .iter()
                    .flat_map(|o| self.ops[*o as usize].pred.iter().copied())
                    .collect();
                let frontier: Vec<OpIdx> = in_past
                    .into_iter()
                    .filter(|o| !overwritten.contains(o))
                    .collect();
                let mut eff = self.eff_union(&frontier);
                eff.retain(|o| {
                    !self.ops[*o as usize]
                        .superseded_by
                        .iter()
                        .any(|s| past.contains(self.ops[*s as usize].change as usize))
                });
                eff
            }
        }
    }

    /// The op Automerge would show as the winner among the effective ops: the
    /// highest op id (counter, then actor).
    pub(crate) fn resolve_winner(&self, key: KeyIdx, at: Option<&BitSet>) -> Option<&OpRec> {
        let eff = self.effective(key, at);
        eff.iter()
            .map(|o| &self.ops[*o as usize])
            .max_by(|a, b| self.op_order(a, b))
    }

    /// Automerge's total order of op ids.
    pub(crate) fn op_order(&self, a: &OpRec, b: &OpRec) -> std::cmp::Ordering {
        a.counter.cmp(&b.counter).then_with(|| {
            self.actors[a.actor as usize]
                .to_bytes()
                .cmp(self.actors[b.actor as usize].to_bytes())
        })
    }

    /// The items of a container field (set-merge / true-wins / append-only map),
    /// across every effective container object: item name -> effective ops.
    pub(crate) fn items(&self, field: &str, at: Option<&BitSet>) -> BTreeMap<String, Vec<OpIdx>> {
        let mut out: BTreeMap<String, Vec<OpIdx>> = BTreeMap::new();
        let Some(root) = self.root_key(field) else {
            return out;
        };
        for container in self.effective(root, at) {
            for &k in self
                .children
                .get(&container)
                .map(Vec::as_slice)
                .unwrap_or(&[])
            {
                let eff = self.effective(k, at);
                if !eff.is_empty() {
                    let entry = out.entry(self.keys[k as usize].name.clone()).or_default();
                    entry.extend(eff);
                    entry.sort_unstable();
                    entry.dedup();
                }
            }
        }
        out
    }

    /// The fields of the entry object created by op `entry`: name -> winning op.
    pub(crate) fn entry_fields(
        &self,
        entry: OpIdx,
        at: Option<&BitSet>,
    ) -> BTreeMap<String, &OpRec> {
        let mut out = BTreeMap::new();
        for &k in self.children.get(&entry).map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(op) = self.resolve_winner(k, at) {
                out.insert(self.keys[k as usize].name.clone(), op);
            }
        }
        out
    }
}

impl History {
    /// Check a local write before it is made: would the policy accept `value`
    /// at `target`, on top of everything the history holds?
    pub(crate) fn check_local(
        &self,
        target: &LocalTarget<'_>,
        value: &OpValue,
    ) -> Result<(), RejectReason> {
        let schema = self.entity_type().map(Schema::of);
        let policy_of = |field: &str| schema.and_then(|s| s.policy(field));
        let (role, prior) = match target {
            LocalTarget::Root(field) => {
                let Some(policy) = policy_of(field) else {
                    return Err(RejectReason::InvalidValue(format!("unknown field {field}")));
                };
                let prior = self
                    .root_key(field)
                    .map(|k| self.effective(k, None))
                    .unwrap_or_default();
                (KeyRole::Root(policy), prior)
            }
            LocalTarget::Item { field, item } => {
                let role = match policy_of(field) {
                    Some(FieldPolicy::SetMerge) => KeyRole::SetItem,
                    Some(FieldPolicy::TrueWinsMap) => KeyRole::TrueWinsItem,
                    Some(FieldPolicy::AppendOnly(s)) => KeyRole::Entry(s),
                    _ => return Err(RejectReason::InvalidValue(format!("{field} has no items"))),
                };
                let prior = self.items(field, None).remove(*item).unwrap_or_default();
                (role, prior)
            }
            LocalTarget::EntryField(f) => (KeyRole::EntryField(*f), Vec::new()),
        };
        validate::judge(
            self,
            &role,
            value,
            &Prior {
                overwritten: &prior,
                remaining: &[],
            },
            None,
        )
    }

    /// The effective object of a container or Text field: the winning op that
    /// created it, as an Automerge object id string (`counter@actor`).
    pub(crate) fn effective_object(&self, field: &str) -> Option<(String, OpValue)> {
        let op = self.resolve_winner(self.root_key(field)?, None)?;
        Some((self.op_id_string(op), op.value.clone()))
    }

    /// An op's id as Automerge prints it (`counter@actorhex`).
    pub(crate) fn op_id_string(&self, op: &OpRec) -> String {
        format!("{}@{}", op.counter, self.actor_hex(op.actor))
    }
}

/// Where a local write goes, for [`History::check_local`].
#[derive(Clone, Debug)]
pub(crate) enum LocalTarget<'a> {
    /// A root field.
    Root(&'a str),
    /// An item of a set-merge / true-wins / append-only map.
    Item {
        /// The map field.
        field: &'a str,
        /// The item key.
        item: &'a str,
    },
    /// A field of a new append-only entry.
    EntryField(EntryField),
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
enum Pass {
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
