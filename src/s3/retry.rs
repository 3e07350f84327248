//! Backoff for the "unavailable" class of S3 errors.

use std::time::Duration;

/// Exponential backoff with equal jitter: attempt `n` (0-based) waits a random time in
/// `[base·2ⁿ/2, base·2ⁿ]`, capped at `max`. Equal, not full, jitter on purpose: a retry
/// never comes sooner than half the step, so a struggling S3 always gets a pause. `random` is a value in `[0, 1)`, given by the
/// caller so this stays deterministic under test.
pub(crate) fn backoff(attempt: u32, base: Duration, max: Duration, random: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16));
    let capped = exp.min(max);
    capped.mul_f64(0.5 + 0.5 * random.clamp(0.0, 1.0))
}

/// A cheap, non-cryptographic random number in `[0, 1)` for jitter.
pub(crate) fn jitter() -> f64 {
    use std::cell::Cell;
    use std::hash::{BuildHasher, RandomState};
    thread_local! {
        static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()) | 1);
    }
    STATE.with(|s| {
        // xorshift64*
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        assert_eq!(backoff(0, base, max, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(0, base, max, 0.0), Duration::from_millis(50));
        assert_eq!(backoff(3, base, max, 1.0), Duration::from_millis(800));
        assert_eq!(backoff(10, base, max, 1.0), max);
        assert_eq!(backoff(40, base, max, 1.0), max);
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
