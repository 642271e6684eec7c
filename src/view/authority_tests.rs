//! The role table with attestations, at the view level: every row of the
//! default table (`identity::required_roles`) is written as a real Automerge
//! change and judged by the view with a tenant authority. The operation is
//! effective when its change is vouched for by a certificate holding one of
//! the roles it needs, and a `not_authorized` no-op naming the role and the
//! signer otherwise: no attestation, a certificate lacking the role, expired
//! at the change's time, revoked, issued by another tenant's authority or
//! forged with another key, an attestation signed with a key that is not the
//! certificate's, a delivery attestation by a relay whose certificate lacks
//! `attest`. Open mode (no authority) authorizes everything.
//!
//! (`identity::authority::tests` check `TenantAuthority::authorize` alone,
//! `role::tests` the table alone; here the two meet the view.)

use std::sync::Arc;

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{AutomergeError, ChangeHash, ObjType, ReadDoc, ROOT};

use super::test_doc::{actor, Doc};
use super::View;
use crate::document::EntityDoc;
use crate::identity::{Attestation, Certificate, NodeKey, Role, RoleSet, TenantAuthority};
use crate::model::EntityId;
use crate::view::CrossRefs;

const TENANT: &str = "acme";
/// The time of the change under test (seconds, as permitsync writes it).
const AT: i64 = 1_700_000_000;
const AT_MS: i64 = AT * 1000;
/// The serial of the certificate that signs every setup change (all roles).
const ADMIN: u64 = 1;

fn roles(rs: &[Role]) -> RoleSet {
    rs.iter().copied().collect()
}

fn certificate(serial: u64, key: &NodeKey, rs: &[Role], not_after: i64) -> Certificate {
    Certificate {
        serial,
        tenant: TENANT.into(),
        device: format!("tablet-{serial}"),
        person: Some(format!("P{serial}")),
        roles: roles(rs),
        public_key: key.public(),
        not_before: 0,
        not_after,
    }
}

/// The tenant's authority, its judge, and the admin device that signed the
/// setup.
struct Tenant {
    key: NodeKey,
    judge: TenantAuthority,
    admin: NodeKey,
}

impl Tenant {
    fn new() -> Tenant {
        let key = NodeKey::from_secret([9; 32]);
        let admin = NodeKey::from_secret([1; 32]);
        let mut judge = TenantAuthority::new(TENANT, key.public());
        let cert = certificate(ADMIN, &admin, &Role::ALL, i64::MAX);
        judge.add_certificate(&cert.sign(&key)).expect("admin");
        Tenant { key, judge, admin }
    }

    /// A device key certified for `rs` under `serial`, valid until `not_after`.
    fn certify(&mut self, serial: u64, rs: &[Role], not_after: i64) -> NodeKey {
        let dev = NodeKey::from_secret([serial as u8 + 10; 32]);
        let cert = certificate(serial, &dev, rs, not_after).sign(&self.key);
        self.judge.add_certificate(&cert).expect("certify");
        dev
    }
}

/// One row of the role table: a document brought to the state before the
/// operation, the operation, and whether it took effect.
struct Row {
    name: &'static str,
    ty: &'static str,
    setup: Vec<Step>,
    op: Step,
    needed: &'static [Role],
    action: &'static str,
}

#[derive(Clone, Copy)]
enum Step {
    Status(&'static str),
    Reading,
    /// Tick item `a` of a checklist.
    Tick(&'static str),
    Complete,
    Title,
}

impl Step {
    fn write(self, tx: &mut Transaction<'_>) -> Result<(), AutomergeError> {
        let obj = |tx: &Transaction<'_>, name: &str| -> Result<_, AutomergeError> {
            Ok(tx.get(ROOT, name)?.expect("the map exists").1)
        };
        match self {
            Step::Status(s) => tx.put(ROOT, "status", s),
            Step::Title => tx.put(ROOT, "title", "renamed"),
            Step::Complete => tx.put(ROOT, "completed", true),
            Step::Tick(checklist) => {
                let list = obj(tx, checklist)?;
                tx.put(&list, "a", true)
            }
            Step::Reading => {
                let readings = obj(tx, "gas_readings")?;
                let r = tx.put_object(&readings, "r1", ObjType::Map)?;
                tx.put(&r, "gas", "H2S")?;
                tx.put(&r, "value", 3.0)?;
                tx.put(&r, "min", 0.0)?;
                tx.put(&r, "max", 10.0)?;
                tx.put(&r, "taken_at", automerge::ScalarValue::Timestamp(AT_MS))
            }
        }
    }

    /// Whether the view shows the step's effect.
    fn took_effect(self, v: &View) -> bool {
        match self {
            Step::Status(s) => v.str_field("status") == Some(s),
            Step::Title => v.str_field("title") == Some("renamed"),
            Step::Complete => v.fields["completed"] == serde_json::json!(true),
            Step::Tick(_) => true,
            Step::Reading => v.fields["gas_readings"].get("r1").is_some(),
        }
    }
}

/// Commit `step` to `doc` at `time` (seconds); its change's hash.
fn commit(doc: &mut Doc, step: Step, time: i64) -> ChangeHash {
    doc.inner
        .transact_with::<_, _, AutomergeError, _>(
            |_| CommitOptions::default().with_time(time),
            |tx| step.write(tx),
        )
        .expect("commit");
    doc.inner.get_heads()[0]
}

fn rows() -> Vec<Row> {
    use Step::Status as S;
    const ISSUER: &[Role] = &[Role::Issuer];
    const BOTH: &[Role] = &[Role::Performer, Role::Issuer];
    let permit = |pre: &[&'static str], to, needed, action| Row {
        name: to,
        ty: "permit",
        // a ticked safety checklist, for the activation guard
        setup: std::iter::once(Step::Tick("safety_checklist"))
            .chain(pre.iter().map(|s| S(s)))
            .collect(),
        op: S(to),
        needed,
        action,
    };
    let (sub, app, act, sus, com) = ("submitted", "approved", "active", "suspended", "completed");
    let iso = |pre: &[&'static str], to| Row {
        name: to,
        ty: "isolation_point",
        setup: pre.iter().map(|s| S(s)).collect(),
        op: S(to),
        needed: &[Role::IsolationAuthority],
        action: "moving an isolation point",
    };
    vec![
        permit(&[], sub, BOTH, "submitting a permit"),
        permit(&[sub], "draft", BOTH, "returning a permit to draft"),
        permit(&[sub, app, act], com, BOTH, "completing a permit"),
        permit(&[sub, app, act, sus], com, BOTH, "completing a permit"),
        permit(&[sub], app, ISSUER, "approving a permit"),
        permit(&[sub, app], act, ISSUER, "activating a permit"),
        permit(&[sub, app, act], sus, ISSUER, "suspending a permit"),
        permit(&[sub, app, act, sus], act, ISSUER, "activating a permit"),
        permit(&[sub, app, act, com], "closed", ISSUER, "closing a permit"),
        permit(&[], "cancelled", ISSUER, "cancelling a permit"),
        permit(&[sub], "cancelled", ISSUER, "cancelling a permit"),
        permit(&[sub, app], "cancelled", ISSUER, "cancelling a permit"),
        permit(
            &[sub, app, act, sus],
            "cancelled",
            ISSUER,
            "cancelling a permit",
        ),
        iso(&["assigned"], "isolated"),
        iso(&["assigned", "isolated"], "verified"),
        iso(&["assigned", "isolated", "verified"], "deisolated"),
        Row {
            name: "gas reading",
            ty: "permit",
            setup: vec![],
            op: Step::Reading,
            needed: &[Role::GasTester, Role::Issuer],
            action: "recording a gas reading",
        },
        Row {
            name: "closeout completed",
            ty: "closeout",
            setup: vec![Step::Tick("checklist")],
            op: Step::Complete,
            needed: ISSUER,
            action: "completing a closeout",
        },
    ]
}

/// The document of `row` before its operation, every change signed by the
/// admin; the attestations made.
fn prepared(row: &Row, t: &Tenant) -> (Doc, Vec<Attestation>) {
    let mut doc = Doc::new(2, row.ty);
    for (i, step) in row.setup.iter().enumerate() {
        commit(&mut doc, *step, AT - 100 + i as i64);
    }
    let atts = doc
        .inner
        .get_changes(&[])
        .iter()
        .map(|c| Attestation::author(c.hash(), ADMIN, &t.admin))
        .collect();
    (doc, atts)
}

/// The view of `doc` judged by `authority` (open mode when `None`).
fn judged(doc: &Doc, authority: Option<&TenantAuthority>, atts: Vec<Attestation>) -> View {
    let mut d = EntityDoc::load(
        EntityId::from_bytes([7; 16]),
        actor(99),
        &[&doc.inner.save()],
    )
    .expect("load");
    d.set_authority(authority.cloned().map(Arc::new), atts);
    d.view(&CrossRefs::default())
}

/// How a rejection names the roles of `row`.
fn role_text(needed: &[Role]) -> String {
    let names: Vec<&str> = needed.iter().map(|r| r.as_str()).collect();
    match names.as_slice() {
        [one] => format!("the role {one}"),
        many => format!("one of the roles {}", many.join(", ")),
    }
}

/// Judge `row`'s operation, attested by what `attest` makes of its hash,
/// with `t`'s authority; assert it is effective exactly when `allowed`, and
/// otherwise refused as `not_authorized` with a detail ending in `by`.
fn check(row: &Row, t: &Tenant, time: i64, allowed: bool, by: &str, attest: &AttestFn<'_>) {
    let (mut doc, mut atts) = prepared(row, t);
    let hash = commit(&mut doc, row.op, time);
    atts.extend(attest(hash));
    let v = judged(&doc, Some(&t.judge), atts);
    let ours: Vec<_> = v
        .rejected
        .iter()
        .filter(|r| r.change == hash.to_string())
        .collect();
    let case = format!("{} ({} ...) {by}", row.name, row.ty);
    if allowed {
        assert!(
            row.op.took_effect(&v),
            "{case}: not effective: {:?}",
            v.rejected
        );
        assert!(ours.is_empty(), "{case}: {ours:?}");
        assert!(
            v.rejected.is_empty(),
            "{case}: setup rejected {:?}",
            v.rejected
        );
        return;
    }
    assert!(!row.op.took_effect(&v), "{case}: effective");
    let [r] = ours.as_slice() else {
        panic!("{case}: one rejection expected: {ours:?}");
    };
    assert_eq!(r.reason, "not_authorized", "{case}");
    let want = format!(
        "not authorized: {} needs {}; {by}",
        row.action,
        role_text(row.needed)
    );
    assert_eq!(r.detail, want, "{case}");
}

type AttestFn<'a> = dyn Fn(ChangeHash) -> Vec<Attestation> + 'a;

#[test]
fn every_row_is_authorized_by_a_certificate_holding_a_role_it_needs() {
    for row in rows() {
        let mut t = Tenant::new();
        for (i, role) in row.needed.iter().enumerate() {
            let serial = 20 + i as u64;
            let dev = t.certify(serial, &[*role], i64::MAX);
            check(&row, &t, AT, true, "", &|h| {
                vec![Attestation::author(h, serial, &dev)]
            });
        }
        // a relay with `attest` vouching for a token holding the role
        let relay = t.certify(30, &[Role::Attest], i64::MAX);
        check(&row, &t, AT, true, "", &|h| {
            vec![Attestation::delivery(
                h,
                30,
                "js-1".into(),
                roles(row.needed),
                &relay,
            )]
        });
        // open mode: no authority, nothing attested, everything authorized
        let (mut doc, _) = prepared(&row, &t);
        commit(&mut doc, row.op, AT);
        let v = judged(&doc, None, vec![]);
        assert!(row.op.took_effect(&v), "{}: open mode", row.name);
        assert!(v.rejected.is_empty(), "{}: {:?}", row.name, v.rejected);
    }
}

#[test]
fn every_row_is_refused_without_a_valid_attestation_with_a_role_it_needs() {
    let none = "no valid signature";
    for row in rows() {
        let mut t = Tenant::new();
        // without any attestation
        check(&row, &t, AT, false, none, &|_| vec![]);
        // a certificate holding every other role (`attest` included)
        let others: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| !row.needed.contains(r))
            .collect();
        let lacking = t.certify(40, &others, i64::MAX);
        check(&row, &t, AT, false, "signed by tablet-40 (P40)", &|h| {
            vec![Attestation::author(h, 40, &lacking)]
        });
        // a certificate with the role, expired before the change's time
        let expired = t.certify(41, row.needed, AT_MS - 1);
        let by = "signed by tablet-41 (P41), whose certificate is expired";
        check(&row, &t, AT, false, by, &|h| {
            vec![Attestation::author(h, 41, &expired)]
        });
        // ... and the same certificate for a change dated before its expiry
        check(&row, &t, AT - 1, true, "", &|h| {
            vec![Attestation::author(h, 41, &expired)]
        });
        // a relay whose certificate lacks `attest`, vouching for a token
        // with the role
        let relay = t.certify(42, row.needed, i64::MAX);
        check(&row, &t, AT, false, none, &|h| {
            vec![Attestation::delivery(
                h,
                42,
                "js-1".into(),
                roles(row.needed),
                &relay,
            )]
        });
        // a relay with `attest`, vouching for a token without the role
        let attesting = t.certify(43, &[Role::Attest], i64::MAX);
        check(&row, &t, AT, false, "uploaded by js-1", &|h| {
            vec![Attestation::delivery(
                h,
                43,
                "js-1".into(),
                roles(&others),
                &attesting,
            )]
        });
        // the serial of a certificate with the role, signed with another key
        let thief = NodeKey::from_secret([77; 32]);
        check(&row, &t, AT, false, none, &|h| {
            vec![Attestation::author(h, 42, &thief)]
        });
        // certificates with the role from another tenant's authority, or
        // forged with another key: never learnt, so they vouch for nothing
        let dev = NodeKey::from_secret([50; 32]);
        let mut globex = certificate(50, &dev, row.needed, i64::MAX);
        globex.tenant = "globex".into();
        let forged = certificate(51, &dev, row.needed, i64::MAX);
        for (serial, cert) in [
            (50, globex.sign(&NodeKey::from_secret([60; 32]))),
            (51, forged.sign(&NodeKey::from_secret([61; 32]))),
        ] {
            assert!(t.judge.add_certificate(&cert).is_err(), "{}", row.name);
            check(&row, &t, AT, false, none, &|h| {
                vec![Attestation::author(h, serial, &dev)]
            });
        }
        // revoked: loses authority, even for a change dated before
        let holder = t.certify(44, row.needed, i64::MAX);
        let list = crate::identity::RevocationList {
            tenant: TENANT.into(),
            version: 1,
            serials: [44].into_iter().collect(),
        };
        assert_eq!(t.judge.add_revocation_list(&list.sign(&t.key)), Ok(true));
        let by = "signed by tablet-44 (P44), whose certificate is revoked";
        check(&row, &t, AT - 50, false, by, &|h| {
            vec![Attestation::author(h, 44, &holder)]
        });
    }
}

#[test]
fn ordinary_fields_and_a_permits_creation_need_no_role() {
    let mut t = Tenant::new();
    let roleless = t.certify(20, &[], i64::MAX);
    let title = Row {
        name: "title",
        ty: "permit",
        setup: vec![],
        op: Step::Title,
        needed: &[],
        action: "writing",
    };
    check(&title, &t, AT, true, "", &|h| {
        vec![Attestation::author(h, 20, &roleless)]
    });
    // the table asks no role of an ordinary field, so nothing vouching for
    // the change is no reason to refuse it either (DESIGN.md's "any
    // certified device" is not enforced by the view)
    check(&title, &t, AT, true, "", &|_| vec![]);
    // the creation of a permit in draft is not a transition
    let doc = Doc::new(2, "permit");
    let v = judged(&doc, Some(&t.judge), vec![]);
    assert_eq!(v.str_field("status"), Some("draft"));
    assert!(v.rejected.is_empty(), "{:?}", v.rejected);
}

/// DESIGN.md: an operation that needs a role is valid when "its change has
/// an attestation whose certificate holds one of those roles". A second
/// valid attestation of the same change, by a certificate without the role
/// (any certified device can sign any change's hash), must not take that
/// away.
#[test]
fn any_valid_attestation_with_a_needed_role_authorizes() {
    let row = &rows()[4];
    assert_eq!(row.name, "approved");
    let mut t = Tenant::new();
    let roleless = t.certify(20, &[], i64::MAX);
    let issuer = t.certify(30, &[Role::Issuer], i64::MAX);
    let relay = t.certify(31, &[Role::Attest], i64::MAX);
    check(row, &t, AT, true, "", &|h| {
        vec![
            Attestation::author(h, 30, &issuer),
            Attestation::author(h, 20, &roleless),
        ]
    });
    // an issuer's upload through a relay, countersigned by a role-less device
    check(row, &t, AT, true, "", &|h| {
        vec![
            Attestation::delivery(h, 31, "js-1".into(), roles(&[Role::Issuer]), &relay),
            Attestation::author(h, 20, &roleless),
        ]
    });
}

/// Which attestations of a change are held must not depend on the order
/// they came in, however many came (a flood beyond
/// `MAX_ATTESTATIONS_PER_CHANGE`, copies sharing a signature's first bytes):
/// else replicas holding the same ones judge differently. Reference: of
/// those sharing the first 8 bytes of a signature, the one whose bytes sort
/// first; of those, the 8 whose signatures begin lowest.
#[test]
fn the_attestations_held_do_not_depend_on_the_order_they_came_in() {
    use super::authority::{Authorities, MAX_ATTESTATIONS_PER_CHANGE};
    let h = ChangeHash([3; 32]);
    let mut all: Vec<Attestation> = (0..12u8)
        .map(|i| Attestation::author(h, 100 + u64::from(i), &NodeKey::from_secret([i; 32])))
        .collect();
    for i in [0, 5] {
        let mut twin = all[i].clone();
        twin.serial += 50;
        twin.signature[40] ^= 1;
        all.push(twin);
    }
    let mut reference: Vec<Attestation> = Vec::new();
    let mut by_bytes = all.clone();
    by_bytes.sort_by_key(Attestation::to_bytes);
    for a in by_bytes {
        if !reference
            .iter()
            .any(|r| r.signature[..8] == a.signature[..8])
        {
            reference.push(a);
        }
    }
    reference.sort_by_key(|a| a.signature);
    reference.truncate(MAX_ATTESTATIONS_PER_CHANGE);
    reference.sort_by_key(Attestation::to_bytes);
    let n = all.len();
    let orders: Vec<Vec<usize>> = vec![
        (0..n).collect(),
        (0..n).rev().collect(),
        (0..n).map(|i| (i * 5) % n).collect(),
        (0..n).map(|i| (i * 3 + 7) % n).collect(),
    ];
    for order in orders {
        let mut held = Authorities::open();
        for &i in &order {
            held.add(all[i].clone());
            held.add(all[(i + 1) % n].clone()); // and duplicated
        }
        assert_eq!(held.of(&h), reference.as_slice(), "order {order:?}");
    }
}
