//! What a connection or request may do: its tenant, device and mode.

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
}

impl Access {
    /// Full access to the default tenant (a node without a tokens file).
    pub fn open(device: impl Into<String>) -> Self {
        Access {
            tenant: DEFAULT_TENANT.to_string(),
            device: device.into(),
            read_only: false,
        }
    }
}
