//! A full sync: list every bucket, reconcile the registry with what they hold, persist
//! the manifests that changed. One pipeline for `/list`, the periodic sync and start-up
//! (which first loads the manifests as the registered state).

use crate::config::BucketId;
use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::app::App;
use crate::coordinator::persist::PersistError;
use crate::registry::Dirty;
use crate::registry::Entry;
use crate::registry::reconcile::{Reconciled, reconcile};
use crate::s3::S3Error;
use crate::{info, warn};

/// How the last sync went, for `/status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncReport {
    /// RFC 3339 UTC.
    pub finished_at: String,
    /// `ok`, or the error that stopped it.
    pub outcome: Result<SyncCounts, SyncError>,
}

/// What a successful sync found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncCounts {
    /// Files registered after the sync (one per key).
    pub files: usize,
    /// Keys found in more than one bucket.
    pub duplicates: usize,
    /// Objects listed in all buckets, the buckets' own objects excluded.
    pub listed: usize,
    pub(crate) millis: u64,
}

/// Serialises syncs, and lets a caller that waited for a running sync reuse a sync that
/// started after it arrived instead of listing again.
#[derive(Default)]
pub struct SyncState {
    lock: Mutex<()>,
    started: AtomicU64,
    /// Sequence number and outcome of the last finished sync.
    last: StdMutex<Option<(u64, SyncReport)>>,
}

impl SyncState {
    pub(crate) fn last_report(&self) -> Option<SyncReport> {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|(_, r)| r.clone())
    }
}

/// Lists every bucket, in priority order, into entries sorted by key (the buckets' own
/// objects left out). A bucket the registry already knows many keys of is listed in
/// `PARPARCHIK_LIST_CONCURRENCY` ranges at once, cut where its known keys say.
pub async fn list_all(app: &App) -> Result<Vec<Vec<Arc<Entry>>>, SyncError> {
    let mut listings = Vec::with_capacity(app.config.buckets.len());
    for (i, b) in app.config.buckets.iter().enumerate() {
        let i = BucketId::new(i);
        let started = Instant::now();
        let ranges = app.config.storage.list_concurrency;
        let (splits, known) = app.registry.keys_in(i, |known| {
            (
                super::listing::split_points(known.iter().copied(), ranges),
                known.len(),
            )
        });
        let splits = if splits.is_empty() && known == 0 && ranges > 1 {
            first_split_points(app, i, ranges).await
        } else {
            splits
        };
        let mut next_log = 10_000;
        let objects = super::listing::list_bucket(
            &app.s3,
            &b.name,
            &splits,
            |o| (!b.owns(&o.key)).then(|| listed_entry(app, i, o)),
            |so_far| {
                if so_far >= next_log {
                    info!("listing bucket {}: {so_far} objects so far", b.name);
                    next_log += 10_000;
                }
            },
        )
        .await
        .map_err(|error| SyncError::List {
            bucket: b.name.clone(),
            error,
        })?;
        info!(
            "listed bucket {}: {} objects in {} ms ({} ranges)",
            b.name,
            objects.len(),
            started.elapsed().as_millis(),
            splits.len() + 1
        );
        listings.push(objects);
    }
    Ok(listings)
}

/// Split points for a bucket the registry knows nothing of (a first start without a
/// manifest): its first-level folders, listed with a delimiter (a page per thousand
/// folders, at most ten). None when it has fewer than two folders or the question
/// fails (the listing itself then says why).
async fn first_split_points(app: &App, bucket: BucketId, ranges: usize) -> Vec<String> {
    let name = &app.config.buckets[bucket].name;
    match app.s3.list_prefixes(name, 10).await {
        Ok((prefixes, _)) => super::listing::split_points_from_prefixes(&prefixes, ranges),
        Err(_) => Vec::new(),
    }
}

/// A listed object as an entry of bucket `bucket`: the registry's own when it already
/// says exactly that (shared, so a sync of unchanged files allocates nothing per file).
fn listed_entry(app: &App, bucket: BucketId, o: crate::s3::ListedObject) -> Arc<Entry> {
    match app.registry.get(&o.key) {
        Some(e) if e.bucket == bucket && e.size == o.size && e.modified_at(&o.last_modified) => e,
        _ => Arc::new(Entry::new(o.key, bucket, o.size, &o.last_modified)),
    }
}

/// Why a sync left the registry as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncError {
    /// A bucket could not be listed.
    List {
        /// The bucket's name.
        bucket: String,
        /// What S3 answered.
        error: S3Error,
    },
    /// The listing would remove more of a bucket's entries than the removal guard
    /// allows, and a second complete listing did not confirm it.
    RemovalRefused {
        /// The bucket's name.
        bucket: String,
        /// Entries the listing no longer showed.
        would_remove: usize,
        /// Entries the bucket had in the registry.
        entries: usize,
    },
    /// The registry changed, but a manifest could not be written (it is retried).
    Persist(PersistError),
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::List { bucket, error } => write!(f, "listing bucket {bucket}: {error}"),
            SyncError::RemovalRefused {
                bucket,
                would_remove,
                entries,
            } => write!(
                f,
                "refused to remove {would_remove} of {entries} entries of bucket {bucket} on one listing that a second listing did not confirm (PARPARCHIK_MAX_REMOVAL_SHARE)"
            ),
            SyncError::Persist(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SyncError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SyncError::List { error, .. } => Some(error),
            SyncError::Persist(e) => Some(e),
            SyncError::RemovalRefused { .. } => None,
        }
    }
}

/// Runs one sync, or waits for the one running and reuses it if it started after this
/// call. A failed sync leaves the registry as it was.
pub async fn resync(app: &App) -> Result<SyncCounts, SyncError> {
    sync_with(app, Persistence::Wait).await
}

/// Whether a sync waits for the manifests it changed to be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// `/list` and the periodic sync: durable before they report.
    Wait,
    /// Start-up: ready once the registry is right; the writers catch up in the
    /// background (and any request that changes a bucket waits for its writer).
    Background,
}

pub(crate) async fn sync_with(
    app: &App,
    persistence: Persistence,
) -> Result<SyncCounts, SyncError> {
    let state = &app.sync;
    let arrived_after = state.started.load(Ordering::Acquire);
    let running = state.lock.lock().await;
    resync_holding(app, persistence, arrived_after, running).await
}

/// The sync lock, for start-up: it reads the manifests under it too, so that a `/list`
/// arriving meanwhile waits for start-up's sync instead of listing beside it.
pub(crate) async fn hold(app: &App) -> (tokio::sync::MutexGuard<'_, ()>, u64) {
    let arrived_after = app.sync.started.load(Ordering::Acquire);
    (app.sync.lock.lock().await, arrived_after)
}

/// [`sync_with`], for a caller that already holds the lock ([`hold`]).
pub(crate) async fn resync_holding(
    app: &App,
    persistence: Persistence,
    arrived_after: u64,
    _running: tokio::sync::MutexGuard<'_, ()>,
) -> Result<SyncCounts, SyncError> {
    let state = &app.sync;
    if let Some((seq, report)) = state
        .last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
        && *seq > arrived_after
        && persistence == Persistence::Wait
    {
        return report.outcome.clone();
    }
    let seq = state.started.fetch_add(1, Ordering::AcqRel) + 1;
    let started = Instant::now();
    let outcome = run_sync(app, started, persistence).await;
    if let Err(e) = &outcome {
        warn!("sync failed, registry left as it was: {e}");
    }
    let report = SyncReport {
        finished_at: crate::timefmt::format(time::OffsetDateTime::now_utc()),
        outcome: outcome.clone(),
    };
    *state
        .last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((seq, report));
    outcome
}

/// The one pipeline of start-up, `/list` and the periodic sync: list every bucket,
/// reconcile with the registry's homes (sticky routes), guard against mass removal,
/// replace, persist what changed.
async fn run_sync(
    app: &App,
    started: Instant,
    persistence: Persistence,
) -> Result<SyncCounts, SyncError> {
    let since = app.registry.mutation_seq();
    let listings = list_all(app).await?;
    let listed = listings.iter().map(Vec::len).sum();
    let reconciled: Reconciled = reconcile(listings, |key| app.registry.get(key).map(|e| e.bucket));
    guard_removals(app, &reconciled).await?;
    let files = reconciled.files.len();
    let duplicates = reconciled.duplicates.len();
    let dirty: Dirty = app.registry.replace(reconciled, since);
    // The listing and the replaced entries are freed now; give their pages back.
    crate::memory::release_freed();
    match persistence {
        Persistence::Wait => super::persist::save(app, dirty)
            .await
            .map_err(SyncError::Persist)?,
        Persistence::Background => super::persist::save_later(app, dirty),
    }
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(SyncCounts {
        files,
        duplicates,
        listed,
        millis,
    })
}

/// How many entries one listing may remove from a bucket of `entries` without a second
/// listing confirming it.
pub fn removal_allowance(entries: usize, share: f64, floor: usize) -> usize {
    ((entries as f64 * share).floor() as usize).max(floor)
}

/// Refuses a listing that would remove more of a bucket's entries than allowed, unless a
/// second complete listing of that bucket confirms every one of those removals.
async fn guard_removals(app: &App, reconciled: &Reconciled) -> Result<(), SyncError> {
    let settings = &app.config.storage;
    let counts = app
        .registry
        .removal_counts(reconciled, app.config.buckets.len());
    for (i, cfg) in app.config.buckets.iter().enumerate() {
        let bucket = BucketId::new(i);
        let (entries, would_remove) = counts[i];
        let allowance = removal_allowance(entries, settings.removal_share, settings.removal_floor);
        if would_remove <= allowance {
            continue;
        }
        let listed: std::collections::HashSet<&str> =
            reconciled.files.iter().map(|e| e.key.as_str()).collect();
        let registered = app.registry.entries_in(bucket);
        let removed: Vec<&str> = registered
            .iter()
            .filter(|e| !listed.contains(e.key.as_str()))
            .map(|e| e.key.as_str())
            .collect();
        warn!(
            "a listing of bucket {} would remove {} of its {} entries; listing it again to confirm",
            cfg.name,
            removed.len(),
            registered.len()
        );
        let again = app
            .s3
            .list_objects(&cfg.name, |_| {})
            .await
            .map_err(|error| SyncError::List {
                bucket: cfg.name.clone(),
                error,
            })?;
        let present: std::collections::HashSet<&str> =
            again.iter().map(|o| o.key.as_str()).collect();
        if removed.iter().any(|k| present.contains(k)) {
            app.metrics.removals_refused.fetch_add(1, Ordering::Relaxed);
            return Err(SyncError::RemovalRefused {
                bucket: cfg.name.clone(),
                would_remove: removed.len(),
                entries: registered.len(),
            });
        }
    }
    Ok(())
}

/// Re-syncs every `interval` until the process ends.
pub async fn periodic(app: Arc<App>, interval: Duration) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match resync(&app).await {
            Ok(c) => {
                app.record_storage_error(None);
                info!(
                    "periodic sync: {} files, {} duplicates, {} ms",
                    c.files, c.duplicates, c.millis
                );
            }
            Err(e) => app.record_storage_error(Some(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::removal_allowance;

    #[test]
    fn allowance_is_a_share_with_a_floor() {
        assert_eq!(removal_allowance(20_000, 0.10, 5), 2_000);
        assert_eq!(removal_allowance(20, 0.10, 5), 5);
        assert_eq!(removal_allowance(0, 0.10, 5), 5);
        assert_eq!(removal_allowance(100, 1.0, 5), 100);
        assert_eq!(removal_allowance(100, 0.0, 0), 0);
    }
}
