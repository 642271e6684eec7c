//! Reading a key's effective state: `E(heads)` minus what valid operations of
//! the same causally closed set supersede, now or as of a causal past.

use std::collections::{BTreeMap, HashSet};

use super::{History, TYPE_FIELD};
use crate::model::EntityType;
use crate::view::bitset::BitSet;
use crate::view::op::{ChangeIdx, KeyIdx, OpIdx, OpRec};

impl History {
    /// The entity type, from the first valid write of `type`.
    pub fn entity_type(&self) -> Option<EntityType> {
        self.resolve_winner(self.root_key(TYPE_FIELD)?, None)
            .and_then(|op| op.value.as_str()?.parse().ok())
    }

    /// The ops of `key` its author could see when writing an op of change `c`:
    /// those of `c`'s causal past (and earlier ops of `c` itself) that no op
    /// of that same past overwrote.
    pub(super) fn visible_in_past(&self, key: KeyIdx, c: ChangeIdx, past: &BitSet) -> Vec<OpIdx> {
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
    pub(super) fn in_force_at(&self, ops: &[OpIdx], c: ChangeIdx) -> Vec<OpIdx> {
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
