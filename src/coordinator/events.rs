//! Applying bucket notifications to the registry (issue #15), with the rules of a sync:
//!
//! - `ObjectCreated:*` in bucket B: a key registered in another bucket stays there
//!   (sticky routes; it is marked a duplicate, as a sync would); a key registered in B
//!   is confirmed (and its size and time updated); a key with no home is registered in
//!   B. No S3 call.
//! - `ObjectRemoved:*` in bucket B: only when the key is registered in B, the existing
//!   `locate::confirm_or_find` asks S3 where it is now (B first, then the others by priority): the route
//!   moves to the first bucket holding it, or disappears on S3's proof.
//!
//! Per object the stamp (sequencer, else event time) of the last applied event is kept
//! in a bounded cache, so a redelivered, reordered or replayed older event changes
//! nothing. Past the cache's bound an old *created* event may be applied again: the
//! route then points to a missing object until the next sync (removals always ask S3).
//!
//! This module also keeps each bucket's trust (see `events::trust`): events received,
//! and what every sync found that the events had missed.

use crate::config::BucketId;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::app::App;
use crate::coordinator::persist::PersistError;
use crate::events::metrics::{BucketView, EventMetrics, EventOutcome, EventType};
use crate::events::order::Stamp;
use crate::events::parse::{Change, Notice, Record};
use crate::events::trust::BucketTrust;
use crate::keycache::KeyCache;
use crate::registry::{Dirty, Entry};
use crate::s3::S3Error;
use crate::{info, warn};

/// Objects whose last applied event is remembered (about 150 bytes each: a few MiB).
const STAMPS: usize = 65_536;
/// Locks that serialise the events of one object (striped by key).
const STRIPES: usize = 64;

/// Everything the service keeps about bucket notifications.
pub struct EventsState {
    applied: KeyCache<Stamp>,
    stripes: Vec<tokio::sync::Mutex<()>>,
    hasher: std::hash::RandomState,
    trust: Mutex<Vec<BucketTrust>>,
    /// Mirrors of `trust` for the redirect path: a bit per trusted bucket, and per
    /// bucket the time of its last agreeing sync (ms on `App::now_ms` + 1; 0 = none).
    trusted_bits: AtomicU64,
    vouched_ms: Vec<AtomicU64>,
    /// `Registry::last_replace` count already taken into account.
    seen_replaces: AtomicU64,
    pub metrics: EventMetrics,
    /// SNS signing certificates by URL (a handful exist), and the client that fetches
    /// them and confirms subscriptions.
    sns_certs: Mutex<std::collections::HashMap<String, bytes::Bytes>>,
    sns_client: std::sync::OnceLock<reqwest::Client>,
    /// Roots SNS signing certificates must chain to; `None`: the webpki (Mozilla) set.
    sns_roots: Mutex<Option<Vec<rustls_pki_types::TrustAnchor<'static>>>>,
}

impl EventsState {
    pub fn new(buckets: usize) -> EventsState {
        EventsState {
            applied: KeyCache::new(STAMPS),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            hasher: std::hash::RandomState::new(),
            trust: Mutex::new(vec![BucketTrust::default(); buckets]),
            trusted_bits: AtomicU64::new(0),
            vouched_ms: (0..buckets).map(|_| AtomicU64::new(0)).collect(),
            seen_replaces: AtomicU64::new(0),
            metrics: EventMetrics::default(),
            sns_certs: Mutex::new(std::collections::HashMap::new()),
            sns_client: std::sync::OnceLock::new(),
            sns_roots: Mutex::new(None),
        }
    }

    /// Replaces the roots SNS signing certificates must chain to (tests, or an
    /// SNS-compatible service with a private CA).
    pub fn set_sns_roots(&self, roots: Vec<rustls_pki_types::TrustAnchor<'static>>) {
        *self
            .sns_roots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(roots);
    }

    /// The roots SNS signing certificates must chain to.
    pub fn sns_roots(&self) -> Vec<rustls_pki_types::TrustAnchor<'static>> {
        self.sns_roots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| webpki_roots::TLS_SERVER_ROOTS.to_vec())
    }

    /// A signing certificate fetched before from `url`.
    pub fn sns_cert(&self, url: &str) -> Option<bytes::Bytes> {
        self.sns_certs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(url)
            .cloned()
    }

    pub fn remember_sns_cert(&self, url: &str, pem: bytes::Bytes) {
        let mut certs = self
            .sns_certs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // SNS rotates its certificate rarely; a bound keeps a stream of signed
        // messages naming ever new (allowed) URLs from growing the map.
        if certs.len() >= 32 {
            certs.clear();
        }
        certs.insert(url.to_owned(), pem);
    }

    /// The HTTPS client for SNS (built once; no redirects, short timeouts).
    pub fn sns_client(&self) -> Result<&reqwest::Client, crate::tls::HttpClientError> {
        if let Some(c) = self.sns_client.get() {
            return Ok(c);
        }
        let client = crate::tls::build_client(
            reqwest::Client::builder()
                .https_only(true)
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(std::time::Duration::from_secs(2)),
            "SNS",
        )?;
        Ok(self.sns_client.get_or_init(|| client))
    }

    fn trust(&self) -> std::sync::MutexGuard<'_, Vec<BucketTrust>> {
        self.trust
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn publish(&self, trust: &[BucketTrust]) {
        let mut bits = 0u64;
        for (i, t) in trust.iter().enumerate() {
            if t.trusted() {
                bits |= 1 << i;
            }
            let vouched = t.vouched_ms().map_or(0, |v| v + 1);
            self.vouched_ms[i].store(vouched, Ordering::Relaxed);
        }
        self.trusted_bits.store(bits, Ordering::Release);
    }
}

/// Takes the verdict of every sync finished since the last call into account: a sync
/// that found changes the events had missed ends its buckets' trust; one that agreed
/// vouches for every entry it listed. Cheap when nothing happened (one atomic load).
pub(crate) fn observe_syncs(app: &App) {
    let state = &app.events;
    let (count, unannounced) = app.registry.last_replace();
    if state.seen_replaces.load(Ordering::Acquire) == count {
        return;
    }
    let mut trust = state.trust();
    // Re-checked under the lock: only one caller applies a verdict.
    if state.seen_replaces.swap(count, Ordering::AcqRel) == count {
        return;
    }
    let now = app.now_ms();
    let enabled = app.config.events.enabled();
    for (i, t) in trust.iter_mut().enumerate() {
        let i = BucketId::new(i);
        let missed = unannounced.contains(i);
        let was = t.trusted();
        t.sync(missed, now);
        if !enabled {
            continue;
        }
        let name = &app.config.buckets[i].name;
        if missed {
            state.metrics.missed_syncs.fetch_add(1, Ordering::Relaxed);
        }
        match (was, t.trusted()) {
            (true, false) => warn!(
                "bucket {name}: a sync found changes its events had not told; every redirect is verified with S3 again until events flow and a sync agrees (check the bucket's notification target)"
            ),
            (false, true) => info!(
                "bucket {name}: events are flowing and the last sync agreed with them; routes are redirected without asking S3 for PARPARCHIK_EVENTS_VERIFY_TTL"
            ),
            _ => {}
        }
    }
    state.publish(&trust);
}

/// Whether `entry` may be redirected without asking S3 because its bucket's events are
/// trusted and it was confirmed (by an event, S3 or an agreeing sync) within
/// `PARPARCHIK_EVENTS_VERIFY_TTL`: `events::trust::fresh_parts`, read from the atomic
/// mirror of the buckets' states so that a redirect takes no lock (and the key's own
/// confirmation is looked up only when the bucket's last agreeing sync is too old).
pub(crate) fn vouched(app: &App, entry: &Entry) -> bool {
    if !app.config.events.enabled() {
        return false;
    }
    observe_syncs(app);
    let state = &app.events;
    if state.trusted_bits.load(Ordering::Acquire) & (1 << entry.bucket.index()) == 0 {
        return false;
    }
    let ttl_ms = u64::try_from(app.config.events.verify_ttl.as_millis()).unwrap_or(u64::MAX);
    // Stored plus one: 0 is "never".
    let vouched = state.vouched_ms[entry.bucket.index()]
        .load(Ordering::Relaxed)
        .checked_sub(1);
    if crate::events::trust::fresh_parts(true, vouched, None, app.now_ms(), ttl_ms) {
        return true;
    }
    crate::coordinator::locate::confirmed_within(app, entry, ttl_ms)
}

/// What `/status` shows about events.
pub(crate) fn status(app: &App) -> serde_json::Value {
    observe_syncs(app);
    let now = app.now_ms();
    let trust = app.events.trust();
    let enabled = app.config.events.enabled();
    let buckets: serde_json::Map<String, serde_json::Value> = app
        .config
        .buckets
        .iter()
        .zip(trust.iter())
        .map(|(b, t)| {
            (
                b.name.clone(),
                serde_json::json!({
                    "trusted": enabled && t.trusted(),
                    "last_event_age_s": t.last_event_age_ms(now).map(|ms| ms as f64 / 1000.0),
                    "missed_syncs": t.missed_syncs,
                }),
            )
        })
        .collect();
    let newest = trust.iter().filter_map(|t| t.last_event_age_ms(now)).min();
    serde_json::json!({
        "enabled": enabled,
        "trusted": enabled && !trust.is_empty() && trust.iter().all(BucketTrust::trusted),
        "last_event_age_s": newest.map(|ms| ms as f64 / 1000.0),
        "verify_ttl_seconds": app.config.events.verify_ttl.as_secs_f64(),
        "buckets": buckets,
    })
}

/// The events' metric series.
pub(crate) fn render_metrics(app: &App, out: &mut String) {
    observe_syncs(app);
    let now = app.now_ms();
    let enabled = app.config.events.enabled();
    let trust = app.events.trust();
    let views: Vec<BucketView<'_>> = app
        .config
        .buckets
        .iter()
        .zip(trust.iter())
        .map(|(b, t)| BucketView {
            name: &b.name,
            trusted: enabled && t.trusted(),
            last_event_age_s: t.last_event_age_ms(now).map(|ms| ms as f64 / 1000.0),
        })
        .collect();
    crate::events::metrics::render(out, &app.events.metrics, &views);
}

/// Why a batch of events was not fully applied: the sender should send it again.
#[derive(Debug)]
pub(crate) enum ApplyError {
    /// S3 could not say where a removed key is now.
    Storage(S3Error),
    /// The registry changed but a manifest could not be written (retried).
    Persist(PersistError),
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::Storage(e) => write!(f, "S3 could not confirm a removal: {e}"),
            ApplyError::Persist(e) => write!(f, "manifests not written: {e}"),
        }
    }
}

/// What a batch of records did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Applied {
    pub applied: usize,
    pub ignored: usize,
}

/// Applies every record, then persists the manifests they changed: when this returns
/// `Ok`, every change is durable (so a sender that gets an error sends again, and a
/// repeat is recognised by its stamp).
pub(crate) async fn apply(app: &App, records: Vec<Record>) -> Result<Applied, ApplyError> {
    let mut dirty = Dirty::default();
    let mut done = Applied::default();
    let mut failure = None;
    let now_unix_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    for record in records {
        let notice = match record {
            Record::Notice(n) => n,
            Record::Invalid(why) => {
                app.events
                    .metrics
                    .record(EventType::Other, EventOutcome::Invalid);
                warn!("bucket notification record ignored: {why}");
                done.ignored += 1;
                continue;
            }
        };
        if let Some(t) = notice.time_ms {
            let lag = i64::try_from(now_unix_ms).unwrap_or(i64::MAX) - t;
            app.events.metrics.observe_lag_ms(lag);
        }
        let kind = EventType::of(notice.change);
        let outcome = match apply_one(app, &notice).await {
            Ok((outcome, d)) => {
                dirty = dirty.union(d);
                outcome
            }
            Err(e) => {
                failure.get_or_insert(e);
                EventOutcome::Failed
            }
        };
        app.events.metrics.record(kind, outcome);
        match outcome {
            EventOutcome::Applied => done.applied += 1,
            _ => done.ignored += 1,
        }
    }
    if !dirty.is_empty() {
        crate::coordinator::persist::save(app, dirty)
            .await
            .map_err(ApplyError::Persist)?;
    }
    match failure {
        Some(e) => Err(ApplyError::Storage(e)),
        None => Ok(done),
    }
}

/// Applies one event; its outcome and the manifests it changed.
async fn apply_one(app: &App, n: &Notice) -> Result<(EventOutcome, Dirty), S3Error> {
    let Some(bucket) = app
        .config
        .buckets
        .iter()
        .position(|b| b.name == n.bucket)
        .map(BucketId::new)
    else {
        return Ok((EventOutcome::UnknownBucket, Dirty::default()));
    };
    // Whatever it says, an event about a bucket shows that its events flow.
    {
        let mut trust = app.events.trust();
        trust[bucket.index()].event(app.now_ms());
    }
    if app.config.buckets[bucket].owns(&n.key) {
        return Ok((EventOutcome::OwnObject, Dirty::default()));
    }
    let Some(change) = n.change else {
        return Ok((EventOutcome::Ignored, Dirty::default()));
    };
    let state = &app.events;
    let stripe = state.hasher.hash_one((bucket, n.key.as_str())) as usize % STRIPES;
    let _serialised = state.stripes[stripe].lock().await;
    let stamp = Stamp::new(n.sequencer.as_deref(), n.time_ms, change as u8);
    let newer = state
        .applied
        .peek(bucket, &n.key, |applied| stamp.supersedes(applied))
        .unwrap_or(true);
    if !newer {
        return Ok((EventOutcome::Stale, Dirty::default()));
    }
    let dirty = match change {
        Change::Created => created(app, bucket, n),
        Change::Removed => removed(app, bucket, &n.key).await?,
    };
    state
        .applied
        .with(bucket, &n.key, || stamp.clone(), |s| *s = stamp.clone());
    Ok((EventOutcome::Applied, dirty))
}

/// `ObjectCreated` in `bucket`: sticky routes, else the key's new home.
fn created(app: &App, bucket: BucketId, n: &Notice) -> Dirty {
    app.misses.forget(bucket, &n.key);
    let when = n
        .time_ms
        .and_then(|ms| time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok())
        .map(crate::timefmt::format);
    match app.registry.get(&n.key) {
        // Registered in another bucket: the route stays (the sync's rule); that bucket
        // still holds it as far as any event or sync told.
        Some(e) if e.bucket != bucket => {
            app.registry.set_duplicate(&n.key, true);
            Dirty::default()
        }
        known => {
            crate::coordinator::locate::note_confirmed(app, bucket, &n.key);
            let size = n.size.or(known.as_ref().map(|e| e.size)).unwrap_or(0);
            let modified = when
                .or_else(|| known.as_ref().map(|e| e.last_modified()))
                .unwrap_or_default();
            app.registry
                .upsert(Entry::new(n.key.clone(), bucket, size, modified))
        }
    }
}

/// `ObjectRemoved` from `bucket`: if the route was there, S3 says where it goes.
async fn removed(app: &App, bucket: BucketId, key: &str) -> Result<Dirty, S3Error> {
    match app.registry.get(key) {
        Some(e) if e.bucket == bucket => {
            let found = crate::coordinator::locate::confirm_or_find(app, key).await?;
            Ok(found.dirty)
        }
        // The route is elsewhere or nowhere: this bucket's copy was not its home.
        _ => {
            app.misses.remember(bucket, key, std::time::Instant::now());
            Ok(Dirty::default())
        }
    }
}
