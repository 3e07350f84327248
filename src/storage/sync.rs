//! A full sync: list every bucket, reconcile the registry with what they hold, persist
//! the manifests that changed. Used by `/list`, the periodic sync and start-up.

use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::app::App;
use crate::registry::Dirty;
use crate::registry::reconcile::{Reconciled, reconcile};
use crate::s3::{ListedObject, S3Error};
use crate::{info, warn};

/// How the last sync went, for `/status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncReport {
    /// RFC 3339 UTC.
    pub finished_at: String,
    /// `ok`, or the error that stopped it.
    pub outcome: Result<SyncCounts, String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncCounts {
    pub files: usize,
    pub duplicates: usize,
    pub listed: usize,
    pub millis: u64,
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
    pub fn last_report(&self) -> Option<SyncReport> {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(_, r)| r.clone())
    }
}

/// Lists every bucket, in priority order; logs progress on large buckets.
pub async fn list_all(app: &App) -> Result<Vec<Vec<ListedObject>>, S3Error> {
    let mut listings = Vec::with_capacity(app.config.buckets.len());
    for b in &app.config.buckets {
        let started = Instant::now();
        let mut next_log = 10_000;
        let objects = app
            .s3
            .list_objects(&b.name, |so_far| {
                if so_far >= next_log {
                    info!("listing bucket {}: {so_far} objects so far", b.name);
                    next_log += 10_000;
                }
            })
            .await?;
        info!(
            "listed bucket {}: {} objects in {} ms",
            b.name,
            objects.len(),
            started.elapsed().as_millis()
        );
        listings.push(objects);
    }
    Ok(listings)
}

/// Runs one sync, or waits for the one running and reuses it if it started after this
/// call. A failed sync leaves the registry as it was.
pub async fn sync(app: &App) -> Result<SyncCounts, String> {
    let state = &app.sync;
    let arrived_after = state.started.load(Ordering::Acquire);
    let _running = state.lock.lock().await;
    if let Some((seq, report)) = state
        .last
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        && *seq > arrived_after
    {
        return report.outcome.clone();
    }
    let seq = state.started.fetch_add(1, Ordering::AcqRel) + 1;
    let started = Instant::now();
    let outcome = run_sync(app, started).await;
    if let Err(e) = &outcome {
        warn!("sync failed, registry left as it was: {e}");
    }
    let report = SyncReport {
        finished_at: crate::timefmt::format(time::OffsetDateTime::now_utc()),
        outcome: outcome.clone(),
    };
    *state.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((seq, report));
    outcome
}

async fn run_sync(app: &App, started: Instant) -> Result<SyncCounts, String> {
    let since = app.registry.mutation_seq();
    let listings = list_all(app).await.map_err(|e| e.to_string())?;
    let listed = listings.iter().map(Vec::len).sum();
    let reconciled: Reconciled = reconcile(&app.config.buckets, &listings);
    drop(listings);
    let files = reconciled.files.len();
    let duplicates = reconciled.duplicates.len();
    let dirty: Dirty = app.registry.replace(reconciled, since);
    super::persist::persist(app, dirty)
        .await
        .map_err(|e| e.to_string())?;
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(SyncCounts {
        files,
        duplicates,
        listed,
        millis,
    })
}

/// Re-syncs every `interval` until the process ends.
pub async fn periodic(app: std::sync::Arc<App>, interval: Duration) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match sync(&app).await {
            Ok(c) => {
                app.record_storage_error(None);
                info!(
                    "periodic sync: {} files, {} duplicates, {} ms",
                    c.files, c.duplicates, c.millis
                );
            }
            Err(e) => app.record_storage_error(Some(e)),
        }
    }
}
