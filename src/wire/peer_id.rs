//! Peer identifiers.

use std::borrow::Borrow;
use std::fmt;

/// Ephemeral identifier of a peer (one process, one browser tab).
///
/// automerge-repo treats peer ids as opaque strings; the JavaScript
/// implementation generates random ones. Any string is accepted.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PeerId(pub String);

impl PeerId {
    /// Wraps a string.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Unwraps the inner string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<String> for PeerId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for PeerId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl From<PeerId> for String {
    fn from(id: PeerId) -> Self {
        id.0
    }
}

impl AsRef<str> for PeerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for PeerId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_agree() {
        let a = PeerId::new("peer-a");
        assert_eq!(a, PeerId::from("peer-a"));
        assert_eq!(a, PeerId::from(String::from("peer-a")));
        assert_eq!(a.as_str(), "peer-a");
        assert_eq!(a.to_string(), "peer-a");
        assert_eq!(format!("{a:?}"), "PeerId(\"peer-a\")");
        assert_eq!(String::from(a), "peer-a");
    }
}
