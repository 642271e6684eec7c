//! Identity records on storage that several relays share: every batch that
//! writes one (a certificate, a revocation list, an enrollment, the
//! authority key) also writes a fresh random value to the
//! [`super::identity::CHANGED`] record, in the same transaction, and then
//! announces it ([`Backend::announce`]). Each relay compares that record at
//! every feed poll or notification ([`super::Store::refresh_identity`]) and
//! reads its cached authorities again when it differs, so what one relay
//! issues or revokes judges alike on all. `docs/cluster.md`, "Identity in
//! the cluster".
//!
//! A wrapper around the engine, so that no write of identity records can
//! forget it; the store puts it around storage that [`Backend::shared`].

use std::sync::Arc;
use std::time::Duration;

use super::backend::{Backend, BatchOp, Check, Checked, Heartbeat, Pair, StorageError};
use super::identity::CHANGED;
use super::keys;

/// Prefixes of the identity records the other relays cache.
const PREFIXES: [&[u8]; 5] = [keys::ENROLLED, b"crt/", b"rvl/", b"rlt/", b"mine/"];
/// Single identity records (under `meta/`).
const NAMES: [&str; 2] = ["authority_key", "tenant"];

/// The engine, with identity writes marked.
pub(super) struct Marking {
    inner: Arc<dyn Backend>,
}

impl Marking {
    /// Mark the identity writes on `inner`.
    pub(super) fn new(inner: Arc<dyn Backend>) -> Marking {
        Marking { inner }
    }
}

/// Whether `key` is an identity record other relays cache.
fn is_identity(key: &[u8]) -> bool {
    if PREFIXES.iter().any(|p| key.starts_with(p)) {
        return true;
    }
    NAMES.iter().any(|n| key == keys::meta(n).as_slice())
}

/// Whether `batch` adds attestations without the changes they cover: they
/// came after their changes (a device's echo, a late signature), so no feed
/// entry tells the other relays to judge that document again. (Attestations
/// written with their changes ride on the changes' feed entry.)
fn late_attestations(batch: &[BatchOp]) -> bool {
    let has = |p: &[u8]| batch.iter().any(|(k, _)| k.starts_with(p));
    has(b"att/") && !has(b"chk/") && !has(b"doc/")
}

/// `batch` with a new [`CHANGED`] value when it writes identity records;
/// whether it does.
fn marked(mut batch: Vec<BatchOp>) -> (Vec<BatchOp>, bool) {
    let identity = batch.iter().any(|(k, _)| is_identity(k)) || late_attestations(&batch);
    if identity {
        let value: [u8; 16] = rand::random();
        batch.push((keys::meta(CHANGED), Some(value.to_vec())));
    }
    (batch, identity)
}

impl Marking {
    fn announce_after(&self, identity: bool) {
        if identity {
            if let Err(e) = self.inner.announce() {
                // the others still find it at their next feed poll
                tracing::warn!(error = %e, "cannot notify the other relays of an identity change");
            }
        }
    }
}

impl Backend for Marking {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }

    fn scan_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Pair>, StorageError> {
        self.inner.scan_prefix(prefix, after, limit)
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StorageError> {
        self.inner.last_with_prefix(prefix)
    }

    fn apply(&self, batch: Vec<BatchOp>) -> Result<(), StorageError> {
        let (batch, identity) = marked(batch);
        self.inner.apply(batch)?;
        self.announce_after(identity);
        Ok(())
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.inner.flush()
    }

    fn apply_checked(&self, batch: Vec<BatchOp>, check: &Check) -> Result<Checked, StorageError> {
        let (batch, identity) = marked(batch);
        let done = self.inner.apply_checked(batch, check)?;
        self.announce_after(identity && done == Checked::Applied);
        Ok(done)
    }

    fn shared(&self) -> bool {
        self.inner.shared()
    }

    fn wake(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.inner.wake()
    }

    fn announce(&self) -> Result<(), StorageError> {
        self.inner.announce()
    }

    fn heartbeat(
        &self,
        relay: &str,
        address: &str,
        feed_seq: u64,
        recent: Duration,
    ) -> Result<Option<Heartbeat>, StorageError> {
        self.inner.heartbeat(relay, address, feed_seq, recent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemBackend;

    fn changed(b: &dyn Backend) -> Option<Vec<u8>> {
        b.get(&keys::meta(CHANGED)).expect("get")
    }

    #[test]
    fn only_identity_writes_change_the_marker() {
        let mem: Arc<dyn Backend> = Arc::new(MemBackend::new());
        let b = Marking::new(mem.clone());
        b.apply(vec![(b"doc/x".to_vec(), Some(vec![1]))])
            .expect("apply");
        b.apply(vec![
            (b"chk/x1".to_vec(), Some(vec![1])),
            (b"att/x".to_vec(), Some(vec![1])),
        ])
        .expect("apply");
        assert_eq!(
            changed(&b),
            None,
            "documents and their attestations are fed"
        );
        // attestations that came after their changes are not
        b.apply(vec![(b"att/x2".to_vec(), Some(vec![1]))])
            .expect("apply");
        let late = changed(&b).expect("late attestations marked");
        let mut seen = vec![late];
        for key in [
            keys::certificate("acme", 7),
            keys::revocation_list("acme"),
            keys::enrolled_authority("acme"),
            keys::own_certificate("acme"),
            keys::meta("authority_key"),
        ] {
            b.apply(vec![
                (b"doc/y".to_vec(), Some(vec![2])),
                (key.clone(), None),
            ])
            .expect("apply");
            let now = changed(mem.as_ref()).expect("marked");
            assert!(!seen.contains(&now), "a new value for {key:?}");
            seen.push(now);
        }
        let check = Check {
            feed_seq: None,
            expect: vec![(b"k".to_vec(), Some(vec![9]))],
        };
        let refused = b
            .apply_checked(vec![(keys::revocation_list("acme"), Some(vec![3]))], &check)
            .expect("checked");
        assert_eq!(refused, Checked::Changed);
        assert_eq!(changed(&b).as_ref(), seen.last(), "nothing written");
    }
}
