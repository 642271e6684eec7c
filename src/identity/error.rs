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
}

impl IdentityError {
    pub(crate) fn malformed(what: &'static str, detail: impl ToString) -> Self {
        IdentityError::Malformed {
            what,
            detail: detail.to_string(),
        }
    }
}
