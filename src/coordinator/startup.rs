//! Start-up: read the manifests as the registered state, then the sync pipeline (list,
//! reconcile, replace), then ready; manifests that changed are rewritten in the
//! background. Retried with backoff until one whole pass succeeds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::config::BucketId;
use crate::registry::manifest::ManifestEntry;
use crate::registry::{Dirty, Entry};
use crate::s3::S3Error;
use crate::{info, warn};

/// What start-up read from one bucket's manifest and journal.
struct ManifestRead {
    /// The manifest with its journal applied; `None`: missing or unreadable.
    entries: Option<Vec<ManifestEntry>>,
}

async fn read_manifests(app: &App) -> Result<Vec<ManifestRead>, StartupError> {
    let mut out = Vec::with_capacity(app.config.buckets.len());
    for bucket in BucketId::first(app.config.buckets.len()) {
        out.push(read_one(app, bucket).await?);
    }
    Ok(out)
}

/// One bucket's manifest, and the journal records after the last one it includes.
async fn read_one(app: &App, i: BucketId) -> Result<ManifestRead, StartupError> {
    let b = &app.config.buckets[i];
    let failed = |error| StartupError::ReadManifest {
        bucket: b.name.clone(),
        key: b.manifest_key.clone(),
        error,
    };
    let (manifest, etag, body) = match super::persist::fetch_manifest(app, i).await {
        Ok(Some((bytes, etag))) => {
            match crate::registry::manifest::parse_compacted(&bytes, &b.name) {
                Ok(parsed) => (Some(parsed), etag, Some(bytes)),
                Err(e) => {
                    warn!(
                        "manifest {}/{} is unreadable ({e}); rebuilding that bucket from its listing",
                        b.name, b.manifest_key
                    );
                    (None, etag, Some(bytes))
                }
            }
        }
        Ok(None) => {
            info!("manifest {}/{} does not exist yet", b.name, b.manifest_key);
            (None, None, None)
        }
        Err(S3Error::TooLarge { limit, etag }) => {
            warn!(
                "manifest {}/{} is larger than PARPARCHIK_MANIFEST_MAX_BYTES ({limit}); rebuilding that bucket from its listing",
                b.name, b.manifest_key
            );
            (None, (!etag.is_empty()).then_some(etag), None)
        }
        Err(error) => return Err(failed(error)),
    };
    let manifest_seq = manifest.as_ref().map_or(0, |(_, seq)| *seq);
    // The journal is read even without a usable manifest (its records still hold what
    // changed, and the next record written must take the next number), and without a
    // journal configured now (one may have been before).
    let (records, journal_seq) = super::journal::read_after(app, i, manifest_seq)
        .await
        .map_err(failed)?;
    if !records.is_empty() {
        info!(
            "journal of {}/{}: {} records after the manifest",
            b.name,
            b.manifest_key,
            records.len()
        );
    }
    let entries = match manifest {
        Some((entries, _)) => Some(crate::registry::journal::replay(entries, &records, &b.name)),
        None if !records.is_empty() => Some(crate::registry::journal::replay(
            Vec::new(),
            &records,
            &b.name,
        )),
        None => None,
    };
    app.manifests
        .remember_read(
            i,
            super::persist::ReadState {
                etag,
                body: body.as_deref(),
                manifest_seq,
                journal_seq,
            },
        )
        .await;
    Ok(ManifestRead { entries })
}

/// Buckets whose manifest does not say what the registry now holds.
fn changed_buckets(app: &App, manifests: &[ManifestRead]) -> Dirty {
    let mut dirty = Dirty::default();
    for (i, m) in manifests.iter().enumerate() {
        let i = BucketId::new(i);
        let name = &app.config.buckets[i].name;
        let Some(entries) = &m.entries else {
            dirty = dirty.with(i);
            continue;
        };
        let stated: HashMap<&str, &ManifestEntry> =
            entries.iter().map(|e| (e.key.as_str(), e)).collect();
        let actual = app.registry.entries_in(i);
        let same = stated.len() == actual.len()
            && actual.iter().all(|e| {
                stated.get(e.key.as_str()).is_some_and(|s| {
                    &s.bucket == name && s.size == e.size && e.modified_at(&s.last_modified)
                })
            });
        if !same {
            dirty = dirty.with(i);
        }
    }
    dirty
}

/// The manifests' entries as registered state: each in the bucket it names (when that
/// bucket is configured), the first claim by priority order where manifests disagree.
fn registered_state(app: &App, manifests: &[ManifestRead]) -> Vec<Entry> {
    let buckets = &app.config.buckets;
    let index: HashMap<&str, BucketId> = buckets
        .iter()
        .enumerate()
        .map(|(i, b)| (b.name.as_str(), BucketId::new(i)))
        .collect();
    let mut out = Vec::new();
    for m in manifests {
        for e in m.entries.iter().flatten() {
            if let Some(&b) = index.get(e.bucket.as_str())
                && !buckets[b].owns(&e.key)
            {
                out.push(Entry::new(
                    e.key.clone(),
                    b,
                    e.size,
                    e.last_modified.clone(),
                ));
            }
        }
    }
    out
}

/// One complete pass of the contract's start-up sequence: the manifests are the
/// registered state (so relocations last through restarts), then the same sync
/// pipeline as every sync reconciles them with the listings. Readiness does not wait
/// for manifest rewrites: the writers do them in the background.
pub(crate) async fn rebuild(app: &App) -> Result<(), StartupError> {
    let started = Instant::now();
    let (running, arrived_after) = super::sync::hold(app).await;
    info!("start-up: reading manifests");
    let manifests = read_manifests(app).await?;
    let stated = app.registry.seed(registered_state(app, &manifests));
    info!("start-up: manifests register {stated} entries; listing buckets to reconcile");
    let counts = super::sync::resync_holding(
        app,
        super::sync::Persistence::Background,
        arrived_after,
        running,
    )
    .await
    .map_err(StartupError::Sync)?;
    info!(
        "start-up: reconciled {} files ({} in several buckets)",
        counts.files, counts.duplicates
    );
    let dirty = changed_buckets(app, &manifests);
    for bucket in dirty.buckets() {
        // What the sync changed is journaled; a missing manifest is written at once, and
        // one that differs in ways the changes do not explain (entries the registry did
        // not take) is rewritten whole.
        if manifests[bucket.index()].entries.is_none() || app.registry.has_no_changes(bucket) {
            app.registry.mark_all_changed(bucket);
        }
    }
    // Manifests behind their journal: their writers compact them in time.
    let lagging = app.manifests.lagging().await;
    let dirty = dirty.union(lagging);
    if !dirty.is_empty() {
        let names: Vec<&str> = dirty
            .buckets()
            .map(|i| app.config.buckets[i].name.as_str())
            .collect();
        info!(
            "start-up: manifests of {} will be rewritten in the background",
            names.join(", ")
        );
        super::persist::save_later(app, dirty);
    }
    info!(
        "start-up: ready with {} files after {} ms",
        counts.files,
        started.elapsed().as_millis()
    );
    Ok(())
}

/// Why one pass of start-up failed (it is retried with backoff).
#[derive(Debug)]
pub(crate) enum StartupError {
    ReadManifest {
        bucket: String,
        key: String,
        error: S3Error,
    },
    Sync(super::sync::SyncError),
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartupError::ReadManifest { bucket, key, error } => {
                write!(f, "reading manifest {bucket}/{key}: {error}")
            }
            StartupError::Sync(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for StartupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartupError::ReadManifest { error, .. } => Some(error),
            StartupError::Sync(e) => Some(e),
        }
    }
}

/// Rebuilds until it succeeds, then sets ready and starts the periodic sync.
pub(crate) async fn rebuild_until_ready(app: Arc<App>) {
    let mut attempt = 0;
    loop {
        match rebuild(&app).await {
            Ok(()) => {
                app.record_storage_error(None);
                app.set_ready();
                break;
            }
            Err(e) => {
                let wait = crate::s3::retry::backoff(
                    attempt.min(5),
                    Duration::from_millis(500),
                    Duration::from_secs(5),
                    crate::s3::retry::jitter(),
                );
                warn!(
                    "start-up attempt {} failed: {e}; retrying in {} ms",
                    attempt + 1,
                    wait.as_millis()
                );
                app.record_storage_error(Some(e.to_string()));
                attempt += 1;
                tokio::time::sleep(wait).await;
            }
        }
    }
    if let Some(interval) = app.config.sync_interval {
        super::sync::periodic(app, interval).await;
    }
}
