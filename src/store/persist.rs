//! Writing a changed document: a chunk of what changed (or a compacted save
//! every few chunks), its summary, its feed entry and any records of the
//! same write, in one atomic batch; then durable before anything is
//! acknowledged.

use automerge::{ChangeHash, ReadDoc};

use super::backend::BatchOp;
use super::cache::Slot;
use super::failure::storage;
use super::keys;
use super::options::DEFAULT_TENANT;
use super::store::Store;
use super::summary::Summary;
use crate::document::EntityDoc;
use crate::error::{Error, Result};
use crate::model::EntityId;

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
            Ok(seq) => seq,
            Err(e) => {
                // the document in memory is ahead of storage: reload it next time
                slot.forget();
                return Err(e);
            }
        };
        slot.last_seq = seq;
        if compact {
            slot.chunks = 0;
            slot.stored_bytes = written;
        } else {
            slot.stored_bytes += written;
            slot.chunks += 1;
            slot.next_chunk += 1;
        }
        let summary = summary.ok_or(Error::UnknownEntity(id))?;
        Ok(Written { summary, seq })
    }
}
