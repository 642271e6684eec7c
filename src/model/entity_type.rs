use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The three kinds of Permit-to-Work entity. Stored in each document's immutable
/// `type` field.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EntityType {
    /// A permit to work.
    Permit,
    /// An energy isolation point belonging to a permit.
    IsolationPoint,
    /// The closeout record of a permit.
    Closeout,
}

impl EntityType {
    /// Every entity type, in a fixed order.
    pub const ALL: [EntityType; 3] = [
        EntityType::Permit,
        EntityType::IsolationPoint,
        EntityType::Closeout,
    ];

    /// The wire name (`permit`, `isolation_point`, `closeout`).
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Permit => "permit",
            EntityType::IsolationPoint => "isolation_point",
            EntityType::Closeout => "closeout",
        }
    }

    /// A one-byte code used in storage keys.
    pub fn code(self) -> u8 {
        match self {
            EntityType::Permit => b'p',
            EntityType::IsolationPoint => b'i',
            EntityType::Closeout => b'c',
        }
    }

    /// The inverse of [`EntityType::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        EntityType::ALL.into_iter().find(|t| t.code() == code)
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a string that names no entity type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown entity type {0:?} (expected permit, isolation_point or closeout)")]
pub struct UnknownEntityType(pub String);

impl FromStr for EntityType {
    type Err = UnknownEntityType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntityType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEntityType(s.to_string()))
    }
}
