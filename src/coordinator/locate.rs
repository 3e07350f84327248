//! Per-key work for one request: confirm a key where the registry says it is, find it
//! in the buckets when it is not, and the `/relocate` rule (last bucket wins).
//!
//! Only a "not found" that S3 proved ever removes an entry; any other failure leaves the
//! registry and the manifests untouched and is returned to the caller. A key's own
//! answer (S3 refusing that one key while its bucket answers) removes nothing either.

use crate::config::BucketId;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::app::App;
use crate::registry::{Dirty, Entry};
use crate::s3::{Evidence, ObjectMeta, S3Error};

/// HEAD of `key` in bucket `bucket`, coalesced with any check of the same object in flight.
/// A bucket's own objects (its manifest) are never files: not found, without asking.
pub(crate) async fn check(app: &App, bucket: BucketId, key: &str) -> Result<ObjectMeta, S3Error> {
    let cfg = &app.config.buckets[bucket];
    if cfg.owns(key) {
        return Err(S3Error::NotFound);
    }
    let name = &cfg.name;
    // Forgetting a registered file needs S3's proof from after the question.
    let evidence = if app.registry.get(key).is_some_and(|e| e.bucket == bucket) {
        Evidence::AfterTheAnswer
    } else {
        Evidence::Recent
    };
    let (answer, shared) = app
        .heads
        .run(bucket, key, || app.s3.head_object_with(name, key, evidence))
        .await;
    if shared {
        app.metrics.coalesced_checks.fetch_add(1, Ordering::Relaxed);
    }
    match &answer {
        Err(S3Error::NotFound) => app.misses.remember(bucket, key, std::time::Instant::now()),
        Ok(_) => app.misses.forget(bucket, key),
        Err(_) => {}
    }
    answer
}

/// Registers `key` in `bucket` with S3's metadata and notes the confirmation. The common
/// case, an entry S3 confirms unchanged, allocates nothing and takes no write lock.
fn register(app: &App, key: &str, bucket: BucketId, meta: &ObjectMeta) -> (Arc<Entry>, Dirty) {
    note_confirmed(app, bucket, key);
    if let Some(e) = app.registry.get(key)
        && e.bucket == bucket
        && e.size == meta.size
        && e.modified_at(&meta.last_modified)
    {
        return (e, Dirty::default());
    }
    let entry = Arc::new(Entry::new(key, bucket, meta.size, &meta.last_modified));
    let dirty = app.registry.upsert_arc(Arc::clone(&entry));
    (entry, dirty)
}

/// Remembers that S3 (or a bucket notification) just confirmed `key` in `bucket`, for
/// `PARPARCHIK_VERIFY_TTL` and `PARPARCHIK_EVENTS_VERIFY_TTL`.
pub(crate) fn note_confirmed(app: &App, bucket: BucketId, key: &str) {
    if !app.config.verify_ttl.is_zero() || app.config.events.enabled() {
        let now = app.now_ms();
        app.confirmed.with(bucket, key, || 0, |at| *at = now + 1);
    }
}

/// Whether S3 confirmed `entry` (in its bucket) less than `ttl_ms` ago.
pub(crate) fn confirmed_within(app: &App, entry: &Entry, ttl_ms: u64) -> bool {
    let now = app.now_ms();
    app.confirmed
        .peek(entry.bucket, &entry.key, |at| {
            *at != 0 && now.saturating_sub(*at - 1) < ttl_ms
        })
        .unwrap_or(false)
}

/// Where a key is now.
pub(crate) struct Located {
    pub entry: Option<Arc<Entry>>,
    /// Manifests changed by this lookup (persisted by the caller before it answers).
    pub dirty: Dirty,
}

impl Located {
    /// No bucket holds the key, and the registry did not change.
    fn nowhere() -> Located {
        Located {
            entry: None,
            dirty: Dirty::default(),
        }
    }

    /// `key` found in `bucket`: registered there.
    fn registered(app: &App, key: &str, bucket: BucketId, meta: &ObjectMeta) -> Located {
        let (entry, dirty) = register(app, key, bucket, meta);
        Located {
            entry: Some(entry),
            dirty,
        }
    }
}

/// Confirms `key` where the registry has it, else finds it in the first bucket (priority
/// order) that holds it; forgets it when no bucket does.
pub(crate) async fn confirm_or_find(app: &App, key: &str) -> Result<Located, S3Error> {
    let known = app.registry.get(key);
    let mut skip = None;
    if let Some(e) = &known {
        match check(app, e.bucket, key).await {
            Ok(meta) => return Ok(Located::registered(app, key, e.bucket, &meta)),
            Err(S3Error::NotFound) => skip = Some(e.bucket),
            // The registered bucket cannot tell: the entry stands, the caller decides.
            Err(other) => return Err(other),
        }
    }
    let mut unproven = None;
    for bucket in BucketId::first(app.config.buckets.len()) {
        if Some(bucket) == skip {
            continue;
        }
        match check(app, bucket, key).await {
            Ok(meta) => return Ok(Located::registered(app, key, bucket, &meta)),
            Err(S3Error::NotFound) => {}
            Err(e @ S3Error::KeyRejected { .. }) => {
                unproven.get_or_insert(e);
            }
            Err(other) => return Err(other),
        }
    }
    // Forget the key only when every bucket proved it missing.
    if let Some(e) = unproven {
        return match known {
            Some(_) => Err(e),
            None => Ok(Located::nowhere()),
        };
    }
    Ok(Located {
        entry: None,
        dirty: app.registry.remove(key),
    })
}

/// A download of `key` from bucket `named`, for a key the registry does not know: asks
/// only what the answer needs. The named bucket first (a miss there is the answer, and
/// is remembered for a while); only when it holds the key, the buckets before it in
/// priority order, since the first bucket holding a homeless key is its home.
pub(crate) async fn find_for_download(
    app: &App,
    named: BucketId,
    key: &str,
) -> Result<Located, S3Error> {
    if app.misses.is_missing(named, key, std::time::Instant::now()) {
        app.metrics.miss_cache_hits.fetch_add(1, Ordering::Relaxed);
        return Ok(Located::nowhere());
    }
    let meta = match check(app, named, key).await {
        Ok(meta) => meta,
        Err(S3Error::NotFound | S3Error::KeyRejected { .. }) => return Ok(Located::nowhere()),
        Err(other) => return Err(other),
    };
    for bucket in BucketId::first(named.index()) {
        if app
            .misses
            .is_missing(bucket, key, std::time::Instant::now())
        {
            continue;
        }
        match check(app, bucket, key).await {
            Ok(earlier) => {
                let found = Located::registered(app, key, bucket, &earlier);
                app.registry.set_duplicate(key, true);
                return Ok(found);
            }
            Err(S3Error::NotFound | S3Error::KeyRejected { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(Located::registered(app, key, named, &meta))
}

/// What `/relocate` found.
pub(crate) struct Relocated {
    pub entry: Option<Arc<Entry>>,
    /// The bucket the registry had before, when it differs from the new one.
    pub moved_from: Option<BucketId>,
    /// Held by more than one bucket.
    pub duplicate: bool,
    pub dirty: Dirty,
}

/// Checks every bucket; the last configured bucket holding `key` wins.
pub(crate) async fn relocate(app: &App, key: &str) -> Result<Relocated, S3Error> {
    let before = app.registry.get(key).map(|e| e.bucket);
    let mut holders = Vec::new();
    let mut unproven = None;
    for bucket in BucketId::first(app.config.buckets.len()) {
        match check(app, bucket, key).await {
            Ok(meta) => holders.push((bucket, meta)),
            Err(S3Error::NotFound) => {}
            Err(e @ S3Error::KeyRejected { .. }) => {
                unproven.get_or_insert(e);
            }
            Err(other) => return Err(other),
        }
    }
    if holders.is_empty()
        && let Some(e) = unproven
    {
        // Nothing proved the key gone everywhere: nothing is forgotten.
        return match before {
            Some(_) => Err(e),
            None => Ok(Relocated {
                entry: None,
                moved_from: None,
                duplicate: false,
                dirty: Dirty::default(),
            }),
        };
    }
    let Some((bucket, meta)) = holders.last() else {
        return Ok(Relocated {
            entry: None,
            moved_from: None,
            duplicate: false,
            dirty: app.registry.remove(key),
        });
    };
    let (entry, dirty) = register(app, key, *bucket, meta);
    let duplicate = holders.len() > 1;
    app.registry.set_duplicate(key, duplicate);
    Ok(Relocated {
        moved_from: before.filter(|b| b != bucket),
        entry: Some(entry),
        duplicate,
        dirty,
    })
}
