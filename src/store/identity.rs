//! The node's identity as its store keeps it: its Ed25519 key (made on first
//! open, never leaving the store), the tenant authority key when this node is
//! an authority (a relay with a tokens file), the authorities it enrolled
//! with, and a cache of each tenant's certificates, revocation list and role
//! table (DESIGN.md, "Who may do what"; `docs/identity.md`).
//!
//! Pure bookkeeping over records; the operations that use it (issuing,
//! enrolling, learning, attesting) are in `authority_ops.rs` and
//! `attestations.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::backend::{Backend, BatchOp};
use super::failure::{poisoned, storage};
use super::keys;
use crate::error::{Error, Result};
use crate::identity::{
    NodeKey, PublicKey, SignedCertificate, SignedRevocationList, SignedRoleTable, TenantAuthority,
};

/// The store's key record.
const NODE_KEY: &str = "node_key";
/// The authority key record (when this store made its own).
const AUTHORITY_KEY: &str = "authority_key";
/// The tenant this store enrolled with first: it judges the documents no
/// tenant owns.
const HOME_TENANT: &str = "tenant";
/// On storage several relays share: a random value written again with every
/// batch that changes identity records (`identity_marking.rs`), so a relay
/// reading another value knows to read them again ([`Identity::refresh`]).
pub(super) const CHANGED: &str = "identity_changed";

/// What the store knows of identities.
pub(super) struct Identity {
    key: Arc<NodeKey>,
    authority_key: RwLock<Option<Arc<NodeKey>>>,
    state: RwLock<State>,
    /// Bumped whenever what judges documents changes (an authority key, an
    /// enrollment, a certificate or revocation list learnt): a loaded
    /// document judged at an older generation is judged again before use.
    generation: AtomicU64,
    /// The authority key came from `--authority-key` (kept in memory only):
    /// what storage holds does not replace it.
    explicit: AtomicBool,
    /// The [`CHANGED`] record as last read.
    marker: Mutex<Option<Vec<u8>>>,
}

#[derive(Default)]
struct State {
    home: Option<String>,
    enrolled: HashMap<String, PublicKey>,
    authorities: HashMap<String, Arc<TenantAuthority>>,
    /// This store's own certificate per tenant, and when it was looked up.
    own: HashMap<String, (i64, Option<SignedCertificate>)>,
}

impl Identity {
    /// Read (or make, adding its record to `init`) the identity records.
    pub(super) fn open(backend: &dyn Backend, init: &mut Vec<BatchOp>) -> Result<Identity> {
        let key = match read_key(backend, NODE_KEY)? {
            Some(k) => k,
            None => {
                let k = NodeKey::generate();
                init.push((keys::meta(NODE_KEY), Some(k.secret().to_vec())));
                k
            }
        };
        let authority_key = read_key(backend, AUTHORITY_KEY)?.map(Arc::new);
        let home = backend
            .get(&keys::meta(HOME_TENANT))
            .map_err(storage)?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let marker = backend.get(&keys::meta(CHANGED)).map_err(storage)?;
        let enrolled = read_enrolled(backend)?;
        Ok(Identity {
            key: Arc::new(key),
            authority_key: RwLock::new(authority_key),
            generation: AtomicU64::new(1),
            explicit: AtomicBool::new(false),
            marker: Mutex::new(marker),
            state: RwLock::new(State {
                home,
                enrolled,
                authorities: HashMap::new(),
                own: HashMap::new(),
            }),
        })
    }

    /// The generation of what judges documents.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The node's own key.
    pub(super) fn key(&self) -> &Arc<NodeKey> {
        &self.key
    }

    /// The authority key, when this node is an authority.
    pub(super) fn authority_key(&self) -> Result<Option<Arc<NodeKey>>> {
        Ok(self.authority_key.read().map_err(poisoned)?.clone())
    }

    /// Use `key` as the authority key: from `--authority-key` (`explicit`),
    /// or made now or read from storage.
    pub(super) fn set_authority_key(&self, key: NodeKey, explicit: bool) -> Result<()> {
        if explicit {
            self.explicit.store(true, Ordering::Release);
        }
        *self.authority_key.write().map_err(poisoned)? = Some(Arc::new(key));
        let mut s = self.state.write().map_err(poisoned)?;
        s.authorities.clear();
        s.own.clear();
        self.changed();
        Ok(())
    }

    /// The key of the record that keeps an authority key this store made.
    pub(super) fn authority_key_key() -> Vec<u8> {
        keys::meta(AUTHORITY_KEY)
    }

    /// The authority key storage holds, if any.
    pub(super) fn stored_authority_key(backend: &dyn Backend) -> Result<Option<NodeKey>> {
        read_key(backend, AUTHORITY_KEY)
    }

    /// The record that keeps an authority key this store made.
    pub(super) fn authority_key_record(key: &NodeKey) -> BatchOp {
        (keys::meta(AUTHORITY_KEY), Some(key.secret().to_vec()))
    }

    /// The tenant that judges documents no tenant owns.
    pub(super) fn home(&self) -> Result<Option<String>> {
        Ok(self.state.read().map_err(poisoned)?.home.clone())
    }

    /// The record of the home tenant.
    pub(super) fn home_record(tenant: &str) -> BatchOp {
        (keys::meta(HOME_TENANT), Some(tenant.as_bytes().to_vec()))
    }

    /// The public key `tenant` is judged by: the authority this store
    /// enrolled with for it, else its own authority key, else none (open
    /// mode).
    pub(super) fn authority_public(&self, tenant: &str) -> Result<Option<PublicKey>> {
        if let Some(k) = self.state.read().map_err(poisoned)?.enrolled.get(tenant) {
            return Ok(Some(*k));
        }
        Ok(self.authority_key()?.map(|k| k.public()))
    }

    /// Whether this store issues `tenant`'s certificates.
    pub(super) fn is_authority_for(&self, tenant: &str) -> Result<bool> {
        let Some(own) = self.authority_key()? else {
            return Ok(false);
        };
        Ok(
            match self.state.read().map_err(poisoned)?.enrolled.get(tenant) {
                Some(k) => *k == own.public(),
                None => true,
            },
        )
    }

    /// The enrolled authority of `tenant`, if any.
    pub(super) fn enrolled(&self, tenant: &str) -> Result<Option<PublicKey>> {
        Ok(self
            .state
            .read()
            .map_err(poisoned)?
            .enrolled
            .get(tenant)
            .copied())
    }

    /// Note an enrollment (its records are written by the caller).
    pub(super) fn note_enrolled(&self, tenant: &str, key: PublicKey, home: bool) -> Result<()> {
        let mut s = self.state.write().map_err(poisoned)?;
        s.enrolled.insert(tenant.to_string(), key);
        s.authorities.remove(tenant);
        s.own.remove(tenant);
        if home && s.home.is_none() {
            s.home = Some(tenant.to_string());
        }
        self.changed();
        Ok(())
    }

    /// `tenant`'s authority with every certificate and the revocation list
    /// the store holds, or `None` in open mode. Cached.
    pub(super) fn authority(
        &self,
        backend: &dyn Backend,
        tenant: &str,
    ) -> Result<Option<Arc<TenantAuthority>>> {
        if let Some(a) = self.state.read().map_err(poisoned)?.authorities.get(tenant) {
            return Ok(Some(a.clone()));
        }
        let Some(public) = self.authority_public(tenant)? else {
            return Ok(None);
        };
        let mut authority = TenantAuthority::new(tenant, public);
        for (_, v) in backend
            .scan_prefix(&keys::certificate_prefix(tenant), None, usize::MAX)
            .map_err(storage)?
        {
            // stored only once verified; one that fails now (another
            // authority since) is skipped
            if let Ok(cert) = SignedCertificate::from_bytes(&v) {
                let _ = authority.add_certificate(&cert);
            }
        }
        if let Some(bytes) = backend
            .get(&keys::revocation_list(tenant))
            .map_err(storage)?
        {
            if let Ok(list) = SignedRevocationList::from_bytes(&bytes) {
                let _ = authority.add_revocation_list(&list);
            }
        }
        if let Some(bytes) = backend.get(&keys::role_table(tenant)).map_err(storage)? {
            if let Ok(table) = SignedRoleTable::from_bytes(&bytes) {
                let _ = authority.add_role_table(&table);
            }
        }
        let authority = Arc::new(authority);
        self.state
            .write()
            .map_err(poisoned)?
            .authorities
            .insert(tenant.to_string(), authority.clone());
        Ok(Some(authority))
    }

    /// Replace the cached authority of `tenant` (after learning something).
    pub(super) fn cache(&self, tenant: &str, authority: Arc<TenantAuthority>) -> Result<()> {
        let mut s = self.state.write().map_err(poisoned)?;
        s.authorities.insert(tenant.to_string(), authority);
        s.own.remove(tenant);
        self.changed();
        Ok(())
    }

    /// This store's own certificate for `tenant` as looked up at most
    /// `max_age_ms` before `now`.
    pub(super) fn cached_own(
        &self,
        tenant: &str,
        now: i64,
        max_age_ms: i64,
    ) -> Result<Option<Option<SignedCertificate>>> {
        Ok(self
            .state
            .read()
            .map_err(poisoned)?
            .own
            .get(tenant)
            .filter(|(at, _)| now - at < max_age_ms)
            .map(|(_, c)| c.clone()))
    }

    /// Remember this store's own certificate for `tenant`.
    pub(super) fn cache_own(
        &self,
        tenant: &str,
        now: i64,
        cert: Option<SignedCertificate>,
    ) -> Result<()> {
        self.state
            .write()
            .map_err(poisoned)?
            .own
            .insert(tenant.to_string(), (now, cert));
        Ok(())
    }

    /// On storage other relays share: when the [`CHANGED`] record is not
    /// what it was at the last look, another relay (or this one) changed
    /// identity records: [`Identity::reload`]. Returns whether it did.
    pub(super) fn refresh(&self, backend: &dyn Backend) -> Result<bool> {
        let now = backend.get(&keys::meta(CHANGED)).map_err(storage)?;
        if *self.marker.lock().map_err(poisoned)? == now {
            return Ok(false);
        }
        // noted first: a change committed after this read shows as another
        // value at the next look, and what is read below is at least as new
        *self.marker.lock().map_err(poisoned)? = now;
        self.reload(backend)?;
        Ok(true)
    }

    /// Read the identity records again from storage: the enrollments, the
    /// home tenant and the authority key (unless `--authority-key` gave
    /// it); the cached authorities (certificates, revocation lists) and
    /// own certificates are dropped, to be read again on use, and every
    /// loaded document is judged again before its next use.
    pub(super) fn reload(&self, backend: &dyn Backend) -> Result<()> {
        let enrolled = read_enrolled(backend)?;
        let home = backend
            .get(&keys::meta(HOME_TENANT))
            .map_err(storage)?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        if !self.explicit.load(Ordering::Acquire) {
            if let Some(stored) = read_key(backend, AUTHORITY_KEY)? {
                let mut current = self.authority_key.write().map_err(poisoned)?;
                if current.as_ref().map(|k| k.public()) != Some(stored.public()) {
                    *current = Some(Arc::new(stored));
                }
            }
        }
        let mut s = self.state.write().map_err(poisoned)?;
        s.enrolled = enrolled;
        if home.is_some() {
            s.home = home;
        }
        s.authorities.clear();
        s.own.clear();
        self.changed();
        Ok(())
    }

    /// Whether any tenant may be judged by an authority here (otherwise
    /// every document is in open mode and no attestation needs reading).
    pub(super) fn any_authority(&self) -> Result<bool> {
        Ok(self.authority_key()?.is_some()
            || !self.state.read().map_err(poisoned)?.enrolled.is_empty())
    }
}

/// The enrolled authorities stored.
fn read_enrolled(backend: &dyn Backend) -> Result<HashMap<String, PublicKey>> {
    let mut enrolled = HashMap::new();
    for (k, v) in backend
        .scan_prefix(keys::ENROLLED, None, usize::MAX)
        .map_err(storage)?
    {
        let tenant = String::from_utf8_lossy(&k[keys::ENROLLED.len()..]).into_owned();
        let bytes: [u8; 32] = v
            .as_slice()
            .try_into()
            .map_err(|_| Error::storage(format!("authority key of {tenant} is corrupt")))?;
        enrolled.insert(tenant, PublicKey(bytes));
    }
    Ok(enrolled)
}

fn read_key(backend: &dyn Backend, name: &str) -> Result<Option<NodeKey>> {
    match backend.get(&keys::meta(name)).map_err(storage)? {
        None => Ok(None),
        Some(bytes) => {
            let secret: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| Error::storage(format!("the {name} record is corrupt")))?;
            Ok(Some(NodeKey::from_secret(secret)))
        }
    }
}
