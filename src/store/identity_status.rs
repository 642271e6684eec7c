//! What `permitsync identity` shows of a store: its key, the tenant it
//! enrolled with, the authority judging its documents, its own
//! certificate.

use serde::Serialize;

use super::store::Store;
use crate::error::Result;
use crate::identity::Certificate;
use crate::model::DEFAULT_TENANT;

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
    /// The tenant this store enrolled with, if any (one read of memory).
    pub fn home_tenant(&self) -> Result<Option<String>> {
        self.inner.identity.home()
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
}
