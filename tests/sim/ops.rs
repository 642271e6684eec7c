//! Local writes: through the API (valid ones, and invalid ones the API must
//! refuse without writing anything) and, sometimes, raw Automerge changes the
//! way a buggy or foreign client would write them (the view must reject them).

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, AutomergeError, ObjType, ReadDoc, ROOT};
use permitsync::model::{EntityId, EntityType, IsolationStatus};
use permitsync::store::Store;
use permitsync::write::{Edit, NewCloseout, NewGasReading, NewIsolationPoint, NewPermit};
use permitsync::Error;

use super::world::{Outcome, World};

const ITEMS: [&str; 3] = ["a", "b", "c"];

/// What a write is.
enum Write {
    Permit(NewPermit),
    Isolation(NewIsolationPoint),
    Closeout(NewCloseout),
    Edit(EntityId, Edit),
    Raw(EntityId, u8),
}

impl World {
    /// A random write on a random node that is up.
    pub fn random_write(&mut self) -> Outcome {
        let ups: Vec<usize> = (0..self.nodes.len())
            .filter(|n| self.nodes[*n].store.is_some())
            .collect();
        let n = *self.rng.pick(&ups);
        let write = self.plan_write(n);
        let doc = match &write {
            Write::Edit(id, _) | Write::Raw(id, _) => Some(*id),
            _ => None,
        };
        self.write(n, write)?;
        match doc {
            Some(id) => self.check_iso(n, Some(&[id])),
            None => Ok(()),
        }
    }

    fn plan_write(&mut self, n: usize) -> Write {
        let r = &mut self.rng;
        let create_pct = match self.entities.len() {
            0..=2 => 100,
            3..=8 => 12,
            _ => 3,
        };
        let permits: Vec<EntityId> = self
            .entities
            .iter()
            .filter(|(_, t)| *t == EntityType::Permit)
            .map(|(id, _)| *id)
            .collect();
        if r.percent(create_pct) {
            let id = Some(EntityId::from_bytes(r.bytes16()));
            // a child of a random permit this node may not have yet (refused
            // then), or of an entity that is not a permit (refused)
            let parent = match r.below(10) {
                0 if !self.entities.is_empty() => Some(r.pick(&self.entities).0),
                _ if !permits.is_empty() => Some(*r.pick(&permits)),
                _ => None,
            };
            return match (r.below(10), parent) {
                (0..=3, Some(permit_id)) => Write::Isolation(NewIsolationPoint {
                    id,
                    permit_id,
                    description: format!("valve {}", r.below(9)),
                    lock_ids: vec![format!("L{}", r.below(3))],
                }),
                (4..=5, Some(permit_id)) => Write::Closeout(NewCloseout {
                    id,
                    permit_id,
                    checklist: vec!["a".into(), "b".into()],
                    notes: String::new(),
                }),
                _ => Write::Permit(NewPermit {
                    id,
                    // now and then an empty title, which the API refuses
                    title: if r.below(20) == 0 {
                        " ".into()
                    } else {
                        format!("permit {}", r.below(100))
                    },
                    safety_checklist: vec!["a".into(), "b".into()],
                    ppe_requirements: vec!["helmet".into()],
                    ..Default::default()
                }),
            };
        }
        let (id, ty) = *r.pick(&self.entities);
        if r.percent(self.p.raw_pct) {
            return Write::Raw(id, r.below(8) as u8);
        }
        // now and then an edit meant for another type (refused)
        let ty = if r.below(20) == 0 {
            *r.pick(&[
                EntityType::Permit,
                EntityType::IsolationPoint,
                EntityType::Closeout,
            ])
        } else {
            ty
        };
        let store = self.nodes[n].store.clone().expect("up");
        let status = store
            .view(id)
            .ok()
            .and_then(|v| v.str_field("status").map(str::to_string));
        let item = ITEMS[r.below(3)].to_string();
        let edit = match ty {
            EntityType::Permit => match r.below(11) {
                0 => Edit::SetField {
                    field: "title".into(),
                    value: format!("t{}", r.below(4)),
                },
                1 => Edit::SetField {
                    field: "location".into(),
                    value: format!("area {}", r.below(3)),
                },
                2 => Edit::SetText {
                    field: "description".into(),
                    text: format!("work {} at {}", r.below(3), r.below(3)),
                },
                3..=4 => Edit::SetStatus(permit_status(r, status.as_deref())),
                5..=6 => Edit::Tick {
                    field: "safety_checklist".into(),
                    item,
                    ticked: r.below(4) > 0,
                },
                7 => {
                    if r.coin() {
                        Edit::AddItem {
                            field: "ppe_requirements".into(),
                            item,
                        }
                    } else {
                        Edit::RemoveItem {
                            field: "ppe_requirements".into(),
                            item,
                        }
                    }
                }
                8..=9 => {
                    let ok = r.below(3) > 0;
                    Edit::AddGasReading(NewGasReading {
                        id: Some(uuid::Uuid::from_bytes(r.bytes16())),
                        gas: if r.coin() { "H2S" } else { "CO" }.into(),
                        value: if ok { 3.0 } else { 12.0 },
                        unit: "ppm".into(),
                        min: 0.0,
                        max: 10.0,
                        taken_at: None,
                    })
                }
                _ => delete_or(
                    r,
                    Edit::SetFlag {
                        field: "deleted".into(),
                        value: false,
                    },
                ),
            },
            EntityType::IsolationPoint => match r.below(6) {
                0..=2 => Edit::SetStatus(iso_status(r, status.as_deref())),
                3 => {
                    let item = format!("L{}", r.below(3));
                    if r.coin() {
                        Edit::AddItem {
                            field: "lock_ids".into(),
                            item,
                        }
                    } else {
                        Edit::RemoveItem {
                            field: "lock_ids".into(),
                            item,
                        }
                    }
                }
                4 => Edit::SetText {
                    field: "description".into(),
                    text: format!("valve {}", r.below(9)),
                },
                _ => delete_or(r, Edit::SetStatus("bogus".into())),
            },
            EntityType::Closeout => match r.below(4) {
                0..=1 => Edit::Tick {
                    field: "checklist".into(),
                    item,
                    ticked: r.below(4) > 0,
                },
                2 => Edit::SetFlag {
                    field: "completed".into(),
                    value: r.below(5) > 0,
                },
                _ => Edit::SetText {
                    field: "notes".into(),
                    text: format!("done {}", r.below(3)),
                },
            },
        };
        Write::Edit(id, edit)
    }

    fn write(&mut self, n: usize, write: Write) -> Outcome {
        let store = self.nodes[n].store.clone().expect("up");
        let (desc, result): (String, Result<Option<(EntityId, EntityType)>, Error>) = match write {
            Write::Permit(p) => {
                let id = p.id.expect("seeded id");
                let desc = format!("create permit {:?}", p.title);
                (
                    desc,
                    store
                        .create_permit(p)
                        .map(|_| Some((id, EntityType::Permit))),
                )
            }
            Write::Isolation(p) => {
                let id = p.id.expect("seeded id");
                let desc = format!("create isolation point of {}", self.name(p.permit_id));
                let r = store.create_isolation_point(p);
                (desc, r.map(|_| Some((id, EntityType::IsolationPoint))))
            }
            Write::Closeout(c) => {
                let id = c.id.expect("seeded id");
                let desc = format!("create closeout of {}", self.name(c.permit_id));
                (
                    desc,
                    store
                        .create_closeout(c)
                        .map(|_| Some((id, EntityType::Closeout))),
                )
            }
            Write::Edit(id, edit) => return self.edit(n, &store, id, edit),
            Write::Raw(id, k) => return self.raw(n, &store, id, k),
        };
        match result {
            Ok(Some((id, ty))) => {
                self.entities.push((id, ty));
                let heads = store.heads(id).map_err(|e| e.to_string())?;
                self.honest.extend(heads.into_iter().map(|h| (id, h)));
                self.stats.writes_ok += 1;
                let name = self.name(id);
                self.note(format!("n{n} {desc}: {name}"));
                self.broadcast(n, id, None);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                refused_as_expected(&e).map_err(|m| format!("n{n} {desc}: {m}"))?;
                self.stats.writes_refused += 1;
                self.note(format!("n{n} {desc}: refused ({e})"));
                Ok(())
            }
        }
    }

    fn edit(&mut self, n: usize, store: &Store, id: EntityId, edit: Edit) -> Outcome {
        let name = self.name(id);
        let desc = format!("n{n} {name} {edit:?}");
        let before = store.heads(id).ok();
        match store.edit(id, edit) {
            Ok(Some(hash)) => {
                self.honest.push((id, hash));
                self.stats.writes_ok += 1;
                self.note(desc);
                self.broadcast(n, id, None);
            }
            Ok(None) => {
                self.stats.writes_noop += 1;
                self.note(format!("{desc}: no change"));
            }
            Err(e) => {
                refused_as_expected(&e).map_err(|m| format!("{desc}: {m}"))?;
                if store.heads(id).ok() != before {
                    return Err(format!("{desc}: a refused edit changed the document"));
                }
                self.stats.writes_refused += 1;
                self.note(format!("{desc}: refused ({e})"));
            }
        }
        Ok(())
    }

    /// A raw Automerge change (mostly invalid), as a buggy client writes it.
    fn raw(&mut self, n: usize, store: &Store, id: EntityId, k: u8) -> Outcome {
        let name = self.name(id);
        let Ok(bytes) = store.save_doc(id) else {
            self.note(format!("n{n} raw write to {name}: not here"));
            return Ok(());
        };
        let ty = self
            .entities
            .iter()
            .find(|(e, _)| *e == id)
            .map(|(_, t)| *t)
            .expect("known");
        let mut am = Automerge::load(&bytes).map_err(|e| format!("load: {e}"))?;
        am.set_actor(ActorId::from(self.rng.bytes16()));
        let heads = am.get_heads();
        let status = [
            "active",
            "closed",
            "draft",
            "assigned",
            "bogus",
            "submitted",
            "deisolated",
            "verified",
        ][k as usize];
        let _ = am.transact::<_, _, AutomergeError>(|tx| {
            match (ty, k % 4) {
                (EntityType::Permit | EntityType::IsolationPoint, 0) => {
                    tx.put(ROOT, "status", status)?
                }
                (EntityType::Permit, 1) => {
                    let t = tx.put_object(ROOT, "status", ObjType::Text)?;
                    tx.splice_text(&t, 0, 0, status)?;
                }
                (EntityType::Permit, 2) => {
                    if let Some((_, list)) = tx.get(ROOT, "safety_checklist")? {
                        tx.delete(&list, "a")?;
                    }
                }
                (EntityType::Permit, _) => tx.put(ROOT, "type", "closeout")?,
                (EntityType::IsolationPoint, 1) => {
                    tx.put(ROOT, "permit_id", "00000000-0000-0000-0000-000000000009")?
                }
                (EntityType::IsolationPoint, 2) => tx.put(ROOT, "status", 7)?,
                (EntityType::IsolationPoint, _) => tx.delete(ROOT, "created_at")?,
                (EntityType::Closeout, 0) => tx.put(ROOT, "completed", "yes")?,
                (EntityType::Closeout, 1) => tx.put(ROOT, "completed", false)?,
                (EntityType::Closeout, 2) => {
                    if let Some((_, list)) = tx.get(ROOT, "checklist")? {
                        tx.put(&list, "a", 1)?;
                    }
                }
                (EntityType::Closeout, _) => {
                    tx.put_object(ROOT, "checklist", ObjType::Map)?;
                }
            }
            Ok(())
        });
        let changes = am.get_changes(&heads);
        if changes.is_empty() {
            return Ok(());
        }
        for c in &changes {
            self.foreign.insert(c.hash().to_string());
        }
        store
            .apply_changes(id, changes)
            .map_err(|e| format!("n{n} raw write to {name}: {e}"))?;
        self.stats.raw_writes += 1;
        self.note(format!("n{n} raw write to {name} (kind {k}, {status})"));
        self.broadcast(n, id, None);
        Ok(())
    }
}

/// A refusal the API documents (a bad request, an invalid edit, an unknown or
/// wrong entity); anything else is a failure.
fn refused_as_expected(e: &Error) -> Result<(), String> {
    match e {
        Error::Rejected(_)
        | Error::Interlock { .. }
        | Error::InvalidInput(_)
        | Error::UnknownEntity(_)
        | Error::WrongType { .. } => Ok(()),
        other => Err(format!("failed unexpectedly: {other}")),
    }
}

/// Mostly the next status of the workflow, sometimes any status.
fn permit_status(r: &mut super::rng::Rng, current: Option<&str>) -> String {
    use permitsync::model::PermitStatus;
    let from: Option<PermitStatus> = current.and_then(|s| s.parse().ok());
    let legal: Vec<PermitStatus> = match from {
        Some(f) => PermitStatus::ALL
            .into_iter()
            .filter(|t| f.can_transition_to(*t))
            .collect(),
        None => Vec::new(),
    };
    let to = if !legal.is_empty() && r.below(10) < 7 {
        *r.pick(&legal)
    } else {
        *r.pick(&PermitStatus::ALL)
    };
    to.as_str().to_string()
}

/// Mostly the next isolation status, sometimes any (going down is refused).
fn iso_status(r: &mut super::rng::Rng, current: Option<&str>) -> String {
    let rank = current
        .and_then(|s| s.parse::<IsolationStatus>().ok())
        .map(IsolationStatus::rank)
        .unwrap_or(0) as usize;
    let to = if r.below(10) < 7 {
        IsolationStatus::ALL[(rank + 1).min(3)]
    } else {
        *r.pick(&IsolationStatus::ALL)
    };
    to.as_str().to_string()
}

/// Rarely a delete (a true-wins tombstone), else `other`.
fn delete_or(r: &mut super::rng::Rng, other: Edit) -> Edit {
    if r.below(8) == 0 {
        Edit::Delete
    } else {
        other
    }
}
