//! Who made each change, as the view judges it: the tenant authority a
//! replica knows (its certificates and revocation list) and the attestations
//! it holds for one document's changes (DESIGN.md, "Who may do what").
//!
//! The view is a pure function of the changes and of this context: replicas
//! holding the same inputs judge alike, whatever order they came in. Without
//! an authority (a store that never enrolled, a relay without a tokens file)
//! the view is in open mode and authorizes every operation, as before.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use automerge::ChangeHash;

use crate::identity::{
    required_roles, Attestation, Authorization, PolicedOp, RoleTable, TenantAuthority, Verification,
};

use super::rejection::RejectReason;

/// Most attestations kept for one change: an author signature, a relay's
/// delivery attestation and a few renewals. More are dropped ([`hold`]), so
/// a peer that floods a change with attestations costs a bounded amount.
pub const MAX_ATTESTATIONS_PER_CHANGE: usize = 8;

/// The judging context of one document.
#[derive(Clone, Debug, Default)]
pub struct Authorities {
    authority: Option<Arc<TenantAuthority>>,
    attestations: HashMap<ChangeHash, Vec<Attestation>>,
    /// Attestations (whole, with the key they verified with) whose signature
    /// was checked, or that this node made: a signature is verified once,
    /// not again at every judgement.
    verified: RefCell<HashSet<(Vec<u8>, [u8; 32])>>,
}

impl Authorities {
    /// Open mode: no authority, every operation authorized.
    pub fn open() -> Authorities {
        Authorities::default()
    }

    /// Judged by `authority`, when there is one.
    pub fn with_authority(authority: Option<Arc<TenantAuthority>>) -> Authorities {
        Authorities {
            authority,
            ..Authorities::default()
        }
    }

    /// Whether operations are judged by an authority.
    pub fn is_enforced(&self) -> bool {
        self.authority.is_some()
    }

    /// The authority, when enforced.
    pub fn authority(&self) -> Option<&Arc<TenantAuthority>> {
        self.authority.as_ref()
    }

    /// The tenant's own role table, when enforced and its authority signed
    /// one (otherwise the default table judges).
    pub fn role_table(&self) -> Option<&RoleTable> {
        self.authority
            .as_ref()
            .and_then(|a| a.role_table())
            .map(|t| &t.table)
    }

    /// Replace the authority (a new certificate or revocation list was
    /// learnt, or the store enrolled). The caller rebuilds what was judged.
    pub fn set_authority(&mut self, authority: Option<Arc<TenantAuthority>>) {
        self.authority = authority;
    }

    /// Hold an attestation. Returns whether it is new (an identical one, or
    /// one [`hold`] does not keep, is dropped).
    pub fn add(&mut self, a: Attestation) -> bool {
        self.add_displacing(a).0
    }

    /// [`Authorities::add`], also returning the attestation it displaced
    /// (to forget where it is stored), if any.
    pub fn add_displacing(&mut self, a: Attestation) -> (bool, Option<Attestation>) {
        hold(self.attestations.entry(a.change).or_default(), a)
    }

    /// Whether `a` itself is held.
    pub fn holds(&self, a: &Attestation) -> bool {
        self.of(&a.change).contains(a)
    }

    /// Whether an attestation is held in `a`'s slot (see [`slot`]).
    pub fn holds_slot(&self, a: &Attestation) -> bool {
        self.of(&a.change).iter().any(|h| slot(h) == slot(a))
    }

    /// Hold an attestation this node just made with `key`: its signature
    /// needs no checking. Returns what [`Authorities::add_displacing`] does.
    pub fn add_own(
        &mut self,
        a: Attestation,
        key: &crate::identity::PublicKey,
    ) -> (bool, Option<Attestation>) {
        self.verified.borrow_mut().insert((a.to_bytes(), key.0));
        self.add_displacing(a)
    }

    /// The attestations held for `change`.
    pub fn of(&self, change: &ChangeHash) -> &[Attestation] {
        self.attestations.get(change).map_or(&[], Vec::as_slice)
    }

    /// Every attestation held, in no particular order.
    pub fn all(&self) -> impl Iterator<Item = &Attestation> {
        self.attestations.values().flatten()
    }

    /// Who verifiably made `change`, written at `timestamp` (the change's own
    /// time as Automerge records it: seconds, or milliseconds from clients
    /// that write those). Unverified in open mode: nothing vouches there,
    /// but nothing is refused either.
    pub fn author_of(&self, change: &ChangeHash, timestamp: i64) -> Authorization {
        match &self.authority {
            Some(authority) => {
                let mut verified = self.verified.borrow_mut();
                authority.authorize_with(change_time_ms(timestamp), self.of(change), |a, key| {
                    let seen = (a.to_bytes(), key.0);
                    if verified.contains(&seen) {
                        return true;
                    }
                    let ok = a.verify_with(key).is_ok();
                    if ok {
                        verified.insert(seen);
                    }
                    ok
                })
            }
            None => Authorization::unverified(),
        }
    }
}

/// Where an attestation is kept among its change's: the first 8 bytes of
/// its signature (as the store keys it, `store::keys::attestation`).
pub(crate) fn slot(a: &Attestation) -> [u8; 8] {
    let mut s = [0; 8];
    s.copy_from_slice(&a.signature[..8]);
    s
}

/// Hold `a` among `list`, the attestations held for its change: at most
/// [`MAX_ATTESTATIONS_PER_CHANGE`], one per [`slot`] (of those that share
/// one, the one whose bytes sort first), the slots that sort first. What is
/// held is thus the same whatever order the attestations came in, so
/// replicas that received the same ones judge alike, however many a peer
/// sent. Returns whether `a` is now held, and the one it displaced, if any.
pub(crate) fn hold(list: &mut Vec<Attestation>, a: Attestation) -> (bool, Option<Attestation>) {
    if list.contains(&a) {
        return (false, None);
    }
    let mut displaced = None;
    if let Some(i) = list.iter().position(|h| slot(h) == slot(&a)) {
        if list[i].to_bytes() < a.to_bytes() {
            return (false, None);
        }
        displaced = Some(list.remove(i));
    } else if list.len() >= MAX_ATTESTATIONS_PER_CHANGE {
        let last = (0..list.len())
            .max_by_key(|&i| slot(&list[i]))
            .expect("a full list");
        if slot(&list[last]) < slot(&a) {
            return (false, None);
        }
        displaced = Some(list.remove(last));
    }
    list.push(a);
    // one order everywhere, whatever order they came in
    list.sort_by_key(Attestation::to_bytes);
    (true, displaced)
}

/// A change's time in milliseconds since the epoch. permitsync and
/// automerge-repo write seconds; a value too large to be seconds (after the
/// year 5138) is taken as milliseconds.
pub fn change_time_ms(timestamp: i64) -> i64 {
    if timestamp.unsigned_abs() < 100_000_000_000 {
        timestamp.saturating_mul(1000)
    } else {
        timestamp
    }
}

/// Judge an operation's authority: `Ok` when `author` holds a role `op`
/// needs by the tenant's role table (`None`: the default table), or `op`
/// needs none; `not_authorized` otherwise.
pub(crate) fn authorize(
    op: PolicedOp,
    author: &Authorization,
    table: Option<&RoleTable>,
) -> Result<(), RejectReason> {
    let needed = match table {
        Some(t) => t.required(op),
        None => required_roles(op),
    };
    let Some(needed) = needed else {
        return Ok(());
    };
    if author.holds_any(needed) {
        return Ok(());
    }
    Err(RejectReason::NotAuthorized {
        action: action_name(op).to_string(),
        needed: needed.iter().map(|r| r.as_str().to_string()).collect(),
        signer: signer_name(author),
    })
}

/// How the error names an operation: `approving a permit`.
fn action_name(op: PolicedOp) -> &'static str {
    use crate::model::PermitStatus::*;
    match op {
        PolicedOp::PermitTransition { to, .. } => match to {
            Draft => "returning a permit to draft",
            Submitted => "submitting a permit",
            Approved => "approving a permit",
            Active => "activating a permit",
            Suspended => "suspending a permit",
            Completed => "completing a permit",
            Closed => "closing a permit",
            Cancelled => "cancelling a permit",
        },
        PolicedOp::IsolationStatus => "moving an isolation point",
        PolicedOp::GasReading => "recording a gas reading",
        PolicedOp::CloseoutCompleted => "completing a closeout",
        PolicedOp::Other => "writing",
    }
}

/// Who vouched for a change, as a rejection names them.
fn signer_name(author: &Authorization) -> Option<String> {
    let device = author.device.as_deref()?;
    let who = match &author.person {
        Some(p) => format!("{device} ({p})"),
        None => device.to_string(),
    };
    Some(match (author.verification, author.refused) {
        (Verification::Signed, _) => format!("signed by {who}"),
        (Verification::RelayAttested, _) => format!("uploaded by {who}"),
        (Verification::Unverified, Some(why)) => {
            format!("signed by {who}, whose certificate is {why}")
        }
        (Verification::Unverified, None) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Role, RoleRows, TableOp};
    use crate::model::PermitStatus;

    fn signed_by(roles: &[Role]) -> Authorization {
        Authorization {
            verification: Verification::Signed,
            device: Some("tablet-p".into()),
            person: None,
            roles: roles.iter().copied().collect(),
            serial: Some(1),
            refused: None,
        }
    }

    const APPROVE: PolicedOp = PolicedOp::PermitTransition {
        from: Some(PermitStatus::Submitted),
        to: PermitStatus::Approved,
    };
    const ACTIVATE: PolicedOp = PolicedOp::PermitTransition {
        from: Some(PermitStatus::Approved),
        to: PermitStatus::Active,
    };

    #[test]
    fn a_tenants_table_decides_who_may_approve() {
        let performer = signed_by(&[Role::Performer]);
        let gas_tester = signed_by(&[Role::GasTester]);
        // by the default table, a performer may not approve
        let refused = authorize(APPROVE, &performer, None).expect_err("default table");
        assert_eq!(
            refused.detail("status"),
            "not authorized: approving a permit needs the role issuer; signed by tablet-p"
        );
        let rows: RoleRows = [(
            TableOp::PermitApprove,
            [Role::Performer, Role::Issuer].into_iter().collect(),
        )]
        .into_iter()
        .collect();
        let table = RoleTable::new("acme", 1, &rows).expect("valid");
        // by the tenant's: allowed
        assert_eq!(authorize(APPROVE, &performer, Some(&table)), Ok(()));
        // and refused to whoever the row leaves out, naming its roles
        let refused = authorize(APPROVE, &gas_tester, Some(&table)).expect_err("not in the row");
        assert_eq!(
            refused.detail("status"),
            "not authorized: approving a permit needs one of the roles performer, issuer; \
             signed by tablet-p"
        );
        // a row the table does not give keeps the default
        assert!(authorize(ACTIVATE, &performer, Some(&table)).is_err());
        assert_eq!(
            authorize(ACTIVATE, &signed_by(&[Role::Issuer]), Some(&table)),
            Ok(())
        );
        // ordinary fields need no role, whatever the table
        assert_eq!(
            authorize(PolicedOp::Other, &Authorization::unverified(), Some(&table)),
            Ok(())
        );
    }
}
