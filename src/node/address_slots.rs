//! Open connections per source network (an IPv4 address, or an IPv6 /64),
//! so that one client cannot hold the node's whole connection budget. A
//! slot is taken at accept and given back when its [`AddressSlot`] is
//! dropped with the connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// The network a source address counts against: an IPv4 address, or an
/// IPv6 address's /64 (one subscriber holds a whole /64, so counting single
/// addresses would let it rotate through them for free).
pub(super) fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// The connections open per network.
pub(super) struct AddressSlots {
    used: Mutex<HashMap<IpAddr, usize>>,
    max: usize,
}

/// One connection's place in its network's count, given back on drop.
pub(super) struct AddressSlot {
    slots: Arc<AddressSlots>,
    key: IpAddr,
}

impl AddressSlots {
    /// At most `max` connections per network.
    pub(super) fn new(max: usize) -> Arc<AddressSlots> {
        Arc::new(AddressSlots {
            used: Mutex::new(HashMap::new()),
            max: max.max(1),
        })
    }

    fn map(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        // every update is one insert or remove: consistent even after a panic
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a connection from `ip`, unless its network holds `max`.
    pub(super) fn take(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let key = network_of(ip);
        let mut used = self.map();
        let n = used.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            slots: self.clone(),
            key,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut used = self.slots.map();
        if let Some(n) = used.get_mut(&self.key) {
            *n -= 1;
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
    fn a_network_holds_at_most_max_and_gets_slots_back() {
        let slots = AddressSlots::new(2);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let (s1, _s2) = (slots.take(a).expect("1"), slots.take(a).expect("2"));
        assert!(slots.take(a).is_none(), "a third from the same address");
        assert!(slots.take(b).is_some(), "another address");
        drop(s1);
        assert!(slots.take(a).is_some(), "given back");
    }

    #[test]
    fn an_ipv6_64_counts_as_one_network() {
        let slots = AddressSlots::new(1);
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let same: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        let _held = slots.take(a).expect("first");
        assert!(slots.take(same).is_none(), "same /64");
        assert!(slots.take(other).is_some(), "another /64");
    }
}
