//! Judging authority: given a tenant authority's key, the certificates and
//! revocation lists known, and a change's attestations, who verifiably made
//! the change and with which roles. A pure function of those inputs, so every
//! replica holding the same inputs judges alike, whatever order they came in.

use std::collections::BTreeMap;

use super::attestation::{Attestation, AttestationKind};
use super::certificate::{Certificate, SignedCertificate};
use super::error::IdentityError;
use super::key::PublicKey;
use super::revocation::{RevocationList, SignedRevocationList};
use super::role::{PolicedOp, Role, RoleSet};
use super::role_table::SignedRoleTable;
use super::table_op::required_roles;

/// How a change's author was established.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verification {
    /// Nothing valid vouches for it.
    Unverified,
    /// A relay attested who uploaded it.
    RelayAttested,
    /// Its author signed it.
    Signed,
}

impl Verification {
    /// The name shown in history and views.
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Unverified => "unverified",
            Verification::RelayAttested => "relay_attested",
            Verification::Signed => "signed",
        }
    }
}

/// Who verifiably made a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// How it was established.
    pub verification: Verification,
    /// The device (the certificate's, or the one a relay attested).
    pub device: Option<String>,
    /// The person named by the certificate, if any.
    pub person: Option<String>,
    /// The roles that count for the change: those of every valid
    /// attestation of it.
    pub roles: RoleSet,
    /// The serial of the certificate that vouched.
    pub serial: Option<u64>,
    /// For an unverified change that a known certificate signed, why that
    /// signature does not count (`revoked`, `expired`): `device` and
    /// `person` then name that certificate's holder.
    pub refused: Option<&'static str>,
}

impl Authorization {
    /// Nothing vouches for the change.
    pub fn unverified() -> Authorization {
        Authorization {
            verification: Verification::Unverified,
            device: None,
            person: None,
            roles: RoleSet::new(),
            serial: None,
            refused: None,
        }
    }

    /// Whether the change may do something that needs one of `needed`.
    pub fn holds_any(&self, needed: &[Role]) -> bool {
        needed.iter().any(|r| self.roles.contains(r))
    }
}

/// One tenant's authority as a replica knows it.
#[derive(Clone, Debug)]
pub struct TenantAuthority {
    tenant: String,
    key: PublicKey,
    certificates: BTreeMap<u64, Certificate>,
    revocations: RevocationList,
    /// The tenant's own role table, when its authority signed one.
    role_table: Option<SignedRoleTable>,
}

impl TenantAuthority {
    /// The authority of `tenant`, whose public key is `key`.
    pub fn new(tenant: impl Into<String>, key: PublicKey) -> TenantAuthority {
        let tenant = tenant.into();
        TenantAuthority {
            revocations: RevocationList {
                tenant: tenant.clone(),
                ..Default::default()
            },
            tenant,
            key,
            certificates: BTreeMap::new(),
            role_table: None,
        }
    }

    /// Learn a certificate. Refused unless this authority signed it for this
    /// tenant. A serial seen before with other contents is refused too (an
    /// authority never reuses a serial).
    pub fn add_certificate(&mut self, cert: &SignedCertificate) -> Result<bool, IdentityError> {
        cert.verify(&self.key)?;
        let c = &cert.certificate;
        if c.tenant != self.tenant {
            return Err(IdentityError::malformed("certificate", "another tenant's"));
        }
        match self.certificates.get(&c.serial) {
            Some(known) if known == c => Ok(false),
            Some(_) => Err(IdentityError::malformed("certificate", "serial reused")),
            None => {
                self.certificates.insert(c.serial, c.clone());
                Ok(true)
            }
        }
    }

    /// Learn a revocation list; the highest valid version wins. Returns
    /// whether it replaced the one in force.
    pub fn add_revocation_list(
        &mut self,
        list: &SignedRevocationList,
    ) -> Result<bool, IdentityError> {
        list.verify(&self.key)?;
        if list.list.tenant != self.tenant {
            return Err(IdentityError::malformed(
                "revocation list",
                "another tenant's",
            ));
        }
        if list.list.version <= self.revocations.version && self.revocations.version > 0 {
            return Ok(false);
        }
        self.revocations = list.list.clone();
        Ok(true)
    }

    /// Learn a role table; the highest valid version wins (at equal
    /// versions, the larger signed bytes). Returns whether it replaced the
    /// one in force.
    pub fn add_role_table(&mut self, table: &SignedRoleTable) -> Result<bool, IdentityError> {
        table.verify(&self.key)?;
        if table.table.tenant != self.tenant {
            return Err(IdentityError::malformed("role table", "another tenant's"));
        }
        if !table.supersedes(self.role_table.as_ref()) {
            return Ok(false);
        }
        self.role_table = Some(table.clone());
        Ok(true)
    }

    /// The tenant's own role table, if its authority signed one.
    pub fn role_table(&self) -> Option<&SignedRoleTable> {
        self.role_table.as_ref()
    }

    /// The roles of which one is needed for `op` here: by the tenant's role
    /// table when it has one, else by the default table; `None` when `op`
    /// needs no role.
    pub fn required_roles(&self, op: PolicedOp) -> Option<&[Role]> {
        match &self.role_table {
            Some(t) => t.table.required(op),
            None => required_roles(op),
        }
    }

    /// The revocation list in force.
    pub fn revocations(&self) -> &RevocationList {
        &self.revocations
    }

    /// Every known certificate, by serial.
    pub fn certificates(&self) -> impl DoubleEndedIterator<Item = &Certificate> {
        self.certificates.values()
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The authority's public key.
    pub fn public_key(&self) -> PublicKey {
        self.key
    }

    /// A known certificate by serial.
    pub fn certificate(&self, serial: u64) -> Option<&Certificate> {
        self.certificates.get(&serial)
    }

    /// Who made the change `attestations` are about, at `at` (the change's
    /// own time, ms since the epoch). An attestation counts when its
    /// certificate is known, not revoked, valid at `at`, and its signature
    /// verifies; a delivery attestation also needs the relay's certificate to
    /// hold `attest`. The author shown is chosen among the valid ones: a
    /// signed one beats a relay-attested one, among equals the lowest serial
    /// decides, so the choice is the same everywhere; the roles that count
    /// are those of every valid one (a role-less device countersigning an
    /// issuer's change takes nothing away from it).
    pub fn authorize(&self, at: i64, attestations: &[Attestation]) -> Authorization {
        self.authorize_with(at, attestations, |a, key| a.verify_with(key).is_ok())
    }

    /// [`TenantAuthority::authorize`], asking `verifies` whether an
    /// attestation's signature verifies with its certificate's key (so a
    /// caller can remember what it verified once).
    pub fn authorize_with(
        &self,
        at: i64,
        attestations: &[Attestation],
        mut verifies: impl FnMut(&Attestation, &PublicKey) -> bool,
    ) -> Authorization {
        let mut best = Authorization::unverified();
        // any valid attestation with a needed role authorizes (DESIGN.md):
        // the roles that count are those of every valid one
        let mut counted = RoleSet::new();
        for a in attestations {
            let Some(cert) = self.certificates.get(&a.serial) else {
                continue;
            };
            if !verifies(a, &cert.public_key) {
                continue;
            }
            let refused = if self.revocations.revokes(a.serial) {
                Some("revoked")
            } else if at > cert.not_after {
                Some("expired")
            } else if !cert.valid_at(at) {
                Some("not yet valid")
            } else {
                None
            };
            if let Some(why) = refused {
                // counts for nothing, but says who signed
                if best.verification == Verification::Unverified && best.refused.is_none() {
                    best.device = Some(cert.device.clone());
                    best.person = cert.person.clone();
                    best.serial = Some(a.serial);
                    best.refused = Some(why);
                }
                continue;
            }
            let candidate = match &a.kind {
                AttestationKind::Author => Authorization {
                    verification: Verification::Signed,
                    device: Some(cert.device.clone()),
                    person: cert.person.clone(),
                    roles: cert.roles.clone(),
                    serial: Some(a.serial),
                    refused: None,
                },
                AttestationKind::Delivery {
                    device,
                    roles,
                    person,
                } => {
                    if !cert.roles.contains(&Role::Attest) {
                        continue;
                    }
                    Authorization {
                        verification: Verification::RelayAttested,
                        device: Some(device.clone()),
                        person: person.clone(),
                        roles: roles.clone(),
                        serial: Some(a.serial),
                        refused: None,
                    }
                }
            };
            counted.extend(candidate.roles.iter().copied());
            let better = (candidate.verification, std::cmp::Reverse(candidate.serial))
                > (best.verification, std::cmp::Reverse(best.serial));
            if best.verification == Verification::Unverified || better {
                best = candidate;
            }
        }
        if best.verification != Verification::Unverified {
            best.roles = counted;
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use automerge::ChangeHash;

    use super::*;
    use crate::identity::certificate::tests::cert;
    use crate::identity::key::NodeKey;

    struct World {
        authority: NodeKey,
        judge: TenantAuthority,
    }

    fn world() -> World {
        let authority = NodeKey::from_secret([9; 32]);
        World {
            judge: TenantAuthority::new("acme", authority.public()),
            authority,
        }
    }

    const H: ChangeHash = ChangeHash([5; 32]);

    #[test]
    fn a_signed_change_carries_its_certificates_device_person_and_roles() {
        let mut w = world();
        let dev = NodeKey::from_secret([1; 32]);
        w.judge
            .add_certificate(&cert(1, &dev, &[Role::Issuer]).sign(&w.authority))
            .expect("add");
        let a = w.judge.authorize(1_500, &[Attestation::author(H, 1, &dev)]);
        assert_eq!(a.verification, Verification::Signed);
        assert_eq!(a.device.as_deref(), Some("tablet-1"));
        assert_eq!(a.person.as_deref(), Some("J. Smith"));
        assert!(a.holds_any(&[Role::Issuer]) && !a.holds_any(&[Role::GasTester]));
    }

    #[test]
    fn nothing_vouches_without_a_valid_attestation() {
        let mut w = world();
        let dev = NodeKey::from_secret([1; 32]);
        let thief = NodeKey::from_secret([2; 32]);
        w.judge
            .add_certificate(&cert(1, &dev, &[Role::Issuer]).sign(&w.authority))
            .expect("add");
        let unverified = |a: Authorization| a.verification == Verification::Unverified;
        // no attestation; an unknown serial; signed with another key
        assert!(unverified(w.judge.authorize(1_500, &[])));
        assert!(unverified(
            w.judge.authorize(1_500, &[Attestation::author(H, 2, &dev)])
        ));
        assert!(unverified(
            w.judge
                .authorize(1_500, &[Attestation::author(H, 1, &thief)])
        ));
        // dated after expiry, or before the certificate was valid
        assert!(unverified(
            w.judge.authorize(2_001, &[Attestation::author(H, 1, &dev)])
        ));
        assert!(unverified(
            w.judge.authorize(999, &[Attestation::author(H, 1, &dev)])
        ));
        // a certificate signed by another tenant's authority is never learnt
        let other = NodeKey::from_secret([8; 32]);
        assert!(w
            .judge
            .add_certificate(&cert(3, &dev, &[Role::Issuer]).sign(&other))
            .is_err());
        let mut foreign = cert(4, &dev, &[Role::Issuer]);
        foreign.tenant = "globex".into();
        assert!(w
            .judge
            .add_certificate(&foreign.sign(&w.authority))
            .is_err());
    }

    #[test]
    fn a_revoked_serial_loses_authority_for_everything_it_signed() {
        let mut w = world();
        let dev = NodeKey::from_secret([1; 32]);
        w.judge
            .add_certificate(&cert(1, &dev, &[Role::Issuer]).sign(&w.authority))
            .expect("add");
        let att = [Attestation::author(H, 1, &dev)];
        assert_eq!(
            w.judge.authorize(1_500, &att).verification,
            Verification::Signed
        );
        let v2 = RevocationList {
            tenant: "acme".into(),
            version: 2,
            serials: [1].into_iter().collect(),
        }
        .sign(&w.authority);
        let v1 = RevocationList {
            tenant: "acme".into(),
            version: 1,
            serials: Default::default(),
        }
        .sign(&w.authority);
        assert_eq!(w.judge.add_revocation_list(&v2), Ok(true));
        // an older list arriving later changes nothing
        assert_eq!(w.judge.add_revocation_list(&v1), Ok(false));
        assert_eq!(
            w.judge.authorize(1_500, &att).verification,
            Verification::Unverified
        );
        // a list signed by anyone else is refused
        let forged = RevocationList {
            tenant: "acme".into(),
            version: 3,
            serials: Default::default(),
        }
        .sign(&NodeKey::from_secret([8; 32]));
        assert!(w.judge.add_revocation_list(&forged).is_err());
        assert!(w.judge.revocations().revokes(1));
    }

    #[test]
    fn a_delivery_attestation_needs_a_relay_certificate_with_attest() {
        let mut w = world();
        let relay = NodeKey::from_secret([6; 32]);
        let plain = NodeKey::from_secret([7; 32]);
        w.judge
            .add_certificate(&cert(10, &relay, &[Role::Attest]).sign(&w.authority))
            .expect("add");
        w.judge
            .add_certificate(&cert(11, &plain, &[Role::Issuer]).sign(&w.authority))
            .expect("add");
        let roles: RoleSet = [Role::Issuer].into_iter().collect();
        let by_relay = Attestation::delivery(H, 10, "js-1".into(), roles.clone(), &relay);
        let a = w.judge.authorize(1_500, std::slice::from_ref(&by_relay));
        assert_eq!(a.verification, Verification::RelayAttested);
        assert_eq!(a.device.as_deref(), Some("js-1"));
        assert!(a.holds_any(&[Role::Issuer]));
        // a device without `attest` cannot vouch for another device
        let by_device = Attestation::delivery(H, 11, "js-1".into(), roles, &plain);
        assert_eq!(
            w.judge.authorize(1_500, &[by_device]).verification,
            Verification::Unverified
        );
        // a signature beats a relay's attestation, whatever the order
        let signed = Attestation::author(H, 11, &plain);
        for set in [[by_relay.clone(), signed.clone()], [signed, by_relay]] {
            assert_eq!(
                w.judge.authorize(1_500, &set).verification,
                Verification::Signed
            );
        }
    }

    #[test]
    fn a_role_table_is_learnt_only_from_the_tenants_authority_and_only_forward() {
        use crate::identity::role_table::{RoleRows, RoleTable};
        use crate::identity::table_op::TableOp;
        use crate::model::PermitStatus;
        let mut w = world();
        let approve = PolicedOp::PermitTransition {
            from: Some(PermitStatus::Submitted),
            to: PermitStatus::Approved,
        };
        assert_eq!(w.judge.required_roles(approve), Some(&[Role::Issuer][..]));
        let rows: RoleRows = [(
            TableOp::PermitApprove,
            [Role::Performer, Role::Issuer].into_iter().collect(),
        )]
        .into_iter()
        .collect();
        let table = |tenant: &str, version| RoleTable::new(tenant, version, &rows).expect("valid");
        // forged with another key, or another tenant's: refused
        let forged = table("acme", 5).sign(&NodeKey::from_secret([8; 32]));
        assert!(w.judge.add_role_table(&forged).is_err());
        assert!(w
            .judge
            .add_role_table(&table("globex", 5).sign(&w.authority))
            .is_err());
        assert_eq!(w.judge.required_roles(approve), Some(&[Role::Issuer][..]));
        // the authority's: in force
        let v2 = table("acme", 2).sign(&w.authority);
        assert_eq!(w.judge.add_role_table(&v2), Ok(true));
        assert_eq!(
            w.judge.required_roles(approve),
            Some(&[Role::Performer, Role::Issuer][..])
        );
        // an older version arriving later changes nothing; the same is no news
        let v1 = RoleTable::new("acme", 1, &RoleRows::new())
            .expect("valid")
            .sign(&w.authority);
        assert_eq!(w.judge.add_role_table(&v1), Ok(false));
        assert_eq!(w.judge.add_role_table(&v2), Ok(false));
        assert_eq!(w.judge.role_table(), Some(&v2));
    }
}
