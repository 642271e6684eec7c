//! Failed authentications per source address: a token bucket per IP address
//! ([`governor`]), `NetLimits::auth_failures_per_minute` refilled a minute
//! with bursts of as many. Only failures take from the bucket, so valid
//! tokens are never slowed; once an address's bucket is empty, its failures
//! are answered `429 auth_throttled` with `Retry-After` instead of `401`.
//!
//! A valid token from a throttled address is still accepted: tokens are long
//! random secrets, so the throttle is there to bound what guessing costs the
//! node (and its log), and a shared address (a site's NAT) must not lock out
//! the tablets behind it because one of them is misconfigured.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::address_slots::network_of;

/// Addresses remembered before the idle ones are forgotten.
const MAX_ADDRESSES: usize = 100_000;

/// The failed-authentication throttle of a node. Its budget is set by the
/// first failure (the node's limits do not change while it runs).
#[derive(Default)]
pub struct AuthThrottle {
    limiter: OnceLock<Option<DefaultKeyedRateLimiter<IpAddr>>>,
    clock: DefaultClock,
}

impl fmt::Debug for AuthThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addresses = self.limiter.get().and_then(Option::as_ref).map(|l| l.len());
        f.debug_struct("AuthThrottle")
            .field("addresses", &addresses)
            .finish()
    }
}

impl AuthThrottle {
    /// Count a failed authentication from `ip`, with a budget of `per_minute`
    /// failures per address per minute (0 = unlimited): `Err(wait)` when the
    /// address is over it and should wait `wait` before trying again.
    pub fn failed(&self, ip: IpAddr, per_minute: u32) -> Result<(), Duration> {
        let limiter = self.limiter.get_or_init(|| {
            NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
        });
        let Some(limiter) = limiter else {
            return Ok(());
        };
        if limiter.len() > MAX_ADDRESSES {
            limiter.retain_recent();
        }
        limiter
            .check_key(&network_of(ip))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_subscriber_shares_one_budget_across_its_64() {
        let t = AuthThrottle::default();
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert!(t.failed(a, 2).is_ok());
        assert!(t.failed(b, 2).is_ok());
        assert!(t.failed(a, 2).is_err(), "same /64, budget spent");
        assert!(t.failed(other, 2).is_ok(), "another /64");
    }

    #[test]
    fn failures_are_throttled_per_address() {
        let t = AuthThrottle::default();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        assert!((0..5).all(|_| t.failed(a, 5).is_ok()), "a burst of 5");
        let wait = t.failed(a, 5).expect_err("throttled");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(12),
            "{wait:?}"
        );
        assert!(t.failed(b, 5).is_ok(), "another address is not throttled");
        let free = AuthThrottle::default();
        assert!(
            (0..1000).all(|_| free.failed(a, 0).is_ok()),
            "0 is unlimited"
        );
    }
}
