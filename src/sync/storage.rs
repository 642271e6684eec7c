//! The seam between sync and storage: everything a [`super::Session`] asks
//! of a store. A received sync message is one call ([`SyncStore::receive`]:
//! apply, judge, persist and answer under the document's lock), a push is one
//! call ([`SyncStore::generate`]); the rest reads and writes small records.
//! The sled [`Store`] implements it; another engine implements the same trait
//! without touching the session. See `docs/architecture.md`.

use automerge::sync;
use automerge::{Change, ChangeHash};

use crate::error::Result;
use crate::identity::{
    Attestation, PublicKey, SignedCertificate, SignedRevocationList, SignedRoleTable,
};
use crate::model::EntityId;
use crate::store::{
    Admission, BlobPut, CertificateRequest, Delta, Generated, ReceiveError, ReceiveLimits,
    Received, Sha256Hash, Store, Summary, Taken,
};

/// What a sync session needs of storage.
pub trait SyncStore: Send + Sync + 'static {
    // ---- durability: one way to defer -------------------------------------

    /// A handle whose writes do not wait for their flush; the session settles
    /// it once per burst of frames, before any reply leaves.
    fn deferring(&self) -> Self
    where
        Self: Sized;
    /// Make durable what this handle wrote or showed since the last settle.
    fn settle(&self) -> Result<()>;

    // ---- documents ---------------------------------------------------------

    /// Whether a connection of `tenant` may use document `id` (claiming a
    /// new one it uploads).
    fn admit(
        &self,
        id: EntityId,
        tenant: &str,
        read_only: bool,
        is_request: bool,
        brings_changes: bool,
    ) -> Result<Admission>;
    /// Take one sync message about `id` and answer it.
    fn receive(
        &self,
        id: EntityId,
        state: &mut sync::State,
        msg: sync::Message,
        limits: &ReceiveLimits,
        is_request: bool,
    ) -> Result<Received, ReceiveError>;
    /// The next sync message about `id`.
    fn generate(&self, id: EntityId, state: &mut sync::State) -> Result<Generated>;
    /// Apply changes that came without a sync message (a feed entry's).
    fn take_changes(
        &self,
        id: EntityId,
        changes: Vec<Change>,
        limits: &ReceiveLimits,
    ) -> Result<Taken, ReceiveError>;
    /// What a peer holding `known` lacks of `id`.
    fn delta_since(&self, id: EntityId, known: &[ChangeHash]) -> Result<Option<Delta>>;
    /// The summary of `id`, without loading it.
    fn summary(&self, id: EntityId) -> Result<Option<Summary>>;
    /// Whether the store holds `id`.
    fn contains(&self, id: EntityId) -> Result<bool>;
    /// Whether `tenant` may see `id`.
    fn visible_to(&self, id: EntityId, tenant: &str) -> Result<bool>;
    /// Claim a new document `id` for `tenant`; whether `tenant` may use it.
    fn claim(&self, id: EntityId, tenant: &str) -> Result<bool>;

    // ---- per peer: sync states and cursors ---------------------------------

    /// The persisted sync state of `id` with `peer`.
    fn load_sync_state(&self, peer: &str, id: EntityId) -> Result<Option<Vec<u8>>>;
    /// Persist sync states with `peer`, in one batch.
    fn save_sync_states(&self, peer: &str, states: Vec<(EntityId, Vec<u8>)>) -> Result<()>;
    /// A named cursor kept for `peer`.
    fn peer_cursor(&self, peer: &str, name: &str) -> Result<u64>;
    /// Store a named cursor for `peer`.
    fn set_peer_cursor(&self, peer: &str, name: &str, value: u64) -> Result<()>;
    /// Forget every sync state and cursor kept for `peer`; how many records.
    fn forget_peer(&self, peer: &str) -> Result<usize>;
    /// This store's epoch (new at each restore from a backup), if any.
    fn epoch(&self) -> Result<Option<u64>>;

    // ---- the change feed ---------------------------------------------------

    /// The latest durable feed position.
    fn feed_head(&self) -> u64;
    /// `tenant`'s documents changed after `cursor`, oldest first.
    fn tenant_feed_since(
        &self,
        tenant: &str,
        cursor: u64,
        limit: usize,
    ) -> Result<Vec<(u64, EntityId)>>;

    // ---- photos ------------------------------------------------------------

    /// Photos document `id` refers to that the store lacks (now wanted).
    fn missing_blobs(&self, id: EntityId) -> Result<Vec<Sha256Hash>>;
    /// Photos `tenant` still wants, after `after`.
    fn wanted_blobs(
        &self,
        tenant: &str,
        after: Option<&Sha256Hash>,
        limit: usize,
    ) -> Result<Vec<(Sha256Hash, EntityId)>>;
    /// Photos document `id` refers to.
    fn photo_blobs(&self, id: EntityId) -> Result<Vec<Sha256Hash>>;
    /// Store a photo a peer sent for document `id`.
    fn receive_blob(
        &self,
        id: EntityId,
        sha: &Sha256Hash,
        bytes: &[u8],
        max_bytes: usize,
    ) -> Result<BlobPut>;
    /// A photo and its media type, if `tenant` may see it.
    fn blob_for(&self, sha: &Sha256Hash, tenant: &str) -> Result<Option<(Vec<u8>, String)>>;

    // ---- identity (DESIGN.md, "Who may do what") --------------------------

    /// This node's public key.
    fn public_key(&self) -> PublicKey;
    /// The tenant this store enrolled with first, if any.
    fn home_tenant(&self) -> Result<Option<String>>;
    /// Whether this store judges `tenant`'s documents by an authority (it
    /// enrolled with it, or it is the authority).
    fn judges(&self, tenant: &str) -> Result<bool>;
    /// Certify a peer, when this store is the authority of `req.tenant`:
    /// the authority's key, the peer's certificate and this node's own.
    fn certify(
        &self,
        req: &CertificateRequest,
    ) -> Result<Option<(PublicKey, SignedCertificate, SignedCertificate)>>;
    /// Enroll with `tenant`'s authority (see [`Store::enroll`]).
    fn enroll(&self, tenant: &str, authority: PublicKey, cert: &SignedCertificate) -> Result<bool>;
    /// Learn certificates of `tenant`.
    fn learn_certificates(&self, tenant: &str, certs: &[SignedCertificate]) -> Result<usize>;
    /// Learn a revocation list of `tenant`.
    fn learn_revocation_list(&self, tenant: &str, list: &SignedRevocationList) -> Result<bool>;
    /// The revocation list in force for `tenant`.
    fn revocation_list(&self, tenant: &str) -> Result<Option<SignedRevocationList>>;
    /// Learn a role table of `tenant` (see [`Store::learn_role_table`]).
    fn learn_role_table(&self, tenant: &str, table: &SignedRoleTable) -> Result<bool>;
    /// The role table in force for `tenant`, if its authority signed one.
    fn role_table(&self, tenant: &str) -> Result<Option<SignedRoleTable>>;
    /// Certificates of `tenant` by serial.
    fn certificates(&self, tenant: &str, serials: &[u64]) -> Result<Vec<SignedCertificate>>;
    /// The attestations held for some changes of document `id`.
    fn attestations_of_changes(
        &self,
        id: EntityId,
        changes: &[ChangeHash],
    ) -> Result<Vec<Attestation>>;
    /// Take attestations of document `id`'s changes.
    fn add_attestations(&self, id: EntityId, atts: Vec<Attestation>) -> Result<usize>;
}

impl SyncStore for Store {
    fn deferring(&self) -> Self {
        Store::deferring(self)
    }
    fn settle(&self) -> Result<()> {
        Store::settle(self)
    }
    fn admit(
        &self,
        id: EntityId,
        tenant: &str,
        read_only: bool,
        is_request: bool,
        brings_changes: bool,
    ) -> Result<Admission> {
        Store::admit(self, id, tenant, read_only, is_request, brings_changes)
    }
    fn receive(
        &self,
        id: EntityId,
        state: &mut sync::State,
        msg: sync::Message,
        limits: &ReceiveLimits,
        is_request: bool,
    ) -> Result<Received, ReceiveError> {
        Store::receive(self, id, state, msg, limits, is_request)
    }
    fn generate(&self, id: EntityId, state: &mut sync::State) -> Result<Generated> {
        Store::generate(self, id, state)
    }
    fn take_changes(
        &self,
        id: EntityId,
        changes: Vec<Change>,
        limits: &ReceiveLimits,
    ) -> Result<Taken, ReceiveError> {
        Store::take_changes(self, id, changes, limits)
    }
    fn delta_since(&self, id: EntityId, known: &[ChangeHash]) -> Result<Option<Delta>> {
        Store::delta_since(self, id, known)
    }
    fn summary(&self, id: EntityId) -> Result<Option<Summary>> {
        Store::summary(self, id)
    }
    fn contains(&self, id: EntityId) -> Result<bool> {
        Store::contains(self, id)
    }
    fn visible_to(&self, id: EntityId, tenant: &str) -> Result<bool> {
        Store::visible_to(self, id, tenant)
    }
    fn claim(&self, id: EntityId, tenant: &str) -> Result<bool> {
        Store::claim(self, id, tenant)
    }
    fn load_sync_state(&self, peer: &str, id: EntityId) -> Result<Option<Vec<u8>>> {
        Store::load_sync_state(self, peer, id)
    }
    fn save_sync_states(&self, peer: &str, states: Vec<(EntityId, Vec<u8>)>) -> Result<()> {
        Store::save_sync_states(self, peer, states)
    }
    fn peer_cursor(&self, peer: &str, name: &str) -> Result<u64> {
        Store::peer_cursor(self, peer, name)
    }
    fn set_peer_cursor(&self, peer: &str, name: &str, value: u64) -> Result<()> {
        Store::set_peer_cursor(self, peer, name, value)
    }
    fn forget_peer(&self, peer: &str) -> Result<usize> {
        Store::forget_peer(self, peer)
    }
    fn epoch(&self) -> Result<Option<u64>> {
        Store::epoch(self)
    }
    fn feed_head(&self) -> u64 {
        Store::feed_head(self)
    }
    fn tenant_feed_since(
        &self,
        tenant: &str,
        cursor: u64,
        limit: usize,
    ) -> Result<Vec<(u64, EntityId)>> {
        Store::tenant_feed_since(self, tenant, cursor, limit)
    }
    fn missing_blobs(&self, id: EntityId) -> Result<Vec<Sha256Hash>> {
        Store::missing_blobs(self, id)
    }
    fn wanted_blobs(
        &self,
        tenant: &str,
        after: Option<&Sha256Hash>,
        limit: usize,
    ) -> Result<Vec<(Sha256Hash, EntityId)>> {
        Store::wanted_blobs(self, tenant, after, limit)
    }
    fn photo_blobs(&self, id: EntityId) -> Result<Vec<Sha256Hash>> {
        Store::photo_blobs(self, id)
    }
    fn receive_blob(
        &self,
        id: EntityId,
        sha: &Sha256Hash,
        bytes: &[u8],
        max_bytes: usize,
    ) -> Result<BlobPut> {
        Store::receive_blob(self, id, sha, bytes, max_bytes)
    }
    fn blob_for(&self, sha: &Sha256Hash, tenant: &str) -> Result<Option<(Vec<u8>, String)>> {
        Store::blob_for(self, sha, tenant)
    }

    fn public_key(&self) -> PublicKey {
        Store::public_key(self)
    }
    fn home_tenant(&self) -> Result<Option<String>> {
        Store::home_tenant(self)
    }
    fn judges(&self, tenant: &str) -> Result<bool> {
        Ok(Store::tenant_authority(self, tenant)?.is_some())
    }
    fn certify(
        &self,
        req: &CertificateRequest,
    ) -> Result<Option<(PublicKey, SignedCertificate, SignedCertificate)>> {
        Store::certify(self, req)
    }
    fn enroll(&self, tenant: &str, authority: PublicKey, cert: &SignedCertificate) -> Result<bool> {
        Store::enroll(self, tenant, authority, cert)
    }
    fn learn_certificates(&self, tenant: &str, certs: &[SignedCertificate]) -> Result<usize> {
        Store::learn_certificates(self, tenant, certs)
    }
    fn learn_revocation_list(&self, tenant: &str, list: &SignedRevocationList) -> Result<bool> {
        Store::learn_revocation_list(self, tenant, list)
    }
    fn revocation_list(&self, tenant: &str) -> Result<Option<SignedRevocationList>> {
        Store::revocation_list(self, tenant)
    }
    fn learn_role_table(&self, tenant: &str, table: &SignedRoleTable) -> Result<bool> {
        Store::learn_role_table(self, tenant, table)
    }
    fn role_table(&self, tenant: &str) -> Result<Option<SignedRoleTable>> {
        Store::role_table(self, tenant)
    }
    fn certificates(&self, tenant: &str, serials: &[u64]) -> Result<Vec<SignedCertificate>> {
        Store::certificates(self, tenant, serials)
    }
    fn attestations_of_changes(
        &self,
        id: EntityId,
        changes: &[ChangeHash],
    ) -> Result<Vec<Attestation>> {
        Store::attestations_of_changes(self, id, changes)
    }
    fn add_attestations(&self, id: EntityId, atts: Vec<Attestation>) -> Result<usize> {
        Store::add_attestations(self, id, atts)
    }
}
