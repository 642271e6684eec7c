//! What changed after a past state: the writes to policed keys that a reader
//! who saw the document at some heads has not seen. The classic sync API
//! uses it to tell a stale client's edit from a fresh one.

use automerge::ChangeHash;

use super::bitset::BitSet;
use super::history::History;

/// A write to a policed key that is not in the causal past of some heads.
#[derive(Clone, Debug, PartialEq)]
pub struct LaterWrite {
    /// The key's path in the view (`title`, `safety_checklist.gas_test`, ...).
    pub path: String,
    /// The change that carried the write.
    pub change: ChangeHash,
    /// Whether the view accepted the write (a rejected write changed nothing).
    pub valid: bool,
}

impl History {
    /// The changes at or before `heads` (heads the history does not hold are
    /// ignored).
    pub(crate) fn closure(&self, heads: &[ChangeHash]) -> BitSet {
        let mut seen = BitSet::new(self.changes.len());
        let mut stack: Vec<u32> = heads.iter().filter_map(|h| self.change_index(h)).collect();
        while let Some(x) = stack.pop() {
            if seen.insert(x as usize) {
                stack.extend(self.changes[x as usize].deps.iter().copied());
            }
        }
        seen
    }

    /// Every write to a policed key made by a change that is not at or before
    /// `heads`, in the order the history processed them.
    pub fn writes_after(&self, heads: &[ChangeHash]) -> Vec<LaterWrite> {
        self.writes_outside(&self.closure(heads))
    }

    /// Every write to a policed key made by a change outside `seen` (a
    /// closure from [`History::closure`]).
    pub(crate) fn writes_outside(&self, seen: &BitSet) -> Vec<LaterWrite> {
        self.ops
            .iter()
            .filter(|op| !seen.contains(op.change as usize))
            .map(|op| LaterWrite {
                path: self.keys[op.key as usize].path.clone(),
                change: self.changes[op.change as usize].hash,
                valid: op.valid,
            })
            .collect()
    }
}
