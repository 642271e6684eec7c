//! Limits on what one token may do: connections, requests per second, and
//! what one sync message may bring.

use std::collections::HashMap;
use std::sync::Mutex;

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

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// A token bucket per key. Time is passed in, so tests control it.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
    /// Failed authentications per source address.
    pub auth_failures: AuthThrottle,
}

impl RateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Take one request for `key` at `now_ms`, refilling `per_second` tokens a
    /// second up to a burst of `2 * per_second`. Returns whether it is allowed.
    pub fn allow(&self, key: &str, per_second: u32, now_ms: i64) -> bool {
        if per_second == 0 {
            return true; // 0 means unlimited
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        let burst = 2.0 * f64::from(per_second);
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: burst,
            at_ms: now_ms,
        });
        let elapsed = (now_ms - b.at_ms).max(0) as f64 / 1000.0;
        b.tokens = (b.tokens + elapsed * f64::from(per_second)).min(burst);
        b.at_ms = now_ms;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
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
