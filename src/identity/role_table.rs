//! A tenant's own role table: which roles each policed operation needs,
//! where the tenant overrides the default table (DESIGN.md, "Who may do
//! what": "a tenant can configure its own"). Signed by the tenant authority
//! and carried to every replica, so devices judge as the relay does.
//!
//! Rows not given keep the default ([`TableOp::default_roles`]). The highest
//! version wins; two different tables of one version (two relays sharing an
//! authority key, configured differently) are settled by their signed bytes,
//! the larger winning, so every replica converges on the same one.

use std::collections::BTreeMap;

use super::canonical::{Domain, Reader, Writer};
use super::error::IdentityError;
use super::key::{NodeKey, PublicKey};
use super::role::{PolicedOp, Role, RoleSet};
use super::table_op::TableOp;

/// Most rows one table may hold (there are thirteen operations).
const MAX_ROWS: u64 = 64;
/// Most roles one row may list (there are four a device can hold).
const MAX_ROLES: u64 = 16;

/// The rows of a table: operation -> the roles of which one is needed.
pub type RoleRows = BTreeMap<TableOp, RoleSet>;

/// What a role table says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleTable {
    /// The tenant it is for.
    pub tenant: String,
    /// Higher replaces lower.
    pub version: u64,
    /// The overridden rows; each sorted, without duplicates, never empty.
    rows: BTreeMap<TableOp, Vec<Role>>,
}

impl RoleTable {
    /// A table of `tenant` at `version` overriding `rows`. Refused when a
    /// row lists no role, or a role no device can hold (`attest`).
    pub fn new(
        tenant: impl Into<String>,
        version: u64,
        rows: &RoleRows,
    ) -> Result<RoleTable, IdentityError> {
        let mut out = BTreeMap::new();
        for (op, roles) in rows {
            if roles.is_empty() {
                return Err(IdentityError::NoRoles(op.as_str()));
            }
            if let Some(r) = roles.iter().find(|r| **r == Role::Attest) {
                return Err(IdentityError::RoleNotAllowed {
                    op: op.as_str(),
                    role: r.as_str(),
                });
            }
            out.insert(*op, roles.iter().copied().collect());
        }
        Ok(RoleTable {
            tenant: tenant.into(),
            version,
            rows: out,
        })
    }

    /// Rows written by name (a relay's `--role-table` file): every
    /// operation and role name must be known.
    pub fn rows_from_names<'a>(
        rows: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> Result<RoleRows, IdentityError> {
        let mut out = RoleRows::new();
        for (op, roles) in rows {
            let op: TableOp = op.parse()?;
            let roles = roles
                .iter()
                .map(|r| r.parse::<Role>())
                .collect::<Result<RoleSet, _>>()?;
            out.insert(op, roles);
        }
        // the same checks as a signed table's
        RoleTable::new("", 0, &out)?;
        Ok(out)
    }

    /// The overridden rows.
    pub fn rows(&self) -> RoleRows {
        self.rows
            .iter()
            .map(|(op, roles)| (*op, roles.iter().copied().collect()))
            .collect()
    }

    /// The roles of which one is needed for `op` by this table (an
    /// overridden row, else the default); `None` when `op` needs none.
    pub fn required(&self, op: PolicedOp) -> Option<&[Role]> {
        let row = TableOp::of(op)?;
        Some(
            self.rows
                .get(&row)
                .map_or(row.default_roles(), Vec::as_slice),
        )
    }

    fn body(&self) -> Vec<u8> {
        let mut w = Writer::array(3);
        w.str(&self.tenant)
            .u64(self.version)
            .nested(self.rows.len() as u64);
        for (op, roles) in &self.rows {
            w.nested(2).str(op.as_str()).nested(roles.len() as u64);
            for r in roles {
                w.str(r.as_str());
            }
        }
        w.finish()
    }

    fn from_body(body: &[u8]) -> Result<RoleTable, IdentityError> {
        let mut r = Reader::array(body, "role table", 3)?;
        let tenant = r.string()?;
        let version = r.u64()?;
        let n = r.array_len(MAX_ROWS)?;
        let mut rows = RoleRows::new();
        for _ in 0..n {
            r.expect_array(2)?;
            let op: TableOp = r.string()?.parse()?;
            let count = r.array_len(MAX_ROLES)?;
            let mut roles = RoleSet::new();
            for _ in 0..count {
                roles.insert(r.string()?.parse::<Role>()?);
            }
            // a repeated row would be silently merged: not canonical
            if rows.insert(op, roles).is_some() {
                return Err(IdentityError::malformed("role table", "a row repeated"));
            }
        }
        r.end()?;
        let table = RoleTable::new(tenant, version, &rows)?;
        // one object, one encoding: refuse unordered rows or roles
        if table.body() != body {
            return Err(IdentityError::malformed("role table", "not canonical"));
        }
        Ok(table)
    }

    /// Sign as `authority`.
    pub fn sign(self, authority: &NodeKey) -> SignedRoleTable {
        let signature = authority.sign(Domain::RoleTable, &self.body());
        SignedRoleTable {
            table: self,
            signature,
        }
    }
}

/// A role table with its authority's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRoleTable {
    /// What it says.
    pub table: RoleTable,
    /// The authority's signature.
    pub signature: [u8; 64],
}

impl SignedRoleTable {
    /// Check the authority's signature.
    pub fn verify(&self, authority: &PublicKey) -> Result<(), IdentityError> {
        authority.verify(Domain::RoleTable, &self.table.body(), &self.signature)
    }

    /// The stored and transmitted form: `[body, signature]`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::array(2);
        w.bytes(&self.table.body()).bytes(&self.signature);
        w.finish()
    }

    /// Decode (not verify) the form of [`SignedRoleTable::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedRoleTable, IdentityError> {
        let mut r = Reader::array(bytes, "role table", 2)?;
        let body = r.bytes_vec()?;
        let signature = r.fixed()?;
        r.end()?;
        Ok(SignedRoleTable {
            table: RoleTable::from_body(&body)?,
            signature,
        })
    }

    /// Whether this table replaces `current`: a higher version, or at the
    /// same version larger signed bytes (so replicas that got two tables of
    /// one version, in either order, keep the same one).
    pub fn supersedes(&self, current: Option<&SignedRoleTable>) -> bool {
        let Some(current) = current else {
            return true;
        };
        match self.table.version.cmp(&current.table.version) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => self.to_bytes() > current.to_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PermitStatus;

    fn approve() -> PolicedOp {
        PolicedOp::PermitTransition {
            from: Some(PermitStatus::Submitted),
            to: PermitStatus::Approved,
        }
    }

    fn rows(pairs: &[(TableOp, &[Role])]) -> RoleRows {
        pairs
            .iter()
            .map(|(op, rs)| (*op, rs.iter().copied().collect()))
            .collect()
    }

    fn table(version: u64, pairs: &[(TableOp, &[Role])]) -> RoleTable {
        RoleTable::new("acme", version, &rows(pairs)).expect("valid")
    }

    #[test]
    fn a_table_round_trips_and_verifies_only_with_its_authority() {
        let authority = NodeKey::from_secret([9; 32]);
        let signed = table(
            2,
            &[
                (TableOp::PermitApprove, &[Role::Issuer, Role::Performer]),
                (TableOp::GasReading, &[Role::GasTester]),
            ],
        )
        .sign(&authority);
        let decoded = SignedRoleTable::from_bytes(&signed.to_bytes()).expect("decode");
        assert_eq!(decoded, signed);
        assert_eq!(decoded.verify(&authority.public()), Ok(()));
        // forged: the same table signed with another key
        let other = NodeKey::from_secret([8; 32]);
        assert_eq!(
            decoded.verify(&other.public()),
            Err(IdentityError::BadSignature("role table"))
        );
        let forged = decoded.table.clone().sign(&other);
        assert!(forged.verify(&authority.public()).is_err());
        // tampered: a row changed after signing
        let mut tampered = decoded;
        tampered.table.rows.remove(&TableOp::GasReading);
        assert!(tampered.verify(&authority.public()).is_err());
        // a revocation list's signature over the same bytes is no table's
        let body = signed.table.body();
        let as_list = authority.sign(Domain::RevocationList, &body);
        let swapped = SignedRoleTable {
            table: signed.table.clone(),
            signature: as_list,
        };
        assert!(swapped.verify(&authority.public()).is_err());
    }

    #[test]
    fn rows_not_given_keep_the_default() {
        let t = table(1, &[(TableOp::PermitApprove, &[Role::Performer])]);
        assert_eq!(t.required(approve()), Some(&[Role::Performer][..]));
        let activate = PolicedOp::PermitTransition {
            from: Some(PermitStatus::Approved),
            to: PermitStatus::Active,
        };
        assert_eq!(t.required(activate), Some(&[Role::Issuer][..]));
        assert_eq!(t.required(PolicedOp::Other), None);
        assert_eq!(
            t.rows(),
            rows(&[(TableOp::PermitApprove, &[Role::Performer])])
        );
    }

    #[test]
    fn unknown_operations_and_roles_and_attest_are_refused_by_name() {
        let named = |op: &str, roles: &[&str]| {
            let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
            RoleTable::rows_from_names([(op, roles.as_slice())])
        };
        let ok = named("permit submitted -> approved", &["performer", "issuer"]).expect("ok");
        assert_eq!(
            ok,
            rows(&[(TableOp::PermitApprove, &[Role::Performer, Role::Issuer])])
        );
        let err = named("permit draft -> approved", &["issuer"]).expect_err("unknown op");
        assert!(
            matches!(err, IdentityError::UnknownOperation { ref name, .. }
            if name == "permit draft -> approved")
        );
        assert!(err.to_string().contains("permit submitted -> approved"));
        let err = named("gas reading", &["supervisor"]).expect_err("unknown role");
        assert_eq!(err, IdentityError::UnknownRole("supervisor".into()));
        let err = named("gas reading", &["attest"]).expect_err("attest");
        assert_eq!(
            err.to_string(),
            "the role attest cannot be required by the role table (gas reading): it is a relay's"
        );
        let err = named("gas reading", &[]).expect_err("empty");
        assert_eq!(err, IdentityError::NoRoles("gas reading"));
    }

    #[test]
    fn a_signed_table_with_an_unknown_operation_or_role_does_not_decode() {
        let authority = NodeKey::from_secret([9; 32]);
        let encode = |op: &str, role: &str| {
            let mut w = Writer::array(3);
            w.str("acme").u64(1).nested(1);
            w.nested(2).str(op).nested(1).str(role);
            let body = w.finish();
            let signature = authority.sign(Domain::RoleTable, &body);
            let mut w = Writer::array(2);
            w.bytes(&body).bytes(&signature);
            w.finish()
        };
        assert!(SignedRoleTable::from_bytes(&encode("gas reading", "gas_tester")).is_ok());
        assert!(matches!(
            SignedRoleTable::from_bytes(&encode("gas sniffing", "gas_tester")),
            Err(IdentityError::UnknownOperation { .. })
        ));
        assert_eq!(
            SignedRoleTable::from_bytes(&encode("gas reading", "chemist")),
            Err(IdentityError::UnknownRole("chemist".into()))
        );
        assert!(matches!(
            SignedRoleTable::from_bytes(&encode("gas reading", "attest")),
            Err(IdentityError::RoleNotAllowed { .. })
        ));
    }

    #[test]
    fn the_higher_version_wins_and_equal_versions_tie_break_by_bytes() {
        let authority = NodeKey::from_secret([9; 32]);
        let v1 = table(1, &[(TableOp::PermitApprove, &[Role::Performer])]).sign(&authority);
        let v2 = table(2, &[]).sign(&authority);
        assert!(v1.supersedes(None));
        assert!(v2.supersedes(Some(&v1)));
        assert!(!v1.supersedes(Some(&v2)));
        assert!(!v2.supersedes(Some(&v2)), "the same table is no news");
        let a = table(3, &[(TableOp::GasReading, &[Role::GasTester])]).sign(&authority);
        let b = table(3, &[(TableOp::GasReading, &[Role::Issuer])]).sign(&authority);
        // exactly one of two different tables of one version wins, whichever
        // arrives first
        assert_ne!(a.supersedes(Some(&b)), b.supersedes(Some(&a)));
        let winner = if a.to_bytes() > b.to_bytes() { &a } else { &b };
        for (first, second) in [(&a, &b), (&b, &a)] {
            let mut current = first.clone();
            if second.supersedes(Some(&current)) {
                current = second.clone();
            }
            assert_eq!(&current, winner);
        }
    }
}
