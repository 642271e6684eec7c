//! Identity benchmarks (criterion): what signing and judging authority cost
//! per change (issue 13, "Who may do what").
//!
//! Run with `cargo bench --bench identity`; results are written up in
//! `docs/performance.md`, "Who may do what: signing and verification".
//!
//! 1. `attestation/sign`: a device signs a change's hash
//!    (`Attestation::author`, one Ed25519 signature).
//! 2. `attestation/verify`: that signature checked with the certificate's
//!    key (`Attestation::verify_with`, one Ed25519 verification).
//! 3. `attestation/authorize_one`: `TenantAuthority::authorize` of a change
//!    with one author attestation (a certificate lookup, one verification,
//!    the revocation and validity checks).
//! 4. `judge/{open,enforced_signed,enforced_unsigned}/N`: a fresh document
//!    takes the first N changes of a permit and builds its history
//!    (`apply_changes`, then `history()`): `open` (no authority, as before
//!    issue 13), `enforced_signed` (every change signed by a certificate
//!    holding every role: one verification per change) and
//!    `enforced_unsigned` (an authority, no attestations: every policed
//!    operation refused). N is 100 and 1,000.
//! 5. `judge/rejudge_{unchanged,revoked}/N`: the `enforced_signed`
//!    document, its history built, is judged again under a new authority (a
//!    revocation list or certificate arrived): `unchanged` when it judges
//!    every change alike (the history is kept after a check of each
//!    change), `revoked` when the signing certificate is revoked (the
//!    history is rebuilt). Signatures verified once are not verified again.
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use automerge::{Change, ChangeHash};
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use permitsync::identity::{
    Attestation, Certificate, NodeKey, RevocationList, Role, TenantAuthority,
};
use permitsync::store::{MemBackend, Store, StoreOptions};
use permitsync::write::{Edit, NewGasReading, NewPermit};
use permitsync::{EntityDoc, EntityId};

/// Changes of the judging benchmarks (the creation included).
const CHANGES: usize = 1_000;
/// The tenant authority's secret key.
const AUTHORITY: [u8; 32] = [9; 32];
/// The history lengths judged.
const SIZES: [usize; 2] = [100, CHANGES];

fn short<M: criterion::measurement::Measurement>(g: &mut BenchmarkGroup<'_, M>) {
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(5));
}

/// A tenant authority knowing one device certificate with every role.
fn tenant() -> (NodeKey, TenantAuthority) {
    let authority = NodeKey::from_secret(AUTHORITY);
    let device = NodeKey::from_secret([1; 32]);
    let mut judge = TenantAuthority::new("acme", authority.public());
    let cert = Certificate {
        serial: 7,
        tenant: "acme".into(),
        device: "tablet-1".into(),
        person: Some("J. Smith".into()),
        roles: Role::ALL.into_iter().collect(),
        public_key: device.public(),
        not_before: 0,
        not_after: i64::MAX,
    };
    judge
        .add_certificate(&cert.sign(&authority))
        .expect("certificate");
    (device, judge)
}

fn attestation(c: &mut Criterion) {
    let mut g = c.benchmark_group("attestation");
    short(&mut g);
    g.throughput(Throughput::Elements(1));
    let (device, judge) = tenant();
    let mut n = 0u8;
    g.bench_function("sign", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            black_box(Attestation::author(ChangeHash([n; 32]), 7, &device))
        })
    });
    let att = [Attestation::author(ChangeHash([5; 32]), 7, &device)];
    let key = device.public();
    assert!(att[0].verify_with(&key).is_ok());
    g.bench_function("verify", |b| {
        b.iter(|| black_box(black_box(&att[0]).verify_with(&key).is_ok()))
    });
    g.bench_function("authorize_one", |b| {
        b.iter(|| black_box(judge.authorize(black_box(1_700_000_000_000), &att)))
    });
    g.finish();
}

/// The changes of a permit that goes through its workflow, with ticks,
/// titles and gas readings in between.
fn permit_changes() -> (EntityId, Vec<Change>) {
    let store = Store::with_backend(Arc::new(MemBackend::new()), StoreOptions::default())
        .expect("in-memory store");
    let id = store
        .create_permit(NewPermit {
            title: "Replace pump seal".into(),
            safety_checklist: vec!["isolation confirmed".into()],
            ..Default::default()
        })
        .expect("permit");
    // draft -> submitted -> draft ...: each move a change
    let cycle = ["draft", "submitted"];
    for i in 1..CHANGES {
        let edit = match i % 4 {
            0 => Edit::SetStatus(cycle[(i / 4) % 2].into()),
            1 => Edit::SetField {
                field: "title".into(),
                value: format!("Replace pump seal, rev {i}"),
            },
            2 => Edit::Tick {
                field: "safety_checklist".into(),
                item: "isolation confirmed".into(),
                ticked: (i / 4) % 2 == 0,
            },
            _ => Edit::AddGasReading(NewGasReading {
                id: None,
                gas: "H2S".into(),
                value: 3.0,
                unit: "ppm".into(),
                min: 0.0,
                max: 10.0,
                taken_at: None,
            }),
        };
        store
            .edit(id, edit)
            .expect("edit")
            .expect("the edit made a change");
    }
    let changes = store.changes_since(id, &[]).expect("changes");
    assert_eq!(changes.len(), CHANGES);
    (id, changes)
}

fn judge(c: &mut Criterion) {
    let (id, all) = permit_changes();
    let (device, judge) = tenant();
    let judge = Arc::new(judge);
    let actor = automerge::ActorId::from(vec![42; 16]);
    let load =
        |authority: Option<&Arc<TenantAuthority>>, changes: &[Change], atts: &[Attestation]| {
            let mut doc = EntityDoc::new(id, actor.clone());
            if let Some(a) = authority {
                doc.set_authority(Some(Arc::clone(a)), atts.iter().cloned());
            }
            doc.apply_changes(changes.to_vec()).expect("apply");
            doc
        };
    let unchanged = Arc::new((*judge).clone());
    let mut revoked = (*judge).clone();
    let list = RevocationList {
        tenant: "acme".into(),
        version: 1,
        serials: [7].into_iter().collect(),
    };
    revoked
        .add_revocation_list(&list.sign(&NodeKey::from_secret(AUTHORITY)))
        .expect("revocation list");
    let revoked = Arc::new(revoked);
    let mut g = c.benchmark_group("judge");
    short(&mut g);
    for n in SIZES {
        // one actor's changes in order: the first n are causally closed
        let changes = &all[..n];
        let signed: Vec<Attestation> = changes
            .iter()
            .map(|ch| Attestation::author(ch.hash(), 7, &device))
            .collect();
        // the modes judge as expected (outside what is measured)
        for (mode, authority, atts, refused) in [
            ("open", None, &[][..], false),
            ("enforced_signed", Some(&judge), &signed[..], false),
            ("enforced_unsigned", Some(&judge), &[][..], true),
        ] {
            let doc = load(authority, changes, atts);
            let view = doc.view(&permitsync::view::CrossRefs::default());
            let not_authorized = view
                .rejected
                .iter()
                .filter(|r| r.reason == "not_authorized")
                .count();
            eprintln!("judge/{mode}/{n}: {not_authorized} not_authorized rejections");
            assert_eq!(not_authorized > 0, refused, "{mode}");
        }
        g.throughput(Throughput::Elements(n as u64));
        let run = |authority, atts: &[Attestation]| {
            let doc = load(authority, changes, atts);
            black_box(doc.history().change_count())
        };
        g.bench_function(BenchmarkId::new("open", n), |b| b.iter(|| run(None, &[])));
        g.bench_function(BenchmarkId::new("enforced_signed", n), |b| {
            b.iter(|| run(Some(&judge), &signed))
        });
        g.bench_function(BenchmarkId::new("enforced_unsigned", n), |b| {
            b.iter(|| run(Some(&judge), &[]))
        });
        // a new authority makes the document be judged again: with the same
        // contents (another Arc, as after a list that revokes nothing here)
        // nothing is judged differently and the history is kept; with the
        // device's certificate revoked every change is, and it is rebuilt
        for (name, renewed, refused) in [
            ("rejudge_unchanged", &unchanged, false),
            ("rejudge_revoked", &revoked, true),
        ] {
            let mut doc = load(Some(&judge), changes, &signed);
            doc.history();
            doc.set_authority(Some(Arc::clone(renewed)), []);
            let view = doc.view(&permitsync::view::CrossRefs::default());
            let refusals = view.rejected.iter().any(|r| r.reason == "not_authorized");
            assert_eq!(refusals, refused, "{name}");
            g.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter_batched(
                    || {
                        let doc = load(Some(&judge), changes, &signed);
                        doc.history();
                        doc
                    },
                    |mut doc| {
                        doc.set_authority(Some(Arc::clone(renewed)), []);
                        black_box(doc.history().change_count())
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
}

criterion_group!(benches, attestation, judge);
criterion_main!(benches);
