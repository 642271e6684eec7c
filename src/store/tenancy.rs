//! Which tenant a document belongs to, and who may see it: a document is
//! claimed by the tenant whose peer first uploads it; unclaimed documents
//! belong to the default tenant.

use super::backend::{Check, Checked};
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
        self.owner_at(self.internal(id)?)
    }

    /// The owner record of the document stored under `id`.
    pub(super) fn owner_at(&self, id: EntityId) -> Result<Option<String>> {
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
        self.visible_at(self.internal(id)?, tenant)
    }

    /// [`Store::visible_to`] of the document stored under `id`.
    pub(super) fn visible_at(&self, id: EntityId, tenant: &str) -> Result<bool> {
        Ok(match self.owner_at(id)? {
            Some(owner) => owner == tenant,
            None => tenant == DEFAULT_TENANT,
        })
    }

    /// The summary of entity `id` if `tenant` may see it; `None` for an
    /// unknown id and for another tenant's entity alike.
    pub fn visible_summary(&self, id: EntityId, tenant: &str) -> Result<Option<Summary>> {
        self.visible_summary_at(self.internal(id)?, tenant)
    }

    fn visible_summary_at(&self, id: EntityId, tenant: &str) -> Result<Option<Summary>> {
        match self.summary_at(id)? {
            Some(s) if self.visible_at(id, tenant)? => Ok(Some(s)),
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
        let internal = self.internal(id)?;
        match self.visible_summary_at(internal, tenant)? {
            Some(s) if s.entity_type == ty => {
                let creator = self.with_doc_at(internal, |d| d.field("created_by").0)?;
                Ok(creator.as_str() == Some(device))
            }
            _ => Ok(false),
        }
    }

    /// Claim document `id` for `tenant` if it has no owner yet and does not
    /// exist. Returns whether `tenant` may use it (it owns it now, or already did).
    /// The claim becomes durable with the document's first write.
    ///
    /// On a handle in a tenant's id space ([`Store::in_tenant`]) the id is
    /// placed under the lock that orders claims: another tenant's id is
    /// claimed as the tenant's own derived id, so a claim succeeds whenever
    /// the tenant does not already hold the id under another owner.
    pub fn claim(&self, id: EntityId, tenant: &str) -> Result<bool> {
        let _guard = self.inner.claim_lock.lock().map_err(poisoned)?;
        let internal = self.internal(id)?;
        if let Some(owner) = self.owner_at(internal)? {
            return Ok(owner == tenant);
        }
        if self.contains_at(internal)? {
            // an unclaimed existing document belongs to the default tenant
            return Ok(tenant == DEFAULT_TENANT);
        }
        let mut batch = self.mapping_records(internal, id);
        batch.push((keys::owner(internal), Some(tenant.as_bytes().to_vec())));
        // only if nobody claimed it meanwhile (another relay over the same
        // database: the claim lock is this process's only)
        let check = Check {
            feed_seq: None,
            expect: vec![(keys::owner(internal), None)],
        };
        match self
            .inner
            .backend
            .apply_checked(batch, &check)
            .map_err(storage)?
        {
            Checked::Applied => Ok(true),
            _ => Ok(self.owner_at(internal)?.as_deref() == Some(tenant)),
        }
    }
}
