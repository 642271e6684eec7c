//! The store's format version, checked when a store opens: a store written
//! by a newer permitsync is refused before anything reads or writes it; an
//! older one is upgraded in place, one step at a time, in the same atomic
//! batch as the rest of the opening's records (see `docs/storage.md`,
//! "Format versions and upgrades").

use super::backend::{Backend, BatchOp};
use super::failure::storage;
use super::keys;
use crate::error::{Error, Result};

/// The format this build writes. Version 1 is the layout of `docs/storage.md`
/// as of the first release; stores written before versions existed hold no
/// version record and are read as version 1.
pub const FORMAT_VERSION: u32 = 1;

/// The format version of the store in `backend`, checked against this
/// build; the records an upgrade writes go into `batch`.
pub(super) fn check(backend: &dyn Backend, batch: &mut Vec<BatchOp>) -> Result<u32> {
    let found = match backend.get(&keys::meta("format")).map_err(storage)? {
        None => None,
        Some(bytes) => {
            let raw = <[u8; 4]>::try_from(bytes.as_slice()).map_err(|_| {
                Error::storage(format!(
                    "the store's format version record is corrupt ({} bytes)",
                    bytes.len()
                ))
            })?;
            Some(u32::from_be_bytes(raw))
        }
    };
    match found {
        Some(v) if v > FORMAT_VERSION => Err(Error::NewerFormat {
            found: v,
            supported: FORMAT_VERSION,
        }),
        Some(v) if v == FORMAT_VERSION => Ok(v),
        // a new store, or one written before format versions: version 1
        // needs nothing converted; later versions add their steps here
        _ => {
            batch.push((
                keys::meta("format"),
                Some(FORMAT_VERSION.to_be_bytes().to_vec()),
            ));
            Ok(FORMAT_VERSION)
        }
    }
}
