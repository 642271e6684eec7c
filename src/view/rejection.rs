//! Why the view treated an operation as a no-op.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The reason an operation was rejected (the policy turned it into a no-op).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", content = "detail", rename_all = "snake_case")]
pub enum RejectReason {
    /// A permit status change the workflow does not allow, e.g. `draft -> active`.
    InvalidTransition {
        /// The status in force before, or `(none)`.
        from: String,
        /// The status written.
        to: String,
    },
    /// `approved -> active` whose guard failed in the change's causal past.
    GuardFailed(String),
    /// An isolation status lower than the one in force.
    MonotonicRegression {
        /// The status in force before.
        from: String,
        /// The lower status written.
        to: String,
    },
    /// A write to an immutable field that already had a value.
    Immutable,
    /// A change to, or a delete of, an entry of an append-only map.
    AppendOnly,
    /// A value of the wrong type for the field.
    TypeMismatch {
        /// What the schema expects.
        expected: String,
        /// What was written.
        found: String,
    },
    /// A value of the right type that the field does not allow (an unknown status).
    InvalidValue(String),
    /// A delete of a field or item that cannot be removed.
    DeleteNotAllowed,
    /// An edit inside a Text object that holds an identifier or enum value, after
    /// the change that created it.
    TextEditIgnored,
    /// A legal operation whose change no valid certificate with a role it
    /// needs vouches for (DESIGN.md, "Who may do what").
    NotAuthorized {
        /// What was attempted (`approving a permit`).
        action: String,
        /// The roles of which one is needed.
        needed: Vec<String>,
        /// Who vouched for the change, if anyone (`signed by tablet-2 (J. Smith)`).
        signer: Option<String>,
    },
}

impl RejectReason {
    /// The snake_case code used in JSON (`invalid_transition`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::InvalidTransition { .. } => "invalid_transition",
            RejectReason::GuardFailed(_) => "guard_failed",
            RejectReason::MonotonicRegression { .. } => "monotonic_regression",
            RejectReason::Immutable => "immutable",
            RejectReason::AppendOnly => "append_only",
            RejectReason::TypeMismatch { .. } => "type_mismatch",
            RejectReason::InvalidValue(_) => "invalid_value",
            RejectReason::DeleteNotAllowed => "delete_not_allowed",
            RejectReason::TextEditIgnored => "text_edit_ignored",
            RejectReason::NotAuthorized { .. } => "not_authorized",
        }
    }

    /// A human-readable detail, e.g. `draft -> active`.
    pub fn detail(&self, field: &str) -> String {
        match self {
            RejectReason::InvalidTransition { from, to } => format!("{from} -> {to}"),
            RejectReason::GuardFailed(d) => d.clone(),
            RejectReason::MonotonicRegression { from, to } => format!("{from} -> {to}"),
            RejectReason::Immutable => format!("field {field} is immutable"),
            RejectReason::AppendOnly => format!("{field} is append-only"),
            RejectReason::TypeMismatch { expected, found } => {
                format!("field {field} expects {expected}, got {found}")
            }
            RejectReason::InvalidValue(d) => d.clone(),
            RejectReason::DeleteNotAllowed => format!("{field} cannot be deleted"),
            RejectReason::TextEditIgnored => {
                format!(
                    "{field} holds a value fixed when written; edits inside its text are ignored"
                )
            }
            RejectReason::NotAuthorized {
                action,
                needed,
                signer,
            } => {
                let role = match needed.as_slice() {
                    [one] => format!("the role {one}"),
                    many => format!("one of the roles {}", many.join(", ")),
                };
                let by = signer.as_deref().unwrap_or("no valid signature");
                format!("not authorized: {action} needs {role}; {by}")
            }
        }
    }
}

/// An operation the view rejected, as listed in the view's `rejected`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    /// Hex hash of the change that carried the operation.
    pub change: String,
    /// Hex actor id of the change's author.
    pub actor: String,
    /// The field path, e.g. `status` or `safety_checklist.gas_test`.
    pub field: String,
    /// The value written (`null` for a delete).
    pub value: serde_json::Value,
    /// The reason code.
    pub reason: String,
    /// A human-readable detail.
    pub detail: String,
    /// The reason, typed (not serialized; use `reason`/`detail`).
    #[serde(skip)]
    pub kind: Option<RejectReason>,
    /// The op's position in its change (for a stable order).
    #[serde(skip)]
    pub(crate) op_index: u32,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Some(RejectReason::InvalidTransition { from, to }) => {
                write!(f, "invalid transition {from} -> {to}")
            }
            Some(RejectReason::GuardFailed(d)) => write!(f, "guard failed: {d}"),
            Some(RejectReason::MonotonicRegression { from, to }) => {
                write!(f, "{} cannot go back: {from} -> {to}", self.field)
            }
            Some(RejectReason::NotAuthorized { action, needed, .. }) => {
                let role = match needed.as_slice() {
                    [one] => format!("the role {one}"),
                    many => format!("one of the roles {}", many.join(", ")),
                };
                write!(f, "not authorized: {action} needs {role}")
            }
            _ => f.write_str(&self.detail),
        }
    }
}
