//! The per-key operation history of one document, kept incrementally: its
//! graph of changes, operations and keys, and the verdict recorded on each op.
//!
//! Changes are processed in causal order ([`ingest`]). Each operation on a
//! policed key is judged once ([`judge`]), against the effective state of the
//! key in its own causal past ([`effective`]), and its effective set is
//! memoized: an operation's verdict never changes when later changes arrive,
//! so new changes cost in proportion to their own ops.
//!
//! This file holds the graph and nothing that reads policies; the passes over
//! it live in the child modules, which import from here and never the other way.

use std::collections::HashMap;

use automerge::{ActorId, Change, ChangeHash};

use super::authority::Authorities;
use super::op::{ChangeIdx, KeyIdx, OpIdx, OpRec};
use super::rejection::Rejection;
use crate::identity::{Authorization, RoleTable};
use crate::model::{EntityType, EntryField, EntrySchema, FieldPolicy};

/// A change as the history keeps it.
#[derive(Clone, Debug)]
pub(crate) struct ChangeNode {
    pub hash: ChangeHash,
    pub deps: Vec<ChangeIdx>,
    /// Who verifiably made it, as judged when it was processed.
    pub author: Authorization,
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
    /// Whether operations were judged by a tenant authority (not open mode).
    pub(crate) enforced: bool,
    /// The tenant's own role table the operations were judged by (`None`:
    /// the default table).
    pub(crate) role_table: Option<RoleTable>,
}

/// The root field that holds the entity type, which decides the schema.
const TYPE_FIELD: &str = "type";

impl History {
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

    /// The index of an actor, added if new.
    fn actor_index(&mut self, actor: &ActorId) -> u32 {
        if let Some(&i) = self.actor_idx.get(actor) {
            return i;
        }
        let i = self.actors.len() as u32;
        self.actors.push(actor.clone());
        self.actor_idx.insert(actor.clone(), i);
        i
    }

    /// Who verifiably made the change at `idx`.
    pub(crate) fn author(&self, idx: ChangeIdx) -> &Authorization {
        &self.changes[idx as usize].author
    }

    /// Whether `auth` judges any processed change differently than it was
    /// judged (a late attestation, certificate or revocation list): the
    /// history must then be rebuilt.
    pub(crate) fn judged_differently(
        &self,
        auth: &Authorities,
        times: impl Fn(&ChangeHash) -> i64,
        only: Option<&[ChangeHash]>,
    ) -> bool {
        if auth.is_enforced() != self.enforced || auth.role_table() != self.role_table.as_ref() {
            return true;
        }
        let differs = |c: &ChangeNode| auth.author_of(&c.hash, times(&c.hash)) != c.author;
        match only {
            Some(hashes) => hashes.iter().any(|h| {
                self.change_idx
                    .get(h)
                    .is_some_and(|&i| differs(&self.changes[i as usize]))
            }),
            None => self.changes.iter().any(differs),
        }
    }

    /// Add a change node (its dependencies must be known to be linked).
    fn register_change(&mut self, c: &Change, auth: &Authorities) -> ChangeIdx {
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
            author: auth.author_of(&c.hash(), c.timestamp()),
        });
        self.change_idx.insert(c.hash(), idx);
        idx
    }

    /// The key `name` inside object `obj` (a root field when `None`), added if new.
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
}

mod effective;
pub(super) mod ingest;
mod judge;
pub(super) mod local_check;
mod policed;
