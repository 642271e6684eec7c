//! Random operations on permits, isolation points and closeouts, shared by
//! the simulation (`tests/sim/ops.rs`) and the convergence property test
//! (`tests/convergence.rs`):
//! - [`random_edit`]: an edit through the API, valid or not (the API must
//!   refuse the invalid ones without writing anything), drawn from a [`Rng`];
//! - [`raw_write`]: a raw Automerge change, mostly invalid, the way a buggy or
//!   foreign client would write it (the view must reject it);
//! - the edits both build from their own draws ([`tick`], [`add_or_remove`],
//!   [`gas_reading`]) and the items they name ([`ITEMS`]).
//!
//! The simulation draws from its seeded [`Rng`], so a seed replays its run;
//! the convergence test draws with proptest (which shrinks a failing case and
//! replays the committed ones in `tests/convergence.proptest-regressions`),
//! then builds its edits and raw writes here.

use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, Change, ObjType, ReadDoc, ROOT};
use permitsync::model::{EntityType, IsolationStatus, PermitStatus};
use permitsync::write::{Edit, NewGasReading};

use super::rng::Rng;

/// The items of checklists, PPE lists and lock lists that operations name.
pub const ITEMS: [&str; 3] = ["a", "b", "c"];

/// The status texts of the raw writes, by kind.
const RAW_STATUSES: [&str; 8] = [
    "active",
    "closed",
    "draft",
    "assigned",
    "bogus",
    "submitted",
    "deisolated",
    "verified",
];

/// A random edit of an entity of type `ty` whose status is `status`: mostly
/// one the API accepts (the next status of the workflow, a tick, an item, a
/// gas reading, a text), now and then one it refuses (an edit meant for
/// another type, a status out of order, a bogus status).
pub fn random_edit(r: &mut Rng, ty: EntityType, status: Option<&str>) -> Edit {
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
    let item = ITEMS[r.below(3)].to_string();
    match ty {
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
            3..=4 => Edit::SetStatus(permit_status(r, status)),
            5..=6 => {
                let ticked = r.below(4) > 0;
                tick("safety_checklist", item, ticked)
            }
            7 => {
                let add = r.coin();
                add_or_remove("ppe_requirements", item, add)
            }
            8..=9 => {
                let ok = r.below(3) > 0;
                let id = uuid::Uuid::from_bytes(r.bytes16());
                let h2s = r.coin();
                gas_reading(Some(id), h2s, ok)
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
            0..=2 => Edit::SetStatus(iso_status(r, status)),
            3 => {
                let item = format!("L{}", r.below(3));
                let add = r.coin();
                add_or_remove("lock_ids", item, add)
            }
            4 => Edit::SetText {
                field: "description".into(),
                text: format!("valve {}", r.below(9)),
            },
            _ => delete_or(r, Edit::SetStatus("bogus".into())),
        },
        EntityType::Closeout => match r.below(4) {
            0..=1 => {
                let ticked = r.below(4) > 0;
                tick("checklist", item, ticked)
            }
            2 => Edit::SetFlag {
                field: "completed".into(),
                value: r.below(5) > 0,
            },
            _ => Edit::SetText {
                field: "notes".into(),
                text: format!("done {}", r.below(3)),
            },
        },
    }
}

/// Tick (or untick) `item` of the checklist `field`.
pub fn tick(field: &str, item: String, ticked: bool) -> Edit {
    Edit::Tick {
        field: field.into(),
        item,
        ticked,
    }
}

/// Add `item` to the set `field`, or remove it.
pub fn add_or_remove(field: &str, item: String, add: bool) -> Edit {
    if add {
        Edit::AddItem {
            field: field.into(),
            item,
        }
    } else {
        Edit::RemoveItem {
            field: field.into(),
            item,
        }
    }
}

/// A gas reading of H2S or CO, within its limits (`ok`) or over them; a
/// fresh id when `id` is `None`.
pub fn gas_reading(id: Option<uuid::Uuid>, h2s: bool, ok: bool) -> Edit {
    Edit::AddGasReading(NewGasReading {
        id,
        gas: if h2s { "H2S" } else { "CO" }.into(),
        value: if ok { 3.0 } else { 12.0 },
        unit: "ppm".into(),
        min: 0.0,
        max: 10.0,
        taken_at: None,
    })
}

/// Makes raw write `k` (`0..8`) to `am`, a document of type `ty`, with `am`'s
/// actor, the way a buggy or foreign client would write it: a status as
/// plain or as text, a deleted checklist item, a changed type or parent, a
/// number where a tick goes, and so on; nearly all of them invalid. Returns
/// its changes (none when the write found nothing to change) and the status
/// text it used.
pub fn raw_write(am: &mut Automerge, ty: EntityType, k: u8) -> (Vec<Change>, &'static str) {
    let heads = am.get_heads();
    let status = RAW_STATUSES[k as usize];
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
    (am.get_changes(&heads), status)
}

/// Mostly the next status of the workflow, sometimes any status.
fn permit_status(r: &mut Rng, current: Option<&str>) -> String {
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
fn iso_status(r: &mut Rng, current: Option<&str>) -> String {
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
fn delete_or(r: &mut Rng, other: Edit) -> Edit {
    if r.below(8) == 0 {
        Edit::Delete
    } else {
        other
    }
}
