//! Roles, and the policed operations that may need one (the rows are in
//! `table_op.rs`, a tenant's own table in `role_table.rs`).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use super::error::IdentityError;
use crate::model::PermitStatus;

/// A role a certificate can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Does the work: submits, returns for changes, completes.
    Performer,
    /// Issues permits: approves, activates, suspends, closes, cancels.
    Issuer,
    /// Moves isolation points.
    IsolationAuthority,
    /// Records gas readings.
    GasTester,
    /// A relay's capability: attests changes it received for a device.
    Attest,
}

/// A set of roles, ordered so that it encodes canonically.
pub type RoleSet = BTreeSet<Role>;

impl Role {
    /// Every role, in canonical order.
    pub const ALL: [Role; 5] = [
        Role::Performer,
        Role::Issuer,
        Role::IsolationAuthority,
        Role::GasTester,
        Role::Attest,
    ];

    /// The name used in tokens files, certificates and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Performer => "performer",
            Role::Issuer => "issuer",
            Role::IsolationAuthority => "isolation_authority",
            Role::GasTester => "gas_tester",
            Role::Attest => "attest",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| IdentityError::UnknownRole(s.to_string()))
    }
}

/// A policed operation, as the role table sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicedOp {
    /// A permit status change (`from` is `None` for the first status).
    PermitTransition {
        /// The status before, if any.
        from: Option<PermitStatus>,
        /// The status written.
        to: PermitStatus,
    },
    /// Any move of an isolation point's status.
    IsolationStatus,
    /// A gas reading appended.
    GasReading,
    /// A closeout's `completed` set to true.
    CloseoutCompleted,
    /// Every other field.
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip_and_unknown_names_are_refused() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert_eq!(
            "supervisor".parse::<Role>(),
            Err(IdentityError::UnknownRole("supervisor".into()))
        );
    }
}
