//! Which policed operation (in the role table's terms) an op on a key is,
//! so the view can ask whether its author holds a role it needs.

use super::{History, KeyRole};
use crate::identity::PolicedOp;
use crate::model::{EntityType, FieldPolicy, IsolationStatus, PermitStatus};
use crate::view::op::{OpIdx, OpValue};
use crate::view::validate::{resolve_status, Prior};

/// The path prefix of a gas reading entry.
const GAS_READINGS: &str = "gas_readings.";

impl History {
    /// The operation `value`, written over `prior` to the key at `path` (of
    /// `role`), is in the role table.
    pub(crate) fn policed_op(
        &self,
        role: &KeyRole,
        path: &str,
        value: &OpValue,
        prior: &Prior<'_>,
    ) -> PolicedOp {
        let strs = |ops: &[OpIdx]| -> Vec<String> {
            ops.iter()
                .filter_map(|o| self.ops[*o as usize].value.as_str().map(str::to_string))
                .collect()
        };
        match role {
            KeyRole::Root(FieldPolicy::Workflow) => {
                let status = |ops: &[OpIdx]| {
                    resolve_status(
                        strs(ops)
                            .iter()
                            .filter_map(|s| s.parse::<PermitStatus>().ok()),
                    )
                };
                let from = status(prior.overwritten);
                let to = match value {
                    OpValue::Delete => status(prior.remaining),
                    v => v.as_str().and_then(|s| s.parse().ok()),
                };
                match to {
                    Some(to) if Some(to) != from => PolicedOp::PermitTransition { from, to },
                    _ => PolicedOp::Other,
                }
            }
            KeyRole::Root(FieldPolicy::Monotonic) => {
                let rank = |ops: &[OpIdx]| {
                    strs(ops)
                        .iter()
                        .filter_map(|s| s.parse::<IsolationStatus>().ok())
                        .max()
                };
                let from = rank(prior.overwritten);
                let to = match value {
                    OpValue::Delete => rank(prior.remaining),
                    v => v.as_str().and_then(|s| s.parse().ok()),
                };
                match to {
                    // an isolation point created at the lowest status is
                    // not a move (as a permit created in draft)
                    Some(IsolationStatus::Assigned) if from.is_none() => PolicedOp::Other,
                    Some(to) if Some(to) != from => PolicedOp::IsolationStatus,
                    _ => PolicedOp::Other,
                }
            }
            KeyRole::Entry(_)
                if *value == OpValue::Map && path.strip_prefix(GAS_READINGS).is_some() =>
            {
                PolicedOp::GasReading
            }
            KeyRole::Root(FieldPolicy::TrueWins)
                if path == "completed"
                    && self.entity_type() == Some(EntityType::Closeout)
                    && value.as_bool() == Some(true) =>
            {
                PolicedOp::CloseoutCompleted
            }
            _ => PolicedOp::Other,
        }
    }
}
