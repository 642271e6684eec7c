//! The data model: entity ids and types, the schema that says which policy
//! governs each field of each entity type, and what a device may do (its
//! [`Access`]).

mod access;
mod entity_id;
mod entity_type;
mod isolation_status;
mod permit_status;
mod schema;

pub use access::{Access, DEFAULT_TENANT};
pub use entity_id::EntityId;
pub use entity_type::EntityType;
pub use isolation_status::IsolationStatus;
pub use permit_status::PermitStatus;
pub use schema::{EntryField, EntrySchema, FieldPolicy, ScalarKind, Schema};
