//! A refused classic change: the reason and detail its answer carries, and
//! which errors of the write path are refusals rather than node failures.

use super::payload::{ClassicChange, Outcome, RejectedItem};
use crate::error::Error;
use crate::view::RejectReason;

/// A refusal of one change, before it is turned into a [`RejectedItem`].
pub(super) struct Refusal {
    pub(super) reason: &'static str,
    pub(super) detail: String,
}

pub(super) fn invalid(detail: impl Into<String>) -> Refusal {
    Refusal {
        reason: "validation_error",
        detail: detail.into(),
    }
}

/// The refusal an error of the write path stands for, or the error itself
/// when it is the node's (storage), which ends the batch.
pub(super) fn refusal_of(e: Error) -> std::result::Result<Refusal, Error> {
    Ok(match e {
        Error::Rejected(r) => {
            let reason = match r.kind {
                Some(RejectReason::InvalidTransition { .. })
                | Some(RejectReason::GuardFailed(_))
                | Some(RejectReason::MonotonicRegression { .. }) => "invalid_transition",
                _ => "validation_error",
            };
            Refusal {
                reason,
                detail: format!("{}: {}", r.field, r.detail),
            }
        }
        e @ Error::Interlock { .. } => Refusal {
            reason: "invalid_transition",
            detail: e.to_string(),
        },
        Error::InvalidInput(d) => invalid(d),
        e @ (Error::UnknownEntity(_) | Error::WrongType { .. } | Error::UntypedDocument(_)) => {
            invalid(e.to_string())
        }
        e @ (Error::LimitExceeded(_) | Error::Automerge(_)) => invalid(e.to_string()),
        other => return Err(other),
    })
}

/// The answer to a refused change.
pub(super) fn rejected(change: &ClassicChange, refusal: Refusal) -> Outcome {
    Outcome::Rejected(RejectedItem {
        entity: Some(change.entity.clone()),
        offline_id: Some(change.offline_id.clone()),
        server_id: change.server_id.clone(),
        reason: refusal.reason,
        detail: refusal.detail,
    })
}
