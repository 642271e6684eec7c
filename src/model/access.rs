//! What a connection or request may do: its tenant, device, mode and roles.

use crate::identity::{Role, RoleSet};

/// The tenant of a node without a tokens file, and of documents that no
/// tenant claimed.
pub const DEFAULT_TENANT: &str = "default";

/// The rights a bearer token grants.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    /// The tenant: documents it uploaded first belong to it; it sees no others.
    pub tenant: String,
    /// The device the token belongs to.
    pub device: String,
    /// A read-only device's changes are not stored.
    pub read_only: bool,
    /// The roles the token grants (`None`: every role of its tenant, as a
    /// tokens-file entry without `roles`; DESIGN.md, "Who may do what").
    pub roles: Option<RoleSet>,
    /// The person using the device, if the tokens file names one.
    pub person: Option<String>,
}

impl Access {
    /// Full access to the default tenant (a node without a tokens file).
    pub fn open(device: impl Into<String>) -> Self {
        Access {
            tenant: DEFAULT_TENANT.to_string(),
            device: device.into(),
            read_only: false,
            roles: None,
            person: None,
        }
    }

    /// The roles the token grants: those it names, or every role a device
    /// of the tenant can hold (all but a relay's `attest`).
    pub fn effective_roles(&self) -> RoleSet {
        match &self.roles {
            Some(r) => r.clone(),
            None => Role::ALL
                .into_iter()
                .filter(|r| *r != Role::Attest)
                .collect(),
        }
    }
}
