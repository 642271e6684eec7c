//! Creating entities: the first change of each document writes every field.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutomergeError, ObjType, ScalarValue, ROOT};

use super::{put_text, WriteCtx};
use crate::document::EntityDoc;
use crate::error::{Error, Result};
use crate::model::{EntityId, EntityType, IsolationStatus, PermitStatus};

/// A new permit (status `draft`).
#[derive(Clone, Debug, Default)]
pub struct NewPermit {
    /// Id to use; a fresh UUID when `None`.
    pub id: Option<EntityId>,
    /// Title (required).
    pub title: String,
    /// Location.
    pub location: String,
    /// Work type, e.g. `hot_work`.
    pub work_type: String,
    /// Description (Automerge Text).
    pub description: String,
    /// PPE items.
    pub ppe_requirements: Vec<String>,
    /// Safety checklist items, all unticked.
    pub safety_checklist: Vec<String>,
}

/// A new isolation point (status `assigned`).
#[derive(Clone, Debug)]
pub struct NewIsolationPoint {
    /// Id to use; a fresh UUID when `None`.
    pub id: Option<EntityId>,
    /// The permit it belongs to (must exist in the store).
    pub permit_id: EntityId,
    /// Description (Automerge Text).
    pub description: String,
    /// Lock ids applied.
    pub lock_ids: Vec<String>,
}

/// A new closeout (not completed).
#[derive(Clone, Debug)]
pub struct NewCloseout {
    /// Id to use; a fresh UUID when `None`.
    pub id: Option<EntityId>,
    /// The permit it closes out (must exist in the store).
    pub permit_id: EntityId,
    /// Checklist items, all unticked.
    pub checklist: Vec<String>,
    /// Notes (Automerge Text).
    pub notes: String,
}

/// What to create.
pub(crate) enum NewEntityRef<'a> {
    Permit(&'a NewPermit),
    IsolationPoint(&'a NewIsolationPoint),
    Closeout(&'a NewCloseout),
}

impl NewEntityRef<'_> {
    /// The permit a child entity belongs to.
    pub(crate) fn permit_id(&self) -> Option<EntityId> {
        match self {
            NewEntityRef::Permit(_) => None,
            NewEntityRef::IsolationPoint(i) => Some(i.permit_id),
            NewEntityRef::Closeout(c) => Some(c.permit_id),
        }
    }

    pub(crate) fn entity_type(&self) -> EntityType {
        match self {
            NewEntityRef::Permit(_) => EntityType::Permit,
            NewEntityRef::IsolationPoint(_) => EntityType::IsolationPoint,
            NewEntityRef::Closeout(_) => EntityType::Closeout,
        }
    }
}

fn items(list: &[String]) -> Result<Vec<&str>> {
    let mut out: Vec<&str> = Vec::new();
    for i in list {
        if i.trim().is_empty() {
            return Err(Error::InvalidInput("list items must not be empty".into()));
        }
        if !out.contains(&i.as_str()) {
            out.push(i);
        }
    }
    Ok(out)
}

/// Build the document of a new entity: one change writing every field.
pub(crate) fn create_doc(
    id: EntityId,
    actor: ActorId,
    new: &NewEntityRef<'_>,
    ctx: &WriteCtx,
) -> Result<EntityDoc> {
    if let NewEntityRef::Permit(p) = new {
        if p.title.trim().is_empty() {
            return Err(Error::InvalidInput("a permit needs a title".into()));
        }
    }
    let mut doc = EntityDoc::new(id, actor);
    let ty = new.entity_type();
    let opts = CommitOptions::default()
        .with_time(ctx.now_ms / 1000)
        .with_message(ctx.message());
    let mut lists: Vec<(&str, Vec<&str>, bool)> = Vec::new();
    match new {
        NewEntityRef::Permit(p) => {
            lists.push(("ppe_requirements", items(&p.ppe_requirements)?, true));
            lists.push(("safety_checklist", items(&p.safety_checklist)?, false));
        }
        NewEntityRef::IsolationPoint(i) => lists.push(("lock_ids", items(&i.lock_ids)?, true)),
        NewEntityRef::Closeout(c) => lists.push(("checklist", items(&c.checklist)?, false)),
    }
    doc.doc_mut()
        .transact_with::<_, _, AutomergeError, _>(
            |_| opts,
            |tx| {
                put_text(tx, ROOT, "type", ty.as_str())?;
                tx.put(ROOT, "created_at", ScalarValue::Timestamp(ctx.now_ms))?;
                put_text(tx, ROOT, "created_by", ctx.device.as_str())?;
                tx.put(ROOT, "deleted", false)?;
                let text =
                    |tx: &mut automerge::transaction::Transaction<'_>, field: &str, s: &str| {
                        let t = tx.put_object(ROOT, field, ObjType::Text)?;
                        tx.splice_text(&t, 0, 0, s)
                    };
                match new {
                    NewEntityRef::Permit(p) => {
                        put_text(tx, ROOT, "title", p.title.as_str())?;
                        put_text(tx, ROOT, "location", p.location.as_str())?;
                        put_text(tx, ROOT, "work_type", p.work_type.as_str())?;
                        text(tx, "description", &p.description)?;
                        put_text(tx, ROOT, "status", PermitStatus::Draft.as_str())?;
                        tx.put_object(ROOT, "gas_readings", ObjType::Map)?;
                        tx.put_object(ROOT, "photos", ObjType::Map)?;
                    }
                    NewEntityRef::IsolationPoint(i) => {
                        put_text(tx, ROOT, "permit_id", &i.permit_id.to_string())?;
                        text(tx, "description", &i.description)?;
                        put_text(tx, ROOT, "status", IsolationStatus::Assigned.as_str())?;
                    }
                    NewEntityRef::Closeout(c) => {
                        put_text(tx, ROOT, "permit_id", &c.permit_id.to_string())?;
                        tx.put(ROOT, "completed", false)?;
                        text(tx, "notes", &c.notes)?;
                    }
                }
                for (field, list, set) in &lists {
                    let obj = tx.put_object(ROOT, *field, ObjType::Map)?;
                    for item in list {
                        // set-merge items are `true`; checklist items start unticked
                        tx.put(&obj, *item, *set)?;
                    }
                }
                Ok(())
            },
        )
        .map_err(|f| Error::Automerge(f.error))?;
    if let (Some(signer), [hash]) = (&ctx.signer, doc.heads().as_slice()) {
        doc.attest_with(signer, [*hash]);
    }
    doc.catch_up(&[]);
    if let Some(r) = doc.history().rejected.first() {
        return Err(Error::Rejected(Box::new(r.1.clone())));
    }
    Ok(doc)
}
