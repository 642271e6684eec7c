//! What a set of roles may do, by the default table or a tenant's own: the
//! permit moves the dashboard offers a token as buttons.

use super::role::{PolicedOp, RoleSet};
use super::role_table::RoleTable;
use super::table_op::required_roles;
use crate::model::PermitStatus;

/// Whether a holder of `roles` may do `op`, by the default table.
pub fn roles_allow(roles: &RoleSet, op: PolicedOp) -> bool {
    required_roles(op).is_none_or(|needed| needed.iter().any(|r| roles.contains(r)))
}

/// The permit moves a holder of `roles` may make: for each status (in
/// [`PermitStatus::ALL`] order), the statuses the workflow lets a permit move
/// to from it and the roles allow (what the dashboard offers as buttons).
pub fn permitted_moves(roles: &RoleSet) -> Vec<(PermitStatus, Vec<PermitStatus>)> {
    permitted_moves_by(roles, None)
}

/// [`permitted_moves`] by the tenant's role table (`None`: the default).
pub fn permitted_moves_by(
    roles: &RoleSet,
    table: Option<&RoleTable>,
) -> Vec<(PermitStatus, Vec<PermitStatus>)> {
    let allows = |op: PolicedOp| match table {
        Some(t) => t
            .required(op)
            .is_none_or(|needed| needed.iter().any(|r| roles.contains(r))),
        None => roles_allow(roles, op),
    };
    PermitStatus::ALL
        .into_iter()
        .map(|from| {
            let to = PermitStatus::ALL
                .into_iter()
                .filter(|to| {
                    from.can_transition_to(*to)
                        && allows(PolicedOp::PermitTransition {
                            from: Some(from),
                            to: *to,
                        })
                })
                .collect();
            (from, to)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::role::Role;
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
}
