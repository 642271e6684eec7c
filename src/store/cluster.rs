//! Catching up with the other relays that share the storage (several
//! `serve --database-url` over one database): what they wrote shows in the
//! feed; a document one of them wrote is dropped from this relay's cache
//! (the next use reads it again), and the feed's positions move past theirs.
//! `docs/cluster.md` says how the relays are woken to do it.

use super::failure::{poisoned, storage};
use super::keys;
use super::options::DEFAULT_TENANT;
use super::store::{Inner, Store};
use crate::error::Result;
use crate::model::EntityId;

/// A document another relay wrote, as [`Store::catch_up`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caught {
    /// Its feed position.
    pub seq: u64,
    /// The id it is stored under (what a store without a tenant calls it).
    pub internal: EntityId,
    /// Its tenant.
    pub tenant: String,
    /// The id its tenant knows it by.
    pub external: EntityId,
}

/// What [`Store::catch_up`] read.
#[derive(Clone, Debug, Default)]
pub struct CaughtUp {
    /// The documents other relays wrote, oldest first.
    pub caught: Vec<Caught>,
    /// The feed position read up to: the next call's cursor.
    pub cursor: u64,
    /// Documents dropped from this relay's cache.
    pub dropped: usize,
}

impl Inner {
    /// Note this store's own write at feed position `seq` (only where other
    /// relays share the storage: catching up then skips it).
    pub(super) fn own_write(&self, seq: u64) -> Result<()> {
        if self.backend.shared() {
            self.own_writes.lock().map_err(poisoned)?.insert(seq);
        }
        Ok(())
    }
}

impl Store {
    /// Read the feed after position `cursor`, at most `limit` entries: every
    /// document another relay wrote there is dropped from the cache (unless
    /// the copy is newer), the feed's next position and the durable
    /// position move past it, and it is returned, so that the caller can
    /// tell the connected devices. The feed shows a write only once every
    /// lower position committed (see [`super::Backend::apply_checked`]), so
    /// a cursor never passes a write that commits later.
    pub fn catch_up(&self, cursor: u64, limit: usize) -> Result<CaughtUp> {
        let inner = &self.inner;
        if !inner.backend.shared() {
            // nobody else writes: every entry is this store's own
            return Ok(CaughtUp {
                cursor,
                ..CaughtUp::default()
            });
        }
        let entries = inner
            .backend
            .scan_prefix(keys::FEED, Some(&keys::feed(cursor)), limit)
            .map_err(storage)?;
        let mut out = CaughtUp {
            cursor,
            ..CaughtUp::default()
        };
        for (key, value) in entries {
            let (Some(seq), Some(id)) = (keys::feed_seq(&key), keys::id_value(&value)) else {
                continue;
            };
            out.cursor = out.cursor.max(seq);
            if inner.own_writes.lock().map_err(poisoned)?.remove(&seq) {
                continue;
            }
            if let Some(slot) = inner.cache.peek(id)? {
                if slot.lock().map_err(poisoned)?.forget_before(seq) {
                    out.dropped += 1;
                }
            }
            let tenant = self
                .owner_at(id)?
                .unwrap_or_else(|| DEFAULT_TENANT.to_string());
            out.caught.push(Caught {
                seq,
                internal: id,
                tenant,
                external: self.external(id)?,
            });
        }
        if out.cursor > cursor {
            // committed (and durable: the database committed it) by others
            inner.durable.applied(out.cursor);
            inner.durable.observe(out.cursor);
            inner.feed.observe(out.cursor)?;
            let mut own = inner.own_writes.lock().map_err(poisoned)?;
            *own = own.split_off(&(out.cursor + 1));
        }
        Ok(out)
    }

    /// On storage shared with other relays: read the identity records
    /// again (certificates, revocation lists, enrollments, the authority
    /// key) when one of them changed since the last look, so that what
    /// another relay issued or revoked judges here alike; every loaded
    /// document is then judged again before its next use. One read when
    /// nothing changed. Returns whether something did.
    pub fn refresh_identity(&self) -> Result<bool> {
        if !self.inner.backend.shared() {
            return Ok(false);
        }
        self.inner.identity.refresh(self.inner.backend.as_ref())
    }

    /// Read the identity records again from storage now, changed or not
    /// (before revoking: the certificates another relay issued a moment
    /// ago are revoked too).
    pub fn reload_identity(&self) -> Result<()> {
        if self.inner.backend.shared() {
            self.inner.identity.reload(self.inner.backend.as_ref())?;
        }
        Ok(())
    }

    /// The last feed position in storage (every relay's writes).
    pub fn stored_feed_head(&self) -> Result<u64> {
        Ok(self
            .inner
            .backend
            .last_with_prefix(keys::FEED)
            .map_err(storage)?
            .and_then(|(k, _)| keys::feed_seq(&k))
            .unwrap_or(0))
    }
}
