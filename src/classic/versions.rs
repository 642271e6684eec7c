//! Entity versions. An entity's version is the number of changes its
//! document holds: it grows with every change and is the same on every
//! replica holding the same changes. To judge a client's edit against the
//! version it saw, the node keeps the heads of every version it reported to
//! a classic client.

use automerge::ChangeHash;

use crate::error::Result;
use crate::model::EntityId;
use crate::store::{keys, BatchOp, Store};

/// The record of version `version` of `id` at `heads`. Versions are
/// recorded under the id the store keeps the entity under (in the handle's
/// tenant's id space).
pub fn version_record(
    store: &Store,
    id: EntityId,
    version: u64,
    heads: &[ChangeHash],
) -> Result<BatchOp> {
    let bytes: Vec<u8> = heads.iter().flat_map(|h| h.0).collect();
    Ok((keys::version(store.internal(id)?, version), Some(bytes)))
}

/// The heads of version `version` of `id`: the recorded version, or the
/// newest recorded one before it (a client can only know versions this node
/// reported, so that happens only when a record was lost in a crash; an
/// older base makes more edits count as stale, never fewer). Empty heads
/// when nothing is recorded.
pub fn heads_at_version(store: &Store, id: EntityId, version: u64) -> Result<Vec<ChangeHash>> {
    let id = store.internal(id)?;
    if let Some(bytes) = store.get_record(&keys::version(id, version))? {
        return Ok(decode_heads(&bytes));
    }
    let prefix = keys::version_prefix(id);
    let mut best: Option<(u64, Vec<u8>)> = None;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store.scan_records(&prefix, after.as_deref(), 512)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (k, v) in page {
            let Some(seq) = keys::trailing_u64(&k) else {
                continue;
            };
            if seq <= version && best.as_ref().is_none_or(|(b, _)| seq > *b) {
                best = Some((seq, v));
            }
        }
    }
    Ok(best
        .map(|(_, bytes)| decode_heads(&bytes))
        .unwrap_or_default())
}

fn decode_heads(bytes: &[u8]) -> Vec<ChangeHash> {
    bytes
        .chunks_exact(32)
        .filter_map(|c| ChangeHash::try_from(c).ok())
        .collect()
}

/// Whether version `version` of `id` is recorded already.
pub fn is_recorded(store: &Store, id: EntityId, version: u64) -> Result<bool> {
    Ok(store
        .get_record(&keys::version(store.internal(id)?, version))?
        .is_some())
}
