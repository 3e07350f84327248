//! Start-up: read manifests, list and reconcile, write what changed, then ready.
//! Retried with backoff until one whole pass succeeds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::registry::Dirty;
use crate::registry::manifest::ManifestEntry;
use crate::registry::reconcile::reconcile;
use crate::{info, warn};

/// What start-up read from one bucket's manifest.
struct ManifestRead {
    /// `None`: missing or unreadable.
    entries: Option<Vec<ManifestEntry>>,
}

async fn read_manifests(app: &App) -> Result<Vec<ManifestRead>, String> {
    let mut out = Vec::with_capacity(app.config.buckets.len());
    for (i, b) in app.config.buckets.iter().enumerate() {
        let fetched = super::persist::fetch_manifest(app, i)
            .await
            .map_err(|e| format!("reading manifest {}/{}: {e}", b.name, b.manifest_key))?;
        let Some((bytes, etag)) = fetched else {
            info!("manifest {}/{} does not exist yet", b.name, b.manifest_key);
            app.manifests.remember_read(i, None, None).await;
            out.push(ManifestRead { entries: None });
            continue;
        };
        let entries = match crate::registry::manifest::parse(&bytes, &b.name) {
            Ok(entries) => Some(entries),
            Err(e) => {
                warn!(
                    "manifest {}/{} is unreadable ({e}); rebuilding that bucket from its listing",
                    b.name, b.manifest_key
                );
                None
            }
        };
        app.manifests
            .remember_read(i, etag, Some(bytes.to_vec()))
            .await;
        out.push(ManifestRead { entries });
    }
    Ok(out)
}

/// Buckets whose manifest does not say what the registry now holds.
fn changed_buckets(app: &App, manifests: &[ManifestRead]) -> Dirty {
    let mut dirty = Dirty::default();
    for (i, m) in manifests.iter().enumerate() {
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
                    &s.bucket == name && s.size == e.size && s.last_modified == e.last_modified
                })
            });
        if !same {
            dirty = dirty.with(i);
        }
    }
    dirty
}

/// One complete pass of the contract's start-up sequence.
pub async fn rebuild(app: &App) -> Result<(), String> {
    let started = Instant::now();
    info!("start-up: reading manifests");
    let manifests = read_manifests(app).await?;
    let stated: usize = manifests
        .iter()
        .map(|m| m.entries.as_ref().map_or(0, Vec::len))
        .sum();
    info!("start-up: manifests list {stated} entries; listing buckets to reconcile");
    let since = app.registry.mutation_seq();
    let listings = super::sync::list_all(app)
        .await
        .map_err(|e| e.to_string())?;
    let reconciled = reconcile(&app.config.buckets, &listings);
    drop(listings);
    let files = reconciled.files.len();
    let duplicates = reconciled.duplicates.len();
    app.registry.replace(reconciled, since);
    info!("start-up: reconciled {files} files ({duplicates} in several buckets)");
    let dirty = changed_buckets(app, &manifests);
    if !dirty.is_empty() {
        let names: Vec<&str> = dirty
            .buckets()
            .map(|i| app.config.buckets[i].name.as_str())
            .collect();
        info!("start-up: writing manifests of {}", names.join(", "));
        // A failed write is retried with the next change; it does not block readiness.
        let _ = super::persist::persist(app, dirty).await;
    }
    info!(
        "start-up: ready with {files} files after {} ms",
        started.elapsed().as_millis()
    );
    Ok(())
}

/// Rebuilds until it succeeds, then sets ready and starts the periodic sync.
pub async fn run(app: Arc<App>) {
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
                app.record_storage_error(Some(e));
                attempt += 1;
                tokio::time::sleep(wait).await;
            }
        }
    }
    if let Some(interval) = app.config.sync_interval {
        super::sync::periodic(app, interval).await;
    }
}
