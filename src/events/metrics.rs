//! Counters of bucket notifications and their rendering (Prometheus text). Lock-free,
//! fixed label sets, like `crate::metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::parse::Change;

/// The `type` label: what an event does to its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Created,
    Removed,
    /// Event types that say nothing about where a file is, and invalid records.
    Other,
}

impl EventType {
    pub const ALL: [EventType; 3] = [EventType::Created, EventType::Removed, EventType::Other];

    pub fn of(change: Option<Change>) -> EventType {
        match change {
            Some(Change::Created) => EventType::Created,
            Some(Change::Removed) => EventType::Removed,
            None => EventType::Other,
        }
    }

    fn label(self) -> &'static str {
        match self {
            EventType::Created => "created",
            EventType::Removed => "removed",
            EventType::Other => "other",
        }
    }
}

/// The `outcome` label: what the service did with an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    /// The registry now says what the event said (changed, or confirmed as it was).
    Applied,
    /// Older than (or the same as) an event already applied to that object: ignored.
    Stale,
    /// About a bucket the service does not serve: ignored.
    UnknownBucket,
    /// About the service's own objects (manifests): ignored.
    OwnObject,
    /// An event type that says nothing about where a file is: ignored.
    Ignored,
    /// A record without a bucket, key or name, or with a key that does not decode.
    Invalid,
    /// S3 or a manifest write failed while applying it (answered 503, sent again).
    Failed,
}

impl EventOutcome {
    pub const ALL: [EventOutcome; 7] = [
        EventOutcome::Applied,
        EventOutcome::Stale,
        EventOutcome::UnknownBucket,
        EventOutcome::OwnObject,
        EventOutcome::Ignored,
        EventOutcome::Invalid,
        EventOutcome::Failed,
    ];

    fn label(self) -> &'static str {
        match self {
            EventOutcome::Applied => "applied",
            EventOutcome::Stale => "stale",
            EventOutcome::UnknownBucket => "unknown_bucket",
            EventOutcome::OwnObject => "own_object",
            EventOutcome::Ignored => "ignored",
            EventOutcome::Invalid => "invalid",
            EventOutcome::Failed => "failed",
        }
    }
}

/// Event lag buckets in seconds: a healthy webhook is well under a second; a queue
/// that was replayed after an outage is minutes or hours behind.
const LAG_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0, 60.0, 300.0, 3600.0];

#[derive(Default)]
pub struct EventMetrics {
    events: [[AtomicU64; EventOutcome::ALL.len()]; EventType::ALL.len()],
    lag: [AtomicU64; LAG_BUCKETS.len()],
    lag_count: AtomicU64,
    lag_sum_ms: AtomicU64,
    /// Syncs whose listing held changes the events had missed.
    pub missed_syncs: AtomicU64,
    /// SNS subscriptions confirmed, and refused (host not allowed, bad signature).
    pub sns_confirmed: AtomicU64,
    pub sns_refused: AtomicU64,
}

impl EventMetrics {
    pub fn record(&self, kind: EventType, outcome: EventOutcome) {
        self.events[kind as usize][outcome as usize].fetch_add(1, Relaxed);
    }

    pub fn count(&self, kind: EventType, outcome: EventOutcome) -> u64 {
        self.events[kind as usize][outcome as usize].load(Relaxed)
    }

    /// Time from the event (as the sender stamped it) to its arrival; negative lags
    /// (clock skew) count as zero.
    pub fn observe_lag_ms(&self, lag_ms: i64) {
        let ms = u64::try_from(lag_ms).unwrap_or(0);
        let secs = ms as f64 / 1000.0;
        if let Some(i) = LAG_BUCKETS.iter().position(|b| secs <= *b) {
            self.lag[i].fetch_add(1, Relaxed);
        }
        self.lag_count.fetch_add(1, Relaxed);
        self.lag_sum_ms.fetch_add(ms, Relaxed);
    }
}

/// One bucket's event state, for the gauges.
pub(crate) struct BucketView<'a> {
    pub name: &'a str,
    pub trusted: bool,
    pub last_event_age_s: Option<f64>,
}

/// The events' series, appended to the service's Prometheus text.
pub(crate) fn render(out: &mut String, m: &EventMetrics, buckets: &[BucketView<'_>]) {
    out.push_str("# HELP parparchik_events_total Bucket notification records received, by type and outcome.\n");
    out.push_str("# TYPE parparchik_events_total counter\n");
    for kind in EventType::ALL {
        for outcome in EventOutcome::ALL {
            let _ = writeln!(
                out,
                "parparchik_events_total{{type=\"{}\",outcome=\"{}\"}} {}",
                kind.label(),
                outcome.label(),
                m.count(kind, outcome)
            );
        }
    }
    out.push_str(
        "# HELP parparchik_event_lag_seconds Time from an event (its eventTime) to its arrival.\n",
    );
    out.push_str("# TYPE parparchik_event_lag_seconds histogram\n");
    let mut cumulative = 0;
    for (i, b) in LAG_BUCKETS.iter().enumerate() {
        cumulative += m.lag[i].load(Relaxed);
        let _ = writeln!(
            out,
            "parparchik_event_lag_seconds_bucket{{le=\"{b}\"}} {cumulative}"
        );
    }
    let count = m.lag_count.load(Relaxed);
    let _ = writeln!(
        out,
        "parparchik_event_lag_seconds_bucket{{le=\"+Inf\"}} {count}\n\
         parparchik_event_lag_seconds_sum {}\n\
         parparchik_event_lag_seconds_count {count}",
        m.lag_sum_ms.load(Relaxed) as f64 / 1000.0
    );
    out.push_str("# HELP parparchik_events_trusted Whether a bucket's events are trusted to keep its routes fresh without asking S3 (1) or every redirect is verified (0).\n");
    out.push_str("# TYPE parparchik_events_trusted gauge\n");
    for b in buckets {
        let _ = writeln!(
            out,
            "parparchik_events_trusted{{bucket=\"{}\"}} {}",
            b.name.replace('\\', "\\\\").replace('"', "\\\""),
            u8::from(b.trusted)
        );
    }
    out.push_str("# HELP parparchik_event_age_seconds Time since the last event about a bucket (absent: none yet).\n");
    out.push_str("# TYPE parparchik_event_age_seconds gauge\n");
    for b in buckets {
        if let Some(age) = b.last_event_age_s {
            let _ = writeln!(
                out,
                "parparchik_event_age_seconds{{bucket=\"{}\"}} {age}",
                b.name.replace('\\', "\\\\").replace('"', "\\\"")
            );
        }
    }
    let counters = [
        (
            "parparchik_events_missed_syncs_total",
            "Syncs whose listing held changes the events had not told (verification falls back to every request).",
            &m.missed_syncs,
        ),
        (
            "parparchik_sns_subscriptions_confirmed_total",
            "SNS subscriptions confirmed by fetching their SubscribeURL.",
            &m.sns_confirmed,
        ),
        (
            "parparchik_sns_messages_refused_total",
            "SNS messages refused: host not allowed, or signature not valid.",
            &m.sns_refused,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            value.load(Relaxed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_lag_and_trust() {
        let m = EventMetrics::default();
        m.record(EventType::Created, EventOutcome::Applied);
        m.record(EventType::Created, EventOutcome::Applied);
        m.record(EventType::Removed, EventOutcome::Stale);
        m.observe_lag_ms(300);
        m.observe_lag_ms(-5);
        m.observe_lag_ms(7_200_000);
        let mut out = String::new();
        render(
            &mut out,
            &m,
            &[
                BucketView {
                    name: "a",
                    trusted: true,
                    last_event_age_s: Some(1.5),
                },
                BucketView {
                    name: "b",
                    trusted: false,
                    last_event_age_s: None,
                },
            ],
        );
        for line in [
            "parparchik_events_total{type=\"created\",outcome=\"applied\"} 2",
            "parparchik_events_total{type=\"removed\",outcome=\"stale\"} 1",
            "parparchik_events_total{type=\"other\",outcome=\"invalid\"} 0",
            "parparchik_event_lag_seconds_bucket{le=\"0.1\"} 1",
            "parparchik_event_lag_seconds_bucket{le=\"0.5\"} 2",
            "parparchik_event_lag_seconds_bucket{le=\"3600\"} 2",
            "parparchik_event_lag_seconds_bucket{le=\"+Inf\"} 3",
            "parparchik_event_lag_seconds_count 3",
            "parparchik_events_trusted{bucket=\"a\"} 1",
            "parparchik_events_trusted{bucket=\"b\"} 0",
            "parparchik_event_age_seconds{bucket=\"a\"} 1.5",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
        assert!(!out.contains("parparchik_event_age_seconds{bucket=\"b\"}"));
    }
}
