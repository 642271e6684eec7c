//! Limits on what one token may do: connections, requests per second, and
//! what one sync message may bring.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::Quota;

use super::auth_throttle::AuthThrottle;
use super::net_limits::NetLimits;
use crate::store::ReceiveLimits;

/// A node's abuse limits. Exceeding one gives the offending client a clear
/// error (429 / 413 / an `error` message) and the node keeps serving others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// What one sync message may bring (changes, document size).
    pub receive: ReceiveLimits,
    /// Live sync connections per token (tenant and device).
    pub max_connections_per_token: usize,
    /// Requests (REST calls and sync connection attempts) per token per second,
    /// with bursts up to twice that.
    pub requests_per_second: u32,
    /// What the network may cost: connections, timeouts, failed logins.
    pub net: NetLimits,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            receive: ReceiveLimits::default(),
            max_connections_per_token: 16,
            requests_per_second: 200,
            net: NetLimits::default(),
        }
    }
}

/// A token bucket per key ([`governor`]'s keyed limiter), on the time the
/// caller passes in, so tests control it.
#[derive(Debug, Default)]
pub struct RateLimiter {
    /// Set by the first limited request (a node's quotas do not change
    /// while it runs).
    buckets: OnceLock<Buckets>,
    /// The time of the request being checked, read by `buckets`.
    now: PassedTime,
    /// Failed authentications per source address.
    pub auth_failures: AuthThrottle,
}

type Buckets = governor::RateLimiter<
    String,
    DefaultKeyedStateStore<String>,
    PassedTime,
    NoOpMiddleware<Nanos>,
>;

impl RateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Take one request for `key` at `now_ms`, refilling `per_second` tokens a
    /// second up to a burst of `2 * per_second` (0 is unlimited; the first
    /// limited call sets the rate for good). Returns whether it is allowed.
    pub fn allow(&self, key: &str, per_second: u32, now_ms: i64) -> bool {
        let Some(rate) = NonZeroU32::new(per_second) else {
            return true; // 0 means unlimited
        };
        self.now.advance_to(now_ms);
        let buckets = self.buckets.get_or_init(|| {
            // twice the rate never is 0
            let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
            let quota = Quota::per_second(rate).allow_burst(burst);
            governor::RateLimiter::new(quota, DefaultKeyedStateStore::default(), self.now.clone())
        });
        buckets.check_key(&key.to_string()).is_ok()
    }
}

/// A clock for [`governor`] that shows the time its caller last passed in
/// (milliseconds; it never goes back, as concurrent callers may pass times
/// slightly out of order).
#[derive(Clone, Debug, Default)]
struct PassedTime(Arc<AtomicU64>);

impl PassedTime {
    fn advance_to(&self, now_ms: i64) {
        let ms = u64::try_from(now_ms).unwrap_or(0);
        self.0.fetch_max(ms, Ordering::Relaxed);
    }
}

impl Clock for PassedTime {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.0.load(Ordering::Relaxed).saturating_mul(1_000_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_the_rate() {
        let r = RateLimiter::new();
        let allowed = (0..30).filter(|_| r.allow("t", 10, 0)).count();
        assert_eq!(allowed, 20, "burst of twice the rate");
        assert!(!r.allow("t", 10, 50), "5 ms later: nothing refilled yet");
        assert!(r.allow("t", 10, 150), "100 ms later: one token");
        assert!(r.allow("other", 10, 150), "keys are independent");
        assert!((0..1000).all(|_| r.allow("free", 0, 0)), "0 is unlimited");
    }
}
