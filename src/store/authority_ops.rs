//! The store as a tenant authority (issuing certificates, revoking them) and
//! as an enrolled device (taking its certificate, learning others' and the
//! revocation list). Whatever changes a judgement is judged again: the
//! documents holding attestations by an affected serial are found through
//! the `asr/` index and their summaries rewritten.

use std::sync::Arc;

use serde::Serialize;

use super::failure::storage;
use super::identity::Identity;
use super::keys;
use super::store::Store;
use crate::error::{Error, Result};
use crate::identity::{
    Certificate, NodeKey, PublicKey, Role, RoleSet, SignedCertificate, Signer, TenantAuthority,
};
use crate::model::DEFAULT_TENANT;

/// How long a device's certificate is valid (it is renewed on every
/// connection, so a device carries a valid one while offline).
pub const DEVICE_CERTIFICATE_DAYS: i64 = 30;
const DAY_MS: i64 = 24 * 3600 * 1000;
/// How far before its issue a certificate is valid (clocks differ).
const CLOCK_SKEW_MS: i64 = 10 * 60 * 1000;
/// The record that says this store vouched for what it held when it became
/// an authority.
const VOUCHED: &str = "vouched";

/// What a device asks the authority to certify.
#[derive(Clone, Debug)]
pub struct CertificateRequest {
    /// The tenant.
    pub tenant: String,
    /// The device.
    pub device: String,
    /// The person using it, if the tokens file names one.
    pub person: Option<String>,
    /// The roles of its token.
    pub roles: RoleSet,
    /// The device's public key.
    pub public_key: PublicKey,
}

/// What `permitsync identity` shows.
#[derive(Clone, Debug, Serialize)]
pub struct IdentityStatus {
    /// The store's device id.
    pub device: String,
    /// Its public key (hex).
    pub public_key: String,
    /// The tenant it enrolled with, if any.
    pub tenant: Option<String>,
    /// The authority key its documents are judged by (hex), if any.
    pub authority: Option<String>,
    /// Whether this store is itself the authority (a relay).
    pub is_authority: bool,
    /// `enforced` (judged by an authority) or `open` (not enrolled: every
    /// operation authorized).
    pub mode: &'static str,
    /// Its own certificate for that tenant, if any.
    pub certificate: Option<CertificateInfo>,
    /// The tenant's own role table in force, if its authority signed one
    /// (otherwise the default table judges).
    pub role_table: Option<RoleTableInfo>,
}

/// A role table, for display.
#[derive(Clone, Debug, Serialize)]
pub struct RoleTableInfo {
    /// Its version.
    pub version: u64,
    /// The rows it overrides: operation -> roles.
    pub rows: std::collections::BTreeMap<String, Vec<String>>,
}

/// A certificate, for display.
#[derive(Clone, Debug, Serialize)]
pub struct CertificateInfo {
    /// Its serial.
    pub serial: u64,
    /// The tenant.
    pub tenant: String,
    /// The device.
    pub device: String,
    /// The person, if named.
    pub person: Option<String>,
    /// The roles.
    pub roles: Vec<String>,
    /// Valid from (ms since the epoch).
    pub not_before: i64,
    /// Valid until (ms since the epoch).
    pub not_after: i64,
}

impl From<&Certificate> for CertificateInfo {
    fn from(c: &Certificate) -> Self {
        CertificateInfo {
            serial: c.serial,
            tenant: c.tenant.clone(),
            device: c.device.clone(),
            person: c.person.clone(),
            roles: c.roles.iter().map(|r| r.as_str().to_string()).collect(),
            not_before: c.not_before,
            not_after: c.not_after,
        }
    }
}

impl Store {
    /// This store's public key.
    pub fn public_key(&self) -> PublicKey {
        self.inner.identity.key().public()
    }

    /// Who this store is, and how its documents are judged.
    pub fn identity_status(&self) -> Result<IdentityStatus> {
        let id = &self.inner.identity;
        let tenant = id.home()?;
        let judging = tenant.clone().unwrap_or_else(|| DEFAULT_TENANT.to_string());
        let authority = id.authority_public(&judging)?;
        let role_table = self.role_table(&judging)?.map(|t| RoleTableInfo {
            version: t.table.version,
            rows: t
                .table
                .rows()
                .into_iter()
                .map(|(op, roles)| {
                    let names = roles.iter().map(|r| r.as_str().to_string()).collect();
                    (op.as_str().to_string(), names)
                })
                .collect(),
        });
        let certificate = match &tenant {
            Some(t) => self.own_certificate(t)?,
            None if id.authority_key()?.is_some() => self.own_certificate(DEFAULT_TENANT)?,
            None => None,
        };
        Ok(IdentityStatus {
            device: self.device_id().to_string(),
            public_key: self.public_key().to_hex(),
            tenant,
            authority: authority.map(|k| k.to_hex()),
            is_authority: id.is_authority_for(&judging)?,
            mode: if authority.is_some() {
                "enforced"
            } else {
                "open"
            },
            certificate: certificate.map(|c| CertificateInfo::from(&c.certificate)),
            role_table,
        })
    }

    /// Use the authority key whose secret is `secret` (`serve
    /// --authority-key`: several relays share one). Kept in memory only.
    pub fn use_authority_key(&self, secret: [u8; 32]) -> Result<PublicKey> {
        let key = NodeKey::from_secret(secret);
        let public = key.public();
        self.inner.identity.set_authority_key(key)?;
        self.vouch_for_history()?;
        Ok(public)
    }

    /// Make this store an authority: its authority key is made (and kept in
    /// the store) unless it has one. Returns the public key.
    pub fn ensure_authority(&self) -> Result<PublicKey> {
        if let Some(k) = self.inner.identity.authority_key()? {
            return Ok(k.public());
        }
        let key = NodeKey::generate();
        let public = key.public();
        self.inner
            .backend
            .apply(vec![Identity::authority_key_record(&key)])
            .map_err(storage)?;
        self.wait_durable()?;
        self.inner.identity.set_authority_key(key)?;
        self.vouch_for_history()?;
        Ok(public)
    }

    /// When a store becomes an authority, what it already held was accepted
    /// before anyone could sign: it vouches for each change it holds (a
    /// delivery attestation naming the device the change's note claims,
    /// with every device role), so an upgrade judges its history as before.
    fn vouch_for_history(&self) -> Result<()> {
        if self
            .inner
            .backend
            .get(&keys::meta(VOUCHED))
            .map_err(storage)?
            .is_some()
        {
            return Ok(());
        }
        self.vouch_all()?;
        self.inner
            .backend
            .apply(vec![(keys::meta(VOUCHED), Some(vec![1]))])
            .map_err(storage)?;
        self.wait_durable()
    }

    fn vouch_all(&self) -> Result<()> {
        let all: RoleSet = Role::ALL
            .into_iter()
            .filter(|r| *r != Role::Attest)
            .collect();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self
                .inner
                .backend
                .scan_prefix(keys::ENTITY, after.as_deref(), 256)
                .map_err(storage)?;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            after = Some(last.clone());
            for (k, _) in &page {
                let Some(id) = keys::trailing_id(k) else {
                    continue;
                };
                let tenant = self.judging_tenant(id)?;
                let Some(relay) = self.own_certificate(&tenant)? else {
                    continue;
                };
                let key = Arc::clone(self.inner.identity.key());
                let slot = self.slot(id)?;
                let mut g = self.lock_loaded(id, &slot)?;
                let Some(doc) = g.doc.as_mut() else { continue };
                let atts: Vec<_> = doc
                    .doc()
                    .get_changes(&[])
                    .iter()
                    .map(|c| {
                        let device = c
                            .message()
                            .and_then(crate::write::ChangeNote::parse)
                            .map(|n| n.device)
                            .unwrap_or_default();
                        Signer::on_behalf(key.clone(), &relay.certificate, device, all.clone())
                            .attest(c.hash())
                    })
                    .collect();
                doc.attest(atts);
                let unsaved = doc.take_unsaved();
                let mut batch = self.attestation_records(id, &unsaved)?;
                batch.extend(self.refreshed_summary(id, &g)?);
                self.inner.backend.apply(batch).map_err(storage)?;
            }
            self.wait_durable()?;
        }
    }

    /// The authority `tenant`'s documents are judged by here, if any.
    pub fn tenant_authority(&self, tenant: &str) -> Result<Option<Arc<TenantAuthority>>> {
        self.inner
            .identity
            .authority(self.inner.backend.as_ref(), tenant)
    }

    /// Certify a device (this store must be `tenant`'s authority). The
    /// device's current certificate is returned again while it is less than
    /// a day old and still says the same; otherwise a new one is issued,
    /// valid for [`DEVICE_CERTIFICATE_DAYS`].
    pub fn issue_certificate(&self, req: &CertificateRequest) -> Result<SignedCertificate> {
        let now = self.inner.opts.clock.now_ms();
        self.issue(
            req,
            now - CLOCK_SKEW_MS,
            now + DEVICE_CERTIFICATE_DAYS * DAY_MS,
            now,
        )
    }

    fn issue(
        &self,
        req: &CertificateRequest,
        not_before: i64,
        not_after: i64,
        now: i64,
    ) -> Result<SignedCertificate> {
        let id = &self.inner.identity;
        if !id.is_authority_for(&req.tenant)? {
            return Err(Error::InvalidInput(format!(
                "this node is not the authority of tenant {}",
                req.tenant
            )));
        }
        let Some(authority_key) = id.authority_key()? else {
            return Err(Error::InvalidInput(
                "this node holds no authority key".into(),
            ));
        };
        let authority = self
            .tenant_authority(&req.tenant)?
            .ok_or_else(|| Error::storage("the authority vanished"))?;
        let fresh = authority.certificates().rev().find(|c| {
            c.device == req.device
                && c.public_key == req.public_key
                && c.person == req.person
                && c.roles == req.roles
                && c.not_after - now > (not_after - now) - DAY_MS
                && c.valid_at(now)
                && !authority.revocations().revokes(c.serial)
        });
        if let Some(c) = fresh {
            return Ok(c.clone().sign(&authority_key));
        }
        let cert = Certificate {
            serial: serial_of(req, not_before, not_after),
            tenant: req.tenant.clone(),
            device: req.device.clone(),
            person: req.person.clone(),
            roles: req.roles.clone(),
            public_key: req.public_key,
            not_before,
            not_after,
        }
        .sign(&authority_key);
        self.learn_certificates(&req.tenant, std::slice::from_ref(&cert))?;
        Ok(cert)
    }

    /// Certify a peer when this store is the authority of `req.tenant`:
    /// the authority's public key, the peer's certificate and this store's
    /// own (which a peer needs to check this relay's attestations).
    pub fn certify(
        &self,
        req: &CertificateRequest,
    ) -> Result<Option<(PublicKey, SignedCertificate, SignedCertificate)>> {
        let id = &self.inner.identity;
        let Some(key) = id.authority_key()? else {
            return Ok(None);
        };
        if !id.is_authority_for(&req.tenant)? {
            return Ok(None);
        }
        let cert = self.issue_certificate(req)?;
        let own = self
            .own_certificate(&req.tenant)?
            .ok_or_else(|| Error::storage("an authority without its own certificate"))?;
        Ok(Some((key.public(), cert, own)))
    }

    /// This store's own certificate for `tenant`: on an authority, its own
    /// (every role, `attest` included; valid from the epoch, so it vouches
    /// for what the store held before it became an authority), made or
    /// renewed here; on an enrolled device, the one it received.
    pub fn own_certificate(&self, tenant: &str) -> Result<Option<SignedCertificate>> {
        let now = self.inner.opts.clock.now_ms();
        if let Some(cert) = self.inner.identity.cached_own(tenant, now, 3_600_000)? {
            return Ok(cert);
        }
        let cert = self.look_up_own_certificate(tenant, now)?;
        self.inner.identity.cache_own(tenant, now, cert.clone())?;
        Ok(cert)
    }

    fn look_up_own_certificate(&self, tenant: &str, now: i64) -> Result<Option<SignedCertificate>> {
        let id = &self.inner.identity;
        if id.is_authority_for(tenant)? {
            let req = CertificateRequest {
                tenant: tenant.to_string(),
                device: self.device_id().to_string(),
                person: None,
                roles: Role::ALL.into_iter().collect(),
                public_key: self.public_key(),
            };
            return self.issue(&req, 0, now + 365 * DAY_MS, now).map(Some);
        }
        let Some(serial) = self
            .inner
            .backend
            .get(&keys::own_certificate(tenant))
            .map_err(storage)?
        else {
            return Ok(None);
        };
        let serial = keys::trailing_u64(&serial).unwrap_or(0);
        Ok(self.certificates(tenant, &[serial])?.into_iter().next())
    }

    /// Enroll with `tenant`'s authority `authority`: keep its key and this
    /// store's certificate `cert`. Refused when the certificate is not this
    /// store's or not signed by that authority, or when the store enrolled
    /// with another authority for the tenant. Every document the tenant
    /// judges is judged again. Returns whether anything changed.
    pub fn enroll(
        &self,
        tenant: &str,
        authority: PublicKey,
        cert: &SignedCertificate,
    ) -> Result<bool> {
        let id = &self.inner.identity;
        cert.verify(&authority)
            .map_err(|e| Error::InvalidInput(format!("certificate: {e}")))?;
        let c = &cert.certificate;
        if c.tenant != tenant || c.public_key != self.public_key() {
            return Err(Error::InvalidInput(
                "the certificate is for another tenant or key".into(),
            ));
        }
        match id.enrolled(tenant)? {
            Some(k) if k != authority => {
                return Err(Error::InvalidInput(format!(
                    "this store enrolled with another authority for tenant {tenant} ({k})"
                )))
            }
            _ => {}
        }
        let first = id.enrolled(tenant)?.is_none();
        let mut batch = vec![(keys::enrolled_authority(tenant), Some(authority.0.to_vec()))];
        let home = id.home()?.is_none();
        if home {
            batch.push(Identity::home_record(tenant));
        }
        batch.push((
            keys::own_certificate(tenant),
            Some(c.serial.to_be_bytes().to_vec()),
        ));
        self.inner.backend.apply(batch).map_err(storage)?;
        id.note_enrolled(tenant, authority, home)?;
        self.learn_certificates(tenant, std::slice::from_ref(cert))?;
        if first {
            self.rejudge_all()?;
        }
        Ok(first)
    }

    /// Learn certificates of `tenant` (from a peer, a bundle or this
    /// authority). Each is kept only when the tenant's authority signed it
    /// for that tenant; documents holding attestations by a new serial are
    /// judged again. Returns how many were new.
    pub fn learn_certificates(&self, tenant: &str, certs: &[SignedCertificate]) -> Result<usize> {
        let Some(current) = self.tenant_authority(tenant)? else {
            return Ok(0); // open mode: nothing to judge by
        };
        let mut authority = (*current).clone();
        let mut batch = Vec::new();
        let mut new = Vec::new();
        for cert in certs {
            match authority.add_certificate(cert) {
                Ok(true) => {
                    batch.push((
                        keys::certificate(tenant, cert.certificate.serial),
                        Some(cert.to_bytes()),
                    ));
                    new.push(cert.certificate.serial);
                }
                Ok(false) => {}
                Err(e) => tracing::debug!(tenant, error = %e, "certificate refused"),
            }
        }
        if new.is_empty() {
            return Ok(0);
        }
        self.inner.backend.apply(batch).map_err(storage)?;
        self.wait_durable()?;
        self.inner.identity.cache(tenant, Arc::new(authority))?;
        self.rejudge_serials(tenant, &new)?;
        Ok(new.len())
    }

    /// The certificates of `tenant` with these serials that the store holds.
    pub fn certificates(&self, tenant: &str, serials: &[u64]) -> Result<Vec<SignedCertificate>> {
        let mut out = Vec::new();
        for s in serials {
            if let Some(bytes) = self
                .inner
                .backend
                .get(&keys::certificate(tenant, *s))
                .map_err(storage)?
            {
                if let Ok(c) = SignedCertificate::from_bytes(&bytes) {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }
}

/// A certificate's serial: 63 bits of a hash of what it says, so relays that
/// share one authority key never give one serial to two different
/// certificates (and the same request at the same moment gets the same).
fn serial_of(req: &CertificateRequest, not_before: i64, not_after: i64) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [req.tenant.as_bytes(), b"\0", req.device.as_bytes(), b"\0"] {
        h.update(part);
    }
    h.update(req.person.as_deref().unwrap_or("\u{1}").as_bytes());
    h.update(b"\0");
    for r in &req.roles {
        h.update(r.as_str().as_bytes());
        h.update(b",");
    }
    h.update(req.public_key.0);
    h.update(not_before.to_be_bytes());
    h.update(not_after.to_be_bytes());
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(first) >> 1).max(1)
}
