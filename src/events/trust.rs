//! Whether a bucket's events can be trusted to keep its routes fresh, so that a route
//! is redirected without asking S3 (issue #15, "freshness with fewer S3 calls").
//!
//! A bucket is trusted once events have been flowing for it (at least one received)
//! **and** a later sync (a full listing) found nothing the events had not already
//! told. A sync that finds a change the events missed ends the trust at once: from
//! then on every redirect is verified again, until events flow again and a sync agrees
//! with them. Pure: the caller passes the time (milliseconds on one monotonic clock).

/// One bucket's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BucketTrust {
    last_event_ms: Option<u64>,
    /// When the last sync that agreed with the events ran; its listing vouches for
    /// every entry of the bucket from then on.
    vouched_ms: Option<u64>,
    /// When a sync last found changes the events had missed.
    missed_at_ms: Option<u64>,
    /// Syncs that found changes the events had missed.
    pub missed_syncs: u64,
    trusted: bool,
}

impl BucketTrust {
    /// An event about this bucket arrived (whatever it said).
    pub(crate) fn event(&mut self, now_ms: u64) {
        self.last_event_ms = Some(now_ms);
    }

    /// A sync finished; `missed` says whether its listing held changes of this bucket
    /// that no event (or request) had told the registry.
    pub(crate) fn sync(&mut self, missed: bool, now_ms: u64) {
        if missed {
            self.trusted = false;
            self.vouched_ms = None;
            self.missed_at_ms = Some(now_ms);
            self.missed_syncs += 1;
            return;
        }
        // Events must have flowed since the last miss: a clean sync of a bucket whose
        // events are broken but that nobody changed proves nothing about the events.
        let flowing = match (self.last_event_ms, self.missed_at_ms) {
            (Some(event), Some(missed)) => event > missed,
            (Some(_), None) => true,
            (None, _) => false,
        };
        self.trusted = flowing;
        self.vouched_ms = Some(now_ms);
    }

    pub(crate) fn trusted(&self) -> bool {
        self.trusted
    }

    /// When the last sync that agreed with the events ran (while trusted).
    pub(crate) fn vouched_ms(&self) -> Option<u64> {
        self.vouched_ms.filter(|_| self.trusted)
    }

    /// Milliseconds since the last event, if any.
    pub(crate) fn last_event_age_ms(&self, now_ms: u64) -> Option<u64> {
        self.last_event_ms.map(|t| now_ms.saturating_sub(t))
    }
}

/// Whether a route confirmed at `confirmed_ms` (by an event or S3), in a bucket whose
/// state is `trust`, may be redirected at `now_ms` without asking S3: the bucket is
/// trusted, and the newer of that confirmation and the bucket's last agreeing sync is
/// less than `ttl_ms` old.
#[cfg(test)]
fn fresh(trust: &BucketTrust, confirmed_ms: Option<u64>, now_ms: u64, ttl_ms: u64) -> bool {
    fresh_parts(
        trust.trusted(),
        trust.vouched_ms(),
        confirmed_ms,
        now_ms,
        ttl_ms,
    )
}

/// [`fresh`] from the parts of a bucket's state, as the redirect path reads them from
/// atomics (no lock per redirect).
pub(crate) fn fresh_parts(
    trusted: bool,
    vouched_ms: Option<u64>,
    confirmed_ms: Option<u64>,
    now_ms: u64,
    ttl_ms: u64,
) -> bool {
    trusted
        && confirmed_ms
            .max(vouched_ms)
            .is_some_and(|t| now_ms.saturating_sub(t) < ttl_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: u64 = 300_000;

    #[test]
    fn trusted_only_after_events_and_an_agreeing_sync() {
        let mut t = BucketTrust::default();
        t.sync(false, 1_000);
        assert!(
            !t.trusted(),
            "no event yet: nothing says events are configured"
        );
        t.event(2_000);
        assert!(
            !t.trusted(),
            "events alone are not enough: a sync must agree"
        );
        t.sync(false, 3_000);
        assert!(t.trusted());
        assert!(fresh(&t, None, 3_000 + TTL - 1, TTL), "the sync vouches");
        assert!(!fresh(&t, None, 3_000 + TTL, TTL));
        assert!(
            fresh(&t, Some(200_000), 3_000 + TTL, TTL),
            "a later event confirmation"
        );
    }

    #[test]
    fn a_sync_that_finds_missed_changes_ends_the_trust() {
        let mut t = BucketTrust::default();
        t.event(1);
        t.sync(false, 2);
        assert!(t.trusted());
        t.sync(true, 10);
        assert!(!t.trusted());
        assert_eq!(t.missed_syncs, 1);
        assert!(
            !fresh(&t, Some(10), 10, TTL),
            "every request is verified again"
        );
        t.sync(false, 20);
        assert!(
            !t.trusted(),
            "no event since the miss: events may still be down"
        );
        t.event(30);
        t.sync(false, 40);
        assert!(t.trusted(), "events flow again and a sync agrees");
        assert_eq!(t.last_event_age_ms(100), Some(70));
    }

    #[test]
    fn untrusted_is_never_fresh() {
        let t = BucketTrust::default();
        assert!(!fresh(&t, Some(5), 5, TTL));
        assert_eq!(t.last_event_age_ms(5), None);
    }
}
