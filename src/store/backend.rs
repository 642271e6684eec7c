//! The storage trait: an ordered key-value space with atomic batches and an
//! explicit flush. sled is the default ([`super::SledBackend`]); an in-memory
//! backend serves tests, and another engine can be added behind the same trait.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A failure of the storage backend: what failed, and the engine's own error
/// when there is one (kept as the [`std::error::Error::source`]).
#[derive(Debug, Clone)]
pub struct StorageError {
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl StorageError {
    /// A failure described by `message` alone.
    pub fn new(message: impl Into<String>) -> StorageError {
        StorageError {
            message: message.into(),
            source: None,
        }
    }

    /// A failure caused by the engine's error `source`.
    pub fn from_source(source: impl std::error::Error + Send + Sync + 'static) -> StorageError {
        StorageError {
            message: source.to_string(),
            source: Some(Arc::new(source)),
        }
    }

    /// A failure described by `message`, caused by the engine's error
    /// `source` (when the engine's own text says too little).
    pub fn with_message(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StorageError {
        StorageError {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// What failed.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl PartialEq for StorageError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for StorageError {}

/// One write of a batch: `Some(value)` puts, `None` deletes.
pub type BatchOp = (Vec<u8>, Option<Vec<u8>>);

/// A key and its value.
pub type Pair = (Vec<u8>, Vec<u8>);

/// What a checked write ([`Backend::apply_checked`]) requires of storage at
/// the moment it commits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Check {
    /// The write takes this feed position: storage that other processes
    /// share refuses it when its feed has reached the position already.
    pub feed_seq: Option<u64>,
    /// Each key must hold exactly this value (`None`: be absent).
    pub expect: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// What [`Backend::apply_checked`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checked {
    /// Applied (committed).
    Applied,
    /// Nothing applied: the shared feed is at `head` already, at or past the
    /// write's position (another process wrote meanwhile).
    FeedBehind {
        /// The last feed position committed.
        head: u64,
    },
    /// Nothing applied: a key does not hold what the write expected.
    Changed,
}

/// A relay over the same storage, as the last heartbeats show it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RelaySeen {
    /// The relay's id (new every time it starts).
    pub relay: String,
    /// The address it listens on.
    pub address: String,
    /// The feed position it had caught up to.
    pub feed_seq: u64,
    /// How long ago its last heartbeat was, in milliseconds.
    pub seen_ms_ago: u64,
}

/// What a heartbeat ([`Backend::heartbeat`]) found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// The relays seen recently, this one included.
    pub relays: Vec<RelaySeen>,
    /// The last feed position committed by any relay.
    pub feed_head: u64,
}

/// An ordered key-value store. Every method is safe to call from many threads.
pub trait Backend: Send + Sync + 'static {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;
    /// Every pair whose key starts with `prefix`, in key order, starting after
    /// `after` (exclusive) when given, at most `limit` pairs.
    fn scan_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Pair>, StorageError>;
    /// The last pair whose key starts with `prefix`.
    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StorageError>;
    /// Apply every write of `batch` atomically (all or none, also across a crash).
    fn apply(&self, batch: Vec<BatchOp>) -> Result<(), StorageError>;
    /// Make every write applied so far durable (fsync).
    fn flush(&self) -> Result<(), StorageError>;
    /// Apply `batch` atomically if storage holds what `check` requires when
    /// it commits. Checked writes are ordered among themselves: on storage
    /// that several processes share (PostgreSQL), they commit one at a time
    /// in the order of their feed positions, so a reader never sees a
    /// position before every lower one has committed. This default, for
    /// storage of one process (whose store orders its writes with its own
    /// locks), reads the expected keys and applies; it never says
    /// [`Checked::FeedBehind`].
    fn apply_checked(&self, batch: Vec<BatchOp>, check: &Check) -> Result<Checked, StorageError> {
        for (key, value) in &check.expect {
            if self.get(key)? != *value {
                return Ok(Checked::Changed);
            }
        }
        self.apply(batch)?;
        Ok(Checked::Applied)
    }
    /// Whether other processes write this storage too (relays sharing a
    /// database): their writes must then be caught up with
    /// (`Store::catch_up`).
    fn shared(&self) -> bool {
        false
    }
    /// What wakes this process when another one sharing the storage
    /// committed a write (a hint: it still polls). `None`: nothing does.
    fn wake(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }
    /// Tell the other processes sharing the storage that something they
    /// cache changed outside the feed (identity records: certificates,
    /// revocation lists, authority keys), waking them as a feed write does
    /// ([`Backend::wake`]). A hint: they poll regardless.
    fn announce(&self) -> Result<(), StorageError> {
        Ok(())
    }
    /// Record that relay `relay` (listening on `address`, caught up to feed
    /// position `feed_seq`) is alive, and read which relays were seen
    /// within `recent`. `None`: storage of one process, no other relays.
    fn heartbeat(
        &self,
        relay: &str,
        address: &str,
        feed_seq: u64,
        recent: std::time::Duration,
    ) -> Result<Option<Heartbeat>, StorageError> {
        let _ = (relay, address, feed_seq, recent);
        Ok(None)
    }
}

/// An in-memory backend, for tests and tools. `flush` does nothing.
#[derive(Default)]
pub struct MemBackend {
    map: Mutex<Map>,
}

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

impl MemBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> Result<std::sync::MutexGuard<'_, Map>, StorageError> {
        self.map
            .lock()
            .map_err(|_| StorageError::new("memory backend lock poisoned"))
    }
}

impl Backend for MemBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.map()?.get(key).cloned())
    }

    fn scan_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Pair>, StorageError> {
        let map = self.map()?;
        Ok(map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| after.is_none_or(|a| k.as_slice() > a))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StorageError> {
        let map = self.map()?;
        Ok(map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .last()
            .map(|(k, v)| (k.clone(), v.clone())))
    }

    fn apply(&self, batch: Vec<BatchOp>) -> Result<(), StorageError> {
        let mut map = self.map()?;
        for (k, v) in batch {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }
}
