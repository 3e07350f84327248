//! The journal's I/O (its format is `registry::journal`): appending a record of what
//! changed, catching up with the records other replicas wrote, reading the journal at
//! start-up, and deleting records a compacted manifest includes.

use crate::config::BucketId;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::merge::{Scope, Settled, merge_theirs};
use super::persist::Slot;
use crate::app::App;
use crate::registry::journal::{self, Change, Record};
use crate::registry::manifest::ManifestEntry;
use crate::s3::{PutCondition, S3Error};
use crate::{info, warn};

/// Records fetched at once when catching up or starting.
const FETCH_AT_ONCE: usize = 16;
/// Attempts to append one record when other replicas keep taking the next number.
const APPEND_ATTEMPTS: u32 = 50;

/// The journal records of `bucket` after record `after`, in order, and the number of
/// the last record listed (also when it could not be read). A record that cannot be
/// parsed is skipped with a warning: its keys are settled by the next sync.
pub(crate) async fn read_after(
    app: &App,
    bucket: BucketId,
    after: u64,
) -> Result<(Vec<Record>, u64), S3Error> {
    let cfg = &app.config.buckets[bucket];
    let listed = app
        .s3
        .list_range(
            &cfg.name,
            Some(&journal::record_key(&cfg.manifest_key, after)),
            Some(&journal::last_record_key(&cfg.manifest_key)),
            |_| {},
        )
        .await?;
    let mut numbered: Vec<(u64, String)> = listed
        .into_iter()
        .filter_map(|o| journal::seq_of(&cfg.manifest_key, &o.key).map(|n| (n, o.key)))
        .filter(|(n, _)| *n > after)
        .collect();
    numbered.sort();
    let last = numbered.last().map_or(after, |(n, _)| *n);
    let mut records = Vec::with_capacity(numbered.len());
    for chunk in numbered.chunks(FETCH_AT_ONCE) {
        let gets = chunk
            .iter()
            .map(|(_, key)| {
                app.s3
                    .get_object_limited(&cfg.name, key, app.config.storage.manifest_max_bytes)
            })
            .collect();
        for ((n, key), got) in chunk.iter().zip(crate::join::join_all(gets).await) {
            match got {
                Ok((body, _)) => match journal::parse(&body) {
                    Ok(record) if record.seq == *n => records.push(record),
                    Ok(record) => warn!(
                        "journal record {}/{key} says it is number {}; skipped",
                        cfg.name, record.seq
                    ),
                    Err(e) => warn!(
                        "journal record {}/{key} is unreadable ({e}); skipped",
                        cfg.name
                    ),
                },
                // Deleted by a compaction since the listing: a newer manifest includes it.
                Err(S3Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok((records, last))
}

/// The entries a record states, as a manifest would (for merging).
fn stated(record: &Record, bucket_name: &str) -> Vec<ManifestEntry> {
    record
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Present {
                key,
                size,
                last_modified,
            } => Some(ManifestEntry {
                key: key.clone(),
                bucket: bucket_name.to_owned(),
                size: *size,
                last_modified: last_modified.clone(),
            }),
            Change::Absent { .. } => None,
        })
        .collect()
}

/// Applies the records other writers appended after the last one this replica knows,
/// each merged as the other writer's word on the keys it names. When the records this
/// replica still needs were already deleted (it was idle through two compactions), the
/// manifest that includes them is merged instead.
pub(crate) async fn catch_up(app: &App, bucket: BucketId, slot: &mut Slot) -> Result<(), S3Error> {
    let cfg = &app.config.buckets[bucket];
    let (records, last) = read_after(app, bucket, slot.journal_seq).await?;
    let contiguous = records
        .first()
        .is_none_or(|r| r.seq == slot.journal_seq + 1);
    if !contiguous || (records.is_empty() && last > slot.journal_seq) {
        info!(
            "journal of bucket {}: records after {} were compacted away; merging the manifest",
            cfg.name, slot.journal_seq
        );
        let (theirs, etag, manifest_seq) = super::persist::read_manifest(app, bucket).await?;
        app.manifests.set_etag(bucket, etag);
        slot.manifest_seq = manifest_seq;
        merge_theirs(app, bucket, &theirs, Scope::Whole, &mut Settled::new()).await?;
        slot.journal_seq = slot.journal_seq.max(manifest_seq);
    }
    let from = slot.journal_seq;
    for record in records.iter().filter(|r| r.seq > from) {
        let keys: Vec<&str> = record.changes.iter().map(Change::key).collect();
        let theirs = stated(record, &cfg.name);
        merge_theirs(
            app,
            bucket,
            &theirs,
            Scope::Keys(&keys),
            &mut Settled::new(),
        )
        .await?;
        slot.journal_seq = record.seq;
    }
    slot.journal_seq = slot.journal_seq.max(last);
    Ok(())
}

/// Makes sure this replica is not writing after records it has not seen: at most every
/// half compaction interval, a HEAD of the manifest; a manifest another replica
/// rewrote means records may have been appended (and old ones will be deleted an
/// interval later), so catch up now, while they are all still there.
async fn check_current(app: &App, bucket: BucketId, slot: &mut Slot) -> Result<(), S3Error> {
    let every = app.config.storage.compact_interval / 2;
    if slot.checked_at.is_some_and(|t| t.elapsed() < every) {
        return Ok(());
    }
    let cfg = &app.config.buckets[bucket];
    let current = match app.s3.head_object(&cfg.name, &cfg.manifest_key).await {
        Ok(meta) => Some(meta.etag).filter(|e| !e.is_empty()),
        Err(S3Error::NotFound) => None,
        Err(e) => return Err(e),
    };
    if current != app.manifests.etag(bucket) {
        catch_up(app, bucket, slot).await?;
    }
    slot.checked_at = Some(tokio::time::Instant::now());
    Ok(())
}

/// Appends one record stating the current state of `keys` in `bucket`. Another replica
/// that took the next number first is caught up with, then the next number is tried.
pub(crate) async fn append(
    app: &App,
    bucket: BucketId,
    slot: &mut Slot,
    keys: &HashSet<String>,
) -> Result<(), S3Error> {
    let cfg = &app.config.buckets[bucket];
    check_current(app, bucket, slot).await?;
    let mut sorted: Vec<&str> = keys.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let mut attempt = 0;
    loop {
        // Rendered from the registry as it is now: a merge just made may have changed it.
        let seq = slot.journal_seq + 1;
        let record = Record {
            seq,
            bucket: cfg.name.clone(),
            changes: sorted
                .iter()
                .map(|key| match app.registry.get(key) {
                    Some(e) if e.bucket == bucket => Change::Present {
                        key: (*key).to_owned(),
                        size: e.size,
                        last_modified: e.last_modified(),
                    },
                    _ => Change::Absent {
                        key: (*key).to_owned(),
                    },
                })
                .collect(),
        };
        let condition = if app.manifests.conditional_writes_supported() {
            PutCondition::IfNoneMatch
        } else {
            PutCondition::None
        };
        let result = app
            .s3
            .put_object(
                &cfg.name,
                &journal::record_key(&cfg.manifest_key, seq),
                Bytes::from(journal::render(&record)),
                "application/json",
                &condition,
            )
            .await;
        match result {
            Ok(_) => {
                app.metrics
                    .manifest_writes_ok
                    .fetch_add(1, Ordering::Relaxed);
                slot.journal_seq = seq;
                return Ok(());
            }
            Err(S3Error::PreconditionFailed { .. }) if attempt + 1 < APPEND_ATTEMPTS => {
                attempt += 1;
                app.metrics
                    .manifest_write_conflicts
                    .fetch_add(1, Ordering::Relaxed);
                let before = slot.journal_seq;
                catch_up(app, bucket, slot).await?;
                if slot.journal_seq == before {
                    // Taken, yet not listed yet: wait a little, the listing will show it.
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                }
            }
            Err(S3Error::Rejected { status, code, .. })
                if condition != PutCondition::None
                    && (status == 501 || code == "NotImplemented") =>
            {
                app.manifests.note_conditional_unsupported(status, &code);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Deletes the records up to `through` (a manifest that includes them has been in
/// place for a compaction interval). Best effort, in the background: a record left
/// behind is only read again by a replica that is far behind, and is harmless.
pub(crate) fn prune_later(app: &App, bucket: BucketId, through: u64) {
    let Some(app) = app.weak().upgrade() else {
        return;
    };
    tokio::spawn(async move {
        let cfg = &app.config.buckets[bucket];
        let listed = app
            .s3
            .list_range(
                &cfg.name,
                Some(&journal::record_key(&cfg.manifest_key, 0)),
                Some(&journal::record_key(&cfg.manifest_key, through)),
                |_| {},
            )
            .await;
        let keys: Vec<String> = match listed {
            Ok(objects) => objects
                .into_iter()
                .filter(|o| journal::seq_of(&cfg.manifest_key, &o.key).is_some())
                .map(|o| o.key)
                .collect(),
            Err(e) => {
                info!(
                    "journal of bucket {}: old records not deleted ({e})",
                    cfg.name
                );
                return;
            }
        };
        for chunk in keys.chunks(FETCH_AT_ONCE) {
            let deletes = chunk
                .iter()
                .map(|key| app.s3.delete_object(&cfg.name, key))
                .collect();
            if let Some(Err(e)) = crate::join::join_all(deletes)
                .await
                .into_iter()
                .find(Result::is_err)
            {
                info!(
                    "journal of bucket {}: old records not all deleted ({e})",
                    cfg.name
                );
                return;
            }
        }
    });
}
