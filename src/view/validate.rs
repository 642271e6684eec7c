//! Is an operation valid? Each policy's acceptance rule, judged against the
//! effective state of the key in the operation's causal past.

use super::guard::activation_guard;
use super::history::{History, KeyRole};
use super::op::{ChangeIdx, OpIdx, OpValue};
use super::rejection::RejectReason;
use super::snapshot;
use crate::model::{EntityType, FieldPolicy, IsolationStatus, PermitStatus, ScalarKind};

/// The state of a key an op is judged against.
pub(crate) struct Prior<'a> {
    /// The effective ops the op overwrote (the effective set of its `pred`).
    pub overwritten: &'a [OpIdx],
    /// For a delete: the effective ops of the key that it leaves in place (its
    /// other visible values). Non-empty only for a conflict-resolving delete.
    pub remaining: &'a [OpIdx],
}

/// Judge `value` written to a key of `role`, given the `prior` state of the key. `past` is the change that carries the op (the
/// guard is judged in its causal past), or `None` for a local write about to be
/// made on top of everything the history holds.
pub(crate) fn judge(
    h: &History,
    role: &KeyRole,
    value: &OpValue,
    prior: &Prior<'_>,
    past: Option<ChangeIdx>,
) -> Result<(), RejectReason> {
    if *value == OpValue::Delete && !prior.remaining.is_empty() {
        return judge_conflict_resolution(h, role, prior, past);
    }
    let prior = prior.overwritten;
    match role {
        KeyRole::Root(policy) => judge_root(h, *policy, value, prior, past),
        KeyRole::SetItem => match value {
            OpValue::Delete => Ok(()),
            v if v.as_bool() == Some(true) => Ok(()),
            v => Err(mismatch("true", v)),
        },
        KeyRole::TrueWinsItem => match value {
            OpValue::Delete => Err(RejectReason::DeleteNotAllowed),
            v if v.as_bool().is_some() => Ok(()),
            v => Err(mismatch("boolean", v)),
        },
        KeyRole::Entry(_) => match value {
            OpValue::Map if prior.is_empty() => Ok(()),
            OpValue::Map | OpValue::Delete => Err(RejectReason::AppendOnly),
            v => Err(mismatch("map", v)),
        },
        KeyRole::EntryField(field) => {
            if !prior.is_empty() || *value == OpValue::Delete {
                return Err(RejectReason::AppendOnly);
            }
            check_kind(field.kind, value)
        }
    }
}

fn judge_root(
    h: &History,
    policy: FieldPolicy,
    value: &OpValue,
    prior: &[OpIdx],
    past: Option<ChangeIdx>,
) -> Result<(), RejectReason> {
    let prior_values = || prior.iter().map(|o| &h.ops[*o as usize].value);
    match policy {
        FieldPolicy::Immutable(kind) => {
            if *value == OpValue::Delete {
                return Err(RejectReason::DeleteNotAllowed);
            }
            if !prior.is_empty() {
                return Err(RejectReason::Immutable);
            }
            check_kind(kind, value)
        }
        FieldPolicy::LastWriterWins | FieldPolicy::Text => match value {
            OpValue::Delete | OpValue::Text { .. } => Ok(()),
            v if v.as_str().is_some() => Ok(()),
            v => Err(mismatch("string or text", v)),
        },
        FieldPolicy::SetMerge | FieldPolicy::TrueWinsMap | FieldPolicy::AppendOnly(_) => {
            match value {
                OpValue::Map if prior.is_empty() => Ok(()),
                OpValue::Map => Err(RejectReason::Immutable),
                OpValue::Delete => Err(RejectReason::DeleteNotAllowed),
                v => Err(mismatch("map", v)),
            }
        }
        FieldPolicy::TrueWins => match value {
            OpValue::Delete => Err(RejectReason::DeleteNotAllowed),
            v if v.as_bool().is_some() => Ok(()),
            v => Err(mismatch("boolean", v)),
        },
        FieldPolicy::Monotonic => {
            let to = parse_enum::<IsolationStatus>(value)?;
            let from = prior_values()
                .filter_map(|v| v.as_str()?.parse::<IsolationStatus>().ok())
                .max();
            match from {
                Some(from) if to < from => Err(RejectReason::MonotonicRegression {
                    from: from.to_string(),
                    to: to.to_string(),
                }),
                _ => Ok(()),
            }
        }
        FieldPolicy::Workflow => {
            let to = parse_enum::<PermitStatus>(value)?;
            let from = resolve_status(prior_values().filter_map(|v| v.as_str()?.parse().ok()));
            match from {
                None if to == PermitStatus::Draft => Ok(()),
                None => Err(RejectReason::InvalidTransition {
                    from: "(none)".into(),
                    to: to.to_string(),
                }),
                Some(from) if from == to => Ok(()),
                Some(from) if !from.can_transition_to(to) => Err(RejectReason::InvalidTransition {
                    from: from.to_string(),
                    to: to.to_string(),
                }),
                Some(from) if from.needs_guard(to) => {
                    let past = past.map(|c| h.past_of(c));
                    let checklist = snapshot::true_wins_map(h, "safety_checklist", past.as_ref());
                    let readings = snapshot::gas_readings(h, past.as_ref());
                    activation_guard(&checklist, &readings).map_err(RejectReason::GuardFailed)
                }
                Some(_) => Ok(()),
            }
        }
    }
}

/// A delete that removes some concurrent values and keeps others: valid when
/// going from the resolved value of all of them to that of the ones kept is
/// allowed by the policy.
fn judge_conflict_resolution(
    h: &History,
    role: &KeyRole,
    prior: &Prior<'_>,
    past: Option<ChangeIdx>,
) -> Result<(), RejectReason> {
    let all: Vec<OpIdx> = prior
        .overwritten
        .iter()
        .chain(prior.remaining)
        .copied()
        .collect();
    let strs = |ops: &[OpIdx]| -> Vec<String> {
        ops.iter()
            .filter_map(|o| h.ops[*o as usize].value.as_str().map(str::to_string))
            .collect()
    };
    match role {
        KeyRole::Root(FieldPolicy::Monotonic) => {
            let rank = |ops: &[OpIdx]| {
                strs(ops)
                    .iter()
                    .filter_map(|s| s.parse::<IsolationStatus>().ok())
                    .max()
            };
            match (rank(&all), rank(prior.remaining)) {
                (Some(from), Some(to)) if to < from => Err(RejectReason::MonotonicRegression {
                    from: from.to_string(),
                    to: to.to_string(),
                }),
                _ => Ok(()),
            }
        }
        KeyRole::Root(FieldPolicy::Workflow) => {
            let status =
                |ops: &[OpIdx]| resolve_status(strs(ops).iter().filter_map(|s| s.parse().ok()));
            let Some(to) = status(prior.remaining) else {
                return Ok(());
            };
            let value = OpValue::Scalar(automerge::ScalarValue::Str(to.as_str().into()));
            judge_root(h, FieldPolicy::Workflow, &value, &all, past)
        }
        KeyRole::Root(
            FieldPolicy::SetMerge | FieldPolicy::TrueWinsMap | FieldPolicy::AppendOnly(_),
        )
        | KeyRole::Entry(_)
        | KeyRole::EntryField(_) => Err(RejectReason::DeleteNotAllowed),
        _ => Ok(()),
    }
}

/// The status shown among concurrent values: highest precedence.
pub(crate) fn resolve_status(values: impl Iterator<Item = PermitStatus>) -> Option<PermitStatus> {
    values.max_by_key(|s| s.precedence())
}

fn parse_enum<T: std::str::FromStr<Err = String>>(value: &OpValue) -> Result<T, RejectReason> {
    match value {
        OpValue::Delete => Err(RejectReason::DeleteNotAllowed),
        v => match v.as_str() {
            Some(s) => s.parse().map_err(RejectReason::InvalidValue),
            None => Err(mismatch("string", v)),
        },
    }
}

fn check_kind(kind: ScalarKind, value: &OpValue) -> Result<(), RejectReason> {
    let ok = match kind {
        ScalarKind::String => value.as_str().is_some(),
        ScalarKind::Uuid => match value.as_str() {
            Some(s) => uuid::Uuid::parse_str(s).is_ok(),
            None => false,
        },
        ScalarKind::EntityType => match value.as_str() {
            Some(s) => {
                return s
                    .parse::<EntityType>()
                    .map(|_| ())
                    .map_err(|e| RejectReason::InvalidValue(e.to_string()))
            }
            None => false,
        },
        ScalarKind::Timestamp => value.as_millis().is_some(),
        ScalarKind::Number => value.as_f64().is_some(),
    };
    if ok {
        Ok(())
    } else {
        Err(mismatch(kind.name(), value))
    }
}

fn mismatch(expected: &str, found: &OpValue) -> RejectReason {
    RejectReason::TypeMismatch {
        expected: expected.into(),
        found: found.type_name().into(),
    }
}
