//! The default backend: one sled tree; logical tables are key prefixes, so a
//! write that touches several of them is one atomic sled batch.

use std::path::Path;
use std::time::{Duration, Instant};

use super::backend::{Backend, BatchOp, Pair, StorageError};
use crate::error::Error;

/// sled, opened on a directory. sled locks the directory to one process.
pub struct SledBackend {
    db: sled::Db,
}

impl SledBackend {
    /// Open (or create) the store in `path`. Fails with [`Error::Locked`] when
    /// another process holds it.
    ///
    /// sled releases its lock from background threads shortly after the last
    /// handle is dropped, so a lock held by a store that is closing is retried
    /// for up to [`LOCK_WAIT`].
    pub fn open(path: &Path) -> Result<Self, Error> {
        Self::open_with_cache(path, super::options::DEFAULT_PAGE_CACHE_BYTES)
    }

    /// [`SledBackend::open`] with a page cache of `cache_bytes`.
    pub fn open_with_cache(path: &Path, cache_bytes: u64) -> Result<Self, Error> {
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            let config = sled::Config::new()
                .path(path)
                .cache_capacity(cache_bytes)
                .flush_every_ms(Some(1000));
            match config.open() {
                Ok(db) => return Ok(SledBackend { db }),
                Err(sled::Error::Io(e)) if is_lock_error(&e) => {
                    if Instant::now() >= deadline {
                        return Err(Error::Locked {
                            path: path.to_path_buf(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(Error::storage(format!("opening {}: {e}", path.display()))),
            }
        }
    }
}

/// How long opening waits for a lock held by a store that is closing.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

fn is_lock_error(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock")
}

fn err(e: sled::Error) -> StorageError {
    StorageError::from_source(e)
}

impl Backend for SledBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get(key).map_err(err)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Pair>, StorageError> {
        let iter = match after {
            // an `after` below the prefix does not widen the scan
            Some(a) if a >= prefix => self
                .db
                .range::<&[u8], _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            _ => self.db.range::<&[u8], _>(prefix..),
        };
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item.map_err(err)?;
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StorageError> {
        match self.db.scan_prefix(prefix).next_back() {
            Some(r) => {
                let (k, v) = r.map_err(err)?;
                Ok(Some((k.to_vec(), v.to_vec())))
            }
            None => Ok(None),
        }
    }

    fn apply(&self, batch: Vec<BatchOp>) -> Result<(), StorageError> {
        let mut b = sled::Batch::default();
        for (k, v) in batch {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.db.apply_batch(b).map_err(err)
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.db.flush().map(|_| ()).map_err(err)
    }
}
