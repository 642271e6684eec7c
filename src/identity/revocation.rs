//! Revocation lists: the serials a tenant authority no longer vouches for.
//! The highest valid version wins, so lists can arrive in any order.

use std::collections::BTreeSet;

use super::canonical::{Domain, Reader, Writer};
use super::error::IdentityError;
use super::key::{NodeKey, PublicKey};

/// Most serials one list may hold (bounds what a decoded list can cost).
const MAX_SERIALS: u64 = 1 << 20;

/// What a revocation list says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevocationList {
    /// The tenant it is for.
    pub tenant: String,
    /// Higher replaces lower.
    pub version: u64,
    /// Revoked certificate serials.
    pub serials: BTreeSet<u64>,
}

impl RevocationList {
    fn body(&self) -> Vec<u8> {
        let mut w = Writer::array(3);
        w.str(&self.tenant)
            .u64(self.version)
            .nested(self.serials.len() as u64);
        for s in &self.serials {
            w.u64(*s);
        }
        w.finish()
    }

    fn from_body(body: &[u8]) -> Result<RevocationList, IdentityError> {
        let mut r = Reader::array(body, "revocation list", 3)?;
        let tenant = r.string()?;
        let version = r.u64()?;
        let n = r.array_len(MAX_SERIALS)?;
        let mut serials = BTreeSet::new();
        for _ in 0..n {
            serials.insert(r.u64()?);
        }
        r.end()?;
        let list = RevocationList {
            tenant,
            version,
            serials,
        };
        if list.body() != body {
            return Err(IdentityError::malformed("revocation list", "not canonical"));
        }
        Ok(list)
    }

    /// Sign as `authority`.
    pub fn sign(self, authority: &NodeKey) -> SignedRevocationList {
        let signature = authority.sign(Domain::RevocationList, &self.body());
        SignedRevocationList {
            list: self,
            signature,
        }
    }

    /// Whether `serial` is revoked.
    pub fn revokes(&self, serial: u64) -> bool {
        self.serials.contains(&serial)
    }
}

/// A revocation list with its authority's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRevocationList {
    /// What it says.
    pub list: RevocationList,
    /// The authority's signature.
    pub signature: [u8; 64],
}

impl SignedRevocationList {
    /// Check the authority's signature.
    pub fn verify(&self, authority: &PublicKey) -> Result<(), IdentityError> {
        authority.verify(Domain::RevocationList, &self.list.body(), &self.signature)
    }

    /// The stored and transmitted form: `[body, signature]`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::array(2);
        w.bytes(&self.list.body()).bytes(&self.signature);
        w.finish()
    }

    /// Decode (not verify) the form of [`SignedRevocationList::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedRevocationList, IdentityError> {
        let mut r = Reader::array(bytes, "revocation list", 2)?;
        let body = r.bytes_vec()?;
        let signature = r.fixed()?;
        r.end()?;
        Ok(SignedRevocationList {
            list: RevocationList::from_body(&body)?,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_round_trips_and_verifies_only_with_its_authority() {
        let authority = NodeKey::from_secret([9; 32]);
        let signed = RevocationList {
            tenant: "acme".into(),
            version: 3,
            serials: [4, 1].into_iter().collect(),
        }
        .sign(&authority);
        let decoded = SignedRevocationList::from_bytes(&signed.to_bytes()).expect("decode");
        assert_eq!(decoded, signed);
        assert_eq!(decoded.verify(&authority.public()), Ok(()));
        assert!(decoded.list.revokes(4) && !decoded.list.revokes(2));
        assert!(decoded
            .verify(&NodeKey::from_secret([8; 32]).public())
            .is_err());
        let mut tampered = decoded;
        tampered.list.serials.remove(&4);
        assert!(tampered.verify(&authority.public()).is_err());
    }
}
