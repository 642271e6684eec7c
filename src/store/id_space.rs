//! Per-tenant id spaces: the same document id in two tenants is two
//! documents. Clients (and everything above the store: the wire, REST paths
//! and bodies, ids inside documents, views) use *external* ids; the store
//! keys everything of a document by an *internal* id:
//!
//! - the external id itself when the tenant owns it, or when nobody owns it
//!   and the store does not hold it (a first claim), or when nobody owns it,
//!   the store holds it and the tenant is the default one (documents that
//!   were never claimed: the CLI's, a bundle's);
//! - otherwise (another tenant's id) an id derived from (tenant, external id)
//!   with the store's secret key ([`Store::keyed_id`]), which nobody outside
//!   the store can compute or collide with. Its owner record names the
//!   tenant, and `xid/<internal>` maps it back to the external id.
//!
//! The mapping is a pure function of (tenant, id, the id's owner, whether it
//! is stored), and stable because an id's owner never changes: every store of
//! an earlier version is valid as it is (its documents have internal ==
//! external). A handle without a tenant ([`Store::in_tenant`] not called: a
//! device, the CLI, an open node) maps nothing and reads nothing more. See
//! `docs/storage.md`, "Tenancy and ids".

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::failure::storage;
use super::keys;
use super::options::DEFAULT_TENANT;
use super::store::Store;
use crate::error::Result;
use crate::model::EntityId;

/// Where a tenant's id lives in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// Under the id itself.
    Same,
    /// Under the id derived from (tenant, id): another tenant has the id.
    Derived,
}

/// Where `tenant`'s id lives, given the id's `owner` (its `own/` record, if
/// any) and whether the store holds a document under it (`stored`; only
/// consulted for an id nobody owns).
pub(crate) fn place(tenant: &str, owner: Option<&str>, stored: bool) -> Place {
    match owner {
        Some(owner) if owner == tenant => Place::Same,
        Some(_) => Place::Derived,
        // never claimed and stored: the default tenant's
        None if stored && tenant != DEFAULT_TENANT => Place::Derived,
        None => Place::Same,
    }
}

/// The parts the derived id of (`tenant`, `external`) is keyed from.
fn derivation(tenant: &str, external: EntityId) -> [String; 3] {
    [
        "tenant-id".to_string(),
        tenant.to_string(),
        external.to_string(),
    ]
}

impl Store {
    /// A handle on the same store that works in `tenant`'s id space: every
    /// id it takes is the tenant's (external) id, and every id it returns
    /// too. Writes, reads and claims through it never touch another tenant's
    /// document of the same id.
    pub fn in_tenant(&self, tenant: &str) -> Store {
        let mut handle = self.clone();
        handle.tenant = Some(Arc::from(tenant));
        handle
    }

    /// The tenant whose id space this handle works in, if any.
    pub fn id_space(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The internal id this handle stores the document of `external` under
    /// (the same id on a handle without a tenant).
    pub(crate) fn internal(&self, external: EntityId) -> Result<EntityId> {
        match &self.tenant {
            None => Ok(external),
            Some(tenant) => self.internal_for(tenant, external),
        }
    }

    /// The internal id of `tenant`'s document `external`.
    pub(super) fn internal_for(&self, tenant: &str, external: EntityId) -> Result<EntityId> {
        let owner = self.owner_at(external)?;
        let stored = owner.is_none() && tenant != DEFAULT_TENANT && self.contains_at(external)?;
        match place(tenant, owner.as_deref(), stored) {
            Place::Same => Ok(external),
            Place::Derived => {
                let parts = derivation(tenant, external);
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                self.keyed_id(&parts)
            }
        }
    }

    /// The id clients know the document stored under `internal` by. No read
    /// at all while the store holds no derived id.
    pub(crate) fn external(&self, internal: EntityId) -> Result<EntityId> {
        if !self.inner.mapped.load(Ordering::Acquire) {
            return Ok(internal);
        }
        Ok(self
            .inner
            .backend
            .get(&keys::external(internal))
            .map_err(storage)?
            .and_then(|v| keys::id_value(&v))
            .unwrap_or(internal))
    }

    /// The records that bind a newly claimed derived id to its external id.
    pub(super) fn mapping_records(
        &self,
        internal: EntityId,
        external: EntityId,
    ) -> Vec<super::backend::BatchOp> {
        if internal == external {
            return Vec::new();
        }
        self.inner.mapped.store(true, Ordering::Release);
        vec![(keys::external(internal), Some(external.as_bytes().to_vec()))]
    }
}

#[cfg(test)]
mod tests {
    use super::{place, Place};
    use crate::store::DEFAULT_TENANT;

    #[test]
    fn a_tenant_keeps_its_own_ids_and_free_ones() {
        assert_eq!(place("a", Some("a"), true), Place::Same);
        assert_eq!(place("a", Some("a"), false), Place::Same);
        // nobody holds it: a first claim takes the id itself
        assert_eq!(place("a", None, false), Place::Same);
        assert_eq!(place(DEFAULT_TENANT, None, false), Place::Same);
    }

    #[test]
    fn another_tenants_id_is_derived() {
        assert_eq!(place("b", Some("a"), true), Place::Derived);
        // claimed but not written yet: still the other tenant's
        assert_eq!(place("b", Some("a"), false), Place::Derived);
        assert_eq!(place(DEFAULT_TENANT, Some("a"), true), Place::Derived);
    }

    #[test]
    fn unclaimed_stored_documents_are_the_default_tenants() {
        assert_eq!(place(DEFAULT_TENANT, None, true), Place::Same);
        assert_eq!(place("a", None, true), Place::Derived);
    }

    #[test]
    fn the_mapping_is_stable_once_an_id_is_owned() {
        // whoever asks, before or after the document is written, an owned
        // id answers the same
        for stored in [false, true] {
            assert_eq!(place("a", Some("a"), stored), Place::Same);
            assert_eq!(place("b", Some("a"), stored), Place::Derived);
        }
    }
}
