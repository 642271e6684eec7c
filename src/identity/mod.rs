//! Who may do what: node keys, certificates, revocation lists, attestations
//! and the role table (DESIGN.md, "Who may do what"; `docs/identity.md`).
//!
//! Pure logic: keys come in as bytes, time as milliseconds since the epoch.
//! Every signature covers canonical bytes that begin with a prefix naming
//! what is signed ([`canonical::Domain`]), so a signature of one kind of
//! object can never be taken for another. Storage, the sync extension that
//! carries these objects and the view's use of them build on this module.

mod attestation;
mod authority;
mod canonical;
mod certificate;
mod error;
mod key;
mod moves;
mod revocation;
mod role;
mod role_table;
mod signer;
mod table_op;

pub use attestation::{Attestation, AttestationKind};
pub use authority::{Authorization, TenantAuthority, Verification};
pub use certificate::{Certificate, SignedCertificate};
pub use error::IdentityError;
pub use key::{NodeKey, PublicKey};
pub use moves::{permitted_moves, permitted_moves_by, roles_allow};
pub use revocation::{RevocationList, SignedRevocationList};
pub use role::{PolicedOp, Role, RoleSet};
pub use role_table::{RoleRows, RoleTable, SignedRoleTable};
pub use signer::Signer;
pub use table_op::{required_roles, TableOp};
