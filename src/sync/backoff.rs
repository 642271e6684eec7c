//! Reconnect delays: exponential backoff with jitter, 1 s doubling to 32 s.

use std::time::Duration;

/// The first delay.
pub const INITIAL: Duration = Duration::from_secs(1);
/// The largest delay.
pub const MAX: Duration = Duration::from_secs(32);

/// The delay before reconnect attempt `attempt` (0 for the first retry):
/// `min(32 s, 1 s * 2^attempt)`, scaled by `jitter` in `[0.5, 1.0]` so that
/// many devices cut off together do not all come back at once. `jitter` is
/// passed in (drawn by the caller) to keep this pure.
pub fn delay(attempt: u32, jitter: f64) -> Duration {
    let base = INITIAL.saturating_mul(1u32 << attempt.min(5)).min(MAX);
    base.mul_f64(jitter.clamp(0.5, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_one_second_to_thirty_two() {
        let full: Vec<u64> = (0..8).map(|a| delay(a, 1.0).as_secs()).collect();
        assert_eq!(full, vec![1, 2, 4, 8, 16, 32, 32, 32]);
    }

    #[test]
    fn jitter_stays_within_half_and_full() {
        assert_eq!(delay(3, 0.5), Duration::from_secs(4));
        assert_eq!(delay(3, 0.0), Duration::from_secs(4));
        assert_eq!(delay(3, 7.0), Duration::from_secs(8));
        assert_eq!(delay(40, 1.0), MAX);
    }
}
