//! A circuit breaker for S3 calls, sans-IO: time is passed in.
//!
//! After [`Breaker::THRESHOLD`] storage failures in a row, calls are shed without being
//! sent for a short interval that doubles with each failed trial (up to a cap), so a
//! hanging or lying S3 does not collect thousands of stuck connections. When the interval
//! ends one trial call goes through; its success closes the breaker.

use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub(crate) struct Breaker {
    failures_in_a_row: u32,
    /// While `Some`, calls before this instant are shed.
    open_until: Option<Instant>,
    /// The interval the next opening lasts.
    interval: Duration,
    /// A trial call is out (half-open): others are shed until it reports.
    trial_out: bool,
}

/// What the breaker says about a call about to be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    Send,
    /// Send, as the one trial after an open interval.
    Trial,
    Shed,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            failures_in_a_row: 0,
            open_until: None,
            interval: Breaker::FIRST_INTERVAL,
            trial_out: false,
        }
    }
}

impl Breaker {
    pub(crate) const THRESHOLD: u32 = 5;
    pub(crate) const FIRST_INTERVAL: Duration = Duration::from_millis(500);
    pub(crate) const MAX_INTERVAL: Duration = Duration::from_secs(30);

    pub(crate) fn admit(&mut self, now: Instant) -> Admission {
        match self.open_until {
            None => Admission::Send,
            Some(_) if self.trial_out => Admission::Shed,
            Some(until) if now < until => Admission::Shed,
            Some(_) => {
                self.trial_out = true;
                Admission::Trial
            }
        }
    }

    /// Records how a sent call ended (`failed`: a storage failure, not a key's answer).
    pub(crate) fn record(&mut self, now: Instant, admission: Admission, failed: bool) {
        if admission == Admission::Trial {
            self.trial_out = false;
        }
        if !failed {
            *self = Breaker::default();
            return;
        }
        self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
        let reopen = admission == Admission::Trial
            || (self.open_until.is_none() && self.failures_in_a_row >= Breaker::THRESHOLD);
        if reopen {
            self.open_until = Some(now + self.interval);
            self.interval = (self.interval * 2).min(Breaker::MAX_INTERVAL);
        }
    }

    /// Whether calls are being shed (for `/status`).
    pub(crate) fn is_open(&self) -> bool {
        self.open_until.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_in_a_row_and_grows() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        for _ in 0..Breaker::THRESHOLD - 1 {
            assert_eq!(b.admit(t0), Admission::Send);
            b.record(t0, Admission::Send, true);
        }
        assert!(!b.is_open());
        b.record(t0, Admission::Send, true);
        assert!(b.is_open());
        assert_eq!(b.admit(t0), Admission::Shed);
        // After the interval: one trial; the others wait for it.
        let t1 = t0 + Breaker::FIRST_INTERVAL;
        assert_eq!(b.admit(t1), Admission::Trial);
        assert_eq!(b.admit(t1), Admission::Shed);
        b.record(t1, Admission::Trial, true);
        // The failed trial reopened it for twice as long.
        assert_eq!(b.admit(t1 + Breaker::FIRST_INTERVAL), Admission::Shed);
        let t2 = t1 + Breaker::FIRST_INTERVAL * 2;
        assert_eq!(b.admit(t2), Admission::Trial);
        b.record(t2, Admission::Trial, false);
        assert!(!b.is_open());
        assert_eq!(b.admit(t2), Admission::Send);
    }

    #[test]
    fn a_success_resets_the_count() {
        let t = Instant::now();
        let mut b = Breaker::default();
        for _ in 0..10 {
            for _ in 0..Breaker::THRESHOLD - 1 {
                b.record(t, Admission::Send, true);
            }
            b.record(t, Admission::Send, false);
        }
        assert!(!b.is_open());
    }

    #[test]
    fn interval_is_capped() {
        let mut t = Instant::now();
        let mut b = Breaker::default();
        for _ in 0..Breaker::THRESHOLD {
            b.record(t, Admission::Send, true);
        }
        for _ in 0..20 {
            t += Breaker::MAX_INTERVAL;
            assert_eq!(b.admit(t), Admission::Trial);
            b.record(t, Admission::Trial, true);
        }
        assert_eq!(b.interval, Breaker::MAX_INTERVAL);
    }
}
