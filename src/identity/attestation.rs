//! Attestations: signed statements about one change, kept beside it (a
//! change's hash covers its message, so a signature cannot live inside it).

use automerge::ChangeHash;

use super::canonical::{Domain, Reader, Writer};
use super::error::IdentityError;
use super::key::{NodeKey, PublicKey};
use super::role::{Role, RoleSet};

const MAX_ROLES: u64 = 16;

/// What an attestation states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttestationKind {
    /// "I, the holder of certificate `serial`, wrote this change."
    Author,
    /// "Device `device` uploaded this change to me over a connection whose
    /// token holds `roles`", by a relay whose certificate holds `attest`. For
    /// clients that do not sign (JavaScript automerge-repo clients) and for
    /// the relay's own REST and classic writes on a device's behalf.
    Delivery {
        /// The uploading device.
        device: String,
        /// The roles of its token.
        roles: RoleSet,
        /// The person its token names, if any (a sixth field of the body,
        /// left out when there is none, so older attestations read alike).
        person: Option<String>,
    },
}

/// A signed statement about one change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attestation {
    /// The change it is about.
    pub change: ChangeHash,
    /// The certificate of the signer.
    pub serial: u64,
    /// What it states.
    pub kind: AttestationKind,
    /// The signer's signature.
    pub signature: [u8; 64],
}

impl Attestation {
    /// The author's own attestation of a change it wrote.
    pub fn author(change: ChangeHash, serial: u64, key: &NodeKey) -> Attestation {
        let mut a = Attestation {
            change,
            serial,
            kind: AttestationKind::Author,
            signature: [0; 64],
        };
        a.signature = key.sign(a.domain(), &a.body());
        a
    }

    /// A relay's attestation of a change a device uploaded.
    pub fn delivery(
        change: ChangeHash,
        relay_serial: u64,
        device: String,
        roles: RoleSet,
        relay_key: &NodeKey,
    ) -> Attestation {
        Attestation::delivery_by(change, relay_serial, device, None, roles, relay_key)
    }

    /// [`Attestation::delivery`] for a token that names its person.
    pub fn delivery_by(
        change: ChangeHash,
        relay_serial: u64,
        device: String,
        person: Option<String>,
        roles: RoleSet,
        relay_key: &NodeKey,
    ) -> Attestation {
        let mut a = Attestation {
            change,
            serial: relay_serial,
            kind: AttestationKind::Delivery {
                device,
                roles,
                person,
            },
            signature: [0; 64],
        };
        a.signature = relay_key.sign(a.domain(), &a.body());
        a
    }

    fn domain(&self) -> Domain {
        match self.kind {
            AttestationKind::Author => Domain::AuthorAttestation,
            AttestationKind::Delivery { .. } => Domain::DeliveryAttestation,
        }
    }

    fn body(&self) -> Vec<u8> {
        match &self.kind {
            AttestationKind::Author => {
                let mut w = Writer::array(3);
                w.u64(0).bytes(&self.change.0).u64(self.serial);
                w.finish()
            }
            AttestationKind::Delivery {
                device,
                roles,
                person,
            } => {
                let mut w = Writer::array(if person.is_some() { 6 } else { 5 });
                w.u64(1)
                    .bytes(&self.change.0)
                    .u64(self.serial)
                    .str(device)
                    .nested(roles.len() as u64);
                for r in roles {
                    w.str(r.as_str());
                }
                if let Some(p) = person {
                    w.str(p);
                }
                w.finish()
            }
        }
    }

    /// Check the signature with the signer's key (from its certificate).
    pub fn verify_with(&self, signer: &PublicKey) -> Result<(), IdentityError> {
        signer.verify(self.domain(), &self.body(), &self.signature)
    }

    /// The stored and transmitted form: `[body, signature]`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::array(2);
        w.bytes(&self.body()).bytes(&self.signature);
        w.finish()
    }

    /// Decode (not verify) the form of [`Attestation::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Attestation, IdentityError> {
        let mut r = Reader::array(bytes, "attestation", 2)?;
        let body = r.bytes_vec()?;
        let signature = r.fixed()?;
        r.end()?;
        let a = Attestation::from_body(&body, signature)?;
        if a.body() != body {
            return Err(IdentityError::malformed("attestation", "not canonical"));
        }
        Ok(a)
    }

    fn from_body(body: &[u8], signature: [u8; 64]) -> Result<Attestation, IdentityError> {
        // the kind (and, for a delivery, whether it names a person) decides
        // the length: peek at the header and the kind first
        let (kind, len) = match (body.first(), body.get(1)) {
            (Some(0x83), Some(0)) => (0, 3),
            (Some(0x85), Some(1)) => (1, 5),
            (Some(0x86), Some(1)) => (1, 6),
            _ => return Err(IdentityError::malformed("attestation", "unknown kind")),
        };
        let mut r = Reader::array(body, "attestation", len)?;
        r.u64()?;
        let change = ChangeHash(r.fixed()?);
        let serial = r.u64()?;
        let kind = if kind == 0 {
            AttestationKind::Author
        } else {
            let device = r.string()?;
            let n = r.array_len(MAX_ROLES)?;
            let mut roles = RoleSet::new();
            for _ in 0..n {
                roles.insert(r.string()?.parse::<Role>()?);
            }
            let person = if len == 6 { Some(r.string()?) } else { None };
            AttestationKind::Delivery {
                device,
                roles,
                person,
            }
        };
        r.end()?;
        Ok(Attestation {
            change,
            serial,
            kind,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attestations_round_trip_and_verify_only_with_the_signer() {
        let key = NodeKey::from_secret([3; 32]);
        let other = NodeKey::from_secret([4; 32]).public();
        let h = ChangeHash([5; 32]);
        let author = Attestation::author(h, 11, &key);
        let delivery = Attestation::delivery(
            h,
            12,
            "js-client".into(),
            [Role::Issuer].into_iter().collect(),
            &key,
        );
        let named = Attestation::delivery_by(
            h,
            12,
            "tablet-3".into(),
            Some("J. Smith".into()),
            [Role::Issuer].into_iter().collect(),
            &key,
        );
        // naming the person is part of what is signed
        let mut renamed = named.clone();
        if let AttestationKind::Delivery { person, .. } = &mut renamed.kind {
            *person = Some("A. Liar".into());
        }
        assert!(renamed.verify_with(&key.public()).is_err());
        for a in [author, delivery, named] {
            let decoded = Attestation::from_bytes(&a.to_bytes()).expect("decode");
            assert_eq!(decoded, a);
            assert_eq!(decoded.verify_with(&key.public()), Ok(()));
            assert!(decoded.verify_with(&other).is_err());
            let mut moved = decoded.clone();
            moved.change = ChangeHash([6; 32]);
            assert!(moved.verify_with(&key.public()).is_err());
        }
    }

    #[test]
    fn an_author_signature_is_not_a_delivery_signature() {
        // same signer, same change and serial: the domain prefix keeps the
        // kinds apart
        let key = NodeKey::from_secret([3; 32]);
        let author = Attestation::author(ChangeHash([5; 32]), 1, &key);
        let as_delivery = Attestation {
            kind: AttestationKind::Delivery {
                device: "x".into(),
                person: None,
                roles: RoleSet::new(),
            },
            ..author
        };
        assert!(as_delivery.verify_with(&key.public()).is_err());
        assert!(Attestation::from_bytes(&[0x82, 0x41, 0x07, 0x40]).is_err());
    }
}
