//! Change bundles: a file that carries documents from one store to another, for
//! sites with no network at all, with what judges who wrote them.
//!
//! Format, all integers big-endian. Version 1 (documents only):
//! ```text
//! "PSBUNDLE" | version u8 = 1 | count u32 | count x (id [16] | len u32 | automerge bytes [len]) | sha256 [32]
//! ```
//! Version 2 adds each document's attestations and, per tenant, the
//! certificates they name and the revocation list in force (each object in
//! its signed form, `docs/identity.md`):
//! ```text
//! "PSBUNDLE" | version u8 = 2 | count u32
//!   | count x (id [16] | len u32 | automerge bytes [len] | atts u32 | atts x (len u32 | attestation [len]))
//!   | tenants u32 | tenants x (len u32 | tenant utf-8 [len] | certs u32 | certs x (len u32 | certificate [len])
//!                             | len u32 | revocation list [len], len 0: none)
//!   | sha256 [32]
//! ```
//! Version 3 adds, after each tenant's revocation list, the tenant's role
//! table (`| len u32 | role table [len]`, len 0: none).
//!
//! Export writes the lowest version that carries everything: 1 when there is
//! nothing beside the changes (an open store), 2 when no tenant has a role
//! table of its own, else 3; so older readers take what they can read.
//! Import reads all three.
//! The trailing SHA-256 covers every byte before it. Import checks the whole
//! bundle (checksum, framing, every signed object's encoding, every
//! document's Automerge bytes and entity type) before it applies anything, so
//! a truncated or corrupted bundle changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::identity::{Attestation, SignedCertificate, SignedRevocationList, SignedRoleTable};
use crate::model::EntityId;
use crate::store::Store;
use crate::view::History;

const MAGIC: &[u8; 8] = b"PSBUNDLE";
/// Documents only.
const VERSION_1: u8 = 1;
/// Documents, their attestations, and each tenant's certificates and
/// revocation list.
const VERSION_2: u8 = 2;
/// Version 2, and each tenant's role table.
const VERSION_3: u8 = 3;

/// One document in a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleEntry {
    /// The entity id.
    pub id: EntityId,
    /// The document's Automerge bytes (a `save()`).
    pub bytes: Vec<u8>,
}

/// What judges a tenant's documents: the certificates their attestations
/// name and the revocation list in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantCredentials {
    /// The tenant.
    pub tenant: String,
    /// Certificates, by serial.
    pub certificates: Vec<SignedCertificate>,
    /// The revocation list in force, if the authority ever signed one.
    pub revocation_list: Option<SignedRevocationList>,
    /// The tenant's role table, if its authority signed one.
    pub role_table: Option<SignedRoleTable>,
}

/// A whole bundle: the documents, the attestations of their changes, and
/// the tenants' credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bundle {
    /// The documents.
    pub entries: Vec<BundleEntry>,
    /// The attestations of each entry's changes (same order as `entries`;
    /// shorter or empty for a version 1 bundle).
    pub attestations: Vec<Vec<Attestation>>,
    /// The credentials of the documents' tenants.
    pub tenants: Vec<TenantCredentials>,
}

impl Bundle {
    /// The lowest version that carries everything in it.
    fn version(&self) -> u8 {
        if self.tenants.iter().any(|t| t.role_table.is_some()) {
            VERSION_3
        } else if self.attestations.iter().any(|a| !a.is_empty()) || !self.tenants.is_empty() {
            VERSION_2
        } else {
            VERSION_1
        }
    }

    /// The attestations of entry `i`.
    pub fn attestations_of(&self, i: usize) -> &[Attestation] {
        self.attestations.get(i).map_or(&[], Vec::as_slice)
    }
}

/// Encode entries as a (version 1) bundle.
pub fn encode(entries: &[BundleEntry]) -> Result<Vec<u8>> {
    encode_bundle(&Bundle {
        entries: entries.to_vec(),
        ..Bundle::default()
    })
}

fn len_u32(n: usize, what: &str) -> Result<[u8; 4]> {
    u32::try_from(n)
        .map(u32::to_be_bytes)
        .map_err(|_| Error::Bundle(format!("{what} too large")))
}

/// Encode a bundle: version 1 when it carries only documents, 2 when no
/// tenant has a role table, else 3.
pub fn encode_bundle(b: &Bundle) -> Result<Vec<u8>> {
    let version = b.version();
    let v2 = version >= VERSION_2;
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.push(version);
    out.extend_from_slice(&len_u32(b.entries.len(), "document list")?);
    let blob = |out: &mut Vec<u8>, bytes: &[u8], what: &str| -> Result<()> {
        out.extend_from_slice(&len_u32(bytes.len(), what)?);
        out.extend_from_slice(bytes);
        Ok(())
    };
    for (i, e) in b.entries.iter().enumerate() {
        out.extend_from_slice(e.id.as_bytes());
        blob(&mut out, &e.bytes, &format!("document {}", e.id))?;
        if v2 {
            let atts = b.attestations_of(i);
            out.extend_from_slice(&len_u32(atts.len(), "attestation list")?);
            for a in atts {
                blob(&mut out, &a.to_bytes(), "attestation")?;
            }
        }
    }
    if v2 {
        out.extend_from_slice(&len_u32(b.tenants.len(), "tenant list")?);
        for t in &b.tenants {
            blob(&mut out, t.tenant.as_bytes(), "tenant name")?;
            out.extend_from_slice(&len_u32(t.certificates.len(), "certificate list")?);
            for c in &t.certificates {
                blob(&mut out, &c.to_bytes(), "certificate")?;
            }
            let list = t.revocation_list.as_ref().map(|l| l.to_bytes());
            blob(
                &mut out,
                list.as_deref().unwrap_or_default(),
                "revocation list",
            )?;
            if version >= VERSION_3 {
                let table = t.role_table.as_ref().map(|t| t.to_bytes());
                blob(&mut out, table.as_deref().unwrap_or_default(), "role table")?;
            }
        }
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    Ok(out)
}

/// Decode a bundle's framing and verify its checksum (the documents' contents
/// are checked by [`import`]).
pub fn decode(bytes: &[u8]) -> Result<Vec<BundleEntry>> {
    decode_bundle(bytes).map(|b| b.entries)
}

/// Reads a bundle's body, refusing anything past its end.
struct Cursor<'a> {
    body: &'a [u8],
    pos: usize,
}

fn bad(what: &str) -> Error {
    Error::Bundle(what.to_string())
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.body.len())
            .ok_or_else(|| bad("truncated entry"))?;
        let s = &self.body[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<usize> {
        let b: [u8; 4] = self.take(4)?.try_into().map_err(|_| bad("bad length"))?;
        Ok(u32::from_be_bytes(b) as usize)
    }

    fn blob(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()?;
        self.take(n)
    }

    /// `count` signed objects, each decoded by `parse`.
    fn objects<T, E: std::fmt::Display>(
        &mut self,
        what: &str,
        parse: impl Fn(&[u8]) -> std::result::Result<T, E>,
    ) -> Result<Vec<T>> {
        let count = self.u32()?;
        let mut out = Vec::new();
        for _ in 0..count {
            let bytes = self.blob()?;
            out.push(parse(bytes).map_err(|e| Error::Bundle(format!("malformed {what}: {e}")))?);
        }
        Ok(out)
    }
}

/// Decode a whole bundle (either version) and verify its checksum and the
/// encoding of every signed object it carries (their signatures are checked
/// by the store that learns them).
pub fn decode_bundle(bytes: &[u8]) -> Result<Bundle> {
    if bytes.len() < MAGIC.len() + 1 + 4 + 32 {
        return Err(bad("too short to be a bundle (truncated?)"));
    }
    if &bytes[..8] != MAGIC {
        return Err(bad("not a permitsync bundle (wrong magic bytes)"));
    }
    let version = bytes[8];
    if !(VERSION_1..=VERSION_3).contains(&version) {
        return Err(Error::Bundle(format!(
            "unsupported bundle version {version}"
        )));
    }
    let (body, digest) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != digest {
        return Err(bad(
            "checksum mismatch (the file is truncated or corrupted)",
        ));
    }
    let mut cur = Cursor { body, pos: 9 };
    let count = cur.u32()?;
    let mut b = Bundle::default();
    for _ in 0..count {
        let id: [u8; 16] = cur.take(16)?.try_into().map_err(|_| bad("bad id"))?;
        let bytes = cur.blob()?.to_vec();
        b.entries.push(BundleEntry {
            id: EntityId::from_bytes(id),
            bytes,
        });
        if version >= VERSION_2 {
            b.attestations
                .push(cur.objects("attestation", Attestation::from_bytes)?);
        }
    }
    if version >= VERSION_2 {
        let tenants = cur.u32()?;
        for _ in 0..tenants {
            let tenant = std::str::from_utf8(cur.blob()?)
                .map_err(|_| bad("a tenant name is not UTF-8"))?
                .to_string();
            let certificates = cur.objects("certificate", SignedCertificate::from_bytes)?;
            let list = cur.blob()?;
            let revocation_list = if list.is_empty() {
                None
            } else {
                Some(
                    SignedRevocationList::from_bytes(list)
                        .map_err(|e| Error::Bundle(format!("malformed revocation list: {e}")))?,
                )
            };
            let role_table = match version {
                VERSION_3 => Some(cur.blob()?).filter(|t| !t.is_empty()),
                _ => None,
            }
            .map(|t| {
                SignedRoleTable::from_bytes(t)
                    .map_err(|e| Error::Bundle(format!("malformed role table: {e}")))
            })
            .transpose()?;
            b.tenants.push(TenantCredentials {
                tenant,
                certificates,
                revocation_list,
                role_table,
            });
        }
    }
    if cur.pos != body.len() {
        return Err(bad("trailing bytes after the last entry"));
    }
    Ok(b)
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
    let mut b = Bundle::default();
    let mut serials: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for id in ids {
        let atts = store.attestations(id)?;
        let tenant = store.judging_tenant_of(id)?;
        let named = serials.entry(tenant).or_default();
        named.extend(atts.iter().map(|a| a.serial));
        b.entries.push(BundleEntry {
            id,
            bytes: store.save_doc(id)?,
        });
        b.attestations.push(atts);
    }
    for (tenant, serials) in serials {
        let serials: Vec<u64> = serials.into_iter().collect();
        let certificates = store.certificates(&tenant, &serials)?;
        let revocation_list = store.revocation_list(&tenant)?;
        let role_table = store.role_table(&tenant)?;
        if certificates.is_empty() && revocation_list.is_none() && role_table.is_none() {
            continue;
        }
        b.tenants.push(TenantCredentials {
            tenant,
            certificates,
            revocation_list,
            role_table,
        });
    }
    encode_bundle(&b)
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
    /// Attestations new to the store.
    pub attestations: usize,
    /// Certificates the store learnt (those its tenant's authority signed).
    pub certificates: usize,
    /// Revocation lists that replaced the one in force.
    pub revocation_lists: usize,
    /// Role tables that replaced the one in force.
    pub role_tables: usize,
}

/// Import a bundle. Everything is checked first; on any error nothing is
/// stored. The tenants' certificates, revocation lists and role tables are
/// learnt first, then the attestations, then the changes, so each document
/// is judged once with everything the bundle says about it.
pub fn import(store: &Store, bytes: &[u8]) -> Result<ImportReport> {
    let bundle = decode_bundle(bytes)?;
    let entries = &bundle.entries;
    let mut parsed = Vec::with_capacity(entries.len());
    for e in entries {
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
    for t in &bundle.tenants {
        report.certificates += store.learn_certificates(&t.tenant, &t.certificates)?;
        if let Some(list) = &t.revocation_list {
            report.revocation_lists += usize::from(store.learn_revocation_list(&t.tenant, list)?);
        }
        if let Some(table) = &t.role_table {
            report.role_tables += usize::from(store.learn_role_table(&t.tenant, table)?);
        }
    }
    for (i, (id, _)) in parsed.iter().enumerate() {
        let atts = bundle.attestations_of(i).to_vec();
        report.attestations += store.add_attestations(*id, atts)?;
    }
    for (id, changes) in parsed {
        let applied = store.apply_changes(id, changes)?;
        report.created += usize::from(applied.created);
        report.new_changes += applied.new_changes.len();
    }
    Ok(report)
}
