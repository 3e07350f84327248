//! Writing manifests: only the buckets that changed, compare-and-swap on the manifest's
//! ETag, and a merge with the other writer's changes when the swap loses a race.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::Mutex;

use crate::app::App;
use crate::registry::manifest::{self, ManifestEntry};
use crate::registry::{Dirty, Entry};
use crate::s3::{PutCondition, S3Error};
use crate::{info, warn};

const CONFLICT_ATTEMPTS: u32 = 5;

/// What this replica knows of one bucket's manifest object.
#[derive(Debug, Default)]
struct Slot {
    /// ETag as last read or written; `None` when there was no manifest.
    etag: Option<String>,
    /// What was last written or read, so an unchanged manifest is not rewritten.
    last_body: Option<Vec<u8>>,
}

#[derive(Debug)]
pub struct ManifestStore {
    slots: Vec<Mutex<Slot>>,
    /// Buckets whose last write failed; retried with the next change.
    pending: AtomicU64,
    /// Set once a server refused a conditional write as unsupported.
    conditional_unsupported: AtomicBool,
    etags: StdMutex<Vec<Option<String>>>,
}

/// Why manifests could not be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistError {
    pub bucket: String,
    pub error: S3Error,
}

impl std::fmt::Display for PersistError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "manifest of bucket {} not written: {}",
            self.bucket, self.error
        )
    }
}

impl ManifestStore {
    pub fn new(buckets: usize) -> ManifestStore {
        ManifestStore {
            slots: (0..buckets).map(|_| Mutex::new(Slot::default())).collect(),
            pending: AtomicU64::new(0),
            conditional_unsupported: AtomicBool::new(false),
            etags: StdMutex::new(vec![None; buckets]),
        }
    }

    /// Records what was read at start-up.
    pub async fn remember_read(&self, bucket: usize, etag: Option<String>, body: Option<Vec<u8>>) {
        let mut slot = self.slots[bucket].lock().await;
        slot.etag = etag.clone();
        slot.last_body = body;
        self.set_etag(bucket, etag);
    }

    fn set_etag(&self, bucket: usize, etag: Option<String>) {
        if let Some(e) = self
            .etags
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(bucket)
        {
            *e = etag;
        }
    }

    /// Manifest ETags, for `/status`.
    pub fn etags(&self) -> Vec<Option<String>> {
        self.etags.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn conditional_writes_supported(&self) -> bool {
        !self.conditional_unsupported.load(Ordering::Relaxed)
    }

    pub fn pending(&self) -> Dirty {
        Dirty(self.pending.load(Ordering::Relaxed))
    }
}

fn render_bucket(app: &App, bucket: usize) -> Vec<u8> {
    let entries = app.registry.entries_in(bucket);
    let refs: Vec<&Entry> = entries.iter().map(|e| &**e).collect();
    manifest::render(bucket, &refs, &app.config.buckets)
}

/// Writes the manifests of `dirty` buckets (and of any whose earlier write failed).
/// Each bucket's write is serialised; the manifest rendered is the registry's state when
/// the write starts, so concurrent changes are never lost, only batched.
pub async fn persist(app: &App, dirty: Dirty) -> Result<(), PersistError> {
    let store = &app.manifests;
    let dirty = dirty.union(store.pending());
    let mut first_error = None;
    for bucket in dirty.buckets() {
        if bucket >= store.slots.len() {
            continue;
        }
        match write_bucket(app, bucket).await {
            Ok(()) => {
                store
                    .pending
                    .fetch_and(!(1u64 << bucket), Ordering::Relaxed);
            }
            Err(error) => {
                store.pending.fetch_or(1u64 << bucket, Ordering::Relaxed);
                app.metrics
                    .manifest_writes_failed
                    .fetch_add(1, Ordering::Relaxed);
                let e = PersistError {
                    bucket: app.config.buckets[bucket].name.clone(),
                    error,
                };
                warn!("{e}; will retry with the next change");
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

async fn write_bucket(app: &App, bucket: usize) -> Result<(), S3Error> {
    let store = &app.manifests;
    let cfg = &app.config.buckets[bucket];
    let mut slot = store.slots[bucket].lock().await;
    let mut body = render_bucket(app, bucket);
    if slot.last_body.as_deref() == Some(body.as_slice()) {
        return Ok(());
    }
    let mut attempt = 0;
    loop {
        let condition = if store.conditional_unsupported.load(Ordering::Relaxed) {
            PutCondition::None
        } else {
            match &slot.etag {
                Some(etag) => PutCondition::IfMatch(etag.clone()),
                None => PutCondition::IfNoneMatch,
            }
        };
        let result = app
            .s3
            .put_object(
                &cfg.name,
                &cfg.manifest_key,
                Bytes::from(body.clone()),
                "application/json",
                &condition,
            )
            .await;
        match result {
            Ok(etag) => {
                app.metrics
                    .manifest_writes_ok
                    .fetch_add(1, Ordering::Relaxed);
                let etag = (!etag.is_empty()).then_some(etag);
                store.set_etag(bucket, etag.clone());
                slot.etag = etag;
                slot.last_body = Some(body);
                return Ok(());
            }
            Err(S3Error::PreconditionFailed { .. }) if attempt + 1 < CONFLICT_ATTEMPTS => {
                attempt += 1;
                app.metrics
                    .manifest_write_conflicts
                    .fetch_add(1, Ordering::Relaxed);
                info!(
                    "manifest of bucket {} changed by another writer; merging (attempt {attempt})",
                    cfg.name
                );
                let (theirs, etag) = read_manifest(app, bucket).await?;
                slot.etag = etag.clone();
                store.set_etag(bucket, etag);
                merge_theirs(app, bucket, &theirs).await?;
                body = render_bucket(app, bucket);
                tokio::time::sleep(crate::s3::retry::backoff(
                    attempt,
                    std::time::Duration::from_millis(20),
                    std::time::Duration::from_millis(500),
                    crate::s3::retry::jitter(),
                ))
                .await;
            }
            Err(S3Error::Rejected { status, code, .. })
                if condition != PutCondition::None
                    && (status == 501 || code == "NotImplemented") =>
            {
                // Say it loudly once and in /status; writes are unconditional from here on.
                if !store.conditional_unsupported.swap(true, Ordering::Relaxed) {
                    warn!(
                        "S3 server refused a conditional write ({status} {code}): replicas may overwrite each other's manifest changes; run a single replica or use a server with conditional writes"
                    );
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reads one manifest: its entries (empty if absent or unreadable) and its ETag.
pub async fn read_manifest(
    app: &App,
    bucket: usize,
) -> Result<(Vec<ManifestEntry>, Option<String>), S3Error> {
    let cfg = &app.config.buckets[bucket];
    match app.s3.get_object(&cfg.name, &cfg.manifest_key).await {
        Ok((bytes, etag)) => {
            let entries = manifest::parse(&bytes, &cfg.name).unwrap_or_else(|e| {
                warn!("manifest {}/{} ignored: {e}", cfg.name, cfg.manifest_key);
                Vec::new()
            });
            Ok((entries, (!etag.is_empty()).then_some(etag)))
        }
        Err(S3Error::NotFound) => Ok((Vec::new(), None)),
        Err(e) => Err(e),
    }
}

/// Folds another writer's manifest into the registry: where it and this replica
/// disagree about a key in this bucket, the bucket itself decides (one HEAD per key).
async fn merge_theirs(app: &App, bucket: usize, theirs: &[ManifestEntry]) -> Result<(), S3Error> {
    let name = &app.config.buckets[bucket].name;
    let theirs: HashMap<&str, &ManifestEntry> = theirs
        .iter()
        .filter(|e| &e.bucket == name)
        .map(|e| (e.key.as_str(), e))
        .collect();
    let ours = app.registry.entries_in(bucket);
    let mut disputed: HashSet<String> = HashSet::new();
    for e in &ours {
        match theirs.get(e.key.as_str()) {
            Some(t) if t.size == e.size && t.last_modified == e.last_modified => {}
            _ => {
                disputed.insert(e.key.clone());
            }
        }
    }
    for key in theirs.keys() {
        if !ours.iter().any(|e| e.key == *key) {
            disputed.insert((*key).to_owned());
        }
    }
    for key in disputed {
        match app.s3.head_object(name, &key).await {
            Ok(meta) => {
                // Only adopt it if this replica has no entry in another bucket for it:
                // priority between buckets is decided by syncs, not by merges.
                let current = app.registry.get(&key);
                if current.as_ref().is_none_or(|c| c.bucket == bucket) {
                    app.registry
                        .upsert(Entry::new(key, bucket, meta.size, meta.last_modified));
                }
            }
            Err(S3Error::NotFound) => {
                if app.registry.get(&key).is_some_and(|c| c.bucket == bucket) {
                    app.registry.remove(&key);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
