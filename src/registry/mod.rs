//! The in-memory registry: every file, which bucket holds it, and what S3 said of it.
//!
//! A `RwLock`-guarded `HashMap` keyed by object key. A key has one entry, so a route
//! `/<bucket>/<key>` is found by its key and then checked against the entry's bucket.
//! Every mutation reports which buckets' manifests it changed ([`Dirty`]), so callers
//! persist exactly those.

pub mod entry;
pub mod journal;
pub mod manifest;
pub(crate) mod reconcile;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use entry::Entry;

use crate::config::BucketId;
use reconcile::Reconciled;

/// What the registry holds, in the figures the contract's four gauges show (rendered
/// by `metrics`, which depends on this, not the other way round).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryFigures {
    /// `(bucket name, files)` for every configured bucket, in configuration order.
    pub volume_files: Vec<(String, u64)>,
    pub(crate) duplicate_files: u64,
    pub(crate) uploads_per_week: u64,
    pub(crate) uploads_per_month: u64,
}

/// A set of bucket indexes whose manifests changed (configuration allows at most 64).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dirty(pub u64);

impl Dirty {
    pub(crate) fn with(mut self, bucket: BucketId) -> Dirty {
        self.0 |= 1 << bucket.index();
        self
    }
    pub(crate) fn without(self, bucket: BucketId) -> Dirty {
        Dirty(self.0 & !(1 << bucket.index()))
    }
    pub(crate) fn union(self, other: Dirty) -> Dirty {
        Dirty(self.0 | other.0)
    }
    /// No bucket in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Whether `bucket` is in the set.
    pub fn contains(self, bucket: BucketId) -> bool {
        self.0 & (1 << bucket.index()) != 0
    }
    /// The buckets in the set, in priority order.
    pub fn buckets(self) -> impl Iterator<Item = BucketId> {
        BucketId::first(64).filter(move |b| self.contains(*b))
    }
}

/// A [`Dirty`] that tasks update without a lock.
#[derive(Debug, Default)]
pub struct AtomicDirty(AtomicU64);

impl AtomicDirty {
    /// Adds `dirty`'s buckets.
    pub fn insert(&self, dirty: Dirty) {
        self.0.fetch_or(dirty.0, Ordering::AcqRel);
    }
    /// Removes `dirty`'s buckets.
    pub fn remove(&self, dirty: Dirty) {
        self.0.fetch_and(!dirty.0, Ordering::AcqRel);
    }
    /// The buckets now.
    pub fn load(&self) -> Dirty {
        Dirty(self.0.load(Ordering::Acquire))
    }
}

/// A registered entry in the registry's set, found by its key: the key is stored once,
/// in the entry (a map from key to entry would hold every key twice).
#[derive(Clone, Debug)]
struct Held(Arc<Entry>);

impl std::borrow::Borrow<str> for Held {
    fn borrow(&self) -> &str {
        &self.0.key
    }
}

impl std::hash::Hash for Held {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.key.as_str().hash(state);
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Held) -> bool {
        self.0.key == other.0.key
    }
}

impl Eq for Held {}

type Files = HashSet<Held>;

#[derive(Default)]
struct State {
    files: Files,
    duplicates: HashSet<String>,
    /// Counts mutations, so a sync can tell which ones happened while it listed.
    seq: u64,
    /// Keys changed by requests since the last sync, with the `seq` of their change.
    touched: HashMap<String, u64>,
    /// Per bucket index: what changed in that bucket's manifest since its writer last
    /// took the changes (see `coordinator::persist`).
    changes: Vec<Changes>,
}

/// Keys whose state in one bucket changed since that bucket's manifest writer last
/// took them: what the next journal record states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Changes {
    /// These keys changed (at most [`MAX_CHANGED_KEYS`]).
    Keys(HashSet<String>),
    /// More keys than one record should carry (a first start, a big sync): the writer
    /// writes the whole manifest instead.
    All,
}

impl Default for Changes {
    fn default() -> Changes {
        Changes::Keys(HashSet::new())
    }
}

/// Past this many changed keys a bucket's next write is a whole manifest: a record of
/// 10 000 keys is already about a megabyte.
pub const MAX_CHANGED_KEYS: usize = 10_000;

impl Changes {
    fn add(&mut self, key: &str) {
        if let Changes::Keys(keys) = self {
            if keys.len() >= MAX_CHANGED_KEYS {
                *self = Changes::All;
            } else if !keys.contains(key) {
                keys.insert(key.to_owned());
            }
        }
    }

    fn absorb(&mut self, other: Changes) {
        match other {
            Changes::All => *self = Changes::All,
            Changes::Keys(keys) => {
                for k in keys {
                    self.add(&k);
                }
            }
        }
    }

    /// No key changed.
    pub fn is_empty(&self) -> bool {
        matches!(self, Changes::Keys(keys) if keys.is_empty())
    }
}

/// Keys remembered for a running sync; past this (a sync-less service with a huge
/// churn) the memory is dropped, and a sync may then briefly undo a fresh change
/// until the next request for that key.
const MAX_TOUCHED: usize = 200_000;

impl State {
    fn touch(&mut self, key: &str) {
        self.seq += 1;
        if self.touched.len() >= MAX_TOUCHED {
            self.touched.clear();
        }
        self.touched.insert(key.to_owned(), self.seq);
    }

    fn changed(&mut self, bucket: BucketId, key: &str) {
        let i = bucket.index();
        if self.changes.len() <= i {
            self.changes.resize_with(i + 1, Changes::default);
        }
        self.changes[i].add(key);
    }
}

/// Every registered file by key, which keys more than one bucket holds, and what
/// changed per bucket since its manifest writer last looked. One lock; readers hold it
/// for a lookup only.
#[derive(Default)]
pub struct Registry {
    state: RwLock<State>,
    /// Replaces so far, and the buckets where the last one found changes that no
    /// request or event had told the registry (for the bucket notifications' trust).
    replaces: AtomicU64,
    unannounced: AtomicU64,
}

impl Registry {
    // A poisoned lock means a panic mid-mutation elsewhere; the map itself is still a
    // consistent map (every mutation is a single insert/remove), so keep serving.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The entry of `key`; the lock is held for the lookup only.
    pub fn get(&self, key: &str) -> Option<Arc<Entry>> {
        self.read().files.get(key).map(|h| Arc::clone(&h.0))
    }

    /// Registered files.
    pub fn len(&self) -> usize {
        self.read().files.len()
    }

    /// No file registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys held by more than one bucket (each counted once).
    pub fn duplicate_count(&self) -> usize {
        self.read().duplicates.len()
    }

    /// Registers or updates `entry`; reports the buckets whose manifests changed.
    pub fn upsert(&self, entry: Entry) -> Dirty {
        self.upsert_arc(Arc::new(entry))
    }

    /// As [`Registry::upsert`], for an entry the caller keeps a handle to.
    pub fn upsert_arc(&self, entry: Arc<Entry>) -> Dirty {
        let mut state = self.write();
        let dirty = match state.files.get(entry.key.as_str()) {
            Some(old) if *old.0 == *entry => return Dirty::default(),
            Some(old) => Dirty::default().with(old.0.bucket).with(entry.bucket),
            None => Dirty::default().with(entry.bucket),
        };
        state.touch(&entry.key);
        for bucket in dirty.buckets() {
            state.changed(bucket, &entry.key);
        }
        state.files.replace(Held(entry));
        dirty
    }

    /// Loads entries (the manifests' registered state at start-up) where the registry has
    /// no entry for the key yet; the first of several entries for one key wins. Not a
    /// request's change: nothing is marked touched. Returns how many were loaded.
    pub fn seed(&self, entries: Vec<Entry>) -> usize {
        let mut state = self.write();
        let mut loaded = 0;
        for e in entries {
            if !state.files.contains(e.key.as_str()) {
                state.files.insert(Held(Arc::new(e)));
                loaded += 1;
            }
        }
        loaded
    }

    /// The mutation counter; pass it to [`Registry::replace`] as taken before listing.
    pub fn mutation_seq(&self) -> u64 {
        self.read().seq
    }

    /// Forgets `key`. Only ever called when S3 said the object does not exist.
    pub fn remove(&self, key: &str) -> Dirty {
        let mut state = self.write();
        state.duplicates.remove(key);
        match state.files.take(key) {
            Some(old) => {
                state.touch(key);
                state.changed(old.0.bucket, key);
                Dirty::default().with(old.0.bucket)
            }
            None => Dirty::default(),
        }
    }

    /// Takes what changed in `bucket` since the last take (its writer journals it).
    pub fn take_changes(&self, bucket: BucketId) -> Changes {
        self.write()
            .changes
            .get_mut(bucket.index())
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Gives back changes a write could not save, merged with any made meanwhile.
    pub fn restore_changes(&self, bucket: BucketId, changes: Changes) {
        if changes.is_empty() {
            return;
        }
        let mut state = self.write();
        let i = bucket.index();
        if state.changes.len() <= i {
            state.changes.resize_with(i + 1, Changes::default);
        }
        state.changes[i].absorb(changes);
    }

    /// Whether nothing changed in `bucket` since its writer last took the changes.
    pub fn has_no_changes(&self, bucket: BucketId) -> bool {
        self.read()
            .changes
            .get(bucket.index())
            .is_none_or(Changes::is_empty)
    }

    /// Marks `bucket`'s manifest as needing a whole rewrite (it says something the
    /// registry's changes do not explain).
    pub fn mark_all_changed(&self, bucket: BucketId) {
        self.restore_changes(bucket, Changes::All);
    }

    /// Records whether `key` was seen in several buckets.
    pub fn set_duplicate(&self, key: &str, duplicate: bool) {
        let mut state = self.write();
        if duplicate {
            state.duplicates.insert(key.to_owned());
        } else {
            state.duplicates.remove(key);
        }
    }

    /// Replaces the whole registry with a reconciled one; reports every bucket whose set
    /// of entries changed. Entries that did not change keep their verification time.
    /// Keys that requests changed after `since` (see [`Registry::mutation_seq`]) keep
    /// the registry's state: the request saw S3 later than the listing did.
    pub fn replace(&self, new: Reconciled, since: u64) -> Dirty {
        let mut files: Files = HashSet::with_capacity(new.files.len());
        let mut dirty = Dirty::default();
        let mut changes: Vec<Changes> = Vec::new();
        let mut changed = |bucket: BucketId, key: &str| {
            let i = bucket.index();
            if changes.len() <= i {
                changes.resize_with(i + 1, Changes::default);
            }
            changes[i].add(key);
        };
        // Keys the listing adds, moves or drops that no change since `since` explains:
        // news to the registry (metadata alone does not count: routes did not change).
        let mut unannounced = Dirty::default();
        {
            let old = self.read();
            let told = |key: &str| old.touched.get(key).is_some_and(|seq| *seq > since);
            for entry in new.files {
                match old.files.get(entry.key.as_str()) {
                    Some(o) if Arc::ptr_eq(&o.0, &entry) || *o.0 == *entry => {
                        files.insert(o.clone());
                    }
                    Some(o) => {
                        dirty = dirty.with(o.0.bucket).with(entry.bucket);
                        changed(o.0.bucket, &entry.key);
                        changed(entry.bucket, &entry.key);
                        if o.0.bucket != entry.bucket && !told(&entry.key) {
                            unannounced = unannounced.with(o.0.bucket).with(entry.bucket);
                        }
                        files.insert(Held(entry));
                    }
                    None => {
                        dirty = dirty.with(entry.bucket);
                        changed(entry.bucket, &entry.key);
                        if !told(&entry.key) {
                            unannounced = unannounced.with(entry.bucket);
                        }
                        files.insert(Held(entry));
                    }
                }
            }
            for o in &old.files {
                if !files.contains(o.0.key.as_str()) {
                    dirty = dirty.with(o.0.bucket);
                    changed(o.0.bucket, &o.0.key);
                    if !told(&o.0.key) {
                        unannounced = unannounced.with(o.0.bucket);
                    }
                }
            }
        }
        // Built outside the write lock, swapped in at once; only keys changed since the
        // listing began are patched under the lock.
        let mut state = self.write();
        let newer: Vec<String> = state
            .touched
            .iter()
            .filter(|(_, seq)| **seq > since)
            .map(|(k, _)| k.clone())
            .collect();
        for key in newer {
            if let Some(listed) = files.get(key.as_str()) {
                dirty = dirty.with(listed.0.bucket);
                changed(listed.0.bucket, &key);
            }
            match state.files.get(key.as_str()) {
                Some(current) => {
                    dirty = dirty.with(current.0.bucket);
                    changed(current.0.bucket, &key);
                    files.replace(current.clone());
                }
                None => {
                    files.remove(key.as_str());
                }
            }
        }
        for (bucket, c) in changes.into_iter().enumerate() {
            if state.changes.len() <= bucket {
                state.changes.resize_with(bucket + 1, Changes::default);
            }
            state.changes[bucket].absorb(c);
        }
        state.touched.clear();
        state.files = files;
        state.duplicates = new.duplicates;
        self.unannounced.store(unannounced.0, Ordering::Release);
        self.replaces.fetch_add(1, Ordering::AcqRel);
        dirty
    }

    /// How many replaces (syncs) ran, and the buckets where the last one found keys
    /// added, moved or removed that no request or event had told the registry.
    pub fn last_replace(&self) -> (u64, Dirty) {
        let count = self.replaces.load(Ordering::Acquire);
        (count, Dirty(self.unannounced.load(Ordering::Acquire)))
    }

    /// Per bucket: how many entries it has now, and how many of them `new` would drop
    /// (keys it no longer has anywhere).
    pub fn removal_counts(&self, new: &Reconciled, buckets: usize) -> Vec<(usize, usize)> {
        let state = self.read();
        let mut registered = vec![0usize; buckets];
        let mut kept = vec![0usize; buckets];
        for Held(e) in &state.files {
            if let Some(n) = registered.get_mut(e.bucket.index()) {
                *n += 1;
            }
        }
        for e in &new.files {
            if let Some(Held(current)) = state.files.get(e.key.as_str())
                && let Some(n) = kept.get_mut(current.bucket.index())
            {
                *n += 1;
            }
        }
        registered
            .into_iter()
            .zip(kept)
            .map(|(r, k)| (r, r.saturating_sub(k)))
            .collect()
    }

    /// Runs `f` on the keys of one bucket (unsorted), borrowed under the read lock: for
    /// work that only reads keys (sampling), without a snapshot of every entry.
    pub fn keys_in<R>(&self, bucket: BucketId, f: impl FnOnce(&[&str]) -> R) -> R {
        let state = self.read();
        let keys: Vec<&str> = state
            .files
            .iter()
            .filter(|h| h.0.bucket == bucket)
            .map(|h| h.0.key.as_str())
            .collect();
        f(&keys)
    }

    /// Entries of one bucket (unsorted): a snapshot of `Arc`s, cheap to take.
    pub fn entries_in(&self, bucket: BucketId) -> Vec<Arc<Entry>> {
        self.read()
            .files
            .iter()
            .filter(|h| h.0.bucket == bucket)
            .map(|h| Arc::clone(&h.0))
            .collect()
    }

    /// Every entry (unsorted).
    pub fn all(&self) -> Vec<Arc<Entry>> {
        self.read().files.iter().map(|h| Arc::clone(&h.0)).collect()
    }

    /// Runs `f` over every entry (unsorted) under the read lock, copying nothing: for
    /// callers that keep a small part (a page of `/browse/`). Writers wait meanwhile, so
    /// `f` must not block.
    pub fn visit<R>(&self, f: impl FnOnce(&mut dyn Iterator<Item = &Entry>) -> R) -> R {
        let state = self.read();
        let mut entries = state.files.iter().map(|h| &*h.0);
        f(&mut entries)
    }

    /// The contract's four gauges. `now` is Unix seconds.
    pub fn figures(&self, bucket_names: &[&str], now: i64) -> RegistryFigures {
        let week_ago = now - 7 * 24 * 3600;
        let month_ago = now - 31 * 24 * 3600;
        let mut per_bucket = vec![0u64; bucket_names.len()];
        let (mut week, mut month) = (0, 0);
        let duplicates;
        {
            let state = self.read();
            duplicates = state.duplicates.len() as u64;
            for Held(e) in &state.files {
                if let Some(n) = per_bucket.get_mut(e.bucket.index()) {
                    *n += 1;
                }
                if let Some(t) = e.modified_unix() {
                    if t >= week_ago && t <= now {
                        week += 1;
                    }
                    if t >= month_ago && t <= now {
                        month += 1;
                    }
                }
            }
        }
        RegistryFigures {
            volume_files: bucket_names
                .iter()
                .zip(per_bucket)
                .map(|(n, c)| ((*n).to_owned(), c))
                .collect(),
            duplicate_files: duplicates,
            uploads_per_week: week,
            uploads_per_month: month,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_reports_old_and_new_bucket() {
        let r = Registry::default();
        assert_eq!(
            r.upsert(Entry::new("k", BucketId::new(0), 1, "t")),
            Dirty::default().with(BucketId::new(0))
        );
        assert_eq!(
            r.upsert(Entry::new("k", BucketId::new(0), 1, "t")),
            Dirty::default()
        );
        assert_eq!(
            r.upsert(Entry::new("k", BucketId::new(1), 1, "t")),
            Dirty::default()
                .with(BucketId::new(0))
                .with(BucketId::new(1))
        );
        assert_eq!(r.remove("k"), Dirty::default().with(BucketId::new(1)));
        assert_eq!(r.remove("k"), Dirty::default());
    }

    #[test]
    fn replace_reports_changed_buckets_only() {
        let r = Registry::default();
        r.upsert(Entry::new("a", BucketId::new(0), 1, "t"));
        r.upsert(Entry::new("b", BucketId::new(1), 1, "t"));
        let mut new = Reconciled::default();
        new.files
            .push(Arc::new(Entry::new("a", BucketId::new(0), 1, "t")));
        new.files
            .push(Arc::new(Entry::new("c", BucketId::new(2), 1, "t")));
        let since = r.mutation_seq();
        assert_eq!(
            r.replace(new, since),
            Dirty::default()
                .with(BucketId::new(1))
                .with(BucketId::new(2))
        );
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn changes_made_during_a_listing_survive_the_replace() {
        let r = Registry::default();
        r.upsert(Entry::new("stale", BucketId::new(0), 1, "t"));
        let since = r.mutation_seq();
        // While the (older) listing runs, a request registers "fresh" and forgets "gone".
        r.upsert(Entry::new("fresh", BucketId::new(1), 1, "t"));
        r.upsert(Entry::new("gone", BucketId::new(0), 1, "t"));
        r.remove("gone");
        let mut listing = Reconciled::default();
        listing
            .files
            .push(Arc::new(Entry::new("stale", BucketId::new(0), 1, "t")));
        listing
            .files
            .push(Arc::new(Entry::new("gone", BucketId::new(0), 1, "t")));
        r.replace(listing, since);
        assert!(
            r.get("fresh").is_some(),
            "a registration newer than the listing is kept"
        );
        assert!(
            r.get("gone").is_none(),
            "a removal newer than the listing is kept"
        );
        assert!(r.get("stale").is_some());
    }

    #[test]
    fn replace_tells_what_nothing_announced() {
        let r = Registry::default();
        r.upsert(Entry::new("kept", BucketId::new(0), 1, "t"));
        r.upsert(Entry::new("moved", BucketId::new(0), 1, "t"));
        r.upsert(Entry::new("gone", BucketId::new(2), 1, "t"));
        assert_eq!(r.last_replace(), (0, Dirty::default()));
        let since = r.mutation_seq();
        // Told during the listing: an event registered "told".
        r.upsert(Entry::new("told", BucketId::new(1), 1, "t"));
        let mut listing = Reconciled::default();
        listing
            .files
            .push(Arc::new(Entry::new("kept", BucketId::new(0), 9, "t")));
        listing
            .files
            .push(Arc::new(Entry::new("moved", BucketId::new(1), 1, "t")));
        listing
            .files
            .push(Arc::new(Entry::new("told", BucketId::new(1), 1, "t")));
        r.replace(listing, since);
        // "kept" changed size only (no route changed); "moved" 0 -> 1, "gone" dropped.
        assert_eq!(
            r.last_replace(),
            (
                1,
                Dirty::default()
                    .with(BucketId::new(0))
                    .with(BucketId::new(1))
                    .with(BucketId::new(2))
            )
        );
        let mut again = Reconciled::default();
        for k in ["kept", "moved", "told"] {
            again.files.push(r.get(k).unwrap());
        }
        r.replace(again, r.mutation_seq());
        assert_eq!(
            r.last_replace(),
            (2, Dirty::default()),
            "a listing that agrees"
        );
    }

    #[test]
    fn figures_count_recent_uploads() {
        let r = Registry::default();
        let now = 1_800_000_000;
        let day = 86_400;
        let at =
            |t: i64| crate::timefmt::format(time::OffsetDateTime::from_unix_timestamp(t).unwrap());
        r.upsert(Entry::new("new", BucketId::new(0), 1, at(now - day)));
        r.upsert(Entry::new("older", BucketId::new(1), 1, at(now - 10 * day)));
        r.upsert(Entry::new("old", BucketId::new(1), 1, at(now - 40 * day)));
        r.set_duplicate("old", true);
        let f = r.figures(&["a", "b", "c"], now);
        assert_eq!(
            f.volume_files,
            vec![("a".into(), 1), ("b".into(), 2), ("c".into(), 0)]
        );
        assert_eq!(
            (f.uploads_per_week, f.uploads_per_month, f.duplicate_files),
            (1, 2, 1)
        );
    }
}
