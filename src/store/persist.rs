//! Writing a changed document: a chunk of what changed (or a compacted save
//! every few chunks), its summary, its feed entry and any records of the
//! same write, in one atomic batch; then durable before anything is
//! acknowledged.

use automerge::{ChangeHash, ReadDoc};

use super::backend::BatchOp;
use super::cache::Slot;
use super::failure::storage;
use super::feed::Appended;
use super::keys;
use super::options::DEFAULT_TENANT;
use super::store::Store;
use super::summary::Summary;
use crate::document::EntityDoc;
use crate::error::{Error, Result};
use crate::model::EntityId;

/// How many times a write merges what another relay wrote meanwhile and
/// tries again before it fails.
const MERGE_ATTEMPTS: usize = 16;

/// What [`Store::persist`] wrote.
pub(super) struct Written {
    /// The document's new summary.
    pub(super) summary: Summary,
    /// The write's feed position.
    pub(super) seq: u64,
}

impl Store {
    /// Persist the document in `slot` (stored under the internal id `id`)
    /// after it moved on from `before`.
    /// `extra` holds metadata keys written in the same atomic batch (e.g. the
    /// classic API's idempotency record of the write). Returns the document's
    /// new summary and the write's feed position, which the caller makes
    /// durable ([`Store::ensure_durable`]) before it acknowledges anything,
    /// preferably after it let go of the document's lock.
    ///
    /// The summary comes from the history's headline (status, title, counts),
    /// not from a rendered view: a write costs what it changed, not what the
    /// whole document holds.
    pub(super) fn persist(
        &self,
        id: EntityId,
        slot: &mut Slot,
        before: &[ChangeHash],
        extra: Vec<BatchOp>,
    ) -> Result<Written> {
        let mut before = before.to_vec();
        for _ in 0..MERGE_ATTEMPTS {
            if let Some(written) = self.persist_once(id, slot, &before, extra.clone())? {
                return Ok(written);
            }
            // another relay wrote the document since this copy was read:
            // take what storage holds, add this copy's changes, write again
            before = self.merge_stored(id, slot)?;
            if let Some(written) = self.already_stored(id, slot, &before, &extra)? {
                return Ok(written);
            }
        }
        slot.forget();
        Err(Error::storage(format!(
            "document {id} kept changing in storage (other relays wrote it) through \
             {MERGE_ATTEMPTS} attempts; nothing of this write was stored"
        )))
    }

    /// Replace the copy in `slot` by the one storage holds, with the changes
    /// of the copy that storage lacks applied to it (as from any peer).
    /// Returns the heads storage holds: what is written next is what lies
    /// beyond them.
    fn merge_stored(&self, id: EntityId, slot: &mut Slot) -> Result<Vec<ChangeHash>> {
        let mine = slot.doc.take();
        slot.forget();
        slot.ensure_loaded(
            id,
            || self.external(id),
            self.inner.backend.as_ref(),
            &self.inner.actor,
        )?;
        let stored = slot.doc.as_ref().map(|d| d.heads()).unwrap_or_default();
        match (slot.doc.as_mut(), mine) {
            (Some(doc), Some(mine)) => {
                let known: Vec<ChangeHash> = stored
                    .iter()
                    .filter(|h| mine.has_change(h))
                    .copied()
                    .collect();
                let lacking: Vec<_> = mine
                    .changes_since(&known)
                    .into_iter()
                    .filter(|c| !doc.has_change(&c.hash()))
                    .collect();
                tracing::debug!(%id, changes = lacking.len(),
                    "document written by another relay meanwhile: merged");
                if let Err(e) = doc.apply_changes(lacking) {
                    slot.forget();
                    return Err(e.into());
                }
            }
            (None, mine) => slot.doc = mine,
            (Some(_), None) => {}
        }
        Ok(stored)
    }

    /// After a merge: when storage held every change of the copy already
    /// (another relay stored the same changes), nothing of the document is
    /// written again; only `extra`, and the stored summary and position are
    /// what the write leads to.
    fn already_stored(
        &self,
        id: EntityId,
        slot: &Slot,
        stored: &[ChangeHash],
        extra: &[BatchOp],
    ) -> Result<Option<Written>> {
        let (Some(doc), Some(seq)) = (slot.doc.as_ref(), slot.stored_seq) else {
            return Ok(None);
        };
        if stored.is_empty() || doc.heads() != stored {
            return Ok(None);
        }
        let Some(summary) = self.summary_at(id)? else {
            return Ok(None);
        };
        if !extra.is_empty() {
            self.inner.backend.apply(extra.to_vec()).map_err(storage)?;
        }
        tracing::debug!(%id, "every change of the write was stored by another relay already");
        Ok(Some(Written { summary, seq }))
    }

    /// One attempt of [`Store::persist`]: `None` when another relay wrote
    /// the document since its copy was read (nothing written).
    fn persist_once(
        &self,
        id: EntityId,
        slot: &mut Slot,
        before: &[ChangeHash],
        extra: Vec<BatchOp>,
    ) -> Result<Option<Written>> {
        let inner = &self.inner;
        let compact_after = inner.opts.compact_after_chunks.max(1);
        let unsaved = slot
            .doc
            .as_mut()
            .map(EntityDoc::take_unsaved)
            .unwrap_or_default();
        let mut extra = extra;
        extra.extend(self.attestation_records(id, &unsaved)?);
        let Some(doc) = slot.doc.as_ref() else {
            return Err(Error::UnknownEntity(id));
        };
        if let Err(e) = inner
            .opts
            .cost
            .check_document(id, doc.doc().stats().num_ops)
        {
            // over the limit in memory only: forget it, nothing is stored
            slot.forget();
            return Err(e);
        }
        let ty = doc.entity_type().ok_or(Error::UntypedDocument(doc.id()))?;
        let external = doc.id();
        let headline = doc.headline();
        let changes = doc.history().change_count();
        let mut batch: Vec<BatchOp> = extra;
        let compact = before.is_empty() || slot.chunks + 1 >= compact_after;
        let written;
        if compact {
            let saved = doc.save();
            written = saved.len();
            batch.push((keys::doc(id), Some(saved)));
            for (k, _) in inner
                .backend
                .scan_prefix(&keys::chunk_prefix(id), None, usize::MAX)
                .map_err(storage)?
            {
                batch.push((k, None));
            }
        } else {
            let chunk = doc.save_after(before);
            written = chunk.len();
            batch.push((keys::chunk(id, slot.next_chunk), Some(chunk)));
        }
        let tenant = self
            .owner_at(id)?
            .unwrap_or_else(|| DEFAULT_TENANT.to_string());
        // the permit as the child's tenant knows it, in that tenant's id space
        let permit = match headline.permit_id {
            Some(permit) if self.tenant.is_some() => Some(self.internal_for(&tenant, permit)?),
            other => other,
        };
        let mut summary = None;
        let appended = inner.feed.append(
            inner.backend.as_ref(),
            &inner.durable,
            (id, external),
            &tenant,
            slot.stored_seq,
            batch,
            |seq| {
                let s = Summary::of(external, ty, &headline, changes, seq);
                let mut records = Vec::new();
                if let Some(permit) = permit {
                    records.push((keys::child(permit, id), Some(vec![ty.code()])));
                }
                let json = serde_json::to_vec(&s).map_err(|e| Error::storage(e.to_string()))?;
                records.push((keys::entity(id), Some(json)));
                summary = Some(s);
                Ok(records)
            },
        );
        let seq = match appended {
            Ok(Appended::At(seq)) => seq,
            Ok(Appended::Moved) => return Ok(None),
            Err(e) => {
                // the document in memory is ahead of storage: reload it next time
                slot.forget();
                return Err(e);
            }
        };
        slot.last_seq = seq;
        slot.stored_seq = Some(seq);
        inner.own_write(seq)?;
        if compact {
            slot.chunks = 0;
            slot.stored_bytes = written;
        } else {
            slot.stored_bytes += written;
            slot.chunks += 1;
            slot.next_chunk += 1;
        }
        let summary = summary.ok_or(Error::UnknownEntity(id))?;
        Ok(Some(Written { summary, seq }))
    }
}
