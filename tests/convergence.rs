//! Convergence property test.
//!
//! 2 to 5 replicas, each with its own sled store in a temp dir, make random
//! valid and invalid edits to a permit, an isolation point and a closeout;
//! some invalid ones are written with raw Automerge, bypassing the API, the way
//! a buggy or foreign client would. Replicas exchange random, causally closed
//! subsets of changes (in any order, with duplicates) and are sometimes closed
//! and reopened. At the end everyone exchanges everything, and:
//! - every replica's view JSON is byte-identical (so `rejected` lists are too);
//! - no replica ever saw an isolation status go down;
//! - set-merge (add-wins) and true-wins (enable-wins) results equal a reference
//!   model of observed-remove sets, and every gas reading ever written is there;
//! - nothing written before a reopen is missing after it.
//!
//! The edits and raw writes are the random operations the simulation makes
//! too (`tests/support/ops.rs`); proptest draws which ones, so that a failing
//! case shrinks and the committed `convergence.proptest-regressions` replay.
//!
//! `PROPTEST_CASES=5000 cargo test --release --test convergence` runs more cases.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use automerge::{ActorId, Automerge, Change, ChangeHash};
use permitsync::model::{EntityId, EntityType, IsolationStatus, PermitStatus};
use permitsync::store::{Store, StoreOptions};
use permitsync::write::{Edit, NewCloseout, NewIsolationPoint, NewPermit};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

mod support;

use support::actions::{action, Action};
use support::ops::{self, ITEMS};

#[derive(Clone, Debug)]
enum Step {
    Edit(usize, Action),
    /// from, to, subset seed, duplicate
    Exchange(usize, usize, u64, bool),
    Reopen(usize),
}

fn scenario() -> impl Strategy<Value = (usize, Vec<Step>)> {
    (2usize..=5).prop_flat_map(|n| {
        let step = prop_oneof![
            6 => (0..n, action()).prop_map(|(r, a)| Step::Edit(r, a)),
            3 => (0..n, 0..n, any::<u64>(), any::<bool>())
                .prop_map(|(f, t, s, d)| Step::Exchange(f, t, s, d)),
            1 => (0..n).prop_map(Step::Reopen),
        ];
        (Just(n), prop::collection::vec(step, 5..30))
    })
}

/// One replica: a sled store in its own temp dir.
struct Replica {
    dir: tempfile::TempDir,
    store: Option<Store>,
    /// highest isolation rank this replica has shown
    iso_rank: u8,
}

impl Replica {
    fn open(dir: tempfile::TempDir, n: usize) -> Replica {
        let store = Store::open_with(
            dir.path(),
            StoreOptions {
                device: Some(format!("device-{n}")),
                ..Default::default()
            },
        )
        .expect("open");
        Replica {
            dir,
            store: Some(store),
            iso_rank: 0,
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("store open")
    }

    fn reopen(&mut self) {
        self.store = None; // drop releases sled's lock
        self.store = Some(Store::open(self.dir.path()).expect("reopen"));
    }
}

/// Reference model of the observed-remove semantics (add-wins set, enable-wins flag).
#[derive(Default)]
struct Model {
    /// (field, item) -> tags (change hashes) that added / ticked it
    adds: BTreeMap<(String, String), Vec<ChangeHash>>,
    readings: BTreeSet<String>,
}

impl Model {
    fn live(&self, key: &(String, String), held: &dyn Fn(&ChangeHash) -> bool) -> Vec<ChangeHash> {
        self.adds
            .get(key)
            .map(|tags| tags.iter().copied().filter(|t| held(t)).collect())
            .unwrap_or_default()
    }
}

struct World {
    replicas: Vec<Replica>,
    permit: EntityId,
    iso: EntityId,
    closeout: EntityId,
    model: Model,
    /// removes with the tags they observed, held by hash
    removes: Vec<(ChangeHash, Vec<ChangeHash>)>,
}

fn has_change(store: &Store, id: EntityId, h: &ChangeHash) -> bool {
    store.with_doc(id, |d| d.has_change(h)).unwrap_or(false)
}

impl World {
    fn new(n: usize) -> World {
        let mut replicas: Vec<Replica> = (0..n)
            .map(|i| Replica::open(tempfile::tempdir().expect("tempdir"), i))
            .collect();
        let s = replicas[0].store();
        let permit = s
            .create_permit(NewPermit {
                title: "t0".into(),
                safety_checklist: vec!["a".into()],
                ppe_requirements: vec!["x".into()],
                ..Default::default()
            })
            .expect("permit");
        let iso = s
            .create_isolation_point(NewIsolationPoint {
                id: None,
                permit_id: permit,
                description: "valve".into(),
                lock_ids: vec![],
            })
            .expect("iso");
        let closeout = s
            .create_closeout(NewCloseout {
                id: None,
                permit_id: permit,
                checklist: vec!["a".into()],
                notes: String::new(),
            })
            .expect("closeout");
        let mut w = World {
            replicas: Vec::new(),
            permit,
            iso,
            closeout,
            model: Model::default(),
            removes: Vec::new(),
        };
        // the creation change holds the initial items: tags in the model
        let creation = s.heads(permit).expect("heads")[0];
        w.model
            .adds
            .entry(("ppe_requirements".into(), "x".into()))
            .or_default()
            .push(creation);
        let first = replicas.remove(0);
        w.replicas.push(first);
        w.replicas.extend(replicas);
        for to in 1..n {
            w.exchange(0, to, 0, false, true);
        }
        w
    }

    fn ids(&self) -> [EntityId; 3] {
        [self.permit, self.iso, self.closeout]
    }

    /// Live tags of `key` as replica `r` sees them.
    fn live_at(&self, r: usize, id: EntityId, key: &(String, String)) -> Vec<ChangeHash> {
        let store = self.replicas[r].store();
        let held = |h: &ChangeHash| has_change(store, id, h);
        let removed: HashSet<ChangeHash> = self
            .removes
            .iter()
            .filter(|(h, _)| held(h))
            .flat_map(|(_, tags)| tags.iter().copied())
            .collect();
        self.model
            .live(key, &held)
            .into_iter()
            .filter(|t| !removed.contains(t))
            .collect()
    }

    fn edit(&mut self, r: usize, a: &Action) {
        let (id, edit, model_key): (EntityId, Edit, Option<(String, String, bool)>) = match a {
            Action::Title(v) => (
                self.permit,
                Edit::SetField {
                    field: "title".into(),
                    value: format!("t{v}"),
                },
                None,
            ),
            Action::Status(s) => (
                self.permit,
                Edit::SetStatus(PermitStatus::ALL[*s as usize].as_str().into()),
                None,
            ),
            Action::Tick(i, b) => {
                let item = ITEMS[*i as usize].to_string();
                (
                    self.permit,
                    ops::tick("safety_checklist", item.clone(), *b),
                    Some(("safety_checklist".into(), item, *b)),
                )
            }
            Action::Ppe(i, add) => {
                let item = ITEMS[*i as usize].to_string();
                (
                    self.permit,
                    ops::add_or_remove("ppe_requirements", item.clone(), *add),
                    Some(("ppe_requirements".into(), item, *add)),
                )
            }
            Action::Gas(h2s, ok) => (self.permit, ops::gas_reading(None, *h2s, *ok), None),
            Action::Describe(v) => (
                self.permit,
                Edit::SetText {
                    field: "description".into(),
                    text: format!("work {v}"),
                },
                None,
            ),
            Action::IsoStatus(s) => (
                self.iso,
                Edit::SetStatus(IsolationStatus::ALL[*s as usize].as_str().into()),
                None,
            ),
            Action::Lock(i, add) => {
                let item = ITEMS[*i as usize].to_string();
                (
                    self.iso,
                    ops::add_or_remove("lock_ids", item.clone(), *add),
                    Some(("lock_ids".into(), item, *add)),
                )
            }
            Action::CloseTick(i, b) => {
                let item = ITEMS[*i as usize].to_string();
                (
                    self.closeout,
                    ops::tick("checklist", item.clone(), *b),
                    Some(("checklist".into(), item, *b)),
                )
            }
            Action::Complete => (
                self.closeout,
                Edit::SetFlag {
                    field: "completed".into(),
                    value: true,
                },
                None,
            ),
            Action::Raw(doc, k) => {
                self.raw(r, *doc, *k);
                return;
            }
        };
        let store = self.replicas[r].store();
        let before = store.heads(id).expect("heads");
        let observed = model_key
            .as_ref()
            .map(|(f, item, _)| self.live_at(r, id, &(f.clone(), item.clone())))
            .unwrap_or_default();
        match store.edit(id, edit) {
            Ok(Some(hash)) => {
                if let Some((f, item, add)) = model_key {
                    if add {
                        self.model.adds.entry((f, item)).or_default().push(hash);
                    } else {
                        self.removes.push((hash, observed));
                    }
                }
                if let Action::Gas(..) = a {
                    let v = store.view(id).expect("view");
                    for k in v.fields["gas_readings"].as_object().expect("map").keys() {
                        self.model.readings.insert(k.clone());
                    }
                }
            }
            Ok(None) => assert_eq!(store.heads(id).expect("heads"), before),
            Err(e) => {
                // a refused write changes nothing
                assert!(
                    matches!(
                        e,
                        permitsync::Error::Rejected(_)
                            | permitsync::Error::Interlock { .. }
                            | permitsync::Error::InvalidInput(_)
                    ),
                    "{e}"
                );
                assert_eq!(
                    store.heads(id).expect("heads"),
                    before,
                    "refused write changed the doc"
                );
            }
        }
    }

    /// A raw Automerge change, as a buggy or foreign client would write it.
    fn raw(&mut self, r: usize, ty: EntityType, k: u8) {
        let id = match ty {
            EntityType::Permit => self.permit,
            EntityType::IsolationPoint => self.iso,
            EntityType::Closeout => self.closeout,
        };
        let store = self.replicas[r].store();
        let mut am = Automerge::load(&store.save_doc(id).expect("save")).expect("load");
        am.set_actor(ActorId::random());
        let (changes, _) = ops::raw_write(&mut am, ty, k);
        store.apply_changes(id, changes).expect("raw changes apply");
    }

    /// Send a random causally closed subset of `from`'s changes that `to`
    /// lacks (everything when `all`), in shuffled order, maybe duplicated.
    fn exchange(&mut self, from: usize, to: usize, seed: u64, dup: bool, all: bool) {
        if from == to {
            return;
        }
        let mut rng = seed;
        let mut next = || {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            rng >> 33
        };
        for id in self.ids() {
            let src = self.replicas[from].store();
            let dst = self.replicas[to].store();
            let missing: Vec<Change> = src
                .changes_since(id, &[])
                .expect("changes")
                .into_iter()
                .filter(|c| !has_change(dst, id, &c.hash()))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let mut chosen: Vec<Change> = if all {
                missing.clone()
            } else {
                let picked: Vec<Change> = missing
                    .iter()
                    .filter(|_| next() % 2 == 0)
                    .cloned()
                    .collect();
                close_under_deps(picked, &missing)
            };
            // shuffle, and maybe duplicate some
            for i in (1..chosen.len()).rev() {
                let j = (next() as usize) % (i + 1);
                chosen.swap(i, j);
            }
            if dup && !chosen.is_empty() {
                let extra = chosen[(next() as usize) % chosen.len()].clone();
                chosen.push(extra);
            }
            if chosen.is_empty() {
                continue;
            }
            dst.apply_changes(id, chosen)
                .expect("apply exchanged changes");
        }
    }

    fn check_iso_rank(&mut self) {
        for rep in &mut self.replicas {
            let v = rep
                .store
                .as_ref()
                .expect("open")
                .view(self.iso)
                .expect("view");
            let rank = v.isolation_status().map(IsolationStatus::rank).unwrap_or(0);
            assert!(
                rank >= rep.iso_rank,
                "isolation status went down: {} < {}",
                rank,
                rep.iso_rank
            );
            rep.iso_rank = rank;
        }
    }
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

fn run(n: usize, steps: &[Step]) {
    let mut w = World::new(n);
    for step in steps {
        match step {
            Step::Edit(r, a) => w.edit(*r, a),
            Step::Exchange(f, t, seed, dup) => w.exchange(*f, *t, *seed, *dup, false),
            Step::Reopen(r) => {
                let ids = w.ids();
                let before: Vec<String> = ids
                    .iter()
                    .map(|id| {
                        w.replicas[*r]
                            .store()
                            .view(*id)
                            .expect("view")
                            .to_json_string()
                    })
                    .collect();
                w.replicas[*r].reopen();
                let after: Vec<String> = ids
                    .iter()
                    .map(|id| {
                        w.replicas[*r]
                            .store()
                            .view(*id)
                            .expect("view")
                            .to_json_string()
                    })
                    .collect();
                assert_eq!(before, after, "reopen lost or changed data");
            }
        }
        w.check_iso_rank();
    }
    // everyone exchanges everything
    for from in 0..n {
        for to in 0..n {
            w.exchange(from, to, 0, false, true);
        }
    }
    for from in 0..n {
        w.exchange(from, 0, 0, false, true);
    }
    for to in 1..n {
        w.exchange(0, to, 0, false, true);
    }
    w.check_iso_rank();
    for id in w.ids() {
        let views: Vec<String> = w
            .replicas
            .iter()
            .map(|r| r.store().view(id).expect("view").to_json_string())
            .collect();
        for v in &views[1..] {
            assert_eq!(v, &views[0], "replicas diverged on {id}");
        }
        // the summary each replica stored (from the history's headline, not
        // a rendered view) says what the view says
        for r in &w.replicas {
            let (v, s) = (
                r.store().view(id).expect("view"),
                r.store().summary(id).expect("summary").expect("summary"),
            );
            assert_eq!(s.status.as_deref(), v.str_field("status"), "status of {id}");
            assert_eq!(s.title.as_deref(), v.str_field("title"), "title of {id}");
            assert_eq!(s.deleted, v.is_deleted(), "deleted of {id}");
            assert_eq!(s.conflicts, v.conflicts.len(), "conflicts of {id}");
            assert_eq!(s.rejected, v.rejected.len(), "rejected of {id}");
            assert_eq!(s.heads, v.heads, "heads of {id}");
            let completed = v.fields.get("completed").and_then(|c| c.as_bool()) == Some(true);
            assert_eq!(s.completed, completed, "completed of {id}");
        }
    }
    // reference model: add-wins sets and enable-wins checklists
    let v0 = |id| w.replicas[0].store().view(id).expect("view");
    let (permit, iso, closeout) = (v0(w.permit), v0(w.iso), v0(w.closeout));
    // every item of every set and checklist, including the ones created with
    // the entities (`x`, and the unticked `a`s) and items never added at all
    let mut keys: BTreeSet<(String, String)> = w.model.adds.keys().cloned().collect();
    for field in [
        "safety_checklist",
        "ppe_requirements",
        "lock_ids",
        "checklist",
    ] {
        for item in ITEMS.iter().chain(&["x"]) {
            keys.insert((field.to_string(), item.to_string()));
        }
    }
    for key in keys {
        let (field, item) = &key;
        let (view, id) = match field.as_str() {
            "lock_ids" => (&iso, w.iso),
            "checklist" => (&closeout, w.closeout),
            _ => (&permit, w.permit),
        };
        let expected = !w.live_at(0, id, &key).is_empty();
        let actual = match &view.fields[field.as_str()] {
            serde_json::Value::Array(a) => a.iter().any(|x| x == item.as_str()),
            serde_json::Value::Object(m) => {
                m.get(item.as_str()).and_then(|x| x.as_bool()) == Some(true)
            }
            other => panic!("unexpected {other}"),
        };
        // raw foreign writes do touch items (a delete of a checklist item, a
        // number over a tick), but each is invalid and has no effect at all
        // (the no-op rule, second version), so a model that ignores them is exact
        assert_eq!(
            actual, expected,
            "{field}.{item}: view {actual}, model {expected}"
        );
    }
    let readings: BTreeSet<String> = permit.fields["gas_readings"]
        .as_object()
        .expect("readings")
        .keys()
        .cloned()
        .collect();
    assert!(
        w.model.readings.is_subset(&readings),
        "a gas reading was lost"
    );
}

#[test]
fn replicas_converge_under_random_edits_exchanges_and_reopens() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let mut runner = TestRunner::new(Config {
        cases,
        // failing seeds are saved here and replayed first on every run
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/convergence.proptest-regressions",
        ))),
        ..Config::default()
    });
    runner
        .run(&scenario(), |(n, steps)| {
            run(n, &steps);
            Ok(())
        })
        .expect("convergence property");
}
