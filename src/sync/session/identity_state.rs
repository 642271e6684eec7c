//! What a session keeps of the identity extension (`identity.rs` acts on it).

use std::collections::BTreeMap;

use crate::identity::{Attestation, SignedRoleTable};
use crate::model::EntityId;

/// What a session keeps of the identity extension.
#[derive(Default)]
pub(super) struct IdentityState {
    /// The tenant whose certificates this connection carries, once known.
    pub(super) tenant: Option<String>,
    /// Serials whose certificates went to the peer on this connection.
    pub(super) sent_serials: std::collections::HashSet<u64>,
    /// The version of the revocation list sent to the peer.
    pub(super) sent_revocations: u64,
    /// The role table the peer holds, as far as this connection knows (sent
    /// to it, or received from it).
    pub(super) sent_role_table: Option<SignedRoleTable>,
    /// Attestations received for documents not admitted yet.
    pub(super) stashed: BTreeMap<EntityId, Vec<Attestation>>,
}
