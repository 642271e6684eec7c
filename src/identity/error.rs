//! Why an identity object was not accepted.

use thiserror::Error;

/// An identity object that failed to decode or to verify.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IdentityError {
    /// The bytes are not a well-formed object of the expected kind.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        detail: String,
    },
    /// A public key that is not a valid Ed25519 point.
    #[error("invalid public key")]
    InvalidKey,
    /// The signature does not verify with the key it must verify with.
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    /// An unknown role name.
    #[error(
        "unknown role {0:?} (known: performer, issuer, isolation_authority, gas_tester, attest)"
    )]
    UnknownRole(String),
    /// An operation name the role table does not know.
    #[error("unknown operation {name:?} in the role table (known: {known})")]
    UnknownOperation {
        /// The name given.
        name: String,
        /// Every known name, for the message.
        known: String,
    },
    /// A role a role table may not require (a relay's `attest`).
    #[error("the role {role} cannot be required by the role table ({op}): it is a relay's")]
    RoleNotAllowed {
        /// The operation's name.
        op: &'static str,
        /// The role.
        role: &'static str,
    },
    /// A role table row that allows no role at all.
    #[error("the role table row {0:?} lists no role (a row allows at least one)")]
    NoRoles(&'static str),
}

impl IdentityError {
    pub(crate) fn malformed(what: &'static str, detail: impl ToString) -> Self {
        IdentityError::Malformed {
            what,
            detail: detail.to_string(),
        }
    }
}
