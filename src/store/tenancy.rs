//! Which tenant a document belongs to, and who may see it: a document is
//! claimed by the tenant whose peer first uploads it; unclaimed documents
//! belong to the default tenant.

use super::failure::{poisoned, storage};
use super::keys;
use super::options::DEFAULT_TENANT;
use super::store::Store;
use super::summary::Summary;
use crate::error::Result;
use crate::model::{EntityId, EntityType};

impl Store {
    /// The tenant document `id` belongs to, if it was ever claimed.
    pub fn owner(&self, id: EntityId) -> Result<Option<String>> {
        Ok(self
            .inner
            .backend
            .get(&keys::owner(id))
            .map_err(storage)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Whether `tenant` may see document `id`: it owns it, or nobody claimed it
    /// and `tenant` is the default tenant.
    pub fn visible_to(&self, id: EntityId, tenant: &str) -> Result<bool> {
        Ok(match self.owner(id)? {
            Some(owner) => owner == tenant,
            None => tenant == DEFAULT_TENANT,
        })
    }

    /// The summary of entity `id` if `tenant` may see it; `None` for an
    /// unknown id and for another tenant's entity alike.
    pub fn visible_summary(&self, id: EntityId, tenant: &str) -> Result<Option<Summary>> {
        match self.summary(id)? {
            Some(s) if self.visible_to(id, tenant)? => Ok(Some(s)),
            _ => Ok(None),
        }
    }

    /// Whether entity `id` is a `ty` of `tenant`'s that `device` created: a
    /// create retried after its answer was lost finds its entity this way.
    pub fn created_by(
        &self,
        id: EntityId,
        tenant: &str,
        ty: EntityType,
        device: &str,
    ) -> Result<bool> {
        match self.visible_summary(id, tenant)? {
            Some(s) if s.entity_type == ty => {
                let creator = self.with_doc(id, |d| d.field("created_by").0)?;
                Ok(creator.as_str() == Some(device))
            }
            _ => Ok(false),
        }
    }

    /// Claim document `id` for `tenant` if it has no owner yet and does not
    /// exist. Returns whether `tenant` may use it (it owns it now, or already did).
    /// The claim becomes durable with the document's first write.
    pub fn claim(&self, id: EntityId, tenant: &str) -> Result<bool> {
        let _guard = self.inner.claim_lock.lock().map_err(poisoned)?;
        if let Some(owner) = self.owner(id)? {
            return Ok(owner == tenant);
        }
        if self.contains(id)? {
            // an unclaimed existing document belongs to the default tenant
            return Ok(tenant == DEFAULT_TENANT);
        }
        self.inner
            .backend
            .apply(vec![(keys::owner(id), Some(tenant.as_bytes().to_vec()))])
            .map_err(storage)?;
        Ok(true)
    }
}
