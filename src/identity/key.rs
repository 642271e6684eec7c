//! Ed25519 keys: a node's signing key and the public keys others verify with.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use super::canonical::Domain;
use super::error::IdentityError;

/// A node's (or a tenant authority's) signing key. It never leaves the store
/// that made it; only [`NodeKey::public`] travels.
#[derive(Clone)]
pub struct NodeKey(SigningKey);

impl NodeKey {
    /// A key from 32 secret bytes (a stored key, or 32 bytes from a CSPRNG).
    pub fn from_secret(secret: [u8; 32]) -> NodeKey {
        NodeKey(SigningKey::from_bytes(&secret))
    }

    /// A new random key.
    pub fn generate() -> NodeKey {
        NodeKey::from_secret(rand::random())
    }

    /// The secret bytes, for the store that keeps the key.
    pub fn secret(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Sign `body` as an object of kind `domain`.
    pub(crate) fn sign(&self, domain: Domain, body: &[u8]) -> [u8; 64] {
        self.0.sign(&domain.prefixed(body)).to_bytes()
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKey(public {})", self.public())
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Check that `signature` signs `body` as an object of kind `domain`.
    pub(crate) fn verify(
        &self,
        domain: Domain,
        body: &[u8],
        signature: &[u8; 64],
    ) -> Result<(), IdentityError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| IdentityError::InvalidKey)?;
        key.verify(&domain.prefixed(body), &Signature::from_bytes(signature))
            .map_err(|_| IdentityError::BadSignature(domain.name()))
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// From lower- or upper-case hex.
    pub fn from_hex(s: &str) -> Result<PublicKey, IdentityError> {
        let bytes = hex::decode(s).map_err(|e| IdentityError::malformed("public key", e))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| IdentityError::malformed("public key", "not 32 bytes"))?;
        Ok(PublicKey(arr))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_domain_body_and_key() {
        let k = NodeKey::from_secret([1; 32]);
        let sig = k.sign(Domain::Certificate, b"body");
        let pk = k.public();
        assert_eq!(pk.verify(Domain::Certificate, b"body", &sig), Ok(()));
        assert!(pk.verify(Domain::RevocationList, b"body", &sig).is_err());
        assert!(pk.verify(Domain::Certificate, b"other", &sig).is_err());
        let other = NodeKey::from_secret([2; 32]).public();
        assert!(other.verify(Domain::Certificate, b"body", &sig).is_err());
        assert_eq!(PublicKey::from_hex(&pk.to_hex()), Ok(pk));
        assert!(format!("{k:?}").contains(&pk.to_hex()));
        assert!(!format!("{k:?}").contains(&hex::encode(k.secret())));
    }
}
