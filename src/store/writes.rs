//! Local writes: creating entities, validated edits, and the one-document
//! transactions the classic API and resolutions are built on. Each write is
//! checked before anything is stored, persisted in one atomic batch, and
//! returns once durable.

use automerge::ChangeHash;

use super::backend::BatchOp;
use super::cost;
use super::failure::storage;
use super::store::Store;
use crate::document::EntityDoc;
use crate::error::{Error, Result};
use crate::model::{EntityId, EntityType};
use crate::write::{self, Edit, NewCloseout, NewIsolationPoint, NewPermit, WriteCtx};

impl Store {
    /// Create an entity written with `ctx`, with `extra` metadata keys in the
    /// same atomic batch. In a tenant's id space the entity is stored under
    /// the internal id of `id` (see `id_space.rs`); it is created under that
    /// id, and the id it returns, as the client knows it.
    pub(crate) fn create_with(
        &self,
        new: write::NewEntityRef<'_>,
        id: Option<EntityId>,
        ctx: &WriteCtx,
        extra: Vec<BatchOp>,
    ) -> Result<EntityId> {
        let id = id.unwrap_or_else(EntityId::new_random);
        self.inner
            .opts
            .cost
            .check_strings(cost::new_entity_strings(&new))?;
        if let Some(permit) = new.permit_id() {
            match self.summary(permit)? {
                Some(s) if s.entity_type == EntityType::Permit => {}
                Some(s) => {
                    return Err(Error::WrongType {
                        id: permit,
                        expected: EntityType::Permit,
                        actual: s.entity_type,
                    })
                }
                None => return Err(Error::UnknownEntity(permit)),
            }
        }
        let internal = self.internal(id)?;
        let slot = self.slot(internal)?;
        let mut g = self.lock_loaded(internal, &slot)?;
        if g.doc.is_some() {
            if self.summary_at(internal)?.is_some() {
                return Err(Error::InvalidInput(format!("entity {id} already exists")));
            }
            // a document without a summary is what a torn first write leaves:
            // never acknowledged, so the new entity replaces it
            tracing::warn!(%id, "replacing the remains of an unacknowledged create");
        }
        let mut ctx = ctx.clone();
        if ctx.signer.is_none() {
            ctx.signer = self.signer_for(internal)?;
        }
        let mut doc = write::create_doc(id, self.inner.actor.clone(), &new, &ctx)?;
        self.judge(internal, &mut doc)?;
        g.doc = Some(doc);
        let written = self.persist(internal, &mut g, &[], extra)?;
        drop(g);
        self.ensure_durable(written.seq)?;
        Ok(id)
    }

    /// Create a permit (status `draft`). Returns its id once durable.
    pub fn create_permit(&self, p: NewPermit) -> Result<EntityId> {
        self.create_with(
            write::NewEntityRef::Permit(&p),
            p.id,
            &self.ctx(),
            Vec::new(),
        )
    }

    /// Create an isolation point of an existing permit (status `assigned`).
    pub fn create_isolation_point(&self, p: NewIsolationPoint) -> Result<EntityId> {
        self.create_with(
            write::NewEntityRef::IsolationPoint(&p),
            p.id,
            &self.ctx(),
            Vec::new(),
        )
    }

    /// Create the closeout of an existing permit.
    pub fn create_closeout(&self, c: NewCloseout) -> Result<EntityId> {
        self.create_with(
            write::NewEntityRef::Closeout(&c),
            c.id,
            &self.ctx(),
            Vec::new(),
        )
    }

    /// Apply a validated edit. Returns the new change's hash once it is durable,
    /// or `None` when the edit changed nothing. An edit the policies would reject
    /// returns [`Error::Rejected`] and writes nothing.
    pub fn edit(&self, id: EntityId, edit: Edit) -> Result<Option<ChangeHash>> {
        self.edit_all(id, std::slice::from_ref(&edit))
    }

    /// Apply several edits as one change: all of them or none.
    pub fn edit_all(&self, id: EntityId, edits: &[Edit]) -> Result<Option<ChangeHash>> {
        self.check_edits(edits)?;
        let internal = self.internal(id)?;
        self.check_interlocks(internal, edits)?;
        let slot = self.slot(internal)?;
        let mut g = self.lock_loaded(internal, &slot)?;
        let ctx = self.ctx_for(internal)?;
        let Some(doc) = g.doc.as_mut() else {
            return Err(Error::UnknownEntity(id));
        };
        let before = doc.heads();
        match write::apply_edits(doc, edits, &ctx) {
            Ok(Some(hash)) => {
                let written = self.persist(internal, &mut g, &before, Vec::new())?;
                drop(g);
                self.ensure_durable(written.seq)?;
                Ok(Some(hash))
            }
            Ok(None) => {
                // nothing new, but an earlier write may still await its flush
                self.ensure_durable(g.last_seq)?;
                Ok(None)
            }
            Err(e) => {
                if doc.heads() != before {
                    // committed in memory but refused: forget it, reload from storage
                    g.forget();
                }
                Err(e)
            }
        }
    }

    /// One durable write of document `id`: `f` changes the document (with the
    /// write context of this handle, carrying `note`) and returns its result
    /// plus metadata keys to write in the same atomic batch. When `f` fails,
    /// nothing is stored and the in-memory document is dropped if `f` had
    /// already changed it. When `f` changes nothing, its keys are still
    /// written, durably. On a [`Store::deferring`] handle the write is
    /// durable once the handle is settled (several writes then share one
    /// flush); nothing leaves the node before that anyway (see
    /// [`Store::with_durable_doc`]).
    pub(crate) fn transact<T>(
        &self,
        id: EntityId,
        note: Option<write::ChangeNote>,
        f: impl FnOnce(&mut EntityDoc, &WriteCtx) -> Result<(T, Vec<BatchOp>)>,
    ) -> Result<T> {
        let internal = self.internal(id)?;
        let slot = self.slot(internal)?;
        let mut g = self.lock_loaded(internal, &slot)?;
        let mut ctx = self.ctx_for(internal)?;
        ctx.note = note;
        let Some(doc) = g.doc.as_mut() else {
            return Err(Error::UnknownEntity(id));
        };
        let before = doc.heads();
        match f(doc, &ctx) {
            Ok((value, extra)) => {
                if doc.heads() != before {
                    let written = self.persist(internal, &mut g, &before, extra)?;
                    drop(g);
                    self.ensure_durable(written.seq)?;
                } else {
                    let last = g.last_seq;
                    drop(g);
                    if extra.is_empty() {
                        self.ensure_durable(last)?;
                    } else {
                        self.inner.backend.apply(extra).map_err(storage)?;
                        self.wait_durable()?;
                    }
                }
                Ok(value)
            }
            Err(e) => {
                if doc.heads() != before {
                    g.forget();
                }
                Err(e)
            }
        }
    }
}
