//! Ids derived from client input with a secret of the store, so that nobody
//! without the store can compute (and claim first) an id another tenant will
//! get. The key is 32 random bytes in `meta/id_key`, made durable before the
//! first id derived with it is handed out.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::backend::{Check, Checked};
use super::failure::poisoned;
use super::keys;
use super::store::Store;
use crate::error::{Error, Result};
use crate::model::EntityId;

/// The key's name under `meta/`.
const ID_KEY: &str = "id_key";

impl Store {
    /// The store's id key, made (and durable) on first use, then kept in
    /// memory.
    fn id_key(&self) -> Result<Vec<u8>> {
        let mut known = self.inner.id_key.lock().map_err(poisoned)?;
        if let Some(key) = known.as_ref() {
            return Ok(key.clone());
        }
        let key = match self.get_record(&keys::meta(ID_KEY))? {
            Some(key) => key,
            None => {
                let key: [u8; 32] = rand::random();
                // durable even on a deferring handle: ids derived with it
                // leave the node before the handle settles. Only if still
                // absent: relays sharing the storage must all use one key
                let check = Check {
                    feed_seq: None,
                    expect: vec![(keys::meta(ID_KEY), None)],
                };
                let checked = self
                    .inner
                    .backend
                    .apply_checked(vec![(keys::meta(ID_KEY), Some(key.to_vec()))], &check)
                    .map_err(super::failure::storage)?;
                self.flush()?;
                match checked {
                    Checked::Applied => key.to_vec(),
                    _ => self
                        .get_record(&keys::meta(ID_KEY))?
                        .ok_or_else(|| Error::storage("the store's id key vanished"))?,
                }
            }
        };
        *known = Some(key.clone());
        Ok(key)
    }

    /// The id HMAC-SHA256, keyed with the store's secret, gives `parts`
    /// (joined with NUL): the same parts always give the same id in this
    /// store, and without the store nobody can tell which parts give which
    /// id. It looks like any random (version 4) UUID.
    pub fn keyed_id(&self, parts: &[&str]) -> Result<EntityId> {
        let key = self.id_key()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|e| Error::storage(format!("the store's id key: {e}")))?;
        for part in parts {
            mac.update(part.as_bytes());
            mac.update(b"\0");
        }
        let digest = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Ok(EntityId::from(
            uuid::Builder::from_random_bytes(bytes).into_uuid(),
        ))
    }
}
