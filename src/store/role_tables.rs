//! A tenant's own role table in the store: signed by the authority when its
//! configuration changes, learnt from peers and bundles (only when the
//! tenant's authority signed it), kept under `rlt/<tenant>`; learning a
//! newer one judges the tenant's documents again, as a revocation list does.

use std::sync::{Arc, Mutex};

use super::failure::{poisoned, storage};
use super::keys;
use super::store::Store;
use crate::error::{Error, Result};
use crate::identity::{RoleRows, RoleTable, SignedRoleTable};

/// Learning a table is read, compare, write: one at a time, so two tables
/// arriving together on two connections cannot leave the lower one in force.
static LEARNING: Mutex<()> = Mutex::new(());

impl Store {
    /// Learn a role table of `tenant`: kept when the tenant's authority
    /// signed it and it supersedes the one in force (a higher version; at
    /// the same version, larger signed bytes). The tenant's documents are
    /// judged again. Returns whether it replaced the one in force.
    pub fn learn_role_table(&self, tenant: &str, table: &SignedRoleTable) -> Result<bool> {
        {
            let _one = LEARNING.lock().map_err(poisoned)?;
            let Some(current) = self.tenant_authority(tenant)? else {
                return Ok(false); // open mode: nothing judges by it
            };
            let mut authority = (*current).clone();
            match authority.add_role_table(table) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => {
                    tracing::debug!(tenant, error = %e, "role table refused");
                    return Ok(false);
                }
            }
            self.inner
                .backend
                .apply(vec![(keys::role_table(tenant), Some(table.to_bytes()))])
                .map_err(storage)?;
            self.wait_durable()?;
            self.inner.identity.cache(tenant, Arc::new(authority))?;
        }
        tracing::info!(
            tenant,
            version = table.table.version,
            rows = table.table.rows().len(),
            "role table in force"
        );
        self.rejudge_tenant(tenant)?;
        Ok(true)
    }

    /// The role table in force for `tenant`, if its authority signed one
    /// (and this store judges the tenant by that authority).
    pub fn role_table(&self, tenant: &str) -> Result<Option<SignedRoleTable>> {
        Ok(self
            .tenant_authority(tenant)?
            .and_then(|a| a.role_table().cloned()))
    }

    /// Make `rows` the role table of `tenant` (this store must be its
    /// authority): when they differ from the table in force, a new one is
    /// signed (its version one above), learnt here and returned to be sent
    /// on. `None` when nothing changed.
    pub fn configure_role_table(
        &self,
        tenant: &str,
        rows: &RoleRows,
    ) -> Result<Option<SignedRoleTable>> {
        let id = &self.inner.identity;
        let Some(key) = id.authority_key()? else {
            return Err(Error::InvalidInput(
                "this node holds no authority key".into(),
            ));
        };
        if !id.is_authority_for(tenant)? {
            return Err(Error::InvalidInput(format!(
                "this node is not the authority of tenant {tenant}"
            )));
        }
        let current = self.role_table(tenant)?;
        let unchanged = match &current {
            Some(t) => t.table.rows() == *rows,
            // no table yet: an empty configuration is the default table
            None => rows.is_empty(),
        };
        if unchanged {
            return Ok(None);
        }
        let version = current.map_or(0, |t| t.table.version) + 1;
        let signed = RoleTable::new(tenant, version, rows)
            .map_err(|e| Error::InvalidInput(format!("role table of tenant {tenant}: {e}")))?
            .sign(&key);
        self.learn_role_table(tenant, &signed)?;
        Ok(Some(signed))
    }
}
