//! The rows of the role table: each policed operation that needs a role, by
//! a stable name (what a relay's `--role-table` file and a signed role table
//! say), with the roles the default table of DESIGN.md ("Who may do what")
//! gives it.

use std::fmt;
use std::str::FromStr;

use super::error::IdentityError;
use super::role::{PolicedOp, Role};
use crate::model::PermitStatus;

/// One row of the role table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableOp {
    /// `permit draft -> submitted`
    PermitSubmit,
    /// `permit submitted -> draft`
    PermitReturnToDraft,
    /// `permit active -> completed`
    PermitCompleteActive,
    /// `permit suspended -> completed`
    PermitCompleteSuspended,
    /// `permit submitted -> approved`
    PermitApprove,
    /// `permit approved -> active`
    PermitActivate,
    /// `permit active -> suspended`
    PermitSuspend,
    /// `permit suspended -> active`
    PermitResume,
    /// `permit completed -> closed`
    PermitClose,
    /// `permit -> cancelled` (from any status)
    PermitCancel,
    /// `isolation status` (any move of an isolation point)
    IsolationStatus,
    /// `gas reading` (one appended)
    GasReading,
    /// `closeout completed` (set true)
    CloseoutCompleted,
}

const PERFORMER_OR_ISSUER: &[Role] = &[Role::Performer, Role::Issuer];
const ISSUER: &[Role] = &[Role::Issuer];

impl TableOp {
    /// Every row, in canonical order.
    pub const ALL: [TableOp; 13] = [
        TableOp::PermitSubmit,
        TableOp::PermitReturnToDraft,
        TableOp::PermitCompleteActive,
        TableOp::PermitCompleteSuspended,
        TableOp::PermitApprove,
        TableOp::PermitActivate,
        TableOp::PermitSuspend,
        TableOp::PermitResume,
        TableOp::PermitClose,
        TableOp::PermitCancel,
        TableOp::IsolationStatus,
        TableOp::GasReading,
        TableOp::CloseoutCompleted,
    ];

    /// The stable name, as configuration files and signed tables write it.
    pub fn as_str(self) -> &'static str {
        match self {
            TableOp::PermitSubmit => "permit draft -> submitted",
            TableOp::PermitReturnToDraft => "permit submitted -> draft",
            TableOp::PermitCompleteActive => "permit active -> completed",
            TableOp::PermitCompleteSuspended => "permit suspended -> completed",
            TableOp::PermitApprove => "permit submitted -> approved",
            TableOp::PermitActivate => "permit approved -> active",
            TableOp::PermitSuspend => "permit active -> suspended",
            TableOp::PermitResume => "permit suspended -> active",
            TableOp::PermitClose => "permit completed -> closed",
            TableOp::PermitCancel => "permit -> cancelled",
            TableOp::IsolationStatus => "isolation status",
            TableOp::GasReading => "gas reading",
            TableOp::CloseoutCompleted => "closeout completed",
        }
    }

    /// The row that judges `op`; `None` when `op` needs no role whatever
    /// the table says (ordinary fields, creating a permit in draft, writing
    /// the same status again).
    pub fn of(op: PolicedOp) -> Option<TableOp> {
        use PermitStatus::*;
        Some(match op {
            PolicedOp::PermitTransition { to: Cancelled, .. } => TableOp::PermitCancel,
            PolicedOp::PermitTransition { from, to } => match (from?, to) {
                (Draft, Submitted) => TableOp::PermitSubmit,
                (Submitted, Draft) => TableOp::PermitReturnToDraft,
                (Active, Completed) => TableOp::PermitCompleteActive,
                (Suspended, Completed) => TableOp::PermitCompleteSuspended,
                (Submitted, Approved) => TableOp::PermitApprove,
                (Approved, Active) => TableOp::PermitActivate,
                (Active, Suspended) => TableOp::PermitSuspend,
                (Suspended, Active) => TableOp::PermitResume,
                (Completed, Closed) => TableOp::PermitClose,
                _ => return None,
            },
            PolicedOp::IsolationStatus => TableOp::IsolationStatus,
            PolicedOp::GasReading => TableOp::GasReading,
            PolicedOp::CloseoutCompleted => TableOp::CloseoutCompleted,
            PolicedOp::Other => return None,
        })
    }

    /// The roles the default table gives the row (one of them is needed).
    pub fn default_roles(self) -> &'static [Role] {
        match self {
            TableOp::PermitSubmit
            | TableOp::PermitReturnToDraft
            | TableOp::PermitCompleteActive
            | TableOp::PermitCompleteSuspended => PERFORMER_OR_ISSUER,
            TableOp::PermitApprove
            | TableOp::PermitActivate
            | TableOp::PermitSuspend
            | TableOp::PermitResume
            | TableOp::PermitClose
            | TableOp::PermitCancel
            | TableOp::CloseoutCompleted => ISSUER,
            TableOp::IsolationStatus => &[Role::IsolationAuthority],
            TableOp::GasReading => &[Role::GasTester, Role::Issuer],
        }
    }

    /// Every name, for error messages.
    pub(crate) fn known_names() -> String {
        TableOp::ALL
            .iter()
            .map(|o| o.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for TableOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TableOp {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TableOp::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| IdentityError::UnknownOperation {
                name: s.to_string(),
                known: TableOp::known_names(),
            })
    }
}

/// The roles of which a certificate must hold one for `op`, by the default
/// table; `None` when any certified device of the tenant may do it.
pub fn required_roles(op: PolicedOp) -> Option<&'static [Role]> {
    TableOp::of(op).map(TableOp::default_roles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PermitStatus::*;

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
            (t(Approved, Approved), None),
        ] {
            assert_eq!(required_roles(op), want, "{op:?}");
        }
    }

    #[test]
    fn every_row_has_a_stable_name_that_round_trips() {
        let names: Vec<&str> = TableOp::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(names[0], "permit draft -> submitted");
        assert_eq!(names[4], "permit submitted -> approved");
        assert_eq!(names[9], "permit -> cancelled");
        assert_eq!(names[12], "closeout completed");
        for o in TableOp::ALL {
            assert_eq!(o.as_str().parse::<TableOp>(), Ok(o));
        }
        // canonical order is the order of ALL
        let mut sorted = TableOp::ALL;
        sorted.sort();
        assert_eq!(sorted, TableOp::ALL);
        let err = "permit draft -> approved"
            .parse::<TableOp>()
            .expect_err("unknown");
        assert!(
            err.to_string()
                .starts_with("unknown operation \"permit draft -> approved\""),
            "{err}"
        );
    }
}
