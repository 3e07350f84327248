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

const CONFLICT_ATTEMPTS: u32 = 10;
/// HEAD checks a merge runs at once.
const MERGE_CHECKS_IN_FLIGHT: usize = 16;
/// Reads of the other writer's manifest per conflict, at most.
const MERGE_READS: u32 = 3;

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
    /// Buckets to write with the next change: their last write failed, or a merge into
    /// another bucket's manifest moved one of their entries away.
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
    let mut settled = Settled::new();
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
            // A 404 to `If-Match` (AWS, when the manifest was deleted meanwhile) is the
            // same race as a 412: the ETag this replica holds is no longer current.
            Err(S3Error::PreconditionFailed { .. }) | Err(S3Error::NotFound)
                if attempt + 1 < CONFLICT_ATTEMPTS =>
            {
                attempt += 1;
                app.metrics
                    .manifest_write_conflicts
                    .fetch_add(1, Ordering::Relaxed);
                info!(
                    "manifest of bucket {} changed by another writer; merging (attempt {attempt})",
                    cfg.name
                );
                // Back off before re-reading, not between the read and the write: the
                // ETag just read must be as fresh as possible when it is used.
                tokio::time::sleep(crate::s3::retry::backoff(
                    attempt,
                    std::time::Duration::from_millis(20),
                    std::time::Duration::from_secs(1),
                    crate::s3::retry::jitter(),
                ))
                .await;
                // Re-read until a read leaves nothing to check against the buckets, so
                // that the write follows that read at once; bounded, then write anyway.
                for _ in 0..MERGE_READS {
                    let (theirs, etag) = read_manifest(app, bucket).await?;
                    slot.etag = etag.clone();
                    store.set_etag(bucket, etag);
                    if !merge_theirs(app, bucket, &theirs, &mut settled).await? {
                        break;
                    }
                }
                body = render_bucket(app, bucket);
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
    let Some((bytes, etag)) = fetch_manifest(app, bucket).await? else {
        return Ok((Vec::new(), None));
    };
    let entries = manifest::parse(&bytes, &cfg.name).unwrap_or_else(|e| {
        warn!("manifest {}/{} ignored: {e}", cfg.name, cfg.manifest_key);
        Vec::new()
    });
    Ok((entries, etag))
}

/// GETs one manifest object: its bytes and ETag, or `None` when there is none yet.
pub async fn fetch_manifest(
    app: &App,
    bucket: usize,
) -> Result<Option<(Bytes, Option<String>)>, S3Error> {
    let cfg = &app.config.buckets[bucket];
    match app.s3.get_object(&cfg.name, &cfg.manifest_key).await {
        Ok((bytes, etag)) => Ok(Some((bytes, (!etag.is_empty()).then_some(etag)))),
        Err(S3Error::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A key a merge already checked during the current write: both sides' view of it when it
/// was settled (theirs as (size, last_modified), ours as (bucket, size, last_modified)).
type Settled = HashMap<String, (Option<(u64, String)>, Option<(usize, u64, String)>)>;

/// Folds another writer's manifest into the registry: where it and this replica
/// disagree about a key in this bucket, the bucket itself decides (one HEAD per key).
/// A key settled by an earlier attempt of the same write is not checked again unless
/// either side's view of it changed since.
async fn merge_theirs(
    app: &App,
    bucket: usize,
    theirs: &[ManifestEntry],
    settled: &mut Settled,
) -> Result<bool, S3Error> {
    let name = &app.config.buckets[bucket].name;
    let theirs: HashMap<&str, &ManifestEntry> = theirs
        .iter()
        .filter(|e| &e.bucket == name)
        .map(|e| (e.key.as_str(), e))
        .collect();
    let ours = app.registry.entries_in(bucket);
    let our_keys: HashSet<&str> = ours.iter().map(|e| e.key.as_str()).collect();
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
        if !our_keys.contains(key) {
            disputed.insert((*key).to_owned());
        }
    }
    let state = |key: &str| {
        (
            theirs.get(key).map(|t| (t.size, t.last_modified.clone())),
            app.registry
                .get(key)
                .map(|e| (e.bucket, e.size, e.last_modified.clone())),
        )
    };
    let disputed: Vec<String> = disputed
        .into_iter()
        .filter(|key| settled.get(key) != Some(&state(key)))
        .collect();
    let checked = !disputed.is_empty();
    // The checks run a few at a time: the merge sits between reading the manifest and
    // writing it, and a long merge only gives the other writer time to change it again.
    let mut answers = Vec::with_capacity(disputed.len());
    for chunk in disputed.chunks(MERGE_CHECKS_IN_FLIGHT) {
        let checks = chunk
            .iter()
            .map(|key| app.s3.head_object(name, key))
            .collect();
        answers.extend(super::join::join_all(checks).await);
    }
    for (key, answer) in disputed.into_iter().zip(answers) {
        match answer {
            Ok(meta) => {
                let adopt = match app.registry.get(&key) {
                    None => true,
                    Some(c) if c.bucket == bucket => true,
                    // This replica has it in another bucket: follow the move the other
                    // writer recorded if that bucket no longer holds it. If both do,
                    // priority between buckets is decided by syncs, not by merges.
                    Some(c) => {
                        let other = &app.config.buckets[c.bucket].name;
                        match app.s3.head_object(other, &key).await {
                            Ok(_) => false,
                            Err(S3Error::NotFound) => true,
                            Err(e) => return Err(e),
                        }
                    }
                };
                if adopt {
                    let dirty = app.registry.upsert(Entry::new(
                        key.clone(),
                        bucket,
                        meta.size,
                        meta.last_modified,
                    ));
                    // The old bucket's manifest changed too: written with the next change.
                    let others = dirty.0 & !(1u64 << bucket);
                    app.manifests.pending.fetch_or(others, Ordering::Relaxed);
                }
            }
            Err(S3Error::NotFound) => {
                if app.registry.get(&key).is_some_and(|c| c.bucket == bucket) {
                    app.registry.remove(&key);
                }
            }
            Err(e) => return Err(e),
        }
        let now = state(&key);
        settled.insert(key, now);
    }
    Ok(checked)
}
