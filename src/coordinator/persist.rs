//! Saving the registry in the buckets: one writer task per bucket, a journal of small
//! records beside each manifest, and the manifest rewritten whole (compacted) at most
//! every `PARPARCHIK_MANIFEST_COMPACT_INTERVAL`.
//!
//! A request that changed the registry asks the bucket's writer for a write and waits
//! for it; the write itself runs on the writer's own task, so a client that hangs up
//! never cancels it (the registry and S3 cannot drift apart that way). While one write
//! is in flight, every change that arrives is batched into the next one (group
//! commit). A write appends one journal record stating the keys that changed (a few
//! hundred bytes, whatever the size of the bucket); the manifest itself is rewritten
//! in the background, or at once when too much changed for one record. A failed write
//! is answered as failed to the requests waiting for it and retried by the writer in
//! the background until it succeeds.
//!
//! Several replicas: a record is created with `If-None-Match: *` and the manifest
//! replaced with `If-Match`, so a lost race is seen, the other writer's records or
//! manifest merged (`merge`), and the write tried again. With a compaction interval of
//! zero there is no journal: every write rewrites the whole manifest, as the other
//! editions do.

use crate::config::BucketId;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Mutex, Notify, watch};
use tokio::time::Instant;

use super::merge::{Scope, Settled, merge_theirs};
use crate::app::App;
use crate::registry::manifest::{self, ManifestEntry};
use crate::registry::{AtomicDirty, Changes, Dirty, Entry};
use crate::s3::{PutCondition, S3Error};
use crate::{info, warn};

const CONFLICT_ATTEMPTS: u32 = 10;
/// Reads of the other writer's manifest per conflict, at most.
const MERGE_READS: u32 = 3;
/// Background retry of a failed write: first and longest wait.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What this replica knows of one bucket's manifest and journal.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// SHA-256 of the manifest last written or read, so an unchanged manifest is not
    /// rewritten (a digest, not the body: at a million files that is 200 MiB).
    last_digest: Option<[u8; 32]>,
    /// The last journal record this replica wrote or applied.
    pub journal_seq: u64,
    /// The last record the manifest in S3 includes, as last read or written.
    pub manifest_seq: u64,
    /// When this replica last compacted (or read) the manifest.
    compacted_at: Option<Instant>,
    /// When this replica last made sure no other replica compacted unseen.
    pub checked_at: Option<Instant>,
    /// Records up to this number may be deleted from that instant on.
    deletable: Option<(u64, Instant)>,
}

/// How far one bucket's writer has got: every write asked for with a generation up to
/// `done` has been attempted, and `error` is how the latest attempt ended.
#[derive(Clone, Debug, Default)]
struct Progress {
    done: u64,
    error: Option<PersistError>,
    /// Generations `(after, up_to]` whose changes are a whole-manifest write running on
    /// its own task ([`start_whole_write`]): done only when it ends.
    whole: Option<(u64, u64)>,
    /// How the latest whole-manifest write on its own task ended.
    whole_error: Option<PersistError>,
}

impl Progress {
    /// Whether the write of `generation` was attempted (and how it ended).
    fn finished(&self, generation: u64) -> Option<Option<PersistError>> {
        let waiting_for_whole = self
            .whole
            .is_some_and(|(after, up_to)| after < generation && generation <= up_to);
        (self.done >= generation && !waiting_for_whole)
            .then(|| self.error.clone().or_else(|| self.whole_error.clone()))
    }

    fn failed(&self) -> bool {
        self.error.is_some() || self.whole_error.is_some()
    }
}

#[derive(Debug)]
struct Writer {
    /// Generation of the latest write asked for.
    requested: AtomicU64,
    /// Shared with the writer task, which waits on it without keeping the app alive.
    wake: Arc<Notify>,
    progress: watch::Sender<Progress>,
    started: AtomicBool,
    /// A compaction runs on its own task, so that records are appended meanwhile.
    compacting: AtomicBool,
    /// When the compaction that just ended says the next one is due.
    compacted: StdMutex<Option<Option<Instant>>>,
    /// One whole-manifest write at a time (a compaction, or a write of everything).
    whole: Mutex<()>,
    /// How the whole-manifest write on its own task ended, for the writer: `Ok` with
    /// when a compaction is due, `Err` to retry after a backoff.
    whole_written: StdMutex<Option<Result<Option<Instant>, ()>>>,
}

#[derive(Debug)]
pub struct ManifestStore {
    slots: Vec<Mutex<Slot>>,
    writers: Vec<Writer>,
    /// Set once a server refused a conditional write as unsupported.
    conditional_unsupported: AtomicBool,
    /// Buckets to write with the next change: a merge into another bucket's manifest
    /// moved one of their entries away.
    stale: AtomicDirty,
    /// Per bucket, the manifest's ETag as last read or written: beside the slots, so
    /// that `/status` reads it without waiting for a write in flight.
    etags: StdMutex<Vec<Option<String>>>,
    /// Background syncs asked for by merges: (one running, another wanted after it).
    background_sync: StdMutex<(bool, bool)>,
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

/// What start-up read of one bucket's manifest and journal.
#[derive(Debug, Default)]
pub struct ReadState<'a> {
    pub etag: Option<String>,
    /// The manifest's bytes, when it was read whole.
    pub body: Option<&'a [u8]>,
    pub manifest_seq: u64,
    /// The last journal record found.
    pub journal_seq: u64,
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
                    compacting: AtomicBool::new(false),
                    compacted: StdMutex::new(None),
                    whole: Mutex::new(()),
                    whole_written: StdMutex::new(None),
                })
                .collect(),
            conditional_unsupported: AtomicBool::new(false),
            stale: AtomicDirty::default(),
            etags: StdMutex::new(vec![None; buckets]),
            background_sync: StdMutex::new((false, false)),
        }
    }

    /// Asks for a background sync; true when the caller is to start it (none runs).
    pub fn want_background_sync(&self) -> bool {
        let mut s = self
            .background_sync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if s.0 {
            s.1 = true;
            false
        } else {
            *s = (true, false);
            true
        }
    }

    /// Called when a background sync ended; true when another was asked for meanwhile
    /// (the caller runs it).
    pub fn background_sync_done(&self) -> bool {
        let mut s = self
            .background_sync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if s.1 {
            s.1 = false;
            true
        } else {
            s.0 = false;
            false
        }
    }

    /// Records what start-up read.
    pub async fn remember_read(&self, bucket: BucketId, read: ReadState<'_>) {
        let mut slot = self.slots[bucket.index()].lock().await;
        slot.last_digest = read.body.map(digest);
        slot.manifest_seq = read.manifest_seq;
        slot.journal_seq = read.journal_seq.max(read.manifest_seq);
        slot.compacted_at = Some(Instant::now());
        slot.checked_at = Some(Instant::now());
        self.set_etag(bucket, read.etag);
    }

    /// The manifest's ETag as last read or written (`None`: there was none), the one
    /// copy both the writers (their `If-Match`) and `/status` read.
    pub(super) fn etag(&self, bucket: BucketId) -> Option<String> {
        self.etags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(bucket.index())
            .cloned()
            .flatten()
    }

    pub(super) fn set_etag(&self, bucket: BucketId, etag: Option<String>) {
        if let Some(e) = self
            .etags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(bucket.index())
        {
            *e = etag;
        }
    }

    /// Manifest ETags, for `/status`.
    pub fn etags(&self) -> Vec<Option<String>> {
        self.etags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The condition of the next whole-manifest write: on the ETag last seen, or
    /// none once the server refused conditions.
    fn put_condition(&self, bucket: BucketId) -> PutCondition {
        if self.conditional_unsupported.load(Ordering::Relaxed) {
            return PutCondition::None;
        }
        match self.etag(bucket) {
            Some(etag) => PutCondition::IfMatch(etag),
            None => PutCondition::IfNoneMatch,
        }
    }

    pub fn conditional_writes_supported(&self) -> bool {
        !self.conditional_unsupported.load(Ordering::Relaxed)
    }

    /// Conditional writes are off from here on; said loudly once (and in `/status`).
    pub fn note_conditional_unsupported(&self, status: u16, code: &str) {
        if !self.conditional_unsupported.swap(true, Ordering::Relaxed) {
            warn!(
                "S3 server refused a conditional write ({status} {code}): replicas may overwrite each other's manifest changes; run a single replica or use a server with conditional writes"
            );
        }
    }

    /// Buckets whose manifest lags behind its journal.
    pub async fn lagging(&self) -> Dirty {
        let mut out = Dirty::default();
        for (i, slot) in self.slots.iter().enumerate() {
            let slot = slot.lock().await;
            if slot.journal_seq > slot.manifest_seq {
                out = out.with(BucketId::new(i));
            }
        }
        out
    }

    /// Buckets whose manifest a merge elsewhere changed: written with the next change.
    pub fn mark_stale(&self, dirty: Dirty) {
        self.stale.insert(dirty);
    }

    /// Buckets to write with the next change: their latest write failed (the writer
    /// also retries them in the background), or a merge left them stale.
    pub fn pending(&self) -> Dirty {
        self.writers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.progress.borrow().failed())
            .fold(self.stale.load(), |d, (i, _)| d.with(BucketId::new(i)))
    }

    /// Whether every write asked for so far has been carried out successfully (start-up's
    /// background rewrites included).
    pub fn settled(&self) -> bool {
        self.writers.iter().all(|w| {
            let p = w.progress.borrow();
            !p.failed() && p.whole.is_none() && p.done >= w.requested.load(Ordering::Acquire)
        })
    }

    /// Asks the writers of `dirty` for a write without waiting for it; returns the
    /// generation asked of each.
    fn request(&self, app: &App, dirty: Dirty) -> Vec<(BucketId, u64)> {
        self.stale.remove(dirty);
        let mut asked = Vec::new();
        for bucket in dirty.buckets() {
            let Some(writer) = self.writers.get(bucket.index()) else {
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

/// Asks for the changes of `dirty` buckets to be saved, at once (before the first
/// poll), and returns a future that waits until they are in S3 or the write failed.
/// Dropping the future (a client that hung up) does not cancel the writes.
pub(crate) fn save(app: &App, dirty: Dirty) -> impl Future<Output = Result<(), PersistError>> + '_ {
    // Buckets whose last write failed are written (and waited for) with this change too,
    // as well as retried in the background.
    let asked = app
        .manifests
        .request(app, dirty.union(app.manifests.pending()));
    async move {
        let mut first_error = None;
        for (bucket, generation) in asked {
            let mut progress = app.manifests.writers[bucket.index()].progress.subscribe();
            let outcome = progress
                .wait_for(|p| p.finished(generation).is_some())
                .await
                .map(|p| p.finished(generation).flatten());
            // The sender lives as long as the store; a closed channel cannot happen.
            if let Ok(Some(e)) = outcome {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Asks for a write of `dirty` buckets in the background (nobody waits for it).
pub(crate) fn save_later(app: &App, dirty: Dirty) {
    app.manifests.request(app, dirty);
}

/// One bucket's writer: saves the changes whenever a newer generation is asked for,
/// compacts the manifest when it is due; after a failed write, retries with growing
/// waits until one succeeds.
async fn run_writer(app: Weak<App>, bucket: BucketId) {
    let mut done = 0u64;
    let mut failures = 0u32;
    let mut compaction_due: Option<Instant> = None;
    loop {
        let Some(app) = app.upgrade() else { return };
        let writer = &app.manifests.writers[bucket.index()];
        if let Some(next) = writer
            .compacted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            compaction_due = next;
        }
        let whole_written = writer
            .whole_written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match whole_written {
            Some(Ok(due)) => {
                note_written(&app, bucket, failures);
                failures = 0;
                compaction_due = due;
            }
            Some(Err(())) => {
                failures += 1;
                let wake = Arc::clone(&writer.wake);
                drop(app);
                retry_wait(&wake, failures).await;
                continue;
            }
            None => {}
        }
        let compacting = writer.compacting.load(Ordering::Acquire);
        let requested = writer.requested.load(Ordering::Acquire);
        let compact_now = !compacting && compaction_due.is_some_and(|due| due <= Instant::now());
        if requested <= done && failures == 0 {
            if compact_now {
                compaction_due = None;
                start_compaction(&app, bucket);
                continue;
            }
            // `notify_one` keeps a permit, so a request made since the load wakes us (and
            // the compaction's task wakes us when it ends).
            let wake = Arc::clone(&writer.wake);
            drop(app);
            match compaction_due {
                Some(due) if !compacting => tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep_until(due) => {}
                },
                _ => wake.notified().await,
            }
            continue;
        }
        let result = write_changes(&app, bucket, (done, requested)).await;
        done = requested.max(done);
        let error = match result {
            // It reports through `whole_written` when it ends.
            Ok(Saved::OnItsOwnTask) => None,
            Ok(Saved::Now(due)) => {
                note_written(&app, bucket, failures);
                failures = 0;
                compaction_due = due;
                None
            }
            Err(error) => {
                failures += 1;
                let e = write_failed(&app, bucket, error);
                if failures == 1 {
                    warn!("{e}; will retry with the next change, and in the background");
                }
                Some(e)
            }
        };
        writer.progress.send_modify(|p| {
            p.done = done;
            p.error = error;
        });
        if failures > 0 {
            let wake = Arc::clone(&writer.wake);
            drop(app);
            retry_wait(&wake, failures).await;
        }
    }
}

/// A failed write of `bucket`'s manifest, counted.
fn write_failed(app: &App, bucket: BucketId, error: S3Error) -> PersistError {
    app.metrics
        .manifest_writes_failed
        .fetch_add(1, Ordering::Relaxed);
    PersistError {
        bucket: app.config.buckets[bucket].name.clone(),
        error,
    }
}

/// Says that a bucket's manifest was written again after `failures` failed attempts.
fn note_written(app: &App, bucket: BucketId, failures: u32) {
    if failures > 0 {
        info!(
            "manifest of bucket {} written after {failures} failed attempts",
            app.config.buckets[bucket].name
        );
    }
}

/// After `failures` (at least one) failed writes in a row: the backoff, cut short by a
/// new change (which is retried at once).
async fn retry_wait(wake: &Notify, failures: u32) {
    let wait = crate::s3::retry::backoff(
        failures - 1,
        RETRY_FIRST,
        RETRY_MAX,
        crate::s3::retry::jitter(),
    );
    tokio::select! {
        () = wake.notified() => {}
        () = tokio::time::sleep(wait) => {}
    }
}

/// How a writer's turn saved the changes.
enum Saved {
    /// Written; when the manifest should next be compacted, if it lags behind the
    /// journal.
    Now(Option<Instant>),
    /// A whole-manifest write started on its own task ([`start_whole_write`]).
    OnItsOwnTask,
}

/// Saves what changed in `bucket` since the last write: one journal record, or the
/// whole manifest when there is no journal or too much changed for a record. With a
/// journal, a whole write (a first start's, a big sync's) runs on its own task, so that
/// the records of the changes that follow (`/update`s) are not queued behind it;
/// `generations` are the writes it answers for.
async fn write_changes(
    app: &Arc<App>,
    bucket: BucketId,
    generations: (u64, u64),
) -> Result<Saved, S3Error> {
    let interval = app.config.storage.compact_interval;
    let changes = app.registry.take_changes(bucket);
    let whole_running = app.manifests.writers[bucket.index()]
        .progress
        .borrow()
        .whole
        .is_some();
    let result = match &changes {
        _ if interval.is_zero() => write_whole(app, bucket, Whole::Forced).await,
        Changes::All if !whole_running => {
            start_whole_write(app, bucket, generations);
            return Ok(Saved::OnItsOwnTask);
        }
        Changes::All => write_whole(app, bucket, Whole::Forced).await,
        Changes::Keys(keys) if keys.is_empty() => Ok(()),
        Changes::Keys(keys) => {
            let mut slot = app.manifests.slots[bucket.index()].lock().await;
            super::journal::append(app, bucket, &mut slot, keys).await
        }
    };
    if let Err(e) = result {
        // Journaled with the next attempt (without a journal they are not needed: the
        // whole manifest is written).
        if !interval.is_zero() {
            app.registry.restore_changes(bucket, changes);
        }
        return Err(e);
    }
    let slot = app.manifests.slots[bucket.index()].lock().await;
    Ok(Saved::Now(compaction_due(&slot, interval)))
}

/// Writes the whole manifest on its own task for the writes of `generations`
/// (`(after, up_to]`), whose waiters wait for it; a failure gives the changes back
/// (everything) for the writer to retry after a backoff.
fn start_whole_write(app: &Arc<App>, bucket: BucketId, (after, up_to): (u64, u64)) {
    // Before the task starts, so that it cannot end before its waiters are told.
    app.manifests.writers[bucket.index()]
        .progress
        .send_modify(|p| p.whole = Some((after, up_to)));
    let app = Arc::clone(app);
    tokio::spawn(async move {
        let result = write_whole(&app, bucket, Whole::Forced).await;
        let writer = &app.manifests.writers[bucket.index()];
        let (outcome, error) = match result {
            Ok(()) => {
                let slot = app.manifests.slots[bucket.index()].lock().await;
                let due = compaction_due(&slot, app.config.storage.compact_interval);
                (Ok(due), None)
            }
            Err(error) => {
                app.registry.mark_all_changed(bucket);
                let e = write_failed(&app, bucket, error);
                if writer.progress.borrow().whole_error.is_none() {
                    warn!("{e}; will retry in the background");
                }
                (Err(()), Some(e))
            }
        };
        // The writer reads the outcome when woken; waiters see the progress.
        *writer
            .whole_written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(outcome);
        writer.progress.send_modify(|p| {
            p.whole = None;
            p.whole_error = error;
        });
        writer.wake.notify_one();
    });
}

/// When the manifest in S3 lags behind the journal: a compaction interval after the
/// last one.
fn compaction_due(slot: &Slot, interval: Duration) -> Option<Instant> {
    (!interval.is_zero() && slot.journal_seq > slot.manifest_seq).then(|| {
        slot.compacted_at
            .map_or_else(Instant::now, |t| t + interval)
    })
}

/// Rewrites the manifest so that it includes the journal; on success, deletes the
/// records the previous compaction included, once they have been compacted for an
/// interval. Returns when to try again if it failed.
async fn compact(app: &App, bucket: BucketId) -> Option<Instant> {
    let interval = app.config.storage.compact_interval;
    let written = write_whole(app, bucket, Whole::Periodic).await;
    let mut slot = app.manifests.slots[bucket.index()].lock().await;
    match written {
        Ok(()) => {
            if let Some((through, from)) = slot.deletable
                && from <= Instant::now()
            {
                super::journal::prune_later(app, bucket, through);
                slot.deletable = None;
            }
            if slot.deletable.is_none() && slot.manifest_seq > 0 {
                slot.deletable = Some((slot.manifest_seq, Instant::now() + interval));
            }
            compaction_due(&slot, interval)
        }
        Err(e) => {
            info!(
                "manifest of bucket {} not compacted ({e}); the journal keeps every change, trying again later",
                app.config.buckets[bucket].name
            );
            Some(Instant::now() + interval.min(Duration::from_secs(5)))
        }
    }
}

/// Runs [`compact`] on its own task; the writer learns when the next one is due
/// through `compacted`, and is woken when it ends.
fn start_compaction(app: &Arc<App>, bucket: BucketId) {
    app.manifests.writers[bucket.index()]
        .compacting
        .store(true, Ordering::Release);
    let app = Arc::clone(app);
    tokio::spawn(async move {
        let next = compact(&app, bucket).await;
        let writer = &app.manifests.writers[bucket.index()];
        *writer
            .compacted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(next);
        writer.compacting.store(false, Ordering::Release);
        writer.wake.notify_one();
    });
}

/// Why the whole manifest is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Whole {
    /// It must state this replica's registry (no journal, or too much changed for a
    /// record): another writer's manifest is merged and overwritten.
    Forced,
    /// A compaction: a manifest another replica compacted meanwhile, including every
    /// record this one knows, will do as well.
    Periodic,
}

fn render_bucket(app: &App, bucket: BucketId, journal_seq: u64) -> Bytes {
    let entries = app.registry.entries_in(bucket);
    let refs: Vec<&Entry> = entries.iter().map(|e| &**e).collect();
    Bytes::from(manifest::render_compacted(
        bucket,
        &refs,
        &app.config.buckets,
        journal_seq,
    ))
}

fn digest(body: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(body).into()
}

/// One write of one bucket's whole manifest, as the registry holds it when the write
/// starts: conditional on the ETag last seen; on a lost race, merge and try again.
/// The bucket's slot is taken only between S3 calls, so that journal records are
/// appended while a large manifest is rendered and sent; the manifest states the
/// records up to the one the slot knew when its rendering began.
async fn write_whole(app: &App, bucket: BucketId, why: Whole) -> Result<(), S3Error> {
    let store = &app.manifests;
    let _one_at_a_time = store.writers[bucket.index()].whole.lock().await;
    let cfg = &app.config.buckets[bucket];
    let mut target = store.slots[bucket.index()].lock().await.journal_seq;
    let mut body = render_bucket(app, bucket, target);
    let mut body_digest = digest(&body);
    if already_written(store, bucket, body_digest, target).await {
        return Ok(());
    }
    let mut attempt = 0;
    let mut settled = Settled::new();
    loop {
        let condition = store.put_condition(bucket);
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
                let mut slot = store.slots[bucket.index()].lock().await;
                store.set_etag(bucket, (!etag.is_empty()).then_some(etag));
                slot.last_digest = Some(body_digest);
                slot.manifest_seq = slot.manifest_seq.max(target);
                slot.compacted_at = Some(Instant::now());
                slot.checked_at = Some(Instant::now());
                return Ok(());
            }
            // A `NoSuchKey` to `If-Match` (AWS, when the manifest was deleted meanwhile)
            // is the same race as a 412: the ETag this replica holds is no longer
            // current. A bare 404 proves nothing and is not treated as a race.
            Err(S3Error::PreconditionFailed { .. } | S3Error::NotFound)
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
                if merge_after_race(app, bucket, why, &mut settled).await? == AfterRace::Done {
                    return Ok(());
                }
                target = store.slots[bucket.index()].lock().await.journal_seq;
                body = render_bucket(app, bucket, target);
                body_digest = digest(&body);
            }
            Err(S3Error::Rejected { status, code, .. })
                if condition != PutCondition::None
                    && (status == 501 || code == "NotImplemented") =>
            {
                store.note_conditional_unsupported(status, &code);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether the manifest in S3 already is `body` (by its digest): then it only counts as
/// compacted through `target`.
async fn already_written(
    store: &ManifestStore,
    bucket: BucketId,
    body_digest: [u8; 32],
    target: u64,
) -> bool {
    let mut slot = store.slots[bucket.index()].lock().await;
    if slot.last_digest != Some(body_digest) {
        return false;
    }
    slot.manifest_seq = slot.manifest_seq.max(target);
    slot.compacted_at = Some(Instant::now());
    true
}

/// What is left of a whole-manifest write after another writer won the race.
#[derive(Debug, PartialEq, Eq)]
enum AfterRace {
    /// Their manifest does what this write was for.
    Done,
    /// This replica's view, with theirs merged in, is to be written again.
    WriteAgain,
}

/// Reads the manifest that won, catches up with the journal records it includes, and
/// merges it in, re-reading until a read leaves nothing to check against the bucket
/// (so that the write follows that read at once); bounded, then written anyway.
async fn merge_after_race(
    app: &App,
    bucket: BucketId,
    why: Whole,
    settled: &mut Settled,
) -> Result<AfterRace, S3Error> {
    let store = &app.manifests;
    let journaling = !app.config.storage.compact_interval.is_zero();
    for _ in 0..MERGE_READS {
        let (theirs, etag, theirs_seq) = read_manifest(app, bucket).await?;
        let known = {
            let mut slot = store.slots[bucket.index()].lock().await;
            store.set_etag(bucket, etag);
            slot.manifest_seq = theirs_seq;
            if journaling && theirs_seq > slot.journal_seq {
                // They compacted records this replica has not applied yet.
                super::journal::catch_up(app, bucket, &mut slot).await?;
            }
            slot.journal_seq
        };
        if why == Whole::Periodic {
            if theirs_seq >= known {
                // Their manifest includes every record this replica knows.
                store.slots[bucket.index()].lock().await.compacted_at = Some(Instant::now());
                return Ok(AfterRace::Done);
            }
            // Theirs is an older compaction of the same journal, which this replica has
            // applied further: replace it, without a merge (a merge would take back
            // what records after it undid).
            return Ok(AfterRace::WriteAgain);
        }
        if !merge_theirs(app, bucket, &theirs, Scope::Whole, settled).await? {
            break;
        }
    }
    Ok(AfterRace::WriteAgain)
}

/// Reads one manifest: its entries (empty if absent or unreadable), its ETag, and the
/// last journal record it includes.
pub(crate) async fn read_manifest(
    app: &App,
    bucket: BucketId,
) -> Result<(Vec<ManifestEntry>, Option<String>, u64), S3Error> {
    let cfg = &app.config.buckets[bucket];
    let (bytes, etag) = match fetch_manifest(app, bucket).await {
        Ok(Some(found)) => found,
        Ok(None) => return Ok((Vec::new(), None, 0)),
        Err(S3Error::TooLarge { limit, etag }) => {
            warn!(
                "manifest {}/{} ignored: larger than PARPARCHIK_MANIFEST_MAX_BYTES ({limit})",
                cfg.name, cfg.manifest_key
            );
            return Ok((Vec::new(), (!etag.is_empty()).then_some(etag), 0));
        }
        Err(e) => return Err(e),
    };
    let (entries, seq) = manifest::parse_compacted(&bytes, &cfg.name).unwrap_or_else(|e| {
        warn!("manifest {}/{} ignored: {e}", cfg.name, cfg.manifest_key);
        (Vec::new(), 0)
    });
    Ok((entries, etag, seq))
}

/// GETs one manifest object: its bytes and ETag, or `None` when there is none yet.
/// A body over the configured limit is refused without being kept.
pub(crate) async fn fetch_manifest(
    app: &App,
    bucket: BucketId,
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
