//! Writing manifests: one writer task per bucket, compare-and-swap on the manifest's
//! ETag, and a merge with the other writer's changes when the swap loses a race.
//!
//! A request that changed the registry asks the bucket's writer for a write and waits
//! for it; the write itself runs on the writer's own task, so a client that hangs up
//! never cancels it (the registry and the manifest cannot drift apart that way). While
//! one write is in flight, every change that arrives is batched into the next one
//! (group commit). A failed write is answered as failed to the requests waiting for it
//! and retried by the writer in the background until it succeeds.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Mutex, Notify, watch};

use crate::app::App;
use crate::registry::manifest::{self, ManifestEntry};
use crate::registry::{Dirty, Entry};
use crate::s3::{PutCondition, S3Error};
use crate::{info, warn};

const CONFLICT_ATTEMPTS: u32 = 10;
/// Disputed keys a merge settles itself, with HEADs a few at a time; past this the
/// merge keeps both sides' entries and leaves the verdict to a background sync (one
/// listing), so a foreign manifest of 20 000 phantom keys costs a listing, not 20 000
/// HEADs inside somebody's request.
const MERGE_HEADS_AT_MOST: usize = 16;
/// Reads of the other writer's manifest per conflict, at most.
const MERGE_READS: u32 = 3;
/// Background retry of a failed write: first and longest wait.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What this replica knows of one bucket's manifest object.
#[derive(Debug, Default)]
struct Slot {
    /// ETag as last read or written; `None` when there was no manifest.
    etag: Option<String>,
    /// SHA-256 of what was last written or read, so an unchanged manifest is not
    /// rewritten (a digest, not the body: at a million files that is 200 MiB).
    last_digest: Option<[u8; 32]>,
}

/// How far one bucket's writer has got: every write asked for with a generation up to
/// `done` has been attempted, and `error` is how the latest attempt ended.
#[derive(Clone, Debug, Default)]
struct Progress {
    done: u64,
    error: Option<PersistError>,
}

#[derive(Debug)]
struct Writer {
    /// Generation of the latest write asked for.
    requested: AtomicU64,
    /// Shared with the writer task, which waits on it without keeping the app alive.
    wake: Arc<Notify>,
    progress: watch::Sender<Progress>,
    started: AtomicBool,
}

#[derive(Debug)]
pub struct ManifestStore {
    slots: Vec<Mutex<Slot>>,
    writers: Vec<Writer>,
    /// Set once a server refused a conditional write as unsupported.
    conditional_unsupported: AtomicBool,
    /// Buckets to write with the next change: a merge into another bucket's manifest
    /// moved one of their entries away.
    stale: AtomicU64,
    /// The ETags of `slots`, readable without waiting for a write in flight (`/status`).
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

impl std::error::Error for PersistError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl ManifestStore {
    pub fn new(buckets: usize) -> ManifestStore {
        ManifestStore {
            slots: (0..buckets).map(|_| Mutex::new(Slot::default())).collect(),
            writers: (0..buckets)
                .map(|_| Writer {
                    requested: AtomicU64::new(0),
                    wake: Arc::new(Notify::new()),
                    progress: watch::Sender::new(Progress::default()),
                    started: AtomicBool::new(false),
                })
                .collect(),
            conditional_unsupported: AtomicBool::new(false),
            stale: AtomicU64::new(0),
            etags: StdMutex::new(vec![None; buckets]),
        }
    }

    /// Records what was read at start-up.
    pub async fn remember_read(&self, bucket: usize, etag: Option<String>, body: Option<&[u8]>) {
        let mut slot = self.slots[bucket].lock().await;
        slot.etag = etag.clone();
        slot.last_digest = body.map(digest);
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

    /// Buckets to write with the next change: their latest write failed (the writer
    /// also retries them in the background), or a merge left them stale.
    pub fn pending(&self) -> Dirty {
        self.writers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.progress.borrow().error.is_some())
            .fold(Dirty(self.stale.load(Ordering::Acquire)), |d, (i, _)| {
                d.with(i)
            })
    }

    /// Whether every write asked for so far has been carried out successfully (start-up's
    /// background rewrites included).
    pub fn settled(&self) -> bool {
        self.writers.iter().all(|w| {
            let p = w.progress.borrow();
            p.error.is_none() && p.done >= w.requested.load(Ordering::Acquire)
        })
    }

    /// Asks the writers of `dirty` for a write without waiting for it; returns the
    /// generation asked of each.
    fn request(&self, app: &App, dirty: Dirty) -> Vec<(usize, u64)> {
        self.stale.fetch_and(!dirty.0, Ordering::AcqRel);
        let mut asked = Vec::new();
        for bucket in dirty.buckets() {
            let Some(writer) = self.writers.get(bucket) else {
                continue;
            };
            let generation = writer.requested.fetch_add(1, Ordering::AcqRel) + 1;
            if !writer.started.swap(true, Ordering::AcqRel) {
                tokio::spawn(run_writer(app.weak(), bucket));
            }
            writer.wake.notify_one();
            asked.push((bucket, generation));
        }
        asked
    }
}

/// Asks for the manifests of `dirty` buckets to be written, at once (before the first
/// poll), and returns a future that waits until they are in S3 or the write failed.
/// Dropping the future (a client that hung up) does not cancel the writes.
pub fn persist(
    app: &App,
    dirty: Dirty,
) -> impl std::future::Future<Output = Result<(), PersistError>> + '_ {
    // Buckets whose last write failed are written (and waited for) with this change too,
    // as well as retried in the background.
    let asked = app
        .manifests
        .request(app, dirty.union(app.manifests.pending()));
    async move {
        let mut first_error = None;
        for (bucket, generation) in asked {
            let mut progress = app.manifests.writers[bucket].progress.subscribe();
            let outcome = progress
                .wait_for(|p| p.done >= generation)
                .await
                .map(|p| p.error.clone());
            // The sender lives as long as the store; a closed channel cannot happen.
            if let Ok(Some(e)) = outcome {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Asks for a write of `dirty` buckets in the background (nobody waits for it).
pub fn persist_later(app: &App, dirty: Dirty) {
    app.manifests.request(app, dirty);
}

/// One bucket's writer: writes whenever a newer generation is asked for; after a failed
/// write, retries with growing waits until one succeeds.
async fn run_writer(app: Weak<App>, bucket: usize) {
    let mut done = 0u64;
    let mut failures = 0u32;
    loop {
        let Some(app) = app.upgrade() else { return };
        let writer = &app.manifests.writers[bucket];
        let requested = writer.requested.load(Ordering::Acquire);
        if requested <= done && failures == 0 {
            // `notify_one` keeps a permit, so a request made since the load wakes us.
            let wake = Arc::clone(&writer.wake);
            drop(app);
            wake.notified().await;
            continue;
        }
        let result = write_bucket(&app, bucket).await;
        done = requested.max(done);
        let error = match result {
            Ok(()) => {
                if failures > 0 {
                    info!(
                        "manifest of bucket {} written after {failures} failed attempts",
                        app.config.buckets[bucket].name
                    );
                }
                failures = 0;
                None
            }
            Err(error) => {
                failures += 1;
                app.metrics
                    .manifest_writes_failed
                    .fetch_add(1, Ordering::Relaxed);
                let e = PersistError {
                    bucket: app.config.buckets[bucket].name.clone(),
                    error,
                };
                if failures == 1 {
                    warn!("{e}; will retry with the next change, and in the background");
                }
                Some(e)
            }
        };
        writer.progress.send_replace(Progress { done, error });
        if failures > 0 {
            let wait = crate::s3::retry::backoff(
                failures - 1,
                RETRY_FIRST,
                RETRY_MAX,
                crate::s3::retry::jitter(),
            );
            let wake = Arc::clone(&writer.wake);
            drop(app);
            // A new change retries at once; otherwise after the backoff.
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

fn render_bucket(app: &App, bucket: usize) -> Bytes {
    let entries = app.registry.entries_in(bucket);
    let refs: Vec<&Entry> = entries.iter().map(|e| &**e).collect();
    Bytes::from(manifest::render(bucket, &refs, &app.config.buckets))
}

fn digest(body: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(body).into()
}

/// One write of one bucket's manifest, as the registry holds it when the write starts:
/// conditional on the ETag last seen; on a lost race, merge and try again.
async fn write_bucket(app: &App, bucket: usize) -> Result<(), S3Error> {
    let store = &app.manifests;
    let cfg = &app.config.buckets[bucket];
    let mut slot = store.slots[bucket].lock().await;
    let mut body = render_bucket(app, bucket);
    let mut body_digest = digest(&body);
    if slot.last_digest == Some(body_digest) {
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
                body.clone(),
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
                slot.last_digest = Some(body_digest);
                return Ok(());
            }
            // A `NoSuchKey` to `If-Match` (AWS, when the manifest was deleted meanwhile)
            // is the same race as a 412: the ETag this replica holds is no longer
            // current. A bare 404 proves nothing and is not treated as a race.
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
                    Duration::from_millis(20),
                    Duration::from_secs(1),
                    crate::s3::retry::jitter(),
                ))
                .await;
                // Re-read until a read leaves nothing to check against the bucket, so
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
                body_digest = digest(&body);
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
    let (bytes, etag) = match fetch_manifest(app, bucket).await {
        Ok(Some(found)) => found,
        Ok(None) => return Ok((Vec::new(), None)),
        Err(S3Error::TooLarge { limit, etag }) => {
            warn!(
                "manifest {}/{} ignored: larger than PARPARCHIK_MANIFEST_MAX_BYTES ({limit})",
                cfg.name, cfg.manifest_key
            );
            return Ok((Vec::new(), (!etag.is_empty()).then_some(etag)));
        }
        Err(e) => return Err(e),
    };
    let entries = manifest::parse(&bytes, &cfg.name).unwrap_or_else(|e| {
        warn!("manifest {}/{} ignored: {e}", cfg.name, cfg.manifest_key);
        Vec::new()
    });
    Ok((entries, etag))
}

/// GETs one manifest object: its bytes and ETag, or `None` when there is none yet.
/// A body over the configured limit is refused without being kept.
pub async fn fetch_manifest(
    app: &App,
    bucket: usize,
) -> Result<Option<(Bytes, Option<String>)>, S3Error> {
    let cfg = &app.config.buckets[bucket];
    match app
        .s3
        .get_object_limited(
            &cfg.name,
            &cfg.manifest_key,
            app.config.storage.manifest_max_bytes,
        )
        .await
    {
        Ok((bytes, etag)) => Ok(Some((bytes, (!etag.is_empty()).then_some(etag)))),
        Err(S3Error::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Keys a merge already settled during the current write, with both sides' views then.
type Settled = HashMap<String, Views>;
/// Both sides' view of one key: theirs as (size, last_modified), ours as (bucket, size,
/// last_modified).
type Views = (Option<(u64, String)>, Option<(usize, u64, String)>);

/// Folds another writer's manifest into the registry. Where it and this replica
/// disagree about a key in this bucket, the bucket itself decides: with one HEAD per
/// key when there are a few, else by a background sync while both sides' entries are
/// kept (an entry is never dropped on the other writer's word alone).
/// A key settled by an earlier attempt of the same write is not checked again unless
/// either side's view of it changed since.
async fn merge_theirs(
    app: &App,
    bucket: usize,
    theirs: &[ManifestEntry],
    settled: &mut Settled,
) -> Result<bool, S3Error> {
    let cfg = &app.config.buckets[bucket];
    let name = &cfg.name;
    let theirs: HashMap<&str, &ManifestEntry> = theirs
        .iter()
        .filter(|e| &e.bucket == name && !cfg.owns(&e.key))
        .map(|e| (e.key.as_str(), e))
        .collect();
    let ours = app.registry.entries_in(bucket);
    let our_keys: HashSet<&str> = ours.iter().map(|e| e.key.as_str()).collect();
    let mut disputed: HashSet<String> = HashSet::new();
    for e in &ours {
        match theirs.get(e.key.as_str()) {
            Some(t) if t.size == e.size && e.modified_at(&t.last_modified) => {}
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
                .map(|e| (e.bucket, e.size, e.last_modified())),
        )
    };
    let disputed: Vec<String> = disputed
        .into_iter()
        .filter(|key| settled.get(key) != Some(&state(key)))
        .collect();
    if disputed.is_empty() {
        return Ok(false);
    }
    if disputed.len() > MERGE_HEADS_AT_MOST {
        keep_both_and_sync_later(app, bucket, &theirs, &disputed, settled, &state);
        return Ok(true);
    }
    let checks = disputed
        .iter()
        .map(|key| super::locate::check(app, bucket, key))
        .collect();
    let answers = super::join::join_all(checks).await;
    // The removal guard holds for merges too: more proven-missing keys than one listing
    // may remove are left to a sync, which confirms them with a second listing.
    let removals = answers
        .iter()
        .zip(&disputed)
        .filter(|(a, key)| {
            matches!(a, Err(S3Error::NotFound))
                && app.registry.get(key).is_some_and(|c| c.bucket == bucket)
        })
        .count();
    let settings = &app.config.storage;
    let allowed = super::sync::removal_allowance(
        app.registry.entries_in(bucket).len(),
        settings.removal_share,
        settings.removal_floor,
    );
    let remove_now = removals <= allowed;
    if !remove_now {
        app.metrics.removals_refused.fetch_add(1, Ordering::Relaxed);
        warn!(
            "a merge would remove {removals} entries of bucket {}; left to a sync",
            app.config.buckets[bucket].name
        );
        sync_later(app);
    }
    for (key, answer) in disputed.into_iter().zip(answers) {
        match answer {
            // The bucket holds the key and the other writer's manifest (written after
            // this replica last read it) says so: follow that record, also when this
            // replica has the key in another bucket that holds it too, so that a
            // duplicate's home is never dropped from both manifests.
            Ok(meta) => {
                let dirty = app.registry.upsert(Entry::new(
                    key.clone(),
                    bucket,
                    meta.size,
                    meta.last_modified,
                ));
                // The old bucket's manifest changed too: written with the next change
                // (this write holds this bucket's slot; no waiting on another's).
                app.manifests
                    .stale
                    .fetch_or(dirty.0 & !(1u64 << bucket), Ordering::AcqRel);
            }
            Err(S3Error::NotFound) if remove_now => {
                if app.registry.get(&key).is_some_and(|c| c.bucket == bucket) {
                    app.registry.remove(&key);
                }
            }
            // Left to the sync; or the key's own answer, which settles nothing.
            Err(S3Error::NotFound | S3Error::KeyRejected { .. }) => {}
            Err(e) => return Err(e),
        }
        let now = state(&key);
        settled.insert(key, now);
    }
    Ok(true)
}

/// Starts a sync in the background (a listing settles what a merge could not).
fn sync_later(app: &App) {
    if let Some(app) = app.weak().upgrade() {
        tokio::spawn(async move {
            let _ = super::sync::sync(&app).await;
        });
    }
}

/// Too many disputed keys to ask about one by one: keep every entry either side has
/// (theirs are adopted where this replica has the key nowhere), and let one background
/// sync, a listing of the buckets, give the verdict.
fn keep_both_and_sync_later(
    app: &App,
    bucket: usize,
    theirs: &HashMap<&str, &ManifestEntry>,
    disputed: &[String],
    settled: &mut Settled,
    state: &dyn Fn(&str) -> Views,
) {
    for key in disputed {
        if let Some(t) = theirs.get(key.as_str())
            && app.registry.get(key).is_none()
        {
            app.registry.upsert(Entry::new(
                key.clone(),
                bucket,
                t.size,
                t.last_modified.clone(),
            ));
        }
        settled.insert(key.clone(), state(key));
    }
    info!(
        "manifest of bucket {}: {} keys disputed with another writer; keeping both sides' entries until a sync lists the bucket",
        app.config.buckets[bucket].name,
        disputed.len()
    );
    sync_later(app);
}
