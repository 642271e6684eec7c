//! Certificates: a tenant authority's statement that a public key belongs to
//! a device (and, optionally, a person) of a tenant, with roles, for a time.

use super::canonical::{Domain, Reader, Writer};
use super::error::IdentityError;
use super::key::{NodeKey, PublicKey};
use super::role::{Role, RoleSet};

/// Most roles one certificate can list (there are five).
const MAX_ROLES: u64 = 16;

/// What a certificate says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// Unique per authority; what revocation lists name.
    pub serial: u64,
    /// The tenant the device belongs to.
    pub tenant: String,
    /// The device id (as in the tokens file).
    pub device: String,
    /// The person using the device, if the tokens file names one.
    pub person: Option<String>,
    /// The roles the device holds.
    pub roles: RoleSet,
    /// The device's key.
    pub public_key: PublicKey,
    /// Valid from (ms since the epoch).
    pub not_before: i64,
    /// Valid until (ms since the epoch, inclusive).
    pub not_after: i64,
}

impl Certificate {
    /// Canonical bytes (the signed body).
    pub(crate) fn body(&self) -> Vec<u8> {
        let mut w = Writer::array(8);
        w.u64(self.serial)
            .str(&self.tenant)
            .str(&self.device)
            .opt_str(self.person.as_deref())
            .nested(self.roles.len() as u64);
        for r in &self.roles {
            w.str(r.as_str());
        }
        w.bytes(&self.public_key.0)
            .i64(self.not_before)
            .i64(self.not_after);
        w.finish()
    }

    fn from_body(body: &[u8]) -> Result<Certificate, IdentityError> {
        let mut r = Reader::array(body, "certificate", 8)?;
        let serial = r.u64()?;
        let tenant = r.string()?;
        let device = r.string()?;
        let person = r.opt_string()?;
        let n = r.array_len(MAX_ROLES)?;
        let mut roles = RoleSet::new();
        for _ in 0..n {
            roles.insert(r.string()?.parse::<Role>()?);
        }
        let public_key = PublicKey(r.fixed()?);
        let not_before = r.i64()?;
        let not_after = r.i64()?;
        r.end()?;
        let cert = Certificate {
            serial,
            tenant,
            device,
            person,
            roles,
            public_key,
            not_before,
            not_after,
        };
        // one object, one encoding: refuse duplicate or unordered roles
        if cert.body() != body {
            return Err(IdentityError::malformed("certificate", "not canonical"));
        }
        Ok(cert)
    }

    /// Sign as `authority`.
    pub fn sign(self, authority: &NodeKey) -> SignedCertificate {
        let signature = authority.sign(Domain::Certificate, &self.body());
        SignedCertificate {
            certificate: self,
            signature,
        }
    }

    /// Whether `at` (ms since the epoch) is within the validity period.
    pub fn valid_at(&self, at: i64) -> bool {
        self.not_before <= at && at <= self.not_after
    }

    /// Whether the certificate holds one of `roles`.
    pub fn holds_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.roles.contains(r))
    }
}

/// A certificate with its authority's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCertificate {
    /// What it says.
    pub certificate: Certificate,
    /// The authority's signature over [`Certificate::body`].
    pub signature: [u8; 64],
}

impl SignedCertificate {
    /// Check the authority's signature.
    pub fn verify(&self, authority: &PublicKey) -> Result<(), IdentityError> {
        authority.verify(
            Domain::Certificate,
            &self.certificate.body(),
            &self.signature,
        )
    }

    /// The stored and transmitted form: `[body, signature]`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::array(2);
        w.bytes(&self.certificate.body()).bytes(&self.signature);
        w.finish()
    }

    /// Decode (not verify) the form of [`SignedCertificate::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedCertificate, IdentityError> {
        let mut r = Reader::array(bytes, "certificate", 2)?;
        let body: Vec<u8> = r.bytes_vec()?;
        let signature = r.fixed()?;
        r.end()?;
        Ok(SignedCertificate {
            certificate: Certificate::from_body(&body)?,
            signature,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn cert(serial: u64, key: &NodeKey, roles: &[Role]) -> Certificate {
        Certificate {
            serial,
            tenant: "acme".into(),
            device: format!("tablet-{serial}"),
            person: Some("J. Smith".into()),
            roles: roles.iter().copied().collect(),
            public_key: key.public(),
            not_before: 1_000,
            not_after: 2_000,
        }
    }

    #[test]
    fn a_certificate_round_trips_and_verifies_only_with_its_authority() {
        let authority = NodeKey::from_secret([9; 32]);
        let device = NodeKey::from_secret([1; 32]);
        let signed = cert(7, &device, &[Role::Issuer, Role::Performer]).sign(&authority);
        let decoded = SignedCertificate::from_bytes(&signed.to_bytes()).expect("decode");
        assert_eq!(decoded, signed);
        assert_eq!(decoded.verify(&authority.public()), Ok(()));
        // another tenant's authority, or a forger's key, does not verify it
        let other = NodeKey::from_secret([8; 32]);
        assert_eq!(
            decoded.verify(&other.public()),
            Err(IdentityError::BadSignature("certificate"))
        );
        let forged = cert(7, &device, &[Role::Issuer]).sign(&other);
        assert!(forged.verify(&authority.public()).is_err());
    }

    #[test]
    fn a_changed_field_breaks_the_signature() {
        let authority = NodeKey::from_secret([9; 32]);
        let mut signed =
            cert(7, &NodeKey::from_secret([1; 32]), &[Role::Performer]).sign(&authority);
        signed.certificate.roles.insert(Role::Issuer);
        assert!(signed.verify(&authority.public()).is_err());
        let mut signed = cert(7, &NodeKey::from_secret([1; 32]), &[]).sign(&authority);
        signed.certificate.not_after += 1;
        assert!(signed.verify(&authority.public()).is_err());
    }

    #[test]
    fn validity_is_inclusive_and_malformed_bytes_are_refused() {
        let c = cert(1, &NodeKey::from_secret([1; 32]), &[]);
        assert!(!c.valid_at(999) && c.valid_at(1_000) && c.valid_at(2_000) && !c.valid_at(2_001));
        assert!(SignedCertificate::from_bytes(b"").is_err());
        assert!(SignedCertificate::from_bytes(&[0x82, 0x40, 0x40]).is_err());
        let mut bytes = c.sign(&NodeKey::from_secret([9; 32])).to_bytes();
        bytes.push(0);
        assert!(SignedCertificate::from_bytes(&bytes).is_err());
    }
}
