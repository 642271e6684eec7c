//! The ingest pass: new changes, put in causal order and added to the graph,
//! then judged in two passes, the `type` field first (it decides the schema),
//! then every other field.

use std::collections::HashSet;

use automerge::{Change, ChangeHash, ExpandedChange};

use super::judge::Pass;
use super::History;
use crate::view::authority::Authorities;
use crate::view::op::ChangeIdx;

/// The result of [`History::ingest`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ingest {
    /// The changes were processed.
    Done,
    /// The entity type became known (or changed) after ops were judged without
    /// it: rebuild from all changes.
    Rebuild,
}

impl History {
    /// A history of all of `changes` (any order), in open mode.
    pub fn from_changes(changes: Vec<Change>) -> History {
        History::judged_by(changes, &Authorities::open())
    }

    /// A history of all of `changes` (any order), judged by `auth`.
    pub fn judged_by(changes: Vec<Change>, auth: &Authorities) -> History {
        let mut h = History {
            enforced: auth.is_enforced(),
            role_table: auth.role_table().cloned(),
            ..History::default()
        };
        // a fresh history judges the `type` of every change before any
        // other field, so it never asks to be rebuilt
        let _ = h.ingest(changes, auth);
        h
    }

    /// Process new changes. Changes already known are skipped; the rest are
    /// processed in a causal order whatever order they come in, judged by
    /// `auth` (which must be the context the history was built with).
    pub(crate) fn ingest(&mut self, changes: Vec<Change>, auth: &Authorities) -> Ingest {
        let ordered = self.causal_order(changes);
        let decoded: Vec<(ChangeIdx, ExpandedChange)> = ordered
            .into_iter()
            .map(|c| {
                let idx = self.register_change(&c, auth);
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
}
