//! The per-key operation history of one document, kept incrementally.
//!
//! Changes are processed in causal order. Each operation on a policed key is
//! judged once, against the effective state of the key in its own causal past,
//! and its effective set is memoized: an operation's verdict never changes when
//! later changes arrive, so new changes cost in proportion to their own ops.

use std::collections::{HashMap, HashSet};

use automerge::{ActorId, Change, ChangeHash, ExpandedChange};

use super::op::{ChangeIdx, KeyIdx, OpIdx, OpRec};
use super::rejection::Rejection;
use crate::model::{EntityType, EntryField, EntrySchema, FieldPolicy};

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

    /// The root key called `name`, if any op wrote it.
    pub(crate) fn root_key(&self, name: &str) -> Option<KeyIdx> {
        self.key_idx.get(&(None, name.to_string())).copied()
    }
}

mod effective;
mod judge;
mod local_check;

use judge::Pass;
pub(crate) use local_check::LocalTarget;
