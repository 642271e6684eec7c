//! Sync connections per token (tenant and device), counted from the moment of
//! the WebSocket upgrade, not from `join`: a client that upgrades and stays
//! silent holds a slot (until the join timeout closes it), so the limit holds
//! however many upgrades arrive at once. A slot is taken and checked under one
//! lock, and given back when its [`ConnSlot`] is dropped (the connection's
//! task ended, or the upgrade never completed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::model::Access;

/// The slots in use, per (tenant, device).
#[derive(Default)]
pub struct ConnSlots {
    used: Mutex<HashMap<(String, String), usize>>,
}

/// One sync connection's slot, given back on drop.
pub struct ConnSlot {
    slots: Arc<ConnSlots>,
    key: (String, String),
}

impl ConnSlots {
    /// No slot in use.
    pub fn new() -> Arc<ConnSlots> {
        Arc::new(ConnSlots::default())
    }

    fn map(&self) -> MutexGuard<'_, HashMap<(String, String), usize>> {
        // every update is one insert or remove: consistent even after a panic
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for `access`, unless it already holds `max`; `Err` carries how
    /// many it holds.
    pub fn take(self: &Arc<Self>, access: &Access, max: usize) -> Result<ConnSlot, usize> {
        let key = (access.tenant.clone(), access.device.clone());
        let mut used = self.map();
        let n = used.entry(key.clone()).or_insert(0);
        if *n >= max {
            return Err(*n);
        }
        *n += 1;
        Ok(ConnSlot {
            slots: self.clone(),
            key,
        })
    }

    /// Slots in use by `tenant`'s `device`.
    pub fn used(&self, tenant: &str, device: &str) -> usize {
        self.map()
            .get(&(tenant.to_string(), device.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut used = self.slots.map();
        if let Some(n) = used.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                used.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_per_token_and_given_back() {
        let slots = ConnSlots::new();
        let a = Access::open("tab-a");
        let held: Vec<ConnSlot> = (0..3).filter_map(|_| slots.take(&a, 3).ok()).collect();
        assert_eq!(held.len(), 3);
        assert_eq!(slots.take(&a, 3).err(), Some(3));
        assert!(slots.take(&Access::open("tab-b"), 3).is_ok(), "per device");
        drop(held);
        assert_eq!(slots.used("default", "tab-a"), 0);
        assert!(slots.take(&a, 3).is_ok());
    }
}
