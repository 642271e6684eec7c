//! Revocation, and judging again what it touches: the authority revokes a
//! device's certificates by signing a new list; every store learns the
//! highest valid version, and the documents holding attestations by a
//! serial whose standing changed (found through the `asr/` index) are
//! judged again and their summaries rewritten. A new role table judges
//! again every document of its tenant (`role_tables.rs`).

use std::collections::BTreeSet;
use std::sync::Arc;

use super::failure::storage;
use super::keys;
use super::store::Store;
use crate::error::{Error, Result};
use crate::identity::SignedRevocationList;
use crate::model::EntityId;

impl Store {
    /// Learn a revocation list of `tenant`; the highest valid version wins.
    /// Documents holding attestations by a newly revoked serial are judged
    /// again. Returns whether it replaced the one in force.
    pub fn learn_revocation_list(&self, tenant: &str, list: &SignedRevocationList) -> Result<bool> {
        let Some(current) = self.tenant_authority(tenant)? else {
            return Ok(false);
        };
        let mut authority = (*current).clone();
        let before: BTreeSet<u64> = authority.revocations().serials.clone();
        match authority.add_revocation_list(list) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) => {
                tracing::debug!(tenant, error = %e, "revocation list refused");
                return Ok(false);
            }
        }
        self.inner
            .backend
            .apply(vec![(keys::revocation_list(tenant), Some(list.to_bytes()))])
            .map_err(storage)?;
        self.wait_durable()?;
        let changed: Vec<u64> = before
            .symmetric_difference(&authority.revocations().serials)
            .copied()
            .collect();
        self.inner.identity.cache(tenant, Arc::new(authority))?;
        self.rejudge_serials(tenant, &changed)?;
        Ok(true)
    }

    /// Revoke every certificate of `device` in `tenant` (this store must be
    /// its authority): a new revocation list, learnt here and returned to be
    /// sent on. `None` when the device holds no unrevoked certificate.
    pub fn revoke_device(
        &self,
        tenant: &str,
        device: &str,
    ) -> Result<Option<SignedRevocationList>> {
        let Some(authority_key) = self.inner.identity.authority_key()? else {
            return Err(Error::InvalidInput(
                "this node holds no authority key".into(),
            ));
        };
        let Some(authority) = self.tenant_authority(tenant)? else {
            return Ok(None);
        };
        let mut list = authority.revocations().clone();
        let before = list.serials.len();
        list.serials.extend(
            authority
                .certificates()
                .filter(|c| c.device == device)
                .map(|c| c.serial),
        );
        if list.serials.len() == before {
            return Ok(None);
        }
        list.version += 1;
        list.tenant = tenant.to_string();
        let signed = list.sign(&authority_key);
        self.learn_revocation_list(tenant, &signed)?;
        Ok(Some(signed))
    }

    /// The revocation list in force for `tenant`, if any was signed.
    pub fn revocation_list(&self, tenant: &str) -> Result<Option<SignedRevocationList>> {
        Ok(self
            .inner
            .backend
            .get(&keys::revocation_list(tenant))
            .map_err(storage)?
            .and_then(|b| SignedRevocationList::from_bytes(&b).ok()))
    }

    /// Judge again every document holding attestations by one of `serials`.
    pub(super) fn rejudge_serials(&self, tenant: &str, serials: &[u64]) -> Result<()> {
        let mut docs = BTreeSet::new();
        for s in serials {
            let prefix = keys::attested_by_prefix(tenant, *s);
            for (k, _) in self
                .inner
                .backend
                .scan_prefix(&prefix, None, usize::MAX)
                .map_err(storage)?
            {
                if let Some(id) = keys::trailing_id(&k) {
                    docs.insert(id);
                }
            }
        }
        for id in docs {
            self.rejudge(id)?;
        }
        Ok(())
    }

    /// Judge again every stored document (the store just enrolled).
    pub(super) fn rejudge_all(&self) -> Result<()> {
        self.rejudge_where(|_| Ok(true))
    }

    /// Judge again every stored document `tenant`'s authority judges (its
    /// role table changed).
    pub(super) fn rejudge_tenant(&self, tenant: &str) -> Result<()> {
        self.rejudge_where(|id| Ok(self.judging_tenant(id)? == tenant))
    }

    fn rejudge_where(&self, keep: impl Fn(EntityId) -> Result<bool>) -> Result<()> {
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
                if let Some(id) = keys::trailing_id(k) {
                    if keep(id)? {
                        self.rejudge(id)?;
                    }
                }
            }
        }
    }

    /// Judge the document stored under `id` by what the store knows now,
    /// and rewrite its summary when its headline changed.
    fn rejudge(&self, id: EntityId) -> Result<()> {
        let slot = self.slot(id)?;
        let mut g = self.lock_loaded(id, &slot)?;
        if let Some(mut doc) = g.doc.take() {
            let judged = self.judge(id, &mut doc);
            g.doc = Some(doc);
            judged?;
        }
        let batch = self.refreshed_summary(id, &g)?;
        if !batch.is_empty() {
            self.inner.backend.apply(batch).map_err(storage)?;
            drop(g);
            self.wait_durable()?;
        }
        Ok(())
    }
}
