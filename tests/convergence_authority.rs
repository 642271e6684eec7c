//! Convergence property test with authority (DESIGN.md, "Who may do what").
//!
//! A relay store is the tenant authority. Five device stores enroll with it,
//! each with a certificate for its roles: a performer, an issuer, an
//! isolation authority, a gas tester and a device without roles. They make
//! random concurrent edits (the shared [`support::actions`], workflow moves
//! and raw Automerge writes that nothing attests). Changes, attestations,
//! certificates (new role grants among them) and revocation lists travel
//! separately, in random subsets, in any order, duplicated and late; forged
//! attestations are thrown in, sometimes a flood of them on one change (more
//! than a change keeps); stores are closed and reopened between steps (a
//! reopen must not change any view).
//! At the end every replica receives everything, and:
//! - every replica's view is byte-identical (serde_json of `store.view`),
//!   and so are the stored summaries (but for the replica-local feed
//!   position), which agree with the views;
//! - no policed operation is effective without a valid attestation from a
//!   certificate holding a role it needs, checked from the view's fields and
//!   the attestations, without the view's own judgement: the permit's
//!   status (unless `draft`), the isolation point's status (unless
//!   `assigned`, which its creation writes with no role), the closeout's
//!   `completed` and every gas reading shown were written by a change the
//!   view does not reject whose attestation verifies against a known,
//!   unrevoked certificate valid at the change's time with a needed role.
//!
//! `PROPTEST_CASES` sets the case count, as in `tests/convergence.rs`
//! (default 24, a few seconds in debug);
//! `PROPTEST_CASES=10000 cargo test --release --test convergence_authority`
//! runs the long one. `AUTHORITY_STATS=1` (with `-- --nocapture`) prints
//! where each case ended (statuses, `not_authorized` counts, certificates
//! and revocation lists issued), to see what the generator reaches.

use std::collections::BTreeMap;

use automerge::{ActorId, Automerge, Change, ChangeHash};
use permitsync::identity::{
    Attestation, NodeKey, Role, RoleSet, SignedCertificate, SignedRevocationList,
};
use permitsync::model::{EntityId, EntityType};
use permitsync::store::{CertificateRequest, Store, StoreOptions};
use permitsync::view::MAX_ATTESTATIONS_PER_CHANGE;
use permitsync::write::{Edit, NewCloseout, NewIsolationPoint, NewPermit};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

mod support;

use support::actions::{action, edit_of, Action};

const TENANT: &str = "acme";
const N: usize = 5;
/// The roles each replica enrolls with.
const ROLES: [&[Role]; N] = [
    &[Role::Performer],
    &[Role::Issuer],
    &[Role::IsolationAuthority],
    &[Role::GasTester],
    &[],
];
/// The role sets a grant can give.
const GRANTS: [&[Role]; 5] = [
    &[],
    &[Role::Performer],
    &[Role::Issuer],
    &[Role::IsolationAuthority, Role::GasTester],
    &[Role::Issuer, Role::GasTester],
];

#[derive(Clone, Debug)]
enum Step {
    Edit(usize, Action),
    /// replica (`N` and above: the one whose role the move needs), the
    /// permit (0) or the isolation point (1): the next status
    Advance(usize, usize),
    /// from, to, subset seed, duplicate: changes only
    Changes(usize, usize, u64, bool),
    /// from, to, subset seed, duplicate: attestations only
    Attestations(usize, usize, u64, bool),
    /// to, subset seed: certificates the relay issued
    Certificates(usize, u64),
    /// to, subset seed: revocation lists the relay signed
    Lists(usize, u64),
    /// replica, index in GRANTS: a new certificate
    Grant(usize, usize),
    /// replica: every certificate it holds is revoked
    Revoke(usize),
    /// to, seed: a forged attestation of one of its changes
    Forge(usize, u64),
    Reopen(usize),
}

fn scenario() -> impl Strategy<Value = Vec<Step>> {
    let r = 0..N;
    let step = prop_oneof![
        5 => (r.clone(), action()).prop_map(|(r, a)| Step::Edit(r, a)),
        6 => (0..N + 3, 0usize..2).prop_map(|(r, d)| Step::Advance(r, d)),
        3 => (r.clone(), r.clone(), any::<u64>(), any::<bool>())
            .prop_map(|(f, t, s, d)| Step::Changes(f, t, s, d)),
        3 => (r.clone(), r.clone(), any::<u64>(), any::<bool>())
            .prop_map(|(f, t, s, d)| Step::Attestations(f, t, s, d)),
        3 => (r.clone(), any::<u64>()).prop_map(|(t, s)| Step::Certificates(t, s)),
        1 => (r.clone(), any::<u64>()).prop_map(|(t, s)| Step::Lists(t, s)),
        1 => (r.clone(), 0..GRANTS.len()).prop_map(|(r, g)| Step::Grant(r, g)),
        1 => r.clone().prop_map(Step::Revoke),
        1 => (r.clone(), any::<u64>()).prop_map(|(t, s)| Step::Forge(t, s)),
        1 => r.prop_map(Step::Reopen),
    ];
    prop::collection::vec(step, 5..60)
}

/// A small deterministic generator for subsets and shuffles.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// A random subset of `items` (everything when `all`), shuffled, with
    /// one of them maybe twice.
    fn pick<T: Clone>(&mut self, items: Vec<T>, all: bool, dup: bool) -> Vec<T> {
        let mut out: Vec<T> = if all {
            items
        } else {
            items.into_iter().filter(|_| self.next() % 2 == 0).collect()
        };
        for i in (1..out.len()).rev() {
            let j = (self.next() as usize) % (i + 1);
            out.swap(i, j);
        }
        if dup && !out.is_empty() {
            let extra = out[(self.next() as usize) % out.len()].clone();
            out.push(extra);
        }
        out
    }
}

fn roles(rs: &[Role]) -> RoleSet {
    rs.iter().copied().collect()
}

/// One device: a sled store in its own temp dir.
struct Replica {
    dir: tempfile::TempDir,
    store: Option<Store>,
}

impl Replica {
    fn store(&self) -> &Store {
        self.store.as_ref().expect("store open")
    }

    fn reopen(&mut self) {
        self.store = None; // drop releases sled's lock
        self.store = Some(Store::open(self.dir.path()).expect("reopen"));
    }
}

/// What an API write put where: the test's own record, to check the
/// views against.
#[derive(Clone, Debug, PartialEq)]
enum Wrote {
    Status(usize, String),
    Reading(String),
    Completed,
}

struct World {
    _relay_dir: tempfile::TempDir,
    relay: Store,
    replicas: Vec<Replica>,
    ids: [EntityId; 3],
    /// every certificate and revocation list the relay made
    certs: Vec<SignedCertificate>,
    lists: Vec<SignedRevocationList>,
    /// what each API write that made a change wrote, by change
    wrote: Vec<(ChangeHash, Wrote)>,
    readings: u128,
}

impl World {
    fn new() -> World {
        let relay_dir = tempfile::tempdir().expect("tempdir");
        let relay = Store::open(relay_dir.path()).expect("relay");
        let authority = relay.ensure_authority().expect("authority");
        let mut w = World {
            _relay_dir: relay_dir,
            relay,
            replicas: Vec::new(),
            ids: [EntityId::from_bytes([0; 16]); 3],
            certs: Vec::new(),
            lists: Vec::new(),
            wrote: Vec::new(),
            readings: 0,
        };
        for (i, rs) in ROLES.iter().enumerate() {
            let dir = tempfile::tempdir().expect("tempdir");
            let opts = StoreOptions {
                device: Some(format!("device-{i}")),
                ..Default::default()
            };
            let store = Store::open_with(dir.path(), opts).expect("open");
            let cert = w.certify(&store, i, rs);
            assert!(store.enroll(TENANT, authority, &cert).expect("enroll"));
            w.replicas.push(Replica {
                dir,
                store: Some(store),
            });
        }
        // the issuer makes the permit and closeout, the isolation authority
        // the isolation point (its first status is a move of its own)
        let issuer = w.replicas[1].store();
        let permit = issuer
            .create_permit(NewPermit {
                title: "t0".into(),
                safety_checklist: vec!["a".into()],
                ..Default::default()
            })
            .expect("permit");
        let closeout = issuer
            .create_closeout(NewCloseout {
                id: None,
                permit_id: permit,
                checklist: vec![],
                notes: String::new(),
            })
            .expect("closeout");
        for id in [permit, closeout] {
            w.exchange_doc(1, 2, id, &mut Lcg(0), false, true);
        }
        let iso = w.replicas[2]
            .store()
            .create_isolation_point(NewIsolationPoint {
                id: None,
                permit_id: permit,
                description: "valve".into(),
                lock_ids: vec![],
            })
            .expect("iso");
        w.ids = [permit, iso, closeout];
        let created = w.replicas[2].store().heads(iso).expect("heads")[0];
        w.wrote.push((created, Wrote::Status(1, "assigned".into())));
        // everyone starts with the three documents and their attestations
        for to in 0..N {
            w.exchange(2, to, 0, false, true);
            w.attest(1, to, 0, false, true);
            w.attest(2, to, 0, false, true);
        }
        w
    }

    /// A certificate for replica `i` (`store`) with roles `rs`.
    fn certify(&mut self, store: &Store, i: usize, rs: &[Role]) -> SignedCertificate {
        let cert = self
            .relay
            .issue_certificate(&CertificateRequest {
                tenant: TENANT.into(),
                device: format!("device-{i}"),
                person: Some(format!("person {i}")),
                roles: roles(rs),
                public_key: store.public_key(),
            })
            .expect("issue");
        self.certs.push(cert.clone());
        cert
    }

    fn store(&self, r: usize) -> &Store {
        self.replicas[r].store()
    }

    fn edit(&mut self, r: usize, a: &Action) {
        self.readings += 1;
        let reading = uuid::Uuid::from_u128(self.readings);
        let Some((doc, edit)) = edit_of(a, reading) else {
            if let Action::Raw(ty, k) = a {
                self.raw(r, *ty, *k);
            }
            return;
        };
        let wrote = match (a, &edit) {
            (Action::Status(_) | Action::IsoStatus(_), Edit::SetStatus(s)) => {
                Some(Wrote::Status(doc, s.clone()))
            }
            (Action::Gas(..), _) => Some(Wrote::Reading(reading.to_string())),
            (Action::Complete, _) => Some(Wrote::Completed),
            _ => None,
        };
        self.write(r, doc, edit, wrote);
    }

    /// Replica `r` moves entity `doc` to the next status as it sees it.
    fn advance(&mut self, r: usize, doc: usize) {
        let holder = |next: &str| match (doc, next) {
            (1, _) => 2,
            (_, "submitted" | "completed") if r > N => 0,
            _ => 1,
        };
        // the issuer's (the isolation authority's) view of where it stands
        let seen = if r < N { r } else { holder("") };
        let view = self.store(seen).view(self.ids[doc]).expect("view");
        let next = match (doc, view.str_field("status").unwrap_or("")) {
            (0, "draft") => "submitted",
            (0, "submitted") => "approved",
            (0, "approved" | "suspended") => "active",
            (0, "active") => "completed",
            (0, "completed") => "closed",
            (1, "assigned") => "isolated",
            (1, "isolated") => "verified",
            _ => return,
        };
        if next == "active" && r >= N {
            // the one who activates first hears from the isolation authority
            let iso = self.ids[1];
            self.exchange_doc(2, holder(next), iso, &mut Lcg(0), false, true);
            self.attest(2, holder(next), 0, false, true);
            self.deliver_certificates(holder(next), 0, true);
        }
        let r = if r < N { r } else { holder(next) };
        if next == "active" {
            // the activation guard wants the safety checklist ticked
            let tick = support::ops::tick("safety_checklist", "a".into(), true);
            self.write(r, 0, tick, None);
        }
        let wrote = Wrote::Status(doc, next.into());
        self.write(r, doc, Edit::SetStatus(next.into()), Some(wrote));
    }

    fn write(&mut self, r: usize, doc: usize, edit: Edit, wrote: Option<Wrote>) {
        let id = self.ids[doc];
        let store = self.store(r);
        let before = store.heads(id).expect("heads");
        match store.edit(id, edit) {
            Ok(Some(hash)) => {
                if let Some(wrote) = wrote {
                    self.wrote.push((hash, wrote));
                }
            }
            Ok(None) => assert_eq!(store.heads(id).expect("heads"), before),
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        permitsync::Error::Rejected(_)
                            | permitsync::Error::Interlock { .. }
                            | permitsync::Error::InvalidInput(_)
                    ),
                    "{e}"
                );
                assert_eq!(store.heads(id).expect("heads"), before, "refused write");
            }
        }
    }

    /// A raw Automerge change, as a foreign client writes it: unattested.
    fn raw(&mut self, r: usize, ty: EntityType, k: u8) {
        let id = match ty {
            EntityType::Permit => self.ids[0],
            EntityType::IsolationPoint => self.ids[1],
            EntityType::Closeout => self.ids[2],
        };
        let store = self.store(r);
        let mut am = Automerge::load(&store.save_doc(id).expect("save")).expect("load");
        am.set_actor(ActorId::random());
        let (changes, _) = support::ops::raw_write(&mut am, ty, k);
        store.apply_changes(id, changes).expect("raw changes apply");
    }

    /// Send a random causally closed subset of `from`'s changes that `to`
    /// lacks (everything when `all`), shuffled, maybe duplicated.
    fn exchange(&mut self, from: usize, to: usize, seed: u64, dup: bool, all: bool) {
        if from == to {
            return;
        }
        let mut rng = Lcg(seed);
        for id in self.ids {
            self.exchange_doc(from, to, id, &mut rng, dup, all);
        }
    }

    fn exchange_doc(
        &self,
        from: usize,
        to: usize,
        id: EntityId,
        rng: &mut Lcg,
        dup: bool,
        all: bool,
    ) {
        {
            let (src, dst) = (self.store(from), self.store(to));
            let missing: Vec<Change> = src
                .changes_since(id, &[])
                .expect("changes")
                .into_iter()
                .filter(|c| !has_change(dst, id, &c.hash()))
                .collect();
            let picked = rng.pick(missing.clone(), all, false);
            let chosen = rng.pick(close_under_deps(picked, &missing), true, dup);
            if !chosen.is_empty() {
                dst.apply_changes(id, chosen).expect("apply");
            }
        }
    }

    /// Send a random subset of `from`'s attestations (of changes `to` may
    /// not hold yet), shuffled, maybe duplicated.
    fn attest(&mut self, from: usize, to: usize, seed: u64, dup: bool, all: bool) {
        let mut rng = Lcg(seed);
        for id in self.ids {
            let atts = self.store(from).attestations(id).expect("attestations");
            let chosen = rng.pick(atts, all, dup);
            // in one batch or one by one
            if rng.next() % 2 == 0 {
                self.store(to).add_attestations(id, chosen).expect("add");
            } else {
                for a in chosen {
                    self.store(to).add_attestations(id, vec![a]).expect("add");
                }
            }
        }
    }

    fn deliver_certificates(&mut self, to: usize, seed: u64, all: bool) {
        let chosen = Lcg(seed).pick(self.certs.clone(), all, true);
        for c in chosen.chunks(2) {
            self.store(to).learn_certificates(TENANT, c).expect("learn");
        }
    }

    fn deliver_lists(&mut self, to: usize, seed: u64, all: bool) {
        for l in Lcg(seed).pick(self.lists.clone(), all, true) {
            self.store(to)
                .learn_revocation_list(TENANT, &l)
                .expect("learn list");
        }
    }

    fn grant(&mut self, r: usize, g: usize) {
        let store = self.replicas[r].store.take().expect("open");
        let cert = self.certify(&store, r, GRANTS[g]);
        let authority = self.relay.ensure_authority().expect("authority");
        store.enroll(TENANT, authority, &cert).expect("re-enroll");
        self.replicas[r].store = Some(store);
    }

    fn revoke(&mut self, r: usize) {
        let device = format!("device-{r}");
        if let Some(list) = self.relay.revoke_device(TENANT, &device).expect("revoke") {
            self.lists.push(list);
        }
    }

    /// Attestations of one of `to`'s changes that must count for nothing,
    /// one or a flood of them (more than a change keeps): delivery
    /// attestations naming the relay's serial and every role, or author
    /// attestations naming the issuer's serial, signed by a key that is
    /// neither's, or a copy of an attestation `to` holds under another
    /// serial, its signature altered past the bytes the store keys it by.
    fn forge(&mut self, to: usize, seed: u64) {
        let mut rng = Lcg(seed);
        let id = self.ids[(rng.next() % 3) as usize];
        let changes = self.store(to).changes_since(id, &[]).expect("changes");
        let change = changes[(rng.next() as usize) % changes.len()].hash();
        let relay = self
            .relay
            .own_certificate(TENANT)
            .expect("own")
            .expect("cert");
        let held = self.store(to).attestations(id).expect("attestations");
        let n = if rng.next() % 4 == 0 { 12 } else { 1 };
        let mut forged = Vec::new();
        for i in 0..n {
            let thief = NodeKey::from_secret([((seed + i) % 251) as u8; 32]);
            forged.push(match rng.next() % 3 {
                0 => {
                    let all: RoleSet = Role::ALL.into_iter().collect();
                    let serial = relay.certificate.serial;
                    Attestation::delivery(change, serial, "device-4".into(), all, &thief)
                }
                1 => Attestation::author(change, self.certs[1].certificate.serial, &thief),
                _ => match held.iter().find(|a| a.change == change) {
                    Some(a) => {
                        let mut twin = a.clone();
                        twin.serial = twin.serial.wrapping_add(1 + i);
                        twin.signature[63] ^= 1;
                        twin
                    }
                    None => continue,
                },
            });
        }
        self.store(to).add_attestations(id, forged).expect("add");
    }
}

fn has_change(store: &Store, id: EntityId, h: &ChangeHash) -> bool {
    store.with_doc(id, |d| d.has_change(h)).unwrap_or(false)
}

fn close_under_deps(picked: Vec<Change>, pool: &[Change]) -> Vec<Change> {
    let by_hash: BTreeMap<ChangeHash, &Change> = pool.iter().map(|c| (c.hash(), c)).collect();
    let mut out: BTreeMap<ChangeHash, Change> = BTreeMap::new();
    let mut stack = picked;
    while let Some(c) = stack.pop() {
        if out.contains_key(&c.hash()) {
            continue;
        }
        for d in c.deps() {
            if let Some(dep) = by_hash.get(d) {
                stack.push((*dep).clone());
            }
        }
        out.insert(c.hash(), c);
    }
    out.into_values().collect()
}

#[path = "convergence_authority/invariant.rs"]
mod invariant;

fn run(steps: &[Step]) {
    let mut w = World::new();
    for step in steps {
        match step {
            Step::Edit(r, a) => w.edit(*r, a),
            Step::Advance(r, d) => w.advance(*r, *d),
            Step::Changes(f, t, s, d) => w.exchange(*f, *t, *s, *d, false),
            Step::Attestations(f, t, s, d) => w.attest(*f, *t, *s, *d, false),
            Step::Certificates(t, s) => w.deliver_certificates(*t, *s, false),
            Step::Lists(t, s) => w.deliver_lists(*t, *s, false),
            Step::Grant(r, g) => w.grant(*r, *g),
            Step::Revoke(r) => w.revoke(*r),
            Step::Forge(t, s) => w.forge(*t, *s),
            Step::Reopen(r) => {
                let views = |w: &World| -> Vec<String> {
                    w.ids
                        .iter()
                        .map(|id| w.store(*r).view(*id).expect("view").to_json_string())
                        .collect()
                };
                let before = views(&w);
                w.replicas[*r].reopen();
                assert_eq!(before, views(&w), "reopen changed a view");
            }
        }
    }
    // everyone receives everything, in whatever order
    for to in 0..N {
        w.deliver_lists(to, to as u64, true);
        for from in 0..N {
            w.attest(from, to, (from * N + to) as u64, false, true);
            w.exchange(from, to, 0, false, true);
        }
        w.deliver_certificates(to, to as u64, true);
    }
    for to in 0..N {
        for from in 0..N {
            w.exchange(from, to, 0, false, true);
            w.attest(from, to, 7, true, true);
        }
    }
    invariant::check(&w);
}

#[test]
fn enrolled_replicas_converge_and_nothing_policed_is_effective_unattested() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let mut runner = TestRunner::new(Config {
        cases,
        // failing seeds are saved here and replayed first on every run
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/convergence_authority.proptest-regressions",
        ))),
        ..Config::default()
    });
    runner
        .run(&scenario(), |steps| {
            run(&steps);
            Ok(())
        })
        .expect("convergence with authority");
}

/// Regression: at most [`MAX_ATTESTATIONS_PER_CHANGE`] attestations are kept
/// per change, and which ones must not depend on the order they came in.
/// Replica 0 is flooded with attestations of a change that count for
/// nothing (unknown serials, another key, or a copy of the genuine one under
/// another serial, its signature altered at the end) before its author's signature
/// arrives, replica 3 after it, replica 4 with the changes first, the
/// issuer after its own; replica 0 takes them before it holds any change of
/// the document (kept in the store, not in a loaded document). All must hold
/// the same attestations and show the same view, before and after a reopen.
#[test]
fn a_flood_of_attestations_does_not_make_replicas_diverge() {
    let mut w = World::new();
    for r in 0..N {
        w.deliver_certificates(r, 0, true);
    }
    let issuer = w.store(1);
    let id = issuer
        .create_permit(NewPermit {
            title: "flooded".into(),
            ..Default::default()
        })
        .expect("permit");
    issuer
        .edit(id, Edit::SetStatus("submitted".into()))
        .expect("submit")
        .expect("a change");
    let changes = issuer.changes_since(id, &[]).expect("changes");
    let genuine = issuer.attestations(id).expect("attestations");
    assert_eq!(genuine.len(), changes.len(), "every change signed");
    let thief = NodeKey::from_secret([201; 32]);
    let mut flood: Vec<Attestation> = changes
        .iter()
        .flat_map(|c| {
            let thief = &thief;
            (0..MAX_ATTESTATIONS_PER_CHANGE as u64 + 2)
                .map(move |s| Attestation::author(c.hash(), 1_000 + s, thief))
        })
        .collect();
    // and twins of the genuine ones, whose signatures begin alike (the store
    // keys an attestation by its change and its signature's first bytes)
    flood.extend(genuine.iter().map(|g| {
        let mut twin = g.clone();
        twin.serial ^= 1;
        twin.signature[63] ^= 1;
        twin
    }));
    let add = |r: usize, atts: &[Attestation]| {
        w.store(r).add_attestations(id, atts.to_vec()).expect("add");
    };
    let apply = |r: usize| {
        w.store(r)
            .apply_changes(id, changes.clone())
            .expect("apply");
    };
    add(0, &flood);
    add(0, &genuine);
    apply(0);
    add(3, &genuine);
    add(3, &flood);
    apply(3);
    apply(4);
    add(4, &flood);
    add(4, &genuine);
    add(1, &flood);
    let seen = |w: &World, r: usize| {
        let s = w.store(r);
        let v = s.view(id).expect("view").to_json_string();
        (v, s.attestations(id).expect("attestations"))
    };
    let issuers = seen(&w, 1);
    for c in &changes {
        let n = issuers.1.iter().filter(|a| a.change == c.hash()).count();
        assert_eq!(n, MAX_ATTESTATIONS_PER_CHANGE, "the issuer holds {n}");
    }
    for r in [0, 3, 4] {
        let (view, held) = seen(&w, r);
        assert_eq!(view, issuers.0, "replica {r}'s view diverged");
        assert!(held == issuers.1, "replica {r} holds other attestations");
    }
    for r in [0, 1, 4] {
        w.replicas[r].reopen();
    }
    for r in [0, 1, 3, 4] {
        assert!(
            seen(&w, r) == issuers,
            "replica {r} diverged after a reopen"
        );
    }
}
