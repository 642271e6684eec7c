//! Change bundles: a file that carries documents from one store to another, for
//! sites with no network at all.
//!
//! Format (version 1), all integers big-endian:
//! ```text
//! "PSBUNDLE" | version u8 = 1 | count u32 | count x (id [16] | len u32 | automerge bytes [len]) | sha256 [32]
//! ```
//! The trailing SHA-256 covers every byte before it. Import checks the whole
//! bundle (checksum, framing, every document's Automerge bytes and entity type)
//! before it applies anything, so a truncated or corrupted bundle changes nothing.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::EntityId;
use crate::store::Store;
use crate::view::History;

const MAGIC: &[u8; 8] = b"PSBUNDLE";
const VERSION: u8 = 1;

/// One document in a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleEntry {
    /// The entity id.
    pub id: EntityId,
    /// The document's Automerge bytes (a `save()`).
    pub bytes: Vec<u8>,
}

/// Encode entries as a bundle.
pub fn encode(entries: &[BundleEntry]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    let count =
        u32::try_from(entries.len()).map_err(|_| Error::Bundle("too many documents".into()))?;
    out.extend_from_slice(&count.to_be_bytes());
    for e in entries {
        out.extend_from_slice(e.id.as_bytes());
        let len = u32::try_from(e.bytes.len())
            .map_err(|_| Error::Bundle(format!("document {} too large", e.id)))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&e.bytes);
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    Ok(out)
}

/// Decode a bundle's framing and verify its checksum (the documents' contents
/// are checked by [`import`]).
pub fn decode(bytes: &[u8]) -> Result<Vec<BundleEntry>> {
    let bad = |what: &str| Error::Bundle(what.to_string());
    if bytes.len() < MAGIC.len() + 1 + 4 + 32 {
        return Err(bad("too short to be a bundle (truncated?)"));
    }
    if &bytes[..8] != MAGIC {
        return Err(bad("not a permitsync bundle (wrong magic bytes)"));
    }
    if bytes[8] != VERSION {
        return Err(Error::Bundle(format!(
            "unsupported bundle version {}",
            bytes[8]
        )));
    }
    let (body, digest) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != digest {
        return Err(bad(
            "checksum mismatch (the file is truncated or corrupted)",
        ));
    }
    let mut pos: usize = 9;
    let mut take = |n: usize| -> Result<&[u8]> {
        let end = pos
            .checked_add(n)
            .filter(|e| *e <= body.len())
            .ok_or_else(|| bad("truncated entry"))?;
        let s = &body[pos..end];
        pos = end;
        Ok(s)
    };
    let count = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad("bad count"))?);
    let mut entries = Vec::new();
    for _ in 0..count {
        let id: [u8; 16] = take(16)?.try_into().map_err(|_| bad("bad id"))?;
        let len = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad("bad length"))?) as usize;
        let bytes = take(len)?.to_vec();
        entries.push(BundleEntry {
            id: EntityId::from_bytes(id),
            bytes,
        });
    }
    if pos != body.len() {
        return Err(bad("trailing bytes after the last entry"));
    }
    Ok(entries)
}

/// Export documents as a bundle: the given ids, or every document changed after
/// feed position `since` (all documents for `since = 0`).
pub fn export(store: &Store, ids: Option<&[EntityId]>, since: u64) -> Result<Vec<u8>> {
    let ids: Vec<EntityId> = match ids {
        Some(ids) => ids.to_vec(),
        None => {
            let mut out = Vec::new();
            let mut cursor = since;
            loop {
                let page = store.feed_since(cursor, 1000)?;
                let Some(&(last, _)) = page.last() else { break };
                out.extend(page.into_iter().map(|(_, id)| id));
                cursor = last;
            }
            out
        }
    };
    let entries = ids
        .into_iter()
        .map(|id| {
            Ok(BundleEntry {
                id,
                bytes: store.save_doc(id)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    encode(&entries)
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// Documents in the bundle.
    pub documents: usize,
    /// Documents new to the store.
    pub created: usize,
    /// Changes new to the store.
    pub new_changes: usize,
}

/// Import a bundle. Everything is checked first; on any error nothing is stored.
pub fn import(store: &Store, bytes: &[u8]) -> Result<ImportReport> {
    let entries = decode(bytes)?;
    let mut parsed = Vec::with_capacity(entries.len());
    for e in &entries {
        // what loading it would cost, before Automerge expands it
        crate::store::cost::measure([e.bytes.as_slice()], store.cost_limits())
            .and_then(|cost| {
                let ops = cost.document_ops.saturating_add(cost.change_ops);
                store.cost_limits().check_document(e.id, ops)
            })
            .map_err(|err| match err {
                Error::InvalidInput(why) => {
                    Error::Bundle(format!("document {}: invalid automerge data: {why}", e.id))
                }
                other => Error::Bundle(format!("document {}: {other}", e.id)),
            })?;
        let doc = automerge::Automerge::load(&e.bytes).map_err(|err| {
            Error::Bundle(format!("document {}: invalid automerge data: {err}", e.id))
        })?;
        let changes = doc.get_changes(&[]);
        if History::from_changes(changes.clone())
            .entity_type()
            .is_none()
        {
            return Err(Error::Bundle(format!(
                "document {} has no valid entity type (permit, isolation_point or closeout)",
                e.id
            )));
        }
        if let Some(existing) = store.summary(e.id)? {
            let ty = History::from_changes(changes.clone()).entity_type();
            if ty != Some(existing.entity_type) {
                return Err(Error::Bundle(format!(
                    "document {} is a {} in this store but not in the bundle",
                    e.id, existing.entity_type
                )));
            }
            // merging must not fail half way through the bundle: try it on a
            // copy first (a change that reuses an actor's sequence number with
            // other content, for one, is refused by Automerge)
            store
                .with_doc(e.id, |d| d.doc().clone().apply_changes(changes.clone()))?
                .map_err(|err| {
                    Error::Bundle(format!(
                        "document {} does not merge with this store's copy: {err}",
                        e.id
                    ))
                })?;
        }
        parsed.push((e.id, changes));
    }
    let mut report = ImportReport {
        documents: parsed.len(),
        ..Default::default()
    };
    for (id, changes) in parsed {
        let applied = store.apply_changes(id, changes)?;
        report.created += usize::from(applied.created);
        report.new_changes += applied.new_changes.len();
    }
    Ok(report)
}
