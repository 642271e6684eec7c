//! Checking a local write before it is made, and naming effective objects.

use super::{History, KeyRole};
use crate::identity::Authorization;
use crate::model::{EntryField, FieldPolicy, Schema};
use crate::view::authority;
use crate::view::op::{OpIdx, OpRec, OpValue};
use crate::view::rejection::RejectReason;
use crate::view::validate::{self, Prior};

impl History {
    /// Check a local write before it is made: would the policy accept `value`
    /// at `target`, on top of everything the history holds?
    pub(crate) fn check_local(
        &self,
        target: &LocalTarget<'_>,
        value: &OpValue,
    ) -> Result<(), RejectReason> {
        let (role, prior, _) = self.local_prior(target)?;
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

    /// Check that `author` may make a local write of `value` at `target`,
    /// when the history is judged by an authority (always, in open mode).
    pub(crate) fn authorize_local(
        &self,
        target: &LocalTarget<'_>,
        value: &OpValue,
        author: &Authorization,
    ) -> Result<(), RejectReason> {
        if !self.enforced {
            return Ok(());
        }
        let (role, prior, path) = self.local_prior(target)?;
        let prior = Prior {
            overwritten: &prior,
            remaining: &[],
        };
        let op = self.policed_op(&role, &path, value, &prior);
        authority::authorize(op, author, self.role_table.as_ref())
    }

    /// The role of the key a local write goes to, the ops in force there, and
    /// its path.
    fn local_prior(
        &self,
        target: &LocalTarget<'_>,
    ) -> Result<(KeyRole, Vec<OpIdx>, String), RejectReason> {
        let schema = self.entity_type().map(Schema::of);
        let policy_of = |field: &str| schema.and_then(|s| s.policy(field));
        Ok(match target {
            LocalTarget::Root(field) => {
                let Some(policy) = policy_of(field) else {
                    return Err(RejectReason::InvalidValue(format!("unknown field {field}")));
                };
                let prior = self
                    .root_key(field)
                    .map(|k| self.effective(k, None))
                    .unwrap_or_default();
                (KeyRole::Root(policy), prior, field.to_string())
            }
            LocalTarget::Item { field, item } => {
                let role = match policy_of(field) {
                    Some(FieldPolicy::SetMerge) => KeyRole::SetItem,
                    Some(FieldPolicy::TrueWinsMap) => KeyRole::TrueWinsItem,
                    Some(FieldPolicy::AppendOnly(s)) => KeyRole::Entry(s),
                    _ => return Err(RejectReason::InvalidValue(format!("{field} has no items"))),
                };
                let prior = self.items(field, None).remove(*item).unwrap_or_default();
                (role, prior, format!("{field}.{item}"))
            }
            LocalTarget::EntryField(f) => (KeyRole::EntryField(*f), Vec::new(), f.name.to_string()),
        })
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
