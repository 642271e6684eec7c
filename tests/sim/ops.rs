//! Local writes: through the API (valid ones, and invalid ones the API must
//! refuse without writing anything) and, sometimes, raw Automerge changes the
//! way a buggy or foreign client would write them (the view must reject them).
//! The edits and raw writes are the shared random operations of
//! `tests/support/ops.rs`; creating entities and keeping track of them is the
//! simulation's own.

use automerge::{ActorId, Automerge};
use permitsync::model::{EntityId, EntityType};
use permitsync::store::Store;
use permitsync::write::{Edit, NewCloseout, NewIsolationPoint, NewPermit};
use permitsync::Error;

use super::world::{Outcome, World};
use crate::support::ops;

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
        let store = self.nodes[n].store.clone().expect("up");
        let status = store
            .view(id)
            .ok()
            .and_then(|v| v.str_field("status").map(str::to_string));
        let edit = ops::random_edit(r, ty, status.as_deref());
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
        let (changes, status) = ops::raw_write(&mut am, ty, k);
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
