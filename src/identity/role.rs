//! Roles, and which roles each policed operation needs (the default table of
//! DESIGN.md, "Who may do what").

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

/// The roles of which a certificate must hold one for `op`, by the default
/// table; `None` when any certified device of the tenant may do it.
pub fn required_roles(op: PolicedOp) -> Option<&'static [Role]> {
    use PermitStatus::*;
    const PERFORMER_OR_ISSUER: &[Role] = &[Role::Performer, Role::Issuer];
    const ISSUER: &[Role] = &[Role::Issuer];
    match op {
        PolicedOp::PermitTransition { to: Cancelled, .. } => Some(ISSUER),
        PolicedOp::PermitTransition { from, to } => match (from, to) {
            (Some(Draft), Submitted)
            | (Some(Submitted), Draft)
            | (Some(Active), Completed)
            | (Some(Suspended), Completed) => Some(PERFORMER_OR_ISSUER),
            (Some(Submitted), Approved)
            | (Some(Approved), Active)
            | (Some(Active), Suspended)
            | (Some(Suspended), Active)
            | (Some(Completed), Closed) => Some(ISSUER),
            // creating a permit in draft, or writing the same status again
            _ => None,
        },
        PolicedOp::IsolationStatus => Some(&[Role::IsolationAuthority]),
        PolicedOp::GasReading => Some(&[Role::GasTester, Role::Issuer]),
        PolicedOp::CloseoutCompleted => Some(ISSUER),
        PolicedOp::Other => None,
    }
}

/// Whether a holder of `roles` may do `op`, by the default table.
pub fn roles_allow(roles: &RoleSet, op: PolicedOp) -> bool {
    required_roles(op).is_none_or(|needed| needed.iter().any(|r| roles.contains(r)))
}

/// The permit moves a holder of `roles` may make: for each status (in
/// [`PermitStatus::ALL`] order), the statuses the workflow lets a permit move
/// to from it and the roles allow (what the dashboard offers as buttons).
pub fn permitted_moves(roles: &RoleSet) -> Vec<(PermitStatus, Vec<PermitStatus>)> {
    PermitStatus::ALL
        .into_iter()
        .map(|from| {
            let to = PermitStatus::ALL
                .into_iter()
                .filter(|to| {
                    from.can_transition_to(*to)
                        && roles_allow(
                            roles,
                            PolicedOp::PermitTransition {
                                from: Some(from),
                                to: *to,
                            },
                        )
                })
                .collect();
            (from, to)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use PermitStatus::*;

    #[test]
    fn the_moves_each_role_may_make() {
        let moves = |rs: &[Role]| -> Vec<(PermitStatus, PermitStatus)> {
            permitted_moves(&rs.iter().copied().collect())
                .into_iter()
                .flat_map(|(from, to)| to.into_iter().map(move |t| (from, t)))
                .collect()
        };
        assert_eq!(
            moves(&[Role::Performer]),
            [
                (Draft, Submitted),
                (Submitted, Draft),
                (Active, Completed),
                (Suspended, Completed)
            ]
        );
        let every: Vec<(PermitStatus, PermitStatus)> = PermitStatus::ALL
            .into_iter()
            .flat_map(|f| {
                PermitStatus::ALL
                    .into_iter()
                    .filter(move |t| f.can_transition_to(*t))
                    .map(move |t| (f, t))
            })
            .collect();
        assert_eq!(moves(&[Role::Issuer]), every, "an issuer makes every move");
        assert!(moves(&[Role::GasTester, Role::IsolationAuthority]).is_empty());
        assert!(moves(&[]).is_empty());
    }

    fn t(from: PermitStatus, to: PermitStatus) -> PolicedOp {
        PolicedOp::PermitTransition {
            from: Some(from),
            to,
        }
    }

    #[test]
    fn every_row_of_the_default_table() {
        let both: &[Role] = &[Role::Performer, Role::Issuer];
        let issuer: &[Role] = &[Role::Issuer];
        for (op, want) in [
            (t(Draft, Submitted), Some(both)),
            (t(Submitted, Draft), Some(both)),
            (t(Active, Completed), Some(both)),
            (t(Suspended, Completed), Some(both)),
            (t(Submitted, Approved), Some(issuer)),
            (t(Approved, Active), Some(issuer)),
            (t(Active, Suspended), Some(issuer)),
            (t(Suspended, Active), Some(issuer)),
            (t(Completed, Closed), Some(issuer)),
            (t(Draft, Cancelled), Some(issuer)),
            (t(Submitted, Cancelled), Some(issuer)),
            (t(Approved, Cancelled), Some(issuer)),
            (t(Suspended, Cancelled), Some(issuer)),
            (
                PolicedOp::IsolationStatus,
                Some(&[Role::IsolationAuthority][..]),
            ),
            (
                PolicedOp::GasReading,
                Some(&[Role::GasTester, Role::Issuer][..]),
            ),
            (PolicedOp::CloseoutCompleted, Some(issuer)),
            (PolicedOp::Other, None),
            (
                PolicedOp::PermitTransition {
                    from: None,
                    to: Draft,
                },
                None,
            ),
        ] {
            assert_eq!(required_roles(op), want, "{op:?}");
        }
    }

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
