//! Reading the store: summaries and listings (no document load), views,
//! heads and changes of loaded documents, and the change feeds.

use automerge::{Change, ChangeHash};

use super::failure::storage;
use super::keys;
use super::store::{Delta, Store};
use super::summary::Summary;
use crate::error::{Error, Result};
use crate::model::{EntityId, EntityType, IsolationStatus};
use crate::view::{CrossRefs, View};

impl Store {
    /// The rejections of the view caused by the given changes of document `id`.
    pub fn rejections_in(
        &self,
        id: EntityId,
        changes: &[ChangeHash],
    ) -> Result<Vec<crate::view::Rejection>> {
        self.with_doc(id, |d| {
            changes
                .iter()
                .flat_map(|h| d.history().rejections_in(h))
                .collect()
        })
    }

    /// The summary of an entity, without loading its document.
    pub fn summary(&self, id: EntityId) -> Result<Option<Summary>> {
        self.summary_at(self.internal(id)?)
    }

    /// The summary of the document stored under `id`.
    pub(super) fn summary_at(&self, id: EntityId) -> Result<Option<Summary>> {
        let Some(bytes) = self.inner.backend.get(&keys::entity(id)).map_err(storage)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::storage(format!("corrupt summary of {id}: {e}")))
    }

    /// Whether the store holds entity `id`.
    pub fn contains(&self, id: EntityId) -> Result<bool> {
        self.contains_at(self.internal(id)?)
    }

    /// Whether the store holds a document under `id`.
    pub(super) fn contains_at(&self, id: EntityId) -> Result<bool> {
        // the summary's presence, without parsing it
        Ok(self
            .inner
            .backend
            .get(&keys::entity(id))
            .map_err(storage)?
            .is_some())
    }

    /// Every summary of the store (every tenant's), in internal id order.
    pub fn summaries(&self) -> Result<Vec<Summary>> {
        Ok(self
            .stored_summaries()?
            .into_iter()
            .map(|(_, s)| s)
            .collect())
    }

    /// Every summary with the internal id it is stored under.
    fn stored_summaries(&self) -> Result<Vec<(EntityId, Summary)>> {
        self.inner
            .backend
            .scan_prefix(keys::ENTITY, None, usize::MAX)
            .map_err(storage)?
            .into_iter()
            .filter_map(|(k, v)| Some((keys::trailing_id(&k)?, v)))
            .map(|(id, v)| {
                serde_json::from_slice(&v)
                    .map(|s| (id, s))
                    .map_err(|e| Error::storage(format!("corrupt summary: {e}")))
            })
            .collect()
    }

    /// Summaries filtered by type and status; deleted entities only when asked.
    pub fn list(
        &self,
        ty: Option<EntityType>,
        status: Option<&str>,
        include_deleted: bool,
    ) -> Result<Vec<Summary>> {
        Ok(self
            .summaries()?
            .into_iter()
            .filter(|s| ty.is_none_or(|t| s.entity_type == t))
            .filter(|s| status.is_none_or(|st| s.status.as_deref() == Some(st)))
            .filter(|s| include_deleted || !s.deleted)
            .collect())
    }

    /// The ids of a permit's isolation points and closeouts.
    pub fn children(&self, permit: EntityId) -> Result<Vec<EntityId>> {
        self.children_at(self.internal(permit)?)?
            .into_iter()
            .map(|child| self.external(child))
            .collect()
    }

    /// The internal ids of the children indexed under the permit stored
    /// under `permit`.
    pub(super) fn children_at(&self, permit: EntityId) -> Result<Vec<EntityId>> {
        Ok(self
            .inner
            .backend
            .scan_prefix(&keys::children_prefix(permit), None, usize::MAX)
            .map_err(storage)?
            .iter()
            .filter_map(|(k, _)| keys::trailing_id(k))
            .collect())
    }

    /// What the cross-document rules of a permit need.
    pub fn cross_refs(&self, permit: EntityId) -> Result<CrossRefs> {
        self.cross_refs_at(self.internal(permit)?)
    }

    /// [`Store::cross_refs`] of the permit stored under `permit`.
    fn cross_refs_at(&self, permit: EntityId) -> Result<CrossRefs> {
        let mut refs = CrossRefs::default();
        let owner = self.owner_at(permit)?;
        for child in self.children_at(permit)? {
            let Some(s) = self.summary_at(child)? else {
                continue;
            };
            // a child another tenant uploaded does not count for this permit
            if s.deleted || self.owner_at(child)? != owner {
                continue;
            }
            match s.entity_type {
                EntityType::IsolationPoint => refs.isolation_points.push((
                    s.id,
                    s.status
                        .as_deref()
                        .and_then(|st| st.parse::<IsolationStatus>().ok()),
                )),
                EntityType::Closeout => refs.closeouts.push((s.id, s.completed)),
                EntityType::Permit => {}
            }
        }
        Ok(refs)
    }

    /// The policy view of an entity.
    pub fn view(&self, id: EntityId) -> Result<View> {
        let internal = self.internal(id)?;
        self.view_at(internal)
            .map_err(|e| super::failure::renamed(e, internal, id))
    }

    /// The view of the document stored under `id`.
    fn view_at(&self, id: EntityId) -> Result<View> {
        let refs = match self.summary_at(id)? {
            Some(s) if s.entity_type == EntityType::Permit => self.cross_refs_at(id)?,
            Some(_) => CrossRefs::default(),
            None => return Err(Error::UnknownEntity(id)),
        };
        self.with_doc_at(id, |doc| doc.view(&refs))
    }

    /// The views of entities with open conflicts or rejected operations (of
    /// every tenant: a tool's view of the whole store).
    pub fn conflicts(&self) -> Result<Vec<View>> {
        let mut out = Vec::new();
        for (id, s) in self.stored_summaries()? {
            if s.conflicts > 0 || s.rejected > 0 {
                out.push(self.view_at(id)?);
            }
        }
        Ok(out)
    }

    /// Whether document `id` holds every one of `hashes` (false for an unknown document).
    pub fn has_changes(&self, id: EntityId, hashes: &[ChangeHash]) -> Result<bool> {
        match self.with_doc(id, |d| hashes.iter().all(|h| d.has_change(h))) {
            Err(Error::UnknownEntity(_)) => Ok(false),
            other => other,
        }
    }

    /// The current heads of document `id`.
    pub fn heads(&self, id: EntityId) -> Result<Vec<ChangeHash>> {
        self.with_doc(id, |d| d.heads())
    }

    /// The changes of document `id` not in the past of `heads` (all when empty).
    pub fn changes_since(&self, id: EntityId, heads: &[ChangeHash]) -> Result<Vec<Change>> {
        self.with_durable_doc(id, |d| d.changes_since(heads))
    }

    /// What a peer that holds `known` (all of it, when empty) lacks of
    /// document `id`: the changes after `known` and the heads they lead to,
    /// read together. `None` when the document lacks some of `known`.
    pub fn delta_since(&self, id: EntityId, known: &[ChangeHash]) -> Result<Option<Delta>> {
        self.with_durable_doc(id, |d| {
            if known.iter().all(|h| d.has_change(h)) {
                Some(Delta {
                    changes: d.changes_since(known),
                    heads: d.heads(),
                })
            } else {
                None
            }
        })
    }

    /// The compacted bytes of document `id`.
    pub fn save_doc(&self, id: EntityId) -> Result<Vec<u8>> {
        self.with_durable_doc(id, |d| d.save())
    }

    /// Documents changed after feed position `cursor`, oldest first, at most
    /// `limit`; only durable writes are listed. The store's feed names every
    /// tenant's documents by their internal ids (ids as a handle without a
    /// tenant takes them). Each document appears once, at
    /// its latest change. Returns `(seq, id)` pairs; the last seq is the next cursor.
    pub fn feed_since(&self, cursor: u64, limit: usize) -> Result<Vec<(u64, EntityId)>> {
        let durable = self.inner.durable.durable_seq();
        let after = keys::feed(cursor);
        Ok(self
            .inner
            .backend
            .scan_prefix(keys::FEED, Some(&after), limit)
            .map_err(storage)?
            .into_iter()
            .filter_map(|(k, v)| Some((keys::feed_seq(&k)?, keys::id_value(&v)?)))
            .filter(|(seq, _)| *seq <= durable)
            .collect())
    }

    /// Like [`Store::feed_since`], for the documents of one tenant, named by
    /// the tenant's own (external) ids.
    pub fn tenant_feed_since(
        &self,
        tenant: &str,
        cursor: u64,
        limit: usize,
    ) -> Result<Vec<(u64, EntityId)>> {
        let durable = self.inner.durable.durable_seq();
        let prefix = keys::tenant_feed_prefix(tenant);
        let after = keys::tenant_feed(tenant, cursor);
        Ok(self
            .inner
            .backend
            .scan_prefix(&prefix, Some(&after), limit)
            .map_err(storage)?
            .into_iter()
            .filter_map(|(k, v)| Some((keys::feed_seq(&k)?, keys::id_value(&v)?)))
            .filter(|(seq, _)| *seq <= durable)
            .collect())
    }
}
