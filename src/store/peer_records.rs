//! What a store keeps about each peer it syncs with: the persisted sync
//! state of every document, and named cursors (how far a feed was read).

use super::failure::storage;
use super::keys;
use super::store::Store;
use crate::error::Result;
use crate::model::EntityId;

impl Store {
    /// The persisted sync state of document `id` with `peer`.
    pub fn load_sync_state(&self, peer: &str, id: EntityId) -> Result<Option<Vec<u8>>> {
        self.inner
            .backend
            .get(&keys::sync_state(peer, self.internal(id)?))
            .map_err(storage)
    }

    /// Persist the sync states of documents with `peer`, in one batch (made
    /// durable by the next flush; losing them only costs a longer sync).
    pub fn save_sync_states(&self, peer: &str, states: Vec<(EntityId, Vec<u8>)>) -> Result<()> {
        let batch = states
            .into_iter()
            .map(|(id, state)| Ok((keys::sync_state(peer, self.internal(id)?), Some(state))))
            .collect::<Result<Vec<_>>>()?;
        self.inner.backend.apply(batch).map_err(storage)
    }

    /// A named cursor kept for `peer` (e.g. how far its feed was read).
    pub fn peer_cursor(&self, peer: &str, name: &str) -> Result<u64> {
        Ok(self
            .inner
            .backend
            .get(&keys::cursor(peer, name))
            .map_err(storage)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    /// Forget every sync state and cursor kept for `peer`, durably: the next
    /// session with it starts as a first one (it pushes every document and
    /// reads the peer's whole feed).
    pub fn forget_peer(&self, peer: &str) -> Result<usize> {
        let mut batch = Vec::new();
        for table in [b"sst/".as_slice(), b"cur/".as_slice()] {
            let prefix = keys::peer_prefix(table, peer);
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = self
                    .inner
                    .backend
                    .scan_prefix(&prefix, after.as_deref(), 1000)
                    .map_err(storage)?;
                let Some((last, _)) = page.last() else { break };
                after = Some(last.clone());
                batch.extend(page.into_iter().map(|(k, _)| (k, None)));
            }
        }
        let forgotten = batch.len();
        self.inner.backend.apply(batch).map_err(storage)?;
        self.wait_durable()?;
        Ok(forgotten)
    }

    /// Store a named cursor for `peer`, durably.
    pub fn set_peer_cursor(&self, peer: &str, name: &str, value: u64) -> Result<()> {
        self.inner
            .backend
            .apply(vec![(
                keys::cursor(peer, name),
                Some(value.to_be_bytes().to_vec()),
            )])
            .map_err(storage)?;
        self.wait_durable()
    }
}
