//! Store benchmarks (criterion): durable local writes and the policy view.
//!
//! Run with `cargo bench --bench store`; results are written up in
//! `docs/performance.md`.
//!
//! 1. `writes_flushed/*`: validated local edits on a sled store, each one
//!    acknowledged only after it is durable (fsync), by one writer and by
//!    [`WRITERS`] threads each editing its own permit (group commit).
//! 2. `view_1000_changes/*`: the view of a permit with [`CHANGES`] changes,
//!    rebuilt from the saved bytes (`full`), after applying one new change to a
//!    loaded document (`incremental`), and on a loaded document (`render_only`).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use automerge::{Change, ChangeHash};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use permitsync::store::{MemBackend, Store, StoreOptions};
use permitsync::view::CrossRefs;
use permitsync::write::{Edit, NewGasReading, NewPermit};
use permitsync::{EntityDoc, EntityId};

/// Concurrent writers in the group-commit benchmark.
const WRITERS: usize = 8;
/// Changes in the document of the view benchmarks (the creation included).
const CHANGES: usize = 1_000;
/// New changes prepared on top of the [`CHANGES`]-change document for the
/// incremental benchmark; the loaded document is replaced after this many, so
/// it always holds between `CHANGES` and `CHANGES + CHAIN - 1` changes.
const CHAIN: usize = 16;

fn short<M: criterion::measurement::Measurement>(g: &mut BenchmarkGroup<'_, M>) {
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(5));
}

fn new_permit(store: &Store, title: &str) -> EntityId {
    store
        .create_permit(NewPermit {
            title: title.into(),
            location: "Pump house 2".into(),
            work_type: "mechanical".into(),
            description: "Replace the mechanical seal of pump P-201".into(),
            ppe_requirements: vec!["gloves".into(), "helmet".into()],
            safety_checklist: vec!["isolation confirmed".into(), "area barriered".into()],
            ..Default::default()
        })
        .expect("create permit")
}

fn set_title(store: &Store, id: EntityId, n: u64) {
    store
        .edit(
            id,
            Edit::SetField {
                field: "title".into(),
                value: format!("Replace pump seal, rev {n}"),
            },
        )
        .expect("edit title")
        .expect("the title edit made a change");
}

// ---- 1. flushed writes ------------------------------------------------------

fn writes_flushed(c: &mut Criterion) {
    let mut g = c.benchmark_group("writes_flushed");
    short(&mut g);

    // (a) one writer, one permit
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open sled store");
        let id = new_permit(&store, "single writer");
        let mut n = 0u64;
        let flushes_before = store.flush_count();
        g.throughput(Throughput::Elements(1));
        g.bench_function("1_writer", |b| {
            b.iter(|| {
                n += 1;
                set_title(&store, id, n);
            })
        });
        let flushes = store.flush_count() - flushes_before;
        eprintln!(
            "writes_flushed/1_writer: {n} writes, {flushes} flushes, {:.3} flushes per write",
            flushes as f64 / n as f64
        );
    }

    // (b) WRITERS threads, each editing its own permit; one iteration is one
    // write per thread
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open sled store");
        let ids: Vec<EntityId> = (0..WRITERS)
            .map(|t| new_permit(&store, &format!("writer {t}")))
            .collect();
        let writes = AtomicU64::new(0);
        let flushes = AtomicU64::new(0);
        // a fresh title for every write (writing the current value again is no change)
        let seq = AtomicU64::new(0);
        g.throughput(Throughput::Elements(WRITERS as u64));
        g.bench_function(format!("{WRITERS}_writers"), |b| {
            b.iter_custom(|iters| {
                let barrier = Barrier::new(WRITERS + 1);
                let flushes_before = store.flush_count();
                let elapsed = std::thread::scope(|s| {
                    for &id in &ids {
                        let (store, barrier, seq) = (&store, &barrier, &seq);
                        s.spawn(move || {
                            barrier.wait();
                            for _ in 0..iters {
                                set_title(store, id, seq.fetch_add(1, Ordering::Relaxed));
                            }
                        });
                    }
                    barrier.wait();
                    let start = Instant::now();
                    // the scope joins every writer before returning
                    start
                })
                .elapsed();
                writes.fetch_add(iters * WRITERS as u64, Ordering::Relaxed);
                flushes.fetch_add(store.flush_count() - flushes_before, Ordering::Relaxed);
                elapsed
            })
        });
        let (w, f) = (writes.into_inner(), flushes.into_inner());
        eprintln!(
            "writes_flushed/{WRITERS}_writers: {w} writes, {f} flushes, {:.3} flushes per write \
             ({:.2} writes per flush)",
            f as f64 / w as f64,
            w as f64 / f as f64
        );
    }
    g.finish();
}

// ---- 2. the view of a 1,000-change permit -------------------------------------

/// The `i`-th edit of the permit's history; `status` is the current status and
/// `ppe_on` whether the `ear defenders` PPE item is present. Status moves go
/// `draft <-> submitted` in the first half, then `submitted -> approved ->
/// active` (the guard holds: every checklist item is ticked and every gas
/// reading is in range) and `active <-> suspended` after that.
fn history_edit(i: usize, status: &mut &'static str, ppe_on: &mut bool) -> Edit {
    match i % 6 {
        0 => Edit::SetField {
            field: "title".into(),
            value: format!("Replace pump seal, rev {i}"),
        },
        1 => Edit::Tick {
            field: "safety_checklist".into(),
            item: format!("check {i}"),
            ticked: true,
        },
        2 => {
            *ppe_on = !*ppe_on;
            let item = "ear defenders".to_string();
            let field = "ppe_requirements".to_string();
            if *ppe_on {
                Edit::AddItem { field, item }
            } else {
                Edit::RemoveItem { field, item }
            }
        }
        3 => Edit::AddGasReading(NewGasReading {
            gas: ["H2S", "O2", "LEL"][i % 3].into(),
            value: [2.0, 20.9, 1.0][i % 3],
            unit: ["ppm", "%", "%LEL"][i % 3].into(),
            min: [0.0, 19.5, 0.0][i % 3],
            max: [5.0, 23.5, 10.0][i % 3],
            ..Default::default()
        }),
        4 => Edit::SetField {
            field: "location".into(),
            value: format!("Pump house {}", i % 7),
        },
        _ => {
            let first_half = i < CHANGES / 2;
            *status = match *status {
                "draft" => "submitted",
                "submitted" if first_half => "draft",
                "submitted" => "approved",
                "approved" => "active",
                "active" => "suspended",
                "suspended" => "active",
                other => panic!("unexpected status {other}"),
            };
            Edit::SetStatus((*status).into())
        }
    }
}

struct BigPermit {
    id: EntityId,
    actor: automerge::ActorId,
    /// `save()` of the document with exactly [`CHANGES`] changes.
    saved: Vec<u8>,
    /// [`CHAIN`] later changes, each depending on the one before.
    chain: Vec<Change>,
}

fn big_permit() -> BigPermit {
    // an in-memory backend: building the history is setup, not what is measured
    let store = Store::with_backend(Arc::new(MemBackend::new()), StoreOptions::default())
        .expect("in-memory store");
    let id = new_permit(&store, "Replace pump seal");
    for item in ["isolation confirmed", "area barriered"] {
        store
            .edit(
                id,
                Edit::Tick {
                    field: "safety_checklist".into(),
                    item: item.into(),
                    ticked: true,
                },
            )
            .expect("tick")
            .expect("tick made a change");
    }
    let (mut status, mut ppe_on) = ("draft", false);
    // changes 0..3 are the creation and the two ticks
    for i in 3..CHANGES {
        let edit = history_edit(i, &mut status, &mut ppe_on);
        store
            .edit(id, edit)
            .expect("history edit")
            .expect("history edit made a change");
    }
    let saved = store.save_doc(id).expect("save");
    let heads: Vec<ChangeHash> = store.heads(id).expect("heads");
    for i in CHANGES..CHANGES + CHAIN {
        let edit = history_edit(i, &mut status, &mut ppe_on);
        store
            .edit(id, edit)
            .expect("chain edit")
            .expect("chain edit made a change");
    }
    let chain = store.changes_since(id, &heads).expect("chain");
    assert_eq!(chain.len(), CHAIN);
    BigPermit {
        id,
        actor: store.actor().clone(),
        saved,
        chain,
    }
}

fn load(p: &BigPermit) -> EntityDoc {
    EntityDoc::load(p.id, p.actor.clone(), &[&p.saved]).expect("load")
}

fn view_1000_changes(c: &mut Criterion) {
    let p = big_permit();
    let refs = CrossRefs::default();
    {
        // sanity: the history is what the benchmark claims
        let doc = load(&p);
        assert_eq!(doc.history().change_count(), CHANGES);
        let view = doc.view(&refs);
        assert!(view.rejected.is_empty(), "rejected: {:?}", view.rejected);
        let status = view.str_field("status").unwrap_or("?").to_string();
        eprintln!(
            "view_1000_changes: {} changes, {} bytes saved, status {status}, {} conflicts",
            doc.history().change_count(),
            p.saved.len(),
            view.conflicts.len()
        );
    }

    let mut g = c.benchmark_group("view_1000_changes");
    short(&mut g);
    g.throughput(Throughput::Elements(1));

    // (a) load the saved bytes (history rebuilt from all changes) and render
    g.bench_function("full", |b| {
        b.iter(|| {
            let doc = EntityDoc::load(p.id, p.actor.clone(), &[black_box(&p.saved)]).expect("load");
            black_box(doc.view(&refs))
        })
    });

    // (b) apply one new change to a loaded document and render. Reloading the
    // document for every iteration would make the untimed setup dominate the
    // run, so the document takes CHAIN successive changes before it is
    // reloaded (untimed); only apply + view is timed.
    g.bench_function("incremental", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut doc = load(&p);
            let mut next = 0;
            for _ in 0..iters {
                if next == p.chain.len() {
                    doc = load(&p);
                    next = 0;
                }
                let change = p.chain[next].clone();
                next += 1;
                let start = Instant::now();
                let new = doc.apply_changes(vec![change]).expect("apply");
                let view = doc.view(&refs);
                timed += start.elapsed();
                assert_eq!(new.len(), 1);
                black_box(view);
            }
            timed
        })
    });

    // (c) render a loaded document
    let doc = load(&p);
    g.bench_function("render_only", |b| b.iter(|| black_box(doc.view(&refs))));
    g.finish();
}

criterion_group!(benches, writes_flushed, view_1000_changes);
criterion_main!(benches);
