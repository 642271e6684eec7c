//! The key layout of the store (see `docs/storage.md`). One ordered keyspace;
//! each logical table is a prefix.

use crate::model::EntityId;

/// Store metadata: `meta/<name>`.
pub(crate) fn meta(name: &str) -> Vec<u8> {
    [b"meta/".as_slice(), name.as_bytes()].concat()
}

/// Compacted document: `doc/<id16>` -> Automerge `save()` bytes.
pub(crate) fn doc(id: EntityId) -> Vec<u8> {
    [b"doc/".as_slice(), id.as_bytes()].concat()
}

/// Prefix of a document's incremental chunks.
pub(crate) fn chunk_prefix(id: EntityId) -> Vec<u8> {
    [b"chk/".as_slice(), id.as_bytes()].concat()
}

/// Incremental chunk: `chk/<id16><seq u64 BE>` -> changes since the last chunk.
pub(crate) fn chunk(id: EntityId, seq: u64) -> Vec<u8> {
    [chunk_prefix(id).as_slice(), &seq.to_be_bytes()].concat()
}

/// The chunk sequence number at the end of a chunk key.
pub(crate) fn chunk_seq(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

/// Prefix of the change feed.
pub(crate) const FEED: &[u8] = b"feed/";

/// Change feed: `feed/<seq u64 BE>` -> id16 (each document appears once, at its
/// latest change).
pub(crate) fn feed(seq: u64) -> Vec<u8> {
    [FEED, &seq.to_be_bytes()].concat()
}

/// The big-endian u64 at the end of a key (a version, a sequence number).
pub(crate) fn trailing_u64(key: &[u8]) -> Option<u64> {
    chunk_seq(key)
}

/// The sequence number of a feed key.
pub(crate) fn feed_seq(key: &[u8]) -> Option<u64> {
    chunk_seq(key)
}

/// A document's position in the feed: `fpos/<id16>` -> seq u64 BE.
pub(crate) fn feed_pos(id: EntityId) -> Vec<u8> {
    [b"fpos/".as_slice(), id.as_bytes()].concat()
}

/// Prefix of entity summaries.
pub(crate) const ENTITY: &[u8] = b"ent/";

/// Entity summary: `ent/<id16>` -> JSON [`super::Summary`].
pub(crate) fn entity(id: EntityId) -> Vec<u8> {
    [ENTITY, id.as_bytes()].concat()
}

/// Prefix of a permit's children.
pub(crate) fn children_prefix(permit: EntityId) -> Vec<u8> {
    [b"kid/".as_slice(), permit.as_bytes()].concat()
}

/// Child index: `kid/<permit id16><child id16>` -> entity type code.
pub(crate) fn child(permit: EntityId, child: EntityId) -> Vec<u8> {
    [children_prefix(permit).as_slice(), child.as_bytes()].concat()
}

/// The id in the last 16 bytes of a key.
pub(crate) fn trailing_id(key: &[u8]) -> Option<EntityId> {
    let tail: [u8; 16] = key.get(key.len().checked_sub(16)?..)?.try_into().ok()?;
    Some(EntityId::from_bytes(tail))
}

/// An id stored as a 16-byte value.
pub(crate) fn id_value(v: &[u8]) -> Option<EntityId> {
    let b: [u8; 16] = v.try_into().ok()?;
    Some(EntityId::from_bytes(b))
}

/// The tenant a document belongs to: `own/<id16>` -> tenant (utf-8). A document
/// belongs to the tenant that first uploaded it; documents without a record
/// belong to [`super::DEFAULT_TENANT`].
pub(crate) fn owner(id: EntityId) -> Vec<u8> {
    [b"own/".as_slice(), id.as_bytes()].concat()
}

/// A derived internal id's external id: `xid/<internal id16>` -> external
/// id16 (its tenant is the internal id's owner). See `id_space.rs`.
pub(crate) fn external(internal: EntityId) -> Vec<u8> {
    [b"xid/".as_slice(), internal.as_bytes()].concat()
}

/// Prefix of the derived ids' records.
pub(crate) const EXTERNAL: &[u8] = b"xid/";

/// Prefix of one tenant's change feed.
pub(crate) fn tenant_feed_prefix(tenant: &str) -> Vec<u8> {
    [b"tfd/".as_slice(), tenant.as_bytes(), b"\0"].concat()
}

/// A tenant's change feed: `tfd/<tenant>\0<seq u64 BE>` -> the document's
/// external id16 (same sequence numbers as the store's feed).
pub(crate) fn tenant_feed(tenant: &str, seq: u64) -> Vec<u8> {
    [tenant_feed_prefix(tenant).as_slice(), &seq.to_be_bytes()].concat()
}

/// Prefix of every record kept for `peer`'s sync states (`sst/`) or cursors
/// (`cur/`): `table` then `<peer>\0`.
pub(crate) fn peer_prefix(table: &[u8], peer: &str) -> Vec<u8> {
    [table, peer.as_bytes(), b"\0"].concat()
}

/// Persisted sync state: `sst/<peer>\0<id16>` -> automerge `sync::State::encode()`.
pub(crate) fn sync_state(peer: &str, id: EntityId) -> Vec<u8> {
    [b"sst/".as_slice(), peer.as_bytes(), b"\0", id.as_bytes()].concat()
}

/// A named cursor kept for a peer: `cur/<peer>\0<name>` -> u64 BE.
pub(crate) fn cursor(peer: &str, name: &str) -> Vec<u8> {
    [b"cur/".as_slice(), peer.as_bytes(), b"\0", name.as_bytes()].concat()
}

/// A classic client's applied change:
/// `cls/<tenant>\0<device>\0<entity>\0<offline id>` -> JSON of the answer
/// it got (its idempotency record). The parts never hold NUL (the API refuses
/// it).
pub(crate) fn classic_applied(
    tenant: &str,
    device: &str,
    entity: &str,
    offline_id: &str,
) -> Vec<u8> {
    [
        b"cls/".as_slice(),
        tenant.as_bytes(),
        b"\0",
        device.as_bytes(),
        b"\0",
        entity.as_bytes(),
        b"\0",
        offline_id.as_bytes(),
    ]
    .concat()
}

/// Prefix of an entity's reported versions.
pub(crate) fn version_prefix(id: EntityId) -> Vec<u8> {
    [b"ver/".as_slice(), id.as_bytes()].concat()
}

/// A version the classic API reported: `ver/<id16><version u64 BE>` -> the
/// document's heads then (32 bytes each).
pub(crate) fn version(id: EntityId, version: u64) -> Vec<u8> {
    [version_prefix(id).as_slice(), &version.to_be_bytes()].concat()
}

/// A blob: `blob/<sha256 32>` -> its bytes.
pub(crate) fn blob(sha: &[u8; 32]) -> Vec<u8> {
    [b"blob/".as_slice(), sha].concat()
}

/// A blob's media type: `bmt/<sha256 32>` -> utf-8.
pub(crate) fn blob_mime(sha: &[u8; 32]) -> Vec<u8> {
    [b"bmt/".as_slice(), sha].concat()
}

/// A tenant may read a blob: `btn/<tenant>\0<sha256 32>` -> empty.
pub(crate) fn blob_grant(tenant: &str, sha: &[u8; 32]) -> Vec<u8> {
    [b"btn/".as_slice(), tenant.as_bytes(), b"\0", sha].concat()
}

/// Prefix of the blobs this node still wants from peers for `tenant`.
pub(crate) fn blob_wanted_prefix(tenant: &str) -> Vec<u8> {
    [b"bwt/".as_slice(), tenant.as_bytes(), b"\0"].concat()
}

/// A blob a document of `tenant` refers to that the tenant has no copy of
/// here yet: `bwt/<tenant>\0<sha256 32>` -> the document's id16.
pub(crate) fn blob_wanted(tenant: &str, sha: &[u8; 32]) -> Vec<u8> {
    [blob_wanted_prefix(tenant).as_slice(), sha].concat()
}

/// A tenant's authority public key as this store learnt it when it enrolled:
/// `auth/<tenant>` -> 32 bytes.
pub(crate) fn enrolled_authority(tenant: &str) -> Vec<u8> {
    [b"auth/".as_slice(), tenant.as_bytes()].concat()
}

/// Prefix of the enrolled authorities.
pub(crate) const ENROLLED: &[u8] = b"auth/";

/// Prefix of one tenant's certificates.
pub(crate) fn certificate_prefix(tenant: &str) -> Vec<u8> {
    [b"crt/".as_slice(), tenant.as_bytes(), b"\0"].concat()
}

/// A certificate: `crt/<tenant>\0<serial u64 BE>` -> its signed bytes.
pub(crate) fn certificate(tenant: &str, serial: u64) -> Vec<u8> {
    [certificate_prefix(tenant).as_slice(), &serial.to_be_bytes()].concat()
}

/// The revocation list in force for a tenant: `rvl/<tenant>` -> its signed bytes.
pub(crate) fn revocation_list(tenant: &str) -> Vec<u8> {
    [b"rvl/".as_slice(), tenant.as_bytes()].concat()
}

/// The role table in force for a tenant: `rlt/<tenant>` -> its signed bytes.
pub(crate) fn role_table(tenant: &str) -> Vec<u8> {
    [b"rlt/".as_slice(), tenant.as_bytes()].concat()
}

/// This store's own certificate for a tenant: `mine/<tenant>` -> its serial.
pub(crate) fn own_certificate(tenant: &str) -> Vec<u8> {
    [b"mine/".as_slice(), tenant.as_bytes()].concat()
}

/// Prefix of the attestations of one document's changes.
pub(crate) fn attestation_prefix(id: EntityId) -> Vec<u8> {
    [b"att/".as_slice(), id.as_bytes()].concat()
}

/// An attestation: `att/<id16><change hash 32><first 8 bytes of its
/// signature>` -> its bytes.
pub(crate) fn attestation(id: EntityId, change: &[u8; 32], signature: &[u8; 64]) -> Vec<u8> {
    [attestation_prefix(id).as_slice(), change, &signature[..8]].concat()
}

/// Prefix of the documents holding attestations by one serial.
pub(crate) fn attested_by_prefix(tenant: &str, serial: u64) -> Vec<u8> {
    [
        b"asr/".as_slice(),
        tenant.as_bytes(),
        b"\0",
        &serial.to_be_bytes(),
    ]
    .concat()
}

/// Which documents hold attestations by a serial (to judge them again when
/// the serial's certificate arrives or is revoked):
/// `asr/<tenant>\0<serial u64 BE><id16>` -> empty.
pub(crate) fn attested_by(tenant: &str, serial: u64, id: EntityId) -> Vec<u8> {
    [attested_by_prefix(tenant, serial).as_slice(), id.as_bytes()].concat()
}
