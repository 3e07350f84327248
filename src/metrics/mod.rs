//! Counters and histograms of the service, and the Prometheus text rendering.
//!
//! Recording is lock-free (fixed label sets, atomics) because it sits on the redirect hot
//! path; rendering is a pure function of a snapshot, tested without a server.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::registry::RegistryFigures;

/// What an HTTP request was for: the `endpoint` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointKind {
    /// `/<bucket>/<key>`, including keys refused as bad.
    Download,
    /// `/update`.
    Update,
    /// `/relocate`.
    Relocate,
    /// `/list`.
    List,
    /// `/status`.
    Status,
    /// `/readiness` and `/healthcheck`.
    Probe,
    /// `/metrics`.
    Metrics,
    /// `/browse/…`.
    Browse,
    /// `POST /events`.
    Events,
    /// Paths that name no endpoint (404).
    Other,
}

impl EndpointKind {
    pub(crate) const ALL: [EndpointKind; 10] = [
        EndpointKind::Download,
        EndpointKind::Update,
        EndpointKind::Relocate,
        EndpointKind::List,
        EndpointKind::Status,
        EndpointKind::Probe,
        EndpointKind::Metrics,
        EndpointKind::Browse,
        EndpointKind::Events,
        EndpointKind::Other,
    ];
    /// The `endpoint` label's value.
    pub fn label(self) -> &'static str {
        match self {
            EndpointKind::Download => "download",
            EndpointKind::Update => "update",
            EndpointKind::Relocate => "relocate",
            EndpointKind::List => "list",
            EndpointKind::Status => "status",
            EndpointKind::Probe => "probe",
            EndpointKind::Metrics => "metrics",
            EndpointKind::Browse => "browse",
            EndpointKind::Events => "events",
            EndpointKind::Other => "other",
        }
    }
}

/// The status codes the service answers with; anything else is counted as `other`. No
/// 431: hyper answers an oversized request head itself, before any request is counted.
const STATUSES: [u16; 16] = [
    200, 302, 400, 401, 403, 404, 405, 408, 413, 414, 429, 499, 500, 502, 503, 0,
];

fn status_slot(status: u16) -> usize {
    STATUSES
        .iter()
        .position(|s| *s == status)
        .unwrap_or(STATUSES.len() - 1)
}

/// S3 operations the service performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S3Op {
    /// `HEAD` of an object: confirming a file.
    HeadObject,
    /// `GET` of an object: manifests and journal records.
    GetObject,
    /// `PUT` of an object: manifests and journal records.
    PutObject,
    /// A page of a bucket listing.
    ListObjectsV2,
    /// `DELETE` of an object (the service itself deletes nothing; the client can).
    DeleteObject,
}

impl S3Op {
    pub(crate) const ALL: [S3Op; 5] = [
        S3Op::HeadObject,
        S3Op::GetObject,
        S3Op::PutObject,
        S3Op::ListObjectsV2,
        S3Op::DeleteObject,
    ];
    /// The `op` label's value: the S3 API name.
    pub fn label(self) -> &'static str {
        match self {
            S3Op::HeadObject => "HeadObject",
            S3Op::GetObject => "GetObject",
            S3Op::PutObject => "PutObject",
            S3Op::ListObjectsV2 => "ListObjectsV2",
            S3Op::DeleteObject => "DeleteObject",
        }
    }
}

/// How an S3 call ended: the `outcome` label. Produced by [`crate::s3::S3Error::outcome`],
/// so a new kind of error cannot be counted under a label kept in step by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S3Outcome {
    /// S3 answered with success.
    Ok,
    /// [`crate::s3::S3Error::NotFound`]: proved missing.
    NotFound,
    /// [`crate::s3::S3Error::Unproven`].
    Unproven,
    /// [`crate::s3::S3Error::KeyRejected`].
    KeyRejected,
    /// [`crate::s3::S3Error::Overloaded`]: not sent.
    Overloaded,
    /// [`crate::s3::S3Error::Denied`].
    Denied,
    /// [`crate::s3::S3Error::PreconditionFailed`].
    PreconditionFailed,
    /// [`crate::s3::S3Error::Unavailable`].
    Unavailable,
    /// [`crate::s3::S3Error::Rejected`].
    Rejected,
    /// [`crate::s3::S3Error::InvalidResponse`].
    InvalidResponse,
}

impl S3Outcome {
    pub(crate) const ALL: [S3Outcome; 10] = [
        S3Outcome::Ok,
        S3Outcome::NotFound,
        S3Outcome::Unproven,
        S3Outcome::KeyRejected,
        S3Outcome::Overloaded,
        S3Outcome::Denied,
        S3Outcome::PreconditionFailed,
        S3Outcome::Unavailable,
        S3Outcome::Rejected,
        S3Outcome::InvalidResponse,
    ];

    /// The `outcome` label's value.
    pub fn label(self) -> &'static str {
        match self {
            S3Outcome::Ok => "ok",
            S3Outcome::NotFound => "not_found",
            S3Outcome::Unproven => "unproven",
            S3Outcome::KeyRejected => "key_rejected",
            S3Outcome::Overloaded => "overloaded",
            S3Outcome::Denied => "denied",
            S3Outcome::PreconditionFailed => "precondition_failed",
            S3Outcome::Unavailable => "unavailable",
            S3Outcome::Rejected => "rejected",
            S3Outcome::InvalidResponse => "invalid_response",
        }
    }
}

/// Latency buckets in seconds, chosen around a redirect's few hundred microseconds and an
/// S3 call's few milliseconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Durations counted into [`BUCKETS`], with their count and sum (Prometheus histogram).
#[derive(Default)]
pub(crate) struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Counts one duration (saturating, in microseconds, in the sum).
    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Everything the service counts.
#[derive(Default)]
pub struct Metrics {
    requests: [[AtomicU64; STATUSES.len()]; EndpointKind::ALL.len()],
    request_seconds: [Histogram; EndpointKind::ALL.len()],
    s3_calls: [[AtomicU64; S3Outcome::ALL.len()]; S3Op::ALL.len()],
    s3_seconds: [Histogram; S3Op::ALL.len()],
    /// Redirects answered from the registry because S3 could not confirm.
    pub stale_redirects: AtomicU64,
    /// Manifest (or journal record) writes that succeeded, failed, and lost a conditional
    /// write's race.
    pub(crate) manifest_writes_ok: AtomicU64,
    pub(crate) manifest_writes_failed: AtomicU64,
    pub(crate) manifest_write_conflicts: AtomicU64,
    /// Downloads that waited on another request's HEAD of the same key instead of sending
    /// their own.
    pub(crate) coalesced_checks: AtomicU64,
    /// Listings stopped because the server repeated a continuation token.
    pub listing_loops: AtomicU64,
    /// Syncs refused by the mass-removal guard.
    pub removals_refused: AtomicU64,
    /// Downloads of missing keys answered from the miss cache without asking S3.
    pub miss_cache_hits: AtomicU64,
    /// Client connections open now (a gauge).
    pub connections_open: AtomicU64,
    /// Connections answered 503 and closed because `PARPARCHIK_MAX_CONNECTIONS` were open.
    pub connections_rejected: AtomicU64,
    /// Connections closed because a write to the client made no progress in time.
    pub write_timeouts: AtomicU64,
    /// Credentials fetched (or re-read after a change), and attempts that failed.
    pub credential_refreshes_ok: AtomicU64,
    pub(crate) credential_refreshes_failed: AtomicU64,
    /// Redirects answered, and the S3 calls made while answering them: their ratio is
    /// what a redirect costs in S3 requests.
    pub redirects: AtomicU64,
    pub(crate) redirect_s3_calls: AtomicU64,
}

impl Metrics {
    /// Counts one answered request under its endpoint and status.
    pub(crate) fn record_request(&self, kind: EndpointKind, status: u16, elapsed: Duration) {
        let k = kind as usize;
        self.requests[k][status_slot(status)].fetch_add(1, Relaxed);
        self.request_seconds[k].observe(elapsed);
    }

    /// Counts one S3 call, with how long it took.
    pub(crate) fn record_s3(&self, op: S3Op, outcome: S3Outcome, elapsed: Duration) {
        self.s3_calls[op as usize][outcome as usize].fetch_add(1, Relaxed);
        self.s3_seconds[op as usize].observe(elapsed);
    }

    /// A redirect was answered after `s3_calls` S3 calls.
    pub fn record_redirect(&self, s3_calls: u32) {
        self.redirects.fetch_add(1, Relaxed);
        self.redirect_s3_calls
            .fetch_add(u64::from(s3_calls), Relaxed);
    }

    /// A listing stopped because the server repeated a continuation token.
    pub(crate) fn record_listing_loop(&self) {
        self.listing_loops.fetch_add(1, Relaxed);
    }

    /// Calls of `op` counted under the outcome labelled `outcome` (0 for no such label).
    pub fn s3_calls(&self, op: S3Op, outcome: &str) -> u64 {
        S3Outcome::ALL
            .iter()
            .find(|o| o.label() == outcome)
            .map_or(0, |o| self.s3_calls[op as usize][*o as usize].load(Relaxed))
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The `# TYPE` of a metric family.
#[derive(Clone, Copy)]
enum Type {
    Gauge,
    Counter,
    Histogram,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Type::Gauge => "gauge",
            Type::Counter => "counter",
            Type::Histogram => "histogram",
        }
    }
}

fn head(out: &mut String, name: &str, kind: Type, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {}", kind.name());
}

/// One metric family: HELP, TYPE, then a line per `(labels, value)`; empty labels
/// write no braces.
fn family(
    out: &mut String,
    name: &str,
    kind: Type,
    help: &str,
    samples: impl IntoIterator<Item = (String, u64)>,
) {
    head(out, name, kind, help);
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// A family of one unlabelled value.
fn single(out: &mut String, name: &str, kind: Type, help: &str, value: u64) {
    family(out, name, kind, help, [(String::new(), value)]);
}

/// A histogram family: HELP, TYPE, then each labelled histogram's lines.
fn histograms<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    histograms: impl IntoIterator<Item = (String, &'a Histogram)>,
) {
    head(out, name, Type::Histogram, help);
    for (labels, h) in histograms {
        h.render(out, name, &labels);
    }
}

/// `ok` and `failed` samples of a family by outcome.
fn outcomes(values: [(&str, &AtomicU64); 2]) -> [(String, u64); 2] {
    values.map(|(outcome, v)| (format!("outcome=\"{outcome}\""), v.load(Relaxed)))
}

/// The Prometheus text exposition (format 0.0.4).
pub fn render(figures: &RegistryFigures, metrics: &Metrics, ready: bool) -> String {
    let mut text = String::with_capacity(16 * 1024);
    let out = &mut text;
    render_registry(out, figures, ready);
    render_requests(out, metrics);
    render_s3(out, metrics);
    render_counters(out, metrics);
    render_guards(out, metrics);
    family(
        out,
        "parparchik_credential_refreshes_total",
        Type::Counter,
        "Credentials fetched or reloaded, by outcome.",
        outcomes([
            ("ok", &metrics.credential_refreshes_ok),
            ("failed", &metrics.credential_refreshes_failed),
        ]),
    );
    text
}

/// What the registry holds, and whether the service is ready.
fn render_registry(out: &mut String, figures: &RegistryFigures, ready: bool) {
    // The Lua edition's four gauges: names, HELP texts and labels are a contract.
    family(
        out,
        "parparchik_volume_files",
        Type::Gauge,
        "Current number of known files by bucket.",
        figures
            .volume_files
            .iter()
            .map(|(bucket, n)| (format!("volume=\"{}\"", escape_label(bucket)), *n)),
    );
    single(
        out,
        "parparchik_duplicate_files",
        Type::Gauge,
        "Number of file keys that exist in more than one S3 bucket.",
        figures.duplicate_files,
    );
    single(
        out,
        "parparchik_uploads_per_week",
        Type::Gauge,
        "Known uploaded file versions modified during the last 7 days.",
        figures.uploads_per_week,
    );
    single(
        out,
        "parparchik_uploads_per_month",
        Type::Gauge,
        "Known uploaded file versions modified during the last 31 days.",
        figures.uploads_per_month,
    );
    single(
        out,
        "parparchik_ready",
        Type::Gauge,
        "Whether the registry is rebuilt and the service ready (1) or not (0).",
        u64::from(ready),
    );
}

/// HTTP requests by endpoint kind: counts by status, and latencies.
fn render_requests(out: &mut String, metrics: &Metrics) {
    family(
        out,
        "parparchik_http_requests_total",
        Type::Counter,
        "HTTP requests answered, by endpoint kind and status.",
        EndpointKind::ALL.into_iter().flat_map(|kind| {
            let counts = &metrics.requests[kind as usize];
            // Statuses never answered are left out (most pairs never occur).
            STATUSES.iter().zip(counts).filter_map(move |(status, n)| {
                let n = n.load(Relaxed);
                let status = match status {
                    0 => "other".to_owned(),
                    s => s.to_string(),
                };
                let labels = format!("endpoint=\"{}\",status=\"{status}\"", kind.label());
                (n > 0).then_some((labels, n))
            })
        }),
    );
    histograms(
        out,
        "parparchik_http_request_duration_seconds",
        "Time to answer an HTTP request, by endpoint kind.",
        EndpointKind::ALL.into_iter().map(|kind| {
            (
                format!("endpoint=\"{}\"", kind.label()),
                &metrics.request_seconds[kind as usize],
            )
        }),
    );
}

/// S3 calls by operation: counts by outcome, and latencies.
fn render_s3(out: &mut String, metrics: &Metrics) {
    family(
        out,
        "parparchik_s3_requests_total",
        Type::Counter,
        "S3 calls made, by operation and outcome (each retry counts).",
        S3Op::ALL.into_iter().flat_map(|op| {
            S3Outcome::ALL.into_iter().map(move |outcome| {
                (
                    format!(
                        "operation=\"{}\",outcome=\"{}\"",
                        op.label(),
                        outcome.label()
                    ),
                    metrics.s3_calls[op as usize][outcome as usize].load(Relaxed),
                )
            })
        }),
    );
    histograms(
        out,
        "parparchik_s3_request_duration_seconds",
        "Time of one S3 call, by operation.",
        S3Op::ALL.into_iter().map(|op| {
            (
                format!("operation=\"{}\"", op.label()),
                &metrics.s3_seconds[op as usize],
            )
        }),
    );
}

/// Single counters of the registry's work with S3, and manifest writes by outcome.
fn render_counters(out: &mut String, metrics: &Metrics) {
    for (name, help, value) in [
        (
            "parparchik_stale_redirects_total",
            "Redirects answered from the registry because S3 could not confirm the object.",
            &metrics.stale_redirects,
        ),
        (
            "parparchik_coalesced_checks_total",
            "Existence checks answered by a HEAD already in flight for the same object.",
            &metrics.coalesced_checks,
        ),
        (
            "parparchik_manifest_write_conflicts_total",
            "Conditional manifest writes refused because another writer changed the manifest.",
            &metrics.manifest_write_conflicts,
        ),
        (
            "parparchik_s3_listing_loops_total",
            "Listings stopped because the server repeated a continuation token or went backwards.",
            &metrics.listing_loops,
        ),
        (
            "parparchik_removals_refused_total",
            "Syncs refused because one listing would remove more of a bucket than PARPARCHIK_MAX_REMOVAL_SHARE allows.",
            &metrics.removals_refused,
        ),
        (
            "parparchik_miss_cache_hits_total",
            "Downloads of keys S3 recently proved missing, answered 404 without asking again.",
            &metrics.miss_cache_hits,
        ),
        (
            "parparchik_redirects_total",
            "Downloads answered with a redirect.",
            &metrics.redirects,
        ),
        (
            "parparchik_redirect_s3_calls_total",
            "S3 calls made while answering downloads that were redirected (divided by parparchik_redirects_total: S3 calls per redirect).",
            &metrics.redirect_s3_calls,
        ),
    ] {
        single(out, name, Type::Counter, help, value.load(Relaxed));
    }
    family(
        out,
        "parparchik_manifest_writes_total",
        Type::Counter,
        "Manifest writes, by outcome.",
        outcomes([
            ("ok", &metrics.manifest_writes_ok),
            ("failed", &metrics.manifest_writes_failed),
        ]),
    );
}

/// What guards the service against its clients and a stalled log.
fn render_guards(out: &mut String, metrics: &Metrics) {
    single(
        out,
        "parparchik_connections_open",
        Type::Gauge,
        "Client connections open now.",
        metrics.connections_open.load(Relaxed),
    );
    for (name, help, value) in [
        (
            "parparchik_connections_rejected_total",
            "Connections answered 503 and closed because the connection cap was reached.",
            metrics.connections_rejected.load(Relaxed),
        ),
        (
            "parparchik_write_timeouts_total",
            "Connections closed because the client stopped reading its answer.",
            metrics.write_timeouts.load(Relaxed),
        ),
        (
            "parparchik_log_lines_dropped_total",
            "Log lines dropped because stderr could not keep up.",
            crate::log::dropped_lines(),
        ),
    ] {
        single(out, name, Type::Counter, help, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_contract_gauges_verbatim() {
        let figures = RegistryFigures {
            volume_files: vec![("public-bucket".into(), 2), ("private-bucket".into(), 0)],
            duplicate_files: 1,
            uploads_per_week: 1,
            uploads_per_month: 2,
        };
        let text = render(&figures, &Metrics::default(), true);
        for line in [
            "# HELP parparchik_volume_files Current number of known files by bucket.",
            "# TYPE parparchik_volume_files gauge",
            "parparchik_volume_files{volume=\"public-bucket\"} 2",
            "parparchik_volume_files{volume=\"private-bucket\"} 0",
            "# HELP parparchik_duplicate_files Number of file keys that exist in more than one S3 bucket.",
            "parparchik_duplicate_files 1",
            "# HELP parparchik_uploads_per_week Known uploaded file versions modified during the last 7 days.",
            "parparchik_uploads_per_week 1",
            "# HELP parparchik_uploads_per_month Known uploaded file versions modified during the last 31 days.",
            "parparchik_uploads_per_month 2",
            "parparchik_ready 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?}");
        }
    }

    /// Every family populated, each value distinct, so any change in the text shows.
    fn populated() -> (RegistryFigures, Metrics) {
        let figures = RegistryFigures {
            volume_files: vec![("pub\"lic".into(), 7), ("priv\\ate\n".into(), 0)],
            duplicate_files: 3,
            uploads_per_week: 4,
            uploads_per_month: 5,
        };
        let m = Metrics::default();
        let mut step = 0u64;
        for kind in EndpointKind::ALL {
            // Every counted status; 431, 418 and 0 are counted as `other`.
            for status in [
                200, 302, 400, 401, 403, 404, 405, 408, 413, 414, 429, 431, 499, 500, 502, 503,
                418, 0,
            ] {
                step += 1;
                for _ in 0..step % 4 {
                    m.record_request(kind, status, Duration::from_micros(step * 97));
                }
            }
        }
        for op in S3Op::ALL {
            for outcome in S3Outcome::ALL {
                step += 1;
                for _ in 0..step % 4 {
                    m.record_s3(op, outcome, Duration::from_micros(step * 1013));
                }
            }
        }
        let counters = [
            &m.stale_redirects,
            &m.manifest_writes_ok,
            &m.manifest_writes_failed,
            &m.manifest_write_conflicts,
            &m.coalesced_checks,
            &m.listing_loops,
            &m.removals_refused,
            &m.miss_cache_hits,
            &m.connections_open,
            &m.connections_rejected,
            &m.write_timeouts,
            &m.credential_refreshes_ok,
            &m.credential_refreshes_failed,
            &m.redirects,
            &m.redirect_s3_calls,
        ];
        for (i, c) in counters.into_iter().enumerate() {
            c.store(11 + i as u64, Relaxed);
        }
        (figures, m)
    }

    #[test]
    fn renders_exactly_as_recorded() {
        let (figures, m) = populated();
        // The dropped-lines counter is process-wide; other tests may move it.
        let text: String = render(&figures, &m, true)
            .lines()
            .map(
                |l| match l.strip_prefix("parparchik_log_lines_dropped_total ") {
                    Some(_) => "parparchik_log_lines_dropped_total N\n".to_owned(),
                    None => format!("{l}\n"),
                },
            )
            .collect();
        assert_eq!(text, include_str!("render_expected.txt"));
    }

    #[test]
    fn counts_requests_and_s3_calls() {
        let m = Metrics::default();
        m.record_request(EndpointKind::Download, 302, Duration::from_micros(300));
        m.record_request(EndpointKind::Download, 302, Duration::from_millis(30));
        m.record_request(EndpointKind::Download, 418, Duration::from_millis(1));
        m.record_s3(
            S3Op::HeadObject,
            S3Outcome::Unavailable,
            Duration::from_millis(2),
        );
        let text = render(&RegistryFigures::default(), &m, false);
        assert!(
            text.contains(
                "parparchik_http_requests_total{endpoint=\"download\",status=\"302\"} 2\n"
            )
        );
        assert!(text.contains(
            "parparchik_http_requests_total{endpoint=\"download\",status=\"other\"} 1\n"
        ));
        assert!(text.contains("parparchik_http_request_duration_seconds_bucket{endpoint=\"download\",le=\"0.0005\"} 1\n"));
        assert!(
            text.contains(
                "parparchik_http_request_duration_seconds_count{endpoint=\"download\"} 3\n"
            )
        );
        assert!(text.contains(
            "parparchik_s3_requests_total{operation=\"HeadObject\",outcome=\"unavailable\"} 1\n"
        ));
        assert_eq!(m.s3_calls(S3Op::HeadObject, "unavailable"), 1);
        assert!(text.contains("parparchik_ready 0\n"));
    }
}
