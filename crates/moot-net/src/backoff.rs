//! Redial delays: exponential backoff with seeded jitter, a pure function of its inputs.
//!
//! A peer dialed on purpose (an explicit peer or a bootstrap address) that cannot be reached,
//! or whose connection closes, is dialed again after [`Backoff::delay`]: `initial` doubling per
//! failure up to `max`, less a jitter of up to `jitter_percent` of it. The jitter is drawn from
//! a hash of the node's seed, the target and the attempt, so a run is reproducible while nodes
//! that lost the same peer at the same moment do not all redial it at the same instant.

use std::time::Duration;

/// How long to wait before dialing a lost peer again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failure (or after a connection that was up closes).
    /// Default 1 s.
    pub initial: Duration,
    /// The longest delay. Default 60 s.
    pub max: Duration,
    /// Up to this percentage of a delay is taken off it, by the seeded hash (0–100).
    /// Default 20.
    pub jitter_percent: u8,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            jitter_percent: 20,
        }
    }
}

impl Backoff {
    /// The delay before the next dial after `failures` failed attempts in a row (0 after a
    /// connection that was up closed), for the target `key` of a node seeded `seed`.
    pub fn delay(&self, failures: u32, seed: u64, key: u64) -> Duration {
        // initial × 2^failures, capped (the shift is bounded so it cannot overflow).
        let factor = 1u32 << failures.min(20);
        let full = self.initial.saturating_mul(factor).min(self.max);
        let percent = u128::from(self.jitter_percent.min(100));
        let draw = u128::from(mix(seed ^ mix(key) ^ mix(u64::from(failures) + 1)) % 1_000);
        // Up to `percent` % off, in steps of 1/1000 of that share.
        let off_nanos = full.as_nanos() * percent * draw / 100_000;
        full.saturating_sub(Duration::from_nanos(
            u64::try_from(off_nanos).unwrap_or(u64::MAX),
        ))
    }
}

/// SplitMix64's finaliser: a cheap, well-spread hash of a 64-bit value.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A stable 64-bit key for bytes (a peer id, an address): FNV-1a, then mixed.
pub(crate) fn key_of(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_less_at_most_the_jitter() {
        let b = Backoff::default();
        let mut last_full = Duration::ZERO;
        for failures in 0..40 {
            let full = Duration::from_secs(1 << failures.min(6)).min(Duration::from_secs(60));
            assert!(full >= last_full);
            last_full = full;
            for key in 0..50 {
                let d = b.delay(failures, 7, key);
                assert!(d <= full, "{failures}: {d:?} > {full:?}");
                assert!(d >= full * 80 / 100, "{failures}: {d:?} < 80% of {full:?}");
            }
        }
        assert_eq!(last_full, Duration::from_secs(60));
    }

    #[test]
    fn the_jitter_is_a_function_of_seed_target_and_attempt() {
        let b = Backoff::default();
        assert_eq!(b.delay(3, 1, 2), b.delay(3, 1, 2));
        // Different targets (or seeds) spread out: 50 keys give many distinct delays.
        let spread: std::collections::BTreeSet<Duration> =
            (0..50).map(|key| b.delay(3, 1, key)).collect();
        assert!(spread.len() > 40, "{}", spread.len());
        let seeds: std::collections::BTreeSet<Duration> =
            (0..50).map(|seed| b.delay(3, seed, 2)).collect();
        assert!(seeds.len() > 40, "{}", seeds.len());
        // No jitter: exactly the doubling.
        let exact = Backoff {
            jitter_percent: 0,
            ..b
        };
        assert_eq!(exact.delay(0, 9, 9), Duration::from_secs(1));
        assert_eq!(exact.delay(2, 9, 9), Duration::from_secs(4));
        assert_eq!(exact.delay(u32::MAX, 9, 9), Duration::from_secs(60));
    }

    #[test]
    fn key_of_is_stable_and_distinguishes_inputs() {
        assert_eq!(
            key_of(b"/ip4/127.0.0.1/tcp/1"),
            key_of(b"/ip4/127.0.0.1/tcp/1")
        );
        assert_ne!(
            key_of(b"/ip4/127.0.0.1/tcp/1"),
            key_of(b"/ip4/127.0.0.1/tcp/2")
        );
    }
}
