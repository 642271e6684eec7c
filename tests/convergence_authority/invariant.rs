//! The end state of a run: byte-identical views and summaries (also on a
//! replica that enrolls last and takes everything at once, attestations
//! before changes), and nothing policed effective without a valid
//! attestation with a needed role (checked from the view's fields and the
//! attestations, not the view's judgement).

use std::collections::{BTreeMap, BTreeSet};

use automerge::ChangeHash;
use permitsync::identity::{
    required_roles, Attestation, AttestationKind, Certificate, PolicedOp, Role, RoleSet,
};
use permitsync::model::{EntityId, PermitStatus};
use permitsync::store::{CertificateRequest, Store};
use permitsync::view::View;

use super::{World, Wrote, N, TENANT};

pub(super) fn check(w: &World) {
    for id in w.ids {
        let views: Vec<String> = (0..N)
            .map(|r| w.store(r).view(id).expect("view").to_json_string())
            .collect();
        for (r, v) in views.iter().enumerate().skip(1) {
            assert_eq!(v, &views[0], "replica {r} diverged on {id}");
        }
        let mut summaries = Vec::new();
        for r in 0..N {
            let store = w.store(r);
            let v = store.view(id).expect("view");
            let mut s = store.summary(id).expect("summary").expect("a summary");
            assert_eq!(s.status.as_deref(), v.str_field("status"), "status of {id}");
            assert_eq!(s.rejected, v.rejected.len(), "rejected of {id}");
            assert_eq!(s.heads, v.heads, "heads of {id}");
            let completed = v.fields.get("completed").and_then(|c| c.as_bool()) == Some(true);
            assert_eq!(s.completed, completed, "completed of {id}");
            s.feed_seq = 0; // where it sits in this replica's feed
            summaries.push(format!("{s:?}"));
        }
        for (r, s) in summaries.iter().enumerate().skip(1) {
            assert_eq!(s, &summaries[0], "replica {r}'s summary of {id}");
        }
    }
    late_replica_agrees(w);
    Judge::new(w).check_effective();
    if std::env::var("AUTHORITY_STATS").is_ok() {
        let s = |i: usize| w.store(0).view(w.ids[i]).expect("view");
        let (p, iso, c) = (s(0), s(1), s(2));
        let na = |v: &View| {
            v.rejected
                .iter()
                .filter(|r| r.reason == "not_authorized")
                .count()
        };
        eprintln!(
            "STATS permit={:?} iso={:?} completed={:?} readings={} na={},{},{} lists={} certs={}",
            p.str_field("status"),
            iso.str_field("status"),
            c.fields.get("completed"),
            p.fields["gas_readings"].as_object().map_or(0, |m| m.len()),
            na(&p),
            na(&iso),
            na(&c),
            w.lists.len(),
            w.certs.len()
        );
    }
}

/// A replica that enrolls after the run and takes everything in one go, in
/// the order a bundle carries it (certificates, the revocation list,
/// attestations, then changes) shows what the others show.
fn late_replica_agrees(w: &World) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let cert = w
        .relay
        .issue_certificate(&CertificateRequest {
            tenant: TENANT.into(),
            device: "late".into(),
            person: None,
            roles: RoleSet::new(),
            public_key: store.public_key(),
        })
        .expect("issue");
    let authority = w.relay.ensure_authority().expect("authority");
    store.enroll(TENANT, authority, &cert).expect("enroll");
    store.learn_certificates(TENANT, &w.certs).expect("learn");
    if let Some(list) = w.lists.iter().max_by_key(|l| l.list.version) {
        store.learn_revocation_list(TENANT, list).expect("list");
    }
    let first = w.store(0);
    for id in w.ids {
        let atts = first.attestations(id).expect("attestations");
        store.add_attestations(id, atts).expect("add");
        let changes = first.changes_since(id, &[]).expect("changes");
        store.apply_changes(id, changes).expect("apply");
    }
    // (a permit's violations look at its isolation points: all are here)
    for id in w.ids {
        assert_eq!(
            store.view(id).expect("view").to_json_string(),
            first.view(id).expect("view").to_json_string(),
            "a replica taking everything at once diverged on {id}"
        );
    }
}

/// The attestations, certificates and revocations every replica ends with.
struct Judge<'a> {
    w: &'a World,
    certs: BTreeMap<u64, Certificate>,
    revoked: BTreeSet<u64>,
}

impl<'a> Judge<'a> {
    fn new(w: &'a World) -> Judge<'a> {
        let certs = w
            .certs
            .iter()
            .map(|c| (c.certificate.serial, c.certificate.clone()))
            .collect();
        let revoked = w
            .lists
            .iter()
            .max_by_key(|l| l.list.version)
            .map(|l| l.list.serials.clone())
            .unwrap_or_default();
        Judge { w, certs, revoked }
    }

    /// Whether `a` is a valid attestation, at `at` (ms), by a certificate
    /// holding one of `needed`.
    fn vouches(&self, a: &Attestation, at: i64, needed: &[Role]) -> bool {
        let Some(cert) = self.certs.get(&a.serial) else {
            return false;
        };
        if a.verify_with(&cert.public_key).is_err()
            || self.revoked.contains(&a.serial)
            || !cert.valid_at(at)
        {
            return false;
        }
        match &a.kind {
            AttestationKind::Author => cert.holds_any(needed),
            AttestationKind::Delivery { roles, .. } => {
                cert.roles.contains(&Role::Attest) && needed.iter().any(|r| roles.contains(r))
            }
        }
    }

    fn check_effective(&self) {
        let store = self.w.store(0);
        let [permit, iso, closeout] = self.w.ids;
        let issuer: &[Role] = &[Role::Issuer];
        let v = store.view(permit).expect("view");
        if let Some(s) = v.str_field("status").filter(|s| *s != "draft") {
            let to: PermitStatus = s.parse().expect("a status");
            let needed: BTreeSet<Role> = PermitStatus::ALL
                .into_iter()
                .filter_map(|from| {
                    required_roles(PolicedOp::PermitTransition {
                        from: Some(from),
                        to,
                    })
                })
                .flatten()
                .copied()
                .collect();
            let needed: Vec<Role> = needed.into_iter().collect();
            let wrote = Wrote::Status(0, s.to_string());
            self.supported(permit, &v, "status", &wrote, &needed);
        }
        if let Some(readings) = v.fields["gas_readings"].as_object() {
            for k in readings.keys() {
                let wrote = Wrote::Reading(k.clone());
                let field = format!("gas_readings.{k}");
                self.supported(permit, &v, &field, &wrote, &[Role::GasTester, Role::Issuer]);
            }
        }
        let v = store.view(iso).expect("view");
        // creating an isolation point at `assigned` needs no role (as a
        // permit created in draft); every move does
        if let Some(s) = v.str_field("status").filter(|s| *s != "assigned") {
            let wrote = Wrote::Status(1, s.to_string());
            self.supported(iso, &v, "status", &wrote, &[Role::IsolationAuthority]);
        }
        let v = store.view(closeout).expect("view");
        if v.fields.get("completed").and_then(|c| c.as_bool()) == Some(true) {
            self.supported(closeout, &v, "completed", &Wrote::Completed, issuer);
        }
    }

    /// Some change that wrote `wrote`, which `v` does not reject on `field`,
    /// holds a valid attestation with one of `needed`.
    fn supported(&self, id: EntityId, v: &View, field: &str, wrote: &Wrote, needed: &[Role]) {
        let store = self.w.store(0);
        let atts = store.attestations(id).expect("attestations");
        let times: BTreeMap<ChangeHash, i64> = store
            .changes_since(id, &[])
            .expect("changes")
            .iter()
            .map(|c| (c.hash(), c.timestamp()))
            .collect();
        let ok = self.w.wrote.iter().any(|(h, what)| {
            let rejected = v
                .rejected
                .iter()
                .any(|r| r.change == h.to_string() && r.field == field);
            let Some(&t) = times.get(h) else { return false };
            let at = if t.unsigned_abs() < 100_000_000_000 {
                t * 1000
            } else {
                t
            };
            what == wrote
                && !rejected
                && atts
                    .iter()
                    .any(|a| a.change == *h && self.vouches(a, at, needed))
        });
        assert!(
            ok,
            "{field} of {id} is effective ({:?}) without a valid attestation with one of {needed:?}; \
             rejected {:#?}",
            v.fields.get(field.split('.').next().unwrap_or(field)),
            v.rejected
        );
    }
}
