//! Folding another writer's view of a bucket (its manifest, or one of its journal
//! records) into the registry. Where the other writer and this replica disagree about
//! a key, the bucket itself decides: one HEAD per key when there are a few, else a
//! background sync (one listing) while this replica's entries are kept. An entry is
//! never dropped, nor one adopted, on the other writer's word alone.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use crate::app::App;
use crate::config::BucketId;
use crate::registry::Entry;
use crate::registry::manifest::ManifestEntry;
use crate::s3::S3Error;
use crate::{info, warn};

/// Disputed keys a merge settles itself, with HEADs a few at a time; past this the
/// merge keeps both sides' entries and leaves the verdict to a background sync (one
/// listing), so a foreign manifest of 20 000 phantom keys costs a listing, not 20 000
/// HEADs inside somebody's request.
const MERGE_HEADS_AT_MOST: usize = 16;
/// The same for a journal record: a record is another replica's batch of changes, each
/// checked by it moments ago, so a few more are settled one by one.
const RECORD_HEADS_AT_MOST: usize = 64;

/// Keys a merge already settled during the current write, with both sides' views then.
pub(crate) type Settled = HashMap<String, Views>;
/// Both sides' view of one key: theirs as (size, last_modified), ours as (bucket, size,
/// last_modified).
pub(crate) type Views = (Option<(u64, String)>, Option<(BucketId, u64, String)>);

/// What the other writer's view covers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Scope<'a> {
    /// A whole manifest: every key of the bucket.
    Whole,
    /// A journal record: only the keys it names (absent from `theirs` = removed).
    Keys(&'a [&'a str]),
}

/// Folds `theirs` (the other writer's entries of `bucket`, within `scope`) into the
/// registry. Returns whether anything was disputed. A key settled by an earlier attempt
/// of the same write is not checked again unless either side's view of it changed since.
pub(crate) async fn merge_theirs(
    app: &App,
    bucket: BucketId,
    theirs: &[ManifestEntry],
    scope: Scope<'_>,
    settled: &mut Settled,
) -> Result<bool, S3Error> {
    let cfg = &app.config.buckets[bucket];
    let theirs: Theirs<'_> = theirs
        .iter()
        .filter(|e| e.bucket == cfg.name && !cfg.owns(&e.key))
        .map(|e| (e.key.as_str(), e))
        .collect();
    let state = |key: &str| -> Views {
        (
            theirs.get(key).map(|t| (t.size, t.last_modified.clone())),
            app.registry
                .get(key)
                .map(|e| (e.bucket, e.size, e.last_modified())),
        )
    };
    let disputed: Vec<String> = disputed_keys(app, bucket, &theirs, scope)
        .into_iter()
        .filter(|key| settled.get(key) != Some(&state(key)))
        .collect();
    if disputed.is_empty() {
        return Ok(false);
    }
    let heads_at_most = match scope {
        Scope::Whole => MERGE_HEADS_AT_MOST,
        Scope::Keys(_) => RECORD_HEADS_AT_MOST,
    };
    if disputed.len() > heads_at_most {
        keep_ours_and_sync_later(app, &disputed, settled, &state, bucket);
    } else {
        ask_the_bucket(app, bucket, disputed, settled, &state).await?;
    }
    Ok(true)
}

/// The other writer's entries of one bucket, by key.
type Theirs<'a> = HashMap<&'a str, &'a ManifestEntry>;

/// Keys where this replica's registry and the other writer's view of `bucket` differ.
fn disputed_keys(
    app: &App,
    bucket: BucketId,
    theirs: &Theirs<'_>,
    scope: Scope<'_>,
) -> HashSet<String> {
    let agree =
        |ours: &Entry, t: &ManifestEntry| t.size == ours.size && ours.modified_at(&t.last_modified);
    let mut disputed = HashSet::new();
    match scope {
        Scope::Whole => {
            let ours = app.registry.entries_in(bucket);
            let our_keys: HashSet<&str> = ours.iter().map(|e| e.key.as_str()).collect();
            for e in &ours {
                if !theirs.get(e.key.as_str()).is_some_and(|t| agree(e, t)) {
                    disputed.insert(e.key.clone());
                }
            }
            for key in theirs.keys() {
                if !our_keys.contains(key) {
                    disputed.insert((*key).to_owned());
                }
            }
        }
        Scope::Keys(keys) => {
            let cfg = &app.config.buckets[bucket];
            for key in keys.iter().filter(|k| !cfg.owns(k)) {
                let ours = app.registry.get(key).filter(|e| e.bucket == bucket);
                let same = match (&ours, theirs.get(key)) {
                    (None, None) => true,
                    (Some(e), Some(t)) => agree(e, t),
                    _ => false,
                };
                if !same {
                    disputed.insert((*key).to_owned());
                }
            }
        }
    }
    disputed
}

/// Settles a few disputed keys with one HEAD each: a key the bucket holds is registered
/// there; a key it proved missing is forgotten, within the removal guard.
async fn ask_the_bucket(
    app: &App,
    bucket: BucketId,
    disputed: Vec<String>,
    settled: &mut Settled,
    state: &(dyn Fn(&str) -> Views + Sync),
) -> Result<(), S3Error> {
    let checks = disputed
        .iter()
        .map(|key| super::locate::check(app, bucket, key))
        .collect();
    let answers = crate::join::join_all(checks).await;
    let remove_now = removals_allowed(app, bucket, &disputed, &answers);
    for (key, answer) in disputed.into_iter().zip(answers) {
        match answer {
            // The bucket holds the key and the other writer's record says so: follow
            // that record, also when this replica has the key in another bucket that
            // holds it too, so that a duplicate's home is never dropped from both
            // manifests. The old bucket's change is journaled with its next write.
            Ok(meta) => {
                let dirty = app.registry.upsert(Entry::new(
                    key.clone(),
                    bucket,
                    meta.size,
                    meta.last_modified,
                ));
                app.manifests.mark_stale(dirty.without(bucket));
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
    Ok(())
}

/// The removal guard holds for merges too: more proven-missing keys than one listing
/// may remove are left to a sync, which confirms them with a second listing.
fn removals_allowed(
    app: &App,
    bucket: BucketId,
    disputed: &[String],
    answers: &[Result<crate::s3::ObjectMeta, S3Error>],
) -> bool {
    let removals = answers
        .iter()
        .zip(disputed)
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
    if removals > allowed {
        app.metrics.removals_refused.fetch_add(1, Ordering::Relaxed);
        warn!(
            "a merge would remove {removals} entries of bucket {}; left to a sync",
            app.config.buckets[bucket].name
        );
        sync_later(app);
        return false;
    }
    true
}

/// Starts a sync in the background (a listing settles what a merge could not). One at
/// a time: asked for while one runs, one more runs after it.
fn sync_later(app: &App) {
    if !app.manifests.want_background_sync() {
        return;
    }
    if let Some(app) = app.weak().upgrade() {
        tokio::spawn(async move {
            loop {
                let _ = super::sync::resync(&app).await;
                if !app.manifests.background_sync_done() {
                    break;
                }
            }
        });
    }
}

/// Too many disputed keys to ask about one by one: keep every entry this replica has,
/// adopt none of theirs unchecked (their manifest may predate deletions this replica
/// has seen), and let one background sync, a listing of the buckets, give the verdict:
/// their files that do exist are registered by it within seconds.
fn keep_ours_and_sync_later(
    app: &App,
    disputed: &[String],
    settled: &mut Settled,
    state: &dyn Fn(&str) -> Views,
    bucket: BucketId,
) {
    for key in disputed {
        settled.insert(key.clone(), state(key));
    }
    info!(
        "manifest of bucket {}: {} keys disputed with another writer; keeping this replica's entries until a sync lists the bucket",
        app.config.buckets[bucket].name,
        disputed.len()
    );
    sync_later(app);
}
