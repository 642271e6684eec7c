//! The device registry: every device that authenticated to this node (over
//! REST or sync), per tenant, with when it was first and last seen and when it
//! last synced. Kept in memory and persisted in the store's backend under
//! `dev/<tenant>\0<device>` -> JSON, so it survives restarts.
//!
//! The registry is advisory: a failed write is logged, never fatal to the
//! request or connection that caused it. To keep writes off the hot path,
//! `last_seen_ms` is persisted at most every [`PERSIST_EVERY_MS`] per device
//! (first sightings and syncs are persisted at once).
//!
//! Removing a device (`DELETE /v1/devices/{id}`) also *blocks* it: its tokens
//! are refused (403 `device_blocked`) until an operator re-enables it
//! (`POST /v1/devices/{id}/enable`). Blocks are persisted under
//! `blk/<tenant>\0<device>` (flushed before the answer), so they survive
//! restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::hub::Hub;
use crate::error::{Error, Result};
use crate::model::Access;
use crate::store::{Backend, BatchOp, Store};

/// Key prefix of the registry in the store's backend.
const PREFIX: &[u8] = b"dev/";

/// Key prefix of blocked devices in the store's backend.
const BLOCKED: &[u8] = b"blk/";

/// How stale a persisted `last_seen_ms` may get before it is written again.
pub const PERSIST_EVERY_MS: i64 = 60_000;

/// What the registry knows of a device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceInfo {
    /// The device's tenant.
    pub tenant: String,
    /// The device id (from its token).
    pub device: String,
    /// First authenticated request or connection (ms since the epoch).
    pub first_seen_ms: i64,
    /// Latest authenticated request or connection (ms since the epoch).
    pub last_seen_ms: i64,
    /// Latest sync message exchanged with it (ms since the epoch), 0 if never.
    pub last_sync_ms: i64,
    /// Whether it has a live sync connection (computed, not stored).
    #[serde(default)]
    pub connected: bool,
    /// Documents still being synced over its live connections (computed, not stored).
    #[serde(default)]
    pub pending: u64,
}

struct Entry {
    info: DeviceInfo,
    /// `last_seen_ms` as last written to the backend.
    persisted_seen_ms: i64,
}

/// The registry of devices of a node.
pub struct Devices {
    backend: Arc<dyn Backend>,
    devices: Mutex<BTreeMap<(String, String), Entry>>,
    blocked: Mutex<BTreeSet<(String, String)>>,
}

fn key(tenant: &str, device: &str) -> Vec<u8> {
    [PREFIX, tenant.as_bytes(), b"\0", device.as_bytes()].concat()
}

fn blocked_key(tenant: &str, device: &str) -> Vec<u8> {
    [BLOCKED, tenant.as_bytes(), b"\0", device.as_bytes()].concat()
}

/// The blocked devices persisted in `backend`.
fn read_blocked(backend: &dyn Backend) -> Result<BTreeSet<(String, String)>> {
    let mut blocked = BTreeSet::new();
    let pairs = backend
        .scan_prefix(BLOCKED, None, usize::MAX)
        .map_err(Error::Storage)?;
    for (k, _) in pairs {
        let rest = k.get(BLOCKED.len()..).unwrap_or_default();
        let mut parts = rest.splitn(2, |b| *b == 0);
        match (parts.next(), parts.next()) {
            (Some(t), Some(d)) => {
                blocked.insert((
                    String::from_utf8_lossy(t).into_owned(),
                    String::from_utf8_lossy(d).into_owned(),
                ));
            }
            _ => {
                tracing::warn!(key = %String::from_utf8_lossy(&k), "skipping an unreadable block record")
            }
        }
    }
    Ok(blocked)
}

impl Devices {
    /// Read the blocks again from storage (other relays over the same
    /// database block and unblock devices too). Returns the devices blocked
    /// since the last read, whose connections the caller closes.
    pub fn reload_blocks(&self) -> Result<Vec<(String, String)>> {
        let stored = read_blocked(self.backend.as_ref())?;
        let mut set = self.blocked_set();
        let new: Vec<(String, String)> = stored.difference(&set).cloned().collect();
        *set = stored;
        Ok(new)
    }

    /// Merge the registry in storage into this one (other relays over the
    /// same database register and remove devices too): devices stored and
    /// not known here are added, the later of two times is kept, and
    /// devices known here that storage no longer holds (removed through
    /// another relay) are forgotten.
    pub fn reload_registry(&self) -> Result<()> {
        let pairs = self
            .backend
            .scan_prefix(PREFIX, None, usize::MAX)
            .map_err(Error::Storage)?;
        let stored: BTreeMap<(String, String), DeviceInfo> = pairs
            .iter()
            .filter_map(|(_, v)| serde_json::from_slice::<DeviceInfo>(v).ok())
            .map(|info| ((info.tenant.clone(), info.device.clone()), info))
            .collect();
        let mut map = self.map();
        map.retain(|k, _| stored.contains_key(k));
        for (k, info) in stored {
            let persisted_seen_ms = info.last_seen_ms;
            let entry = map.entry(k).or_insert_with(|| Entry {
                info: DeviceInfo {
                    connected: false,
                    pending: 0,
                    ..info.clone()
                },
                persisted_seen_ms,
            });
            let mine = &mut entry.info;
            mine.first_seen_ms = mine.first_seen_ms.min(info.first_seen_ms);
            mine.last_seen_ms = mine.last_seen_ms.max(info.last_seen_ms);
            mine.last_sync_ms = mine.last_sync_ms.max(info.last_sync_ms);
        }
        Ok(())
    }

    /// Load the registry persisted in `store`. Unreadable records are skipped
    /// (and logged).
    pub fn load(store: &Store) -> Result<Devices> {
        let backend = store.backend().clone();
        let mut devices = BTreeMap::new();
        let pairs = backend
            .scan_prefix(PREFIX, None, usize::MAX)
            .map_err(Error::Storage)?;
        for (k, v) in pairs {
            match serde_json::from_slice::<DeviceInfo>(&v) {
                Ok(mut info) => {
                    info.connected = false;
                    info.pending = 0;
                    let persisted_seen_ms = info.last_seen_ms;
                    devices.insert(
                        (info.tenant.clone(), info.device.clone()),
                        Entry {
                            info,
                            persisted_seen_ms,
                        },
                    );
                }
                Err(e) => tracing::warn!(
                    key = %String::from_utf8_lossy(&k),
                    error = %e,
                    "skipping an unreadable device record"
                ),
            }
        }
        let blocked = read_blocked(backend.as_ref())?;
        Ok(Devices {
            backend,
            devices: Mutex::new(devices),
            blocked: Mutex::new(blocked),
        })
    }

    fn blocked_set(&self) -> MutexGuard<'_, BTreeSet<(String, String)>> {
        // every update is one insert or remove: consistent even after a panic
        self.blocked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `device` of `tenant` is blocked (its tokens are refused).
    pub fn is_blocked(&self, tenant: &str, device: &str) -> bool {
        self.blocked_set()
            .contains(&(tenant.to_string(), device.to_string()))
    }

    /// The blocked devices of `tenant`.
    pub fn blocked(&self, tenant: &str) -> Vec<String> {
        self.blocked_set()
            .iter()
            .filter(|(t, _)| t == tenant)
            .map(|(_, d)| d.clone())
            .collect()
    }

    /// Block `device` of `tenant`, durably (flushed) before it takes effect.
    pub fn block(&self, tenant: &str, device: &str) -> Result<()> {
        let mut set = self.blocked_set();
        self.write(vec![(blocked_key(tenant, device), Some(Vec::new()))])?;
        self.backend.flush().map_err(Error::Storage)?;
        set.insert((tenant.to_string(), device.to_string()));
        Ok(())
    }

    /// Lift the block of `device` of `tenant`, durably; returns whether it was blocked.
    pub fn unblock(&self, tenant: &str, device: &str) -> Result<bool> {
        let mut set = self.blocked_set();
        let k = (tenant.to_string(), device.to_string());
        if !set.contains(&k) {
            return Ok(false);
        }
        self.write(vec![(blocked_key(tenant, device), None)])?;
        self.backend.flush().map_err(Error::Storage)?;
        set.remove(&k);
        Ok(true)
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<(String, String), Entry>> {
        // the map stays consistent even if a holder panicked: every update is one insert
        self.devices.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, batch: Vec<BatchOp>) -> Result<()> {
        self.backend.apply(batch).map_err(Error::Storage)
    }

    fn persist(&self, info: &DeviceInfo) {
        let stored = DeviceInfo {
            connected: false,
            pending: 0,
            ..info.clone()
        };
        let result = serde_json::to_vec(&stored)
            .map_err(|e| Error::storage(e.to_string()))
            .and_then(|json| self.write(vec![(key(&info.tenant, &info.device), Some(json))]));
        if let Err(e) = result {
            tracing::warn!(tenant = %info.tenant, device = %info.device, error = %e,
                "could not persist the device registry");
        }
    }

    fn touch(&self, access: &Access, now_ms: i64, synced: bool) {
        let k = (access.tenant.clone(), access.device.clone());
        let to_persist = {
            let mut map = self.map();
            let entry = map.entry(k).or_insert_with(|| Entry {
                info: DeviceInfo {
                    tenant: access.tenant.clone(),
                    device: access.device.clone(),
                    first_seen_ms: now_ms,
                    last_seen_ms: now_ms,
                    last_sync_ms: 0,
                    connected: false,
                    pending: 0,
                },
                // a new entry is always persisted
                persisted_seen_ms: i64::MIN,
            });
            let info = &mut entry.info;
            info.last_seen_ms = info.last_seen_ms.max(now_ms);
            if synced {
                info.last_sync_ms = info.last_sync_ms.max(now_ms);
            }
            let stale =
                info.last_seen_ms.saturating_sub(entry.persisted_seen_ms) >= PERSIST_EVERY_MS;
            if synced || stale {
                entry.persisted_seen_ms = info.last_seen_ms;
                Some(info.clone())
            } else {
                None
            }
        };
        if let Some(info) = to_persist {
            self.persist(&info);
        }
    }

    /// A device authenticated (a request or a new connection) at `now_ms`.
    pub fn seen(&self, access: &Access, now_ms: i64) {
        self.touch(access, now_ms, false);
    }

    /// A device exchanged sync messages at `now_ms`.
    pub fn synced(&self, access: &Access, now_ms: i64) {
        self.touch(access, now_ms, true);
    }

    /// The devices of `tenant`, by device id (`connected` is `false`; see
    /// [`Devices::list_live`]).
    pub fn list(&self, tenant: &str) -> Vec<DeviceInfo> {
        self.map()
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, e)| e.info.clone())
            .collect()
    }

    /// The devices of `tenant`, with `connected` and `pending` (summed over the
    /// device's connections) set from the hub's live connections.
    pub fn list_live(&self, tenant: &str, hub: &Hub) -> Vec<DeviceInfo> {
        let live = hub.status(Some(tenant));
        let mut out = self.list(tenant);
        for d in &mut out {
            let conns = live.iter().filter(|p| p.device == d.device);
            d.connected = false;
            d.pending = 0;
            for p in conns {
                d.connected = true;
                d.pending += p.pending;
            }
        }
        out
    }

    /// Whether the registry knows `device` of `tenant`.
    pub fn contains(&self, tenant: &str, device: &str) -> bool {
        if self
            .map()
            .contains_key(&(tenant.to_string(), device.to_string()))
        {
            return true;
        }
        // registered through another relay over the same database, maybe
        // since this one last read the registry: take it in
        match self.backend.get(&key(tenant, device)) {
            Ok(Some(v)) => match serde_json::from_slice::<DeviceInfo>(&v) {
                Ok(info) => {
                    let persisted_seen_ms = info.last_seen_ms;
                    self.map()
                        .entry((tenant.to_string(), device.to_string()))
                        .or_insert(Entry {
                            info,
                            persisted_seen_ms,
                        });
                    true
                }
                Err(_) => false,
            },
            _ => false,
        }
    }

    /// Forget `device` of `tenant`, durably; returns whether it was known.
    pub fn try_remove(&self, tenant: &str, device: &str) -> Result<bool> {
        let mut map = self.map();
        let k = (tenant.to_string(), device.to_string());
        if !map.contains_key(&k) {
            return Ok(false);
        }
        // delete in storage first, so that a failure leaves both in place
        self.write(vec![(key(tenant, device), None)])?;
        self.backend.flush().map_err(Error::Storage)?;
        map.remove(&k);
        Ok(true)
    }

    /// Forget `device` of `tenant`; returns whether it was known. A storage
    /// failure is logged (the device is then kept).
    pub fn remove(&self, tenant: &str, device: &str) -> bool {
        match self.try_remove(tenant, device) {
            Ok(known) => known,
            Err(e) => {
                tracing::error!(%tenant, %device, error = %e, "could not remove a device");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemBackend, StoreOptions};

    fn access(tenant: &str, device: &str) -> Access {
        Access {
            tenant: tenant.into(),
            device: device.into(),
            read_only: false,
            roles: None,
            person: None,
        }
    }

    #[test]
    fn devices_are_registered_per_tenant_and_survive_a_reload() -> Result<()> {
        let store = Store::with_backend(Arc::new(MemBackend::new()), StoreOptions::default())?;
        let devices = Devices::load(&store)?;
        devices.seen(&access("acme", "tablet-1"), 1_000);
        devices.seen(&access("acme", "tablet-1"), 2_000);
        devices.synced(&access("acme", "tablet-1"), 3_000);
        devices.seen(&access("globex", "tablet-1"), 5_000);
        let acme = devices.list("acme");
        assert_eq!(acme.len(), 1);
        assert_eq!(acme[0].first_seen_ms, 1_000);
        assert_eq!(acme[0].last_seen_ms, 3_000);
        assert_eq!(acme[0].last_sync_ms, 3_000);

        let reloaded = Devices::load(&store)?;
        assert_eq!(reloaded.list("acme"), acme);
        assert_eq!(reloaded.list("globex").len(), 1);

        assert!(reloaded.remove("acme", "tablet-1"));
        assert!(!reloaded.remove("acme", "tablet-1"));
        assert!(Devices::load(&store)?.list("acme").is_empty());
        assert_eq!(Devices::load(&store)?.list("globex").len(), 1);
        Ok(())
    }

    #[test]
    fn blocks_survive_a_reload_until_lifted() -> Result<()> {
        let store = Store::with_backend(Arc::new(MemBackend::new()), StoreOptions::default())?;
        let devices = Devices::load(&store)?;
        devices.block("acme", "tablet-1")?;
        assert!(devices.is_blocked("acme", "tablet-1"));
        assert!(!devices.is_blocked("globex", "tablet-1"));
        let reloaded = Devices::load(&store)?;
        assert!(reloaded.is_blocked("acme", "tablet-1"));
        assert_eq!(reloaded.blocked("acme"), vec!["tablet-1".to_string()]);
        assert!(
            reloaded.list("acme").is_empty(),
            "a block is not a sighting"
        );
        assert!(reloaded.unblock("acme", "tablet-1")?);
        assert!(!reloaded.unblock("acme", "tablet-1")?);
        assert!(!Devices::load(&store)?.is_blocked("acme", "tablet-1"));
        Ok(())
    }

    #[test]
    fn live_devices_show_their_connections_pending_documents() -> Result<()> {
        use super::super::hub::{Direction, PeerStats};
        use std::sync::atomic::Ordering;
        let store = Store::with_backend(Arc::new(MemBackend::new()), StoreOptions::default())?;
        let devices = Devices::load(&store)?;
        let hub = Hub::new();
        let tablet = access("acme", "tablet-1");
        devices.synced(&tablet, 1_000);
        devices.seen(&access("acme", "tablet-2"), 1_000);
        for pending in [3, 4] {
            let stats = Arc::new(PeerStats::default());
            stats.docs_pending.store(pending, Ordering::Relaxed);
            let _ = hub.register("p".into(), tablet.clone(), Direction::Inbound, None, stats);
        }
        let live = devices.list_live("acme", &hub);
        assert_eq!((live[0].connected, live[0].pending), (true, 7));
        assert_eq!((live[1].connected, live[1].pending), (false, 0));
        // computed, never stored
        assert_eq!(Devices::load(&store)?.list("acme")[0].pending, 0);
        Ok(())
    }

    #[test]
    fn last_seen_is_persisted_at_most_every_minute() -> Result<()> {
        let store = Store::with_backend(Arc::new(MemBackend::new()), StoreOptions::default())?;
        let devices = Devices::load(&store)?;
        let a = access("acme", "d");
        devices.seen(&a, 0);
        devices.seen(&a, 10_000);
        assert_eq!(Devices::load(&store)?.list("acme")[0].last_seen_ms, 0);
        devices.seen(&a, PERSIST_EVERY_MS);
        assert_eq!(
            Devices::load(&store)?.list("acme")[0].last_seen_ms,
            PERSIST_EVERY_MS
        );
        Ok(())
    }
}
