//! The journal beside each manifest: a change is one small record, the manifest is
//! compacted within the interval, a restart replays manifest + journal to the exact
//! registry, and a replica that slept through compactions never writes a record that
//! would be lost.

use std::time::{Duration, Instant};

use crate::support::common::{self, MANIFEST, PRIVATE, PUBLIC, S3, Service};
use parparchik::registry::journal;

const JOURNAL: &str = ".parparchik/files.json.journal/";

fn with_interval(seconds: &'static str) -> [(&'static str, &'static str); 2] {
    [
        ("PARPARCHIK_MANIFEST_COMPACT_INTERVAL", seconds),
        ("PARPARCHIK_SYNC_INTERVAL", "0"),
    ]
}

async fn settle(svc: &Service) {
    svc.settle(Duration::from_secs(10), "writes did not settle")
        .await;
}

#[tokio::test]
async fn an_update_writes_one_small_record_and_leaves_the_manifest_alone() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    let keys: Vec<String> = (0..2000).map(|i| format!("bulk/file-{i:05}.bin")).collect();
    seed.put_many(PUBLIC, keys, 16).await;
    let svc = Service::ready_with(&s3, &with_interval("60")).await;
    settle(&svc).await;
    // The first start wrote the whole manifest (there was none).
    let manifest = seed.get(PUBLIC, MANIFEST).await.expect("manifest written");
    assert!(manifest.len() > 100_000, "{} bytes", manifest.len());
    assert!(seed.list_keys(PUBLIC, JOURNAL).await.is_empty());

    seed.put(PUBLIC, "new/upload.txt", "fresh").await;
    let (status, v) = svc.get_json("/update?filename=new/upload.txt").await;
    assert_eq!(status, 200, "{v}");

    // Durable before the answer: one record, a few hundred bytes, naming the key.
    let records = seed.list_keys(PUBLIC, JOURNAL).await;
    assert_eq!(records, vec![journal::record_key(MANIFEST, 1)]);
    let body = seed.get(PUBLIC, &records[0]).await.expect("record");
    assert!(body.len() < 512, "record of {} bytes", body.len());
    let record = journal::parse(&body).expect("record parses");
    assert_eq!(record.seq, 1);
    assert_eq!(record.bucket, PUBLIC);
    assert_eq!(
        record
            .changes
            .iter()
            .map(journal::Change::key)
            .collect::<Vec<_>>(),
        vec!["new/upload.txt"]
    );
    // The manifest was not rewritten; the saved state has the file.
    assert_eq!(
        seed.get(PUBLIC, MANIFEST).await.expect("manifest"),
        manifest
    );
    assert!(
        seed.manifest_keys(PUBLIC)
            .await
            .contains(&"new/upload.txt".to_owned())
    );
    // Nothing was written to the other bucket.
    assert!(seed.list_keys(PRIVATE, JOURNAL).await.is_empty());
    svc.stop().await;
}

/// Uploads, a move, a deletion and a relocated duplicate, saved only as records; a new
/// service reads manifest + journal and holds exactly the same registry, the relocated
/// duplicate included (routes stick through restarts).
#[tokio::test]
async fn a_restart_replays_manifest_and_journal_to_the_same_registry() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    seed.put(PUBLIC, "stays.txt", "s").await;
    seed.put(PUBLIC, "moves.txt", "m").await;
    seed.put(PUBLIC, "goes.txt", "g").await;
    seed.put(PUBLIC, "both.txt", "1").await;
    seed.put(PRIVATE, "both.txt", "2").await;
    let svc = Service::ready_with(&s3, &with_interval("60")).await;
    settle(&svc).await;
    let manifests_before = (
        seed.get(PUBLIC, MANIFEST).await,
        seed.get(PRIVATE, MANIFEST).await,
    );

    seed.put(PRIVATE, "new.txt", "n").await;
    assert_eq!(svc.get_json("/update?filename=new.txt").await.0, 200);
    seed.mv(PUBLIC, PRIVATE, "moves.txt").await;
    assert_eq!(svc.get_json("/update?filename=moves.txt").await.0, 200);
    seed.delete(PUBLIC, "goes.txt").await;
    assert_eq!(svc.get_json("/update?filename=goes.txt").await.0, 404);
    let (status, v) = svc.post_json("/relocate?filename=both.txt").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["file"]["bucket"], PRIVATE, "last bucket wins");
    let before = common::registry_map(&svc);
    assert_eq!(before["both.txt"], PRIVATE);
    assert_eq!(before["moves.txt"], PRIVATE);
    assert!(!before.contains_key("goes.txt"));
    assert_eq!(
        (
            seed.get(PUBLIC, MANIFEST).await,
            seed.get(PRIVATE, MANIFEST).await
        ),
        manifests_before,
        "only records were written"
    );
    assert!(!seed.list_keys(PRIVATE, JOURNAL).await.is_empty());
    svc.stop().await;

    let again = Service::ready_with(&s3, &with_interval("60")).await;
    assert_eq!(
        common::registry_map(&again),
        before,
        "replayed to the same registry"
    );
    // And the relocated duplicate stays where it was put through a /list.
    let (status, _) = again.get_json("/list").await;
    assert_eq!(status, 200);
    assert_eq!(common::registry_map(&again)["both.txt"], PRIVATE);
    again.stop().await;
}

#[tokio::test]
async fn the_manifest_catches_up_within_the_interval_and_old_records_are_deleted() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    seed.put(PUBLIC, "a.txt", "a").await;
    let svc = Service::ready_with(&s3, &with_interval("1")).await;
    settle(&svc).await;
    let mut last_seq = 0;
    for round in 0..4 {
        let key = format!("round-{round}.txt");
        seed.put(PUBLIC, &key, "r").await;
        assert_eq!(
            svc.get_json(&format!("/update?filename={key}")).await.0,
            200
        );
        // Within about an interval the manifest alone lists it.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let m = seed.manifest_object(PUBLIC).await.expect("manifest");
            let listed = m["files"]
                .as_array()
                .expect("files")
                .iter()
                .any(|f| f["key"] == key.as_str());
            if listed {
                let seq = m["journal_seq"].as_u64().expect("journal_seq stated");
                assert!(seq > last_seq, "journal_seq grows: {seq} after {last_seq}");
                last_seq = seq;
                break;
            }
            assert!(Instant::now() < deadline, "{key} not compacted: {m}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Records a manifest has included for an interval are deleted at a later
    // compaction: never the ones the current manifest does not include.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<u64> = seed
            .list_keys(PUBLIC, JOURNAL)
            .await
            .iter()
            .filter_map(|k| journal::seq_of(MANIFEST, k))
            .collect();
        if !left.contains(&1) {
            assert!(left.iter().all(|n| *n > 1), "{left:?}");
            break;
        }
        assert!(Instant::now() < deadline, "old records kept: {left:?}");
        // Compactions happen with changes; make one.
        seed.put(PUBLIC, "nudge.txt", format!("{:?}", Instant::now()))
            .await;
        svc.get_json("/update?filename=nudge.txt").await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let saved = seed.manifest_keys(PUBLIC).await;
    for key in ["a.txt", "round-0.txt", "round-3.txt"] {
        assert!(saved.contains(&key.to_owned()), "{key} in {saved:?}");
    }
    svc.stop().await;
}

/// Replica B sleeps while A writes records and compacts several times (deleting the
/// records B never read); B's next change must neither reuse a deleted record number
/// (it would be ignored by everyone) nor lose A's changes.
#[tokio::test]
async fn a_replica_that_slept_through_compactions_catches_up_before_writing() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    seed.put(PUBLIC, "base.txt", "b").await;
    let env = with_interval("1");
    let a = Service::ready_with(&s3, &env).await;
    let b = Service::ready_with(&s3, &env).await;
    settle(&a).await;
    settle(&b).await;
    for i in 0..6 {
        let key = format!("from-a-{i}.txt");
        seed.put(PUBLIC, &key, "a").await;
        assert_eq!(a.get_json(&format!("/update?filename={key}")).await.0, 200);
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seqs: Vec<u64> = seed
        .list_keys(PUBLIC, JOURNAL)
        .await
        .iter()
        .filter_map(|k| journal::seq_of(MANIFEST, k))
        .collect();
    assert!(!seqs.contains(&1), "A deleted old records: {seqs:?}");

    seed.put(PUBLIC, "from-b.txt", "b").await;
    let (status, v) = b.get_json("/update?filename=from-b.txt").await;
    assert_eq!(status, 200, "{v}");
    // B learned A's changes on the way.
    for i in 0..6 {
        assert!(
            b.app.registry.get(&format!("from-a-{i}.txt")).is_some(),
            "B caught up with from-a-{i}.txt"
        );
    }
    a.stop().await;
    b.stop().await;
    // What was saved holds everything, and a new replica replays it.
    let c = Service::ready_with(&s3, &[("PARPARCHIK_SYNC_INTERVAL", "0")]).await;
    let saved = seed.manifest_keys(PUBLIC).await;
    for key in ["base.txt", "from-a-0.txt", "from-a-5.txt", "from-b.txt"] {
        assert!(saved.contains(&key.to_owned()), "{key} saved: {saved:?}");
    }
    let replayed = common::registry_map(&c);
    for key in ["base.txt", "from-a-0.txt", "from-a-5.txt", "from-b.txt"] {
        assert_eq!(replayed.get(key).map(String::as_str), Some(PUBLIC), "{key}");
    }
    c.stop().await;
}
