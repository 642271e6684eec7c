//! Backups: a consistent copy of every key of a store's key-value space,
//! taken while the store is in use, and its restore into an empty store.
//!
//! Consistency: every write of a store goes through one [`Backend::apply`]
//! of the gated backend (`write_gate.rs`) the store wraps its engine in, which holds a read
//! lock of the store's write gate; [`Store::snapshot`] holds the write lock
//! while it reads the whole key space, so the copy is the store as it was
//! between two batches (reads go on; writes wait for the copy, then resume).
//!
//! The file: `permitsync-backup\n`, the store's format version (u32 BE), then
//! each pair as `1`, key length (u32 BE), key, value length (u64 BE), value,
//! then `0` and the number of pairs (u64 BE), then the SHA-256 of everything
//! before it. [`verify`] reads a whole file and checks it before
//! [`restore`] writes anything, so a damaged or truncated file changes
//! nothing. A restore writes a new random [epoch](Store::epoch) into the
//! store's metadata: peers that see it change forget their sync states and
//! cursors with this store, and push again what it lost.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use super::backend::{Backend, BatchOp};
use super::failure::storage;
use super::format::FORMAT_VERSION;
use super::keys;
use super::store::Store;
use crate::error::{Error, Result};

const MAGIC: &[u8] = b"permitsync-backup\n";
/// Pairs read from the backend at a time while copying.
const SCAN_PAGE: usize = 1000;
/// A restore writes batches of about this many bytes.
const RESTORE_BATCH_BYTES: usize = 8 << 20;
/// Longest key a backup may hold (the store's keys are short).
const MAX_KEY_BYTES: u32 = 64 * 1024;

/// A writer that hashes what passes through it.
struct Hashing<W> {
    out: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// What a backup holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackupInfo {
    /// The store's format version when it was taken.
    pub format: u32,
    /// Key-value pairs.
    pub pairs: u64,
}

impl Store {
    /// Write a consistent copy of every key of the store to `out` (writes
    /// wait while it is read; see the module's documentation).
    pub fn snapshot(&self, out: impl Write) -> Result<BackupInfo> {
        let gate = self.inner.gate.clone();
        let _closed = gate.write().unwrap_or_else(|p| p.into_inner());
        let mut w = Hashing {
            out,
            hash: Sha256::new(),
        };
        w.write_all(MAGIC)?;
        w.write_all(&FORMAT_VERSION.to_be_bytes())?;
        let backend = &self.inner.backend;
        let mut after: Option<Vec<u8>> = None;
        let mut pairs = 0u64;
        loop {
            let page = backend
                .scan_prefix(b"", after.as_deref(), SCAN_PAGE)
                .map_err(storage)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (key, value) in &page {
                w.write_all(&[1])?;
                w.write_all(&(key.len() as u32).to_be_bytes())?;
                w.write_all(key)?;
                w.write_all(&(value.len() as u64).to_be_bytes())?;
                w.write_all(value)?;
                pairs += 1;
            }
        }
        w.write_all(&[0])?;
        w.write_all(&pairs.to_be_bytes())?;
        let digest = w.hash.clone().finalize();
        w.out.write_all(&digest)?;
        w.out.flush()?;
        Ok(BackupInfo {
            format: FORMAT_VERSION,
            pairs,
        })
    }

    /// The store's epoch: a random id written by each [`restore`], `None`
    /// for a store never restored.
    pub fn epoch(&self) -> Result<Option<u64>> {
        let raw = self
            .inner
            .backend
            .get(&keys::meta("epoch"))
            .map_err(storage)?;
        Ok(raw
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_be_bytes))
    }
}

fn bad(detail: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("not a usable permitsync backup: {detail}"))
}

fn read_exact(r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => bad(format!("it ends inside {what} (truncated?)")),
        _ => Error::Io(e),
    })
}

fn read_u32(r: &mut impl Read, what: &str) -> Result<u32> {
    let mut b = [0u8; 4];
    read_exact(r, &mut b, what)?;
    Ok(u32::from_be_bytes(b))
}

fn read_u64(r: &mut impl Read, what: &str) -> Result<u64> {
    let mut b = [0u8; 8];
    read_exact(r, &mut b, what)?;
    Ok(u64::from_be_bytes(b))
}

/// Read a backup from `input`, handing each pair to `each`; checks the
/// header, the count and the checksum (an error after some pairs were
/// handed on means the file is damaged).
fn read_pairs(
    input: impl Read,
    mut each: impl FnMut(Vec<u8>, Vec<u8>) -> Result<()>,
) -> Result<BackupInfo> {
    let mut r = HashingReader {
        input,
        hash: Sha256::new(),
    };
    let mut magic = vec![0u8; MAGIC.len()];
    read_exact(&mut r, &mut magic, "the header")?;
    if magic != MAGIC {
        return Err(bad("it does not start with the backup header"));
    }
    let format = read_u32(&mut r, "the header")?;
    if format > FORMAT_VERSION {
        return Err(Error::NewerFormat {
            found: format,
            supported: FORMAT_VERSION,
        });
    }
    let mut pairs = 0u64;
    loop {
        let mut tag = [0u8; 1];
        read_exact(&mut r, &mut tag, "a record")?;
        match tag[0] {
            0 => break,
            1 => {}
            other => return Err(bad(format!("unknown record tag {other}"))),
        }
        let key_len = read_u32(&mut r, "a key")?;
        if key_len > MAX_KEY_BYTES {
            return Err(bad(format!("a key of {key_len} bytes")));
        }
        let mut key = vec![0u8; key_len as usize];
        read_exact(&mut r, &mut key, "a key")?;
        let value_len = read_u64(&mut r, "a value")?;
        let mut value = Vec::new();
        (&mut r).take(value_len).read_to_end(&mut value)?;
        if value.len() as u64 != value_len {
            return Err(bad("it ends inside a value (truncated?)"));
        }
        each(key, value)?;
        pairs += 1;
    }
    let count = read_u64(&mut r, "the trailer")?;
    if count != pairs {
        return Err(bad(format!("it holds {pairs} pairs but says {count}")));
    }
    let digest = r.hash.finalize();
    let mut stored = [0u8; 32];
    let mut input = r.input;
    read_exact(&mut input, &mut stored, "the checksum")?;
    if stored[..] != digest[..] {
        return Err(bad("its checksum does not match (damaged)"));
    }
    let mut rest = [0u8; 1];
    if input.read(&mut rest)? != 0 {
        return Err(bad("bytes follow its checksum"));
    }
    Ok(BackupInfo { format, pairs })
}

struct HashingReader<R> {
    input: R,
    hash: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.input.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Check a whole backup without writing anything.
pub fn verify(input: impl Read) -> Result<BackupInfo> {
    read_pairs(input, |_, _| Ok(()))
}

/// Write the backup read from `input` into `backend`, which must hold
/// nothing, then a new random epoch; flushed at the end. Call [`verify`] on
/// the file first: a damaged file found here leaves a partial store.
pub fn restore(backend: &dyn Backend, input: impl Read) -> Result<(BackupInfo, u64)> {
    if !backend
        .scan_prefix(b"", None, 1)
        .map_err(storage)?
        .is_empty()
    {
        return Err(Error::InvalidInput(
            "the store to restore into is not empty: restore into a new data directory".into(),
        ));
    }
    let mut batch: Vec<BatchOp> = Vec::new();
    let mut bytes = 0usize;
    let info = read_pairs(input, |key, value| {
        bytes += key.len() + value.len();
        batch.push((key, Some(value)));
        if bytes >= RESTORE_BATCH_BYTES {
            backend.apply(std::mem::take(&mut batch)).map_err(storage)?;
            bytes = 0;
        }
        Ok(())
    })?;
    let epoch = loop {
        let e = rand::random::<u64>();
        if e != 0 {
            break e;
        }
    };
    batch.push((keys::meta("epoch"), Some(epoch.to_be_bytes().to_vec())));
    backend.apply(batch).map_err(storage)?;
    backend.flush().map_err(storage)?;
    Ok((info, epoch))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::{MemBackend, Pair, StoreOptions};
    use crate::write::NewPermit;

    fn store() -> Store {
        Store::with_backend(Arc::new(MemBackend::new()), StoreOptions::default()).expect("store")
    }

    fn all(backend: &dyn Backend) -> Vec<Pair> {
        backend.scan_prefix(b"", None, usize::MAX).expect("scan")
    }

    #[test]
    fn a_restore_holds_every_key_and_a_new_epoch() {
        let source = store();
        source
            .create_permit(NewPermit {
                title: "Replace pump seal".into(),
                ..Default::default()
            })
            .expect("create");
        let mut file = Vec::new();
        let info = source.snapshot(&mut file).expect("snapshot");
        assert_eq!(verify(file.as_slice()).expect("verifies"), info);
        let target = MemBackend::new();
        let (restored, epoch) = restore(&target, file.as_slice()).expect("restore");
        assert_eq!(restored, info);
        let mut expected = all(source.backend().as_ref());
        expected.push((keys::meta("epoch"), epoch.to_be_bytes().to_vec()));
        expected.sort();
        assert_eq!(all(&target), expected);
        let reopened = Store::with_backend(Arc::new(target), StoreOptions::default())
            .expect("the restored store opens");
        assert_eq!(reopened.epoch().expect("epoch"), Some(epoch));
        assert_eq!(reopened.node_id(), source.node_id(), "the same identity");
        assert_eq!(source.epoch().expect("epoch"), None);
    }

    /// `store` backed up and restored into a new backend, reopened; the
    /// restored backend's keys are checked to be the source's plus the epoch.
    fn round_trip(source: &Store) -> Store {
        let mut file = Vec::new();
        source.snapshot(&mut file).expect("snapshot");
        let target = MemBackend::new();
        let (_, epoch) = restore(&target, file.as_slice()).expect("restore");
        let mut expected = all(source.backend().as_ref());
        expected.push((keys::meta("epoch"), epoch.to_be_bytes().to_vec()));
        expected.sort();
        assert_eq!(all(&target), expected, "every key, byte for byte");
        Store::with_backend(Arc::new(target), StoreOptions::default()).expect("reopens")
    }

    /// The identity records (node key, authority key, enrolled authority,
    /// certificates, attestations) come back, and with them the same
    /// judgement: a new epoch changes who the store is to nobody.
    #[test]
    fn a_restore_keeps_the_identity_and_what_judges_authors() {
        use crate::identity::Role;
        use crate::store::CertificateRequest;
        let relay = store();
        let authority = relay.ensure_authority().expect("authority");
        let device = store();
        let cert = relay
            .issue_certificate(&CertificateRequest {
                tenant: "acme".into(),
                device: "tablet-3".into(),
                person: Some("J. Smith".into()),
                roles: [Role::Issuer].into_iter().collect(),
                public_key: device.public_key(),
            })
            .expect("certificate");
        assert!(device.enroll("acme", authority, &cert).expect("enroll"));
        let signed = device.create_permit(NewPermit {
            title: "signed by the tablet".into(),
            ..Default::default()
        });
        let signed = signed.expect("create");
        // as the REST API writes for a token: claimed for its tenant, attested
        let office = relay
            .in_tenant("acme")
            .acting_as("office")
            .with_roles([Role::Performer].into_iter().collect());
        let attested = crate::model::EntityId::new_random();
        assert!(office.claim(attested, "acme").expect("claim"));
        office
            .create_permit(NewPermit {
                id: Some(attested),
                title: "attested by the relay".into(),
                ..Default::default()
            })
            .expect("create");
        let prefixes: [&[u8]; 4] = [b"meta/node_key", b"meta/authority_key", b"crt/", b"att/"];
        for p in prefixes {
            assert!(
                !relay
                    .backend()
                    .scan_prefix(p, None, 1)
                    .expect("scan")
                    .is_empty(),
                "the relay has {}",
                String::from_utf8_lossy(p)
            );
        }
        for p in [b"auth/".as_slice(), b"att/", b"crt/"] {
            assert!(!device
                .backend()
                .scan_prefix(p, None, 1)
                .expect("scan")
                .is_empty());
        }

        for (source, id, verification) in [
            (&relay, attested, "relay_attested"),
            (&device, signed, "signed"),
        ] {
            let restored = round_trip(source);
            assert_eq!(
                restored.public_key(),
                source.public_key(),
                "the same node key"
            );
            // who the store is (a relay's own certificate may be renewed: a
            // new serial and expiry, the same device, tenant and roles)
            let status = |s: &Store| {
                let mut v =
                    serde_json::to_value(s.identity_status().expect("status")).expect("json");
                if let Some(c) = v["certificate"].as_object_mut() {
                    c.remove("serial");
                    c.remove("not_after");
                }
                v
            };
            assert_eq!(status(&restored), status(source), "the same identity");
            // the relay shows the document to its tenant; the device holds it as its own
            let reader = |s: &Store| {
                if verification == "signed" {
                    s.clone()
                } else {
                    s.in_tenant("acme")
                }
            };
            let before = reader(source).view(id).expect("view").authorship;
            let after = reader(&restored).view(id).expect("view").authorship;
            assert_eq!(after, before, "judged alike after the restore");
            let created = after.created_by.expect("a creator");
            assert_eq!(created.verification, verification);
        }
        let restored = round_trip(&relay);
        assert_eq!(
            restored.ensure_authority().expect("authority"),
            authority,
            "the restored relay keeps its authority key (no new one is made)"
        );
    }

    #[test]
    fn a_damaged_backup_is_refused_and_restores_nothing() {
        let source = store();
        let mut file = Vec::new();
        source.snapshot(&mut file).expect("snapshot");
        let mut flipped = file.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x40;
        let cases = [
            ("flipped", flipped),
            ("truncated", file[..file.len() - 5].to_vec()),
            ("empty", Vec::new()),
            ("trailing", [file.as_slice(), b"x"].concat()),
        ];
        for (what, bytes) in cases {
            let err = verify(bytes.as_slice()).expect_err(what);
            assert!(matches!(err, Error::InvalidInput(_)), "{what}: {err}");
            assert!(
                err.to_string().contains("not a usable permitsync backup"),
                "{what}: {err}"
            );
        }
        let full = MemBackend::new();
        full.apply(vec![(b"x".to_vec(), Some(b"y".to_vec()))])
            .expect("put");
        let err = restore(&full, file.as_slice()).expect_err("not empty");
        assert!(err.to_string().contains("not empty"), "{err}");
        assert_eq!(all(&full).len(), 1, "nothing written");
    }

    #[test]
    fn a_snapshot_waits_for_no_reader_and_writes_wait_for_it() {
        let s = store();
        let gate = s.inner.gate.clone();
        let closed = gate.write().expect("gate");
        let writer = {
            let s = s.clone();
            std::thread::spawn(move || {
                s.create_permit(NewPermit {
                    title: "waits".into(),
                    ..Default::default()
                })
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!writer.is_finished(), "a write passed a closed gate");
        drop(closed);
        writer.join().expect("join").expect("the write goes on");
    }
}
