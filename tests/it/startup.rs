//! The contract's start-up sequence ("Start-up, before ready"), end to end against the
//! in-process S3 server: read the manifests, rebuild from listings when needed, reconcile
//! with what the buckets hold, write only the manifests that changed, then be ready.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::common::{
    self, MANIFEST, PRIVATE, PUBLIC, S3, Seeder, Service, assert_rfc3339_utc,
};
use parparchik::config::BucketId;
use parparchik::metrics::Metrics;
use parparchik::s3::client::ClientSettings;
use parparchik::s3::{Endpoint, S3Client};
use parparchik::sigv4::Credentials;
use serde_json::{Value, json};
use testkit::metric;

/// What a bucket holds: key → (size, last_modified as RFC 3339 UTC).
type Holdings = BTreeMap<String, (u64, String)>;

fn s3_client(s3: &S3) -> S3Client {
    S3Client::new(
        Endpoint::parse(&s3.endpoint()).expect("endpoint"),
        "us-east-1",
        Credentials::new(common::ACCESS_KEY, common::SECRET_KEY, None),
        ClientSettings::default(),
        Arc::new(Metrics::default()),
    )
    .expect("client")
}

/// The files `bucket` really holds (its manifest object is not a file).
async fn holdings(s3: &S3, bucket: &str) -> Holdings {
    s3_client(s3)
        .list_objects(bucket, |_| {})
        .await
        .expect("listing")
        .into_iter()
        .filter(|o| o.key != MANIFEST)
        .map(|o| (o.key, (o.size, o.last_modified)))
        .collect()
}

/// What the registry holds in bucket `index`.
fn registered(svc: &Service, index: usize) -> Holdings {
    svc.app
        .registry
        .entries_in(BucketId::new(index))
        .iter()
        .map(|e| (e.key.clone(), (e.size, e.last_modified())))
        .collect()
}

/// The manifest the contract prescribes for `files` in `bucket`.
fn expected_manifest(bucket: &str, public: bool, files: &Holdings) -> Value {
    let files: Vec<Value> = files
        .iter()
        .map(|(key, (size, lm))| {
            json!({"key": key, "bucket": bucket, "bucket_type": if public { "public" } else { "private" },
                "route": format!("/{bucket}/{key}"), "size": size, "last_modified": lm})
        })
        .collect();
    json!({"version": 1, "bucket": bucket, "files": files})
}

/// Asserts that the manifest of `bucket` lists exactly what the bucket holds.
async fn assert_manifest_matches_bucket(s3: &S3, bucket: &str, public: bool) {
    let held = holdings(s3, bucket).await;
    assert_manifest_is(&s3.client(), bucket, public, &held).await;
}

async fn assert_manifest_is(seed: &Seeder, bucket: &str, public: bool, files: &Holdings) {
    let m = seed
        .manifest(bucket)
        .await
        .unwrap_or_else(|| panic!("{bucket} has a manifest"));
    assert_eq!(
        m,
        expected_manifest(bucket, public, files),
        "manifest of {bucket}"
    );
    for e in m["files"].as_array().expect("files") {
        assert_rfc3339_utc(
            e["last_modified"]
                .as_str()
                .expect("last_modified is a string"),
        );
    }
}

/// Waits (bounded) until start-up has reported a storage error, and returns it.
async fn first_storage_error(svc: &Service, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(e) = svc.app.health().last_error {
            return e;
        }
        assert!(!svc.app.is_ready(), "ready although S3 could not be used");
        assert!(
            Instant::now() < deadline,
            "no storage error reported within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a service to readiness once and stops it: the manifests are then written in the
/// service's own format and agree with the buckets.
async fn write_manifests_with_a_first_run(s3: &S3) {
    let svc = Service::ready(s3).await;
    svc.stop().await;
    assert!(s3.client().manifest(PUBLIC).await.is_some());
    assert!(s3.client().manifest(PRIVATE).await.is_some());
}

#[tokio::test]
async fn without_manifests_the_registry_is_rebuilt_from_listings() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    seed.put(PUBLIC, "a.txt", "a").await;
    seed.put(PUBLIC, "dir/b c+d.txt", "bcd").await;
    seed.put(PRIVATE, "secret.pdf", "pdf!").await;
    seed.put(PRIVATE, "x/y/z.bin", vec![0u8; 300]).await;
    assert!(seed.manifest(PUBLIC).await.is_none() && seed.manifest(PRIVATE).await.is_none());

    let svc = Service::ready(&s3).await;
    let (public, private) = (holdings(&s3, PUBLIC).await, holdings(&s3, PRIVATE).await);
    assert_eq!(
        public.keys().collect::<Vec<_>>(),
        ["a.txt", "dir/b c+d.txt"]
    );
    assert_eq!(
        private.keys().collect::<Vec<_>>(),
        ["secret.pdf", "x/y/z.bin"]
    );
    assert_eq!(registered(&svc, 0), public);
    assert_eq!(registered(&svc, 1), private);
    assert_eq!(svc.app.registry.len(), 4);
    assert_eq!(svc.app.registry.duplicate_count(), 0);

    assert_manifest_is(&seed, PUBLIC, true, &public).await;
    assert_manifest_is(&seed, PRIVATE, false, &private).await;

    let (s, v) = svc.get_json("/readiness").await;
    assert_eq!(
        (s, v),
        (
            200,
            json!({"status": "ready", "ready": true, "file_count": 4})
        )
    );
    svc.stop().await;
}

#[tokio::test]
async fn correct_manifests_are_not_rewritten() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    seed.put(PUBLIC, "p1.txt", "1").await;
    seed.put(PUBLIC, "p2.txt", "22").await;
    seed.put(PRIVATE, "q.txt", "333").await;
    write_manifests_with_a_first_run(&s3).await;
    let before = (
        seed.get(PUBLIC, MANIFEST).await,
        seed.get(PRIVATE, MANIFEST).await,
    );

    s3.stats().reset();
    let svc = Service::ready(&s3).await;
    assert_eq!(
        s3.stats().count("PutObject"),
        0,
        "{:?}",
        s3.stats().snapshot()
    );
    assert!(
        s3.stats().count("GetObject") >= 2,
        "manifests were read: {:?}",
        s3.stats().snapshot()
    );
    let after = (
        seed.get(PUBLIC, MANIFEST).await,
        seed.get(PRIVATE, MANIFEST).await,
    );
    assert_eq!(after, before);
    assert_eq!(registered(&svc, 0), holdings(&s3, PUBLIC).await);
    assert_eq!(registered(&svc, 1), holdings(&s3, PRIVATE).await);

    // The ETag read at start-up is the one the next conditional write must match.
    seed.put(PRIVATE, "later.txt", "later").await;
    s3.stats().reset();
    let (s, v) = svc.get_json("/update?filename=later.txt").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        s3.stats().count("PutObject"),
        1,
        "{:?}",
        s3.stats().snapshot()
    );
    let m = svc.metrics().await;
    assert_eq!(
        metric(&m, "parparchik_manifest_write_conflicts_total"),
        Some(0.0)
    );
    assert_eq!(seed.manifest_keys(PRIVATE).await, ["later.txt", "q.txt"]);
    assert_eq!(seed.get(PUBLIC, MANIFEST).await, before.0);
    svc.stop().await;
}

#[tokio::test]
async fn empty_buckets_get_empty_manifests_once() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    let svc = Service::ready(&s3).await;
    assert_eq!(svc.get_json("/status").await.1["file_count"], 0);
    for (bucket, public) in [(PUBLIC, true), (PRIVATE, false)] {
        assert_manifest_is(&seed, bucket, public, &Holdings::new()).await;
    }
    svc.stop().await;

    s3.stats().reset();
    let svc = Service::ready(&s3).await;
    assert_eq!(
        s3.stats().count("PutObject"),
        0,
        "{:?}",
        s3.stats().snapshot()
    );
    assert!(svc.app.registry.is_empty());
    svc.stop().await;
}

#[tokio::test]
async fn stale_manifests_are_corrected_and_rewritten() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    seed.put(PUBLIC, "keep.txt", "keep").await;
    seed.put(PUBLIC, "gone.txt", "gone").await;
    seed.put(PUBLIC, "moved.txt", "moved").await;
    seed.put(PRIVATE, "p.txt", "p").await;
    write_manifests_with_a_first_run(&s3).await;
    assert_eq!(
        seed.manifest_keys(PUBLIC).await,
        ["gone.txt", "keep.txt", "moved.txt"]
    );

    // Behind the service's back: a deletion, an addition, a move.
    seed.delete(PUBLIC, "gone.txt").await;
    seed.put(PRIVATE, "added.txt", "added").await;
    seed.mv(PUBLIC, PRIVATE, "moved.txt").await;
    // The public manifest now lists a deleted file and names the wrong bucket for the
    // moved one; the private one misses two files.
    assert_eq!(seed.manifest_keys(PRIVATE).await, ["p.txt"]);

    let svc = Service::ready(&s3).await;
    let reg = &svc.app.registry;
    assert!(
        reg.get("gone.txt").is_none(),
        "a file in no bucket is removed"
    );
    assert_eq!(
        reg.get("added.txt").expect("added file registered").bucket,
        BucketId::new(1)
    );
    assert_eq!(
        reg.get("moved.txt").expect("moved file registered").bucket,
        BucketId::new(1)
    );
    assert_eq!(reg.get("keep.txt").expect("kept").bucket.index(), 0);
    assert_eq!(reg.len(), 4);
    assert_eq!(registered(&svc, 0), holdings(&s3, PUBLIC).await);
    assert_eq!(registered(&svc, 1), holdings(&s3, PRIVATE).await);

    assert_manifest_matches_bucket(&s3, PUBLIC, true).await;
    assert_manifest_matches_bucket(&s3, PRIVATE, false).await;
    assert_eq!(seed.manifest_keys(PUBLIC).await, ["keep.txt"]);
    assert_eq!(
        seed.manifest_keys(PRIVATE).await,
        ["added.txt", "moved.txt", "p.txt"]
    );

    // The routes agree: the moved file is found on its new route only.
    assert_eq!(svc.get(&format!("/{PUBLIC}/moved.txt")).await.status(), 404);
    assert_eq!(
        svc.get(&format!("/{PRIVATE}/moved.txt")).await.status(),
        302
    );
    svc.stop().await;
}

#[tokio::test]
async fn an_invalid_manifest_is_ignored_and_rewritten() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    seed.put(PUBLIC, "one.txt", "1").await;
    seed.put(PUBLIC, "two.txt", "2").await;
    seed.put(PRIVATE, "three.txt", "3").await;
    write_manifests_with_a_first_run(&s3).await;
    seed.put(PUBLIC, MANIFEST, "{not json").await;
    let private_before = seed.get(PRIVATE, MANIFEST).await;

    s3.stats().reset();
    let svc = Service::ready(&s3).await;
    assert_eq!(svc.get("/readiness").await.status(), 200);
    assert_eq!(registered(&svc, 0), holdings(&s3, PUBLIC).await);
    assert_eq!(svc.app.registry.len(), 3);
    // Only the broken manifest is written, and it is valid again.
    assert_eq!(
        s3.stats().count("PutObject"),
        1,
        "{:?}",
        s3.stats().snapshot()
    );
    assert_manifest_matches_bucket(&s3, PUBLIC, true).await;
    assert_eq!(seed.get(PRIVATE, MANIFEST).await, private_before);
    svc.stop().await;
}

#[tokio::test]
async fn a_key_in_both_buckets_is_registered_in_the_first() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    seed.put(PUBLIC, "both.txt", "public copy").await;
    seed.put(PRIVATE, "both.txt", "the private copy, longer")
        .await;
    seed.put(PUBLIC, "only-public.txt", "x").await;
    seed.put(PRIVATE, "only-private.txt", "y").await;

    let svc = Service::ready(&s3).await;
    let both = svc.app.registry.get("both.txt").expect("registered");
    assert_eq!(both.bucket.index(), 0, "first (priority) bucket wins");
    assert_eq!(
        both.size,
        "public copy".len() as u64,
        "with the first bucket's metadata"
    );
    assert_eq!(svc.app.registry.duplicate_count(), 1);

    let m = svc.metrics().await;
    assert_eq!(metric(&m, "parparchik_duplicate_files"), Some(1.0));
    assert_eq!(
        metric(
            &m,
            &format!("parparchik_volume_files{{volume=\"{PUBLIC}\"}}")
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &m,
            &format!("parparchik_volume_files{{volume=\"{PRIVATE}\"}}")
        ),
        Some(1.0)
    );
    let (s, v) = svc.get_json("/status").await;
    assert_eq!(s, 200);
    assert_eq!(v["file_count"], 3, "counted once: {v}");
    assert_eq!(svc.get_json("/readiness").await.1["file_count"], 3);

    assert_eq!(
        seed.manifest_keys(PUBLIC).await,
        ["both.txt", "only-public.txt"]
    );
    assert_eq!(seed.manifest_keys(PRIVATE).await, ["only-private.txt"]);
    assert_eq!(svc.get(&format!("/{PUBLIC}/both.txt")).await.status(), 302);
    assert_eq!(svc.get(&format!("/{PRIVATE}/both.txt")).await.status(), 404);
    svc.stop().await;
}

#[tokio::test]
async fn listings_of_more_than_a_thousand_objects_are_followed() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    let public: Vec<String> = (0..1100)
        .map(|i| format!("bulk/{:02}/f-{i:04}.dat", i % 13))
        .collect();
    let private: Vec<String> = (0..20).map(|i| format!("private-{i:02}.dat")).collect();
    seed.put_many(PUBLIC, public.clone(), 32).await;
    seed.put_many(PRIVATE, private.clone(), 8).await;

    s3.stats().reset();
    let svc = Service::ready(&s3).await;
    assert!(
        s3.stats().count("ListObjectsV2") >= 3,
        "{:?}",
        s3.stats().snapshot()
    );
    assert_eq!(svc.app.registry.len(), 1120);
    assert_eq!(svc.app.registry.entries_in(BucketId::new(0)).len(), 1100);
    assert_eq!(svc.app.registry.entries_in(BucketId::new(1)).len(), 20);
    for k in &public {
        let e = svc
            .app
            .registry
            .get(k)
            .unwrap_or_else(|| panic!("{k} registered"));
        assert_eq!((e.bucket.index(), e.size), (0, k.len() as u64), "{k}");
    }

    let mut sorted = public.clone();
    sorted.sort();
    assert_eq!(seed.manifest_keys(PUBLIC).await, sorted);
    let mut sorted = private.clone();
    sorted.sort();
    assert_eq!(seed.manifest_keys(PRIVATE).await, sorted);
    svc.stop().await;
}

/// The IMF-fixdate of HTTP (`Tue, 05 May 2026 10:00:00 GMT`) for an RFC 3339 UTC time.
fn http_date(rfc3339: &str) -> String {
    let t = parparchik::timefmt::parse(rfc3339).expect("RFC 3339");
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&f).expect("formats")
}

#[tokio::test]
async fn manifests_in_old_forms_are_accepted() {
    const THIRD: &str = "lua-empty-bucket";
    let s3 = S3::start(&[PUBLIC, PRIVATE, THIRD], &[PUBLIC]).await;
    let seed = s3.client();
    seed.put(PUBLIC, "lua.txt", "written by the Lua edition")
        .await;
    seed.put(PRIVATE, "old.txt", "old").await;
    let meta = s3_client(&s3)
        .head_object(PUBLIC, "lua.txt")
        .await
        .expect("HEAD");
    let size = meta.size;

    // Public: the Lua edition's form (no version, HEAD's headers stored as they came),
    // saying exactly what the bucket holds.
    let lua = json!({"bucket": PUBLIC, "files": [{"key": "lua.txt", "bucket": PUBLIC,
        "bucket_type": "public", "route": format!("/{PUBLIC}/lua.txt"),
        "size": size.to_string(), "last_modified": http_date(&meta.last_modified)}]});
    seed.put(PUBLIC, MANIFEST, lua.to_string()).await;
    // Private: Lua form with a date that is not the object's (stale).
    let stale = json!({"bucket": PRIVATE, "files": [{"key": "old.txt", "bucket": PRIVATE,
        "bucket_type": "private", "route": format!("/{PRIVATE}/old.txt"), "size": "3",
        "last_modified": "Tue, 05 May 2026 10:00:00 GMT"}]});
    seed.put(PRIVATE, MANIFEST, stale.to_string()).await;
    // Third: the Lua edition's empty list, for a bucket that is empty.
    seed.put(THIRD, MANIFEST, r#"{"files":{}}"#).await;
    let public_before = seed.get(PUBLIC, MANIFEST).await;
    let third_before = seed.get(THIRD, MANIFEST).await;

    s3.stats().reset();
    let buckets = format!("{PUBLIC}::public, {PRIVATE}::private, {THIRD}::private");
    let svc = Service::ready_with(&s3, &[("PARPARCHIK_BUCKETS", &buckets)]).await;
    assert_eq!(svc.app.registry.len(), 2);

    // Entries are normalised, whatever form the manifest had.
    let e = svc.app.registry.get("lua.txt").expect("registered");
    assert_eq!(
        (e.bucket.index(), e.size, e.last_modified().as_str()),
        (0, size, meta.last_modified.as_str())
    );
    assert_rfc3339_utc(&e.last_modified());
    let old = svc.app.registry.get("old.txt").expect("registered");
    assert_eq!(old.bucket.index(), 1);
    assert_rfc3339_utc(&old.last_modified());
    assert_ne!(
        old.last_modified(),
        "2026-05-05T10:00:00Z",
        "S3's time, not the stale manifest's"
    );

    // Parsed, not rejected: the manifests that agree with their bucket are not rewritten
    // (a rejected one would have been rebuilt and written); the stale one is, in the
    // current form.
    assert_eq!(
        s3.stats().count("PutObject"),
        1,
        "{:?}",
        s3.stats().snapshot()
    );
    assert_eq!(seed.get(PUBLIC, MANIFEST).await, public_before);
    assert_eq!(seed.get(THIRD, MANIFEST).await, third_before);
    assert_manifest_matches_bucket(&s3, PRIVATE, false).await;

    // The Lua edition's metrics broke on its own dates; these count the fresh upload.
    let m = svc.metrics().await;
    assert_eq!(metric(&m, "parparchik_uploads_per_week"), Some(2.0));
    let (s, v) = svc.get_json("/list").await;
    assert_eq!(s, 200);
    for f in v["files"].as_array().expect("files") {
        assert_rfc3339_utc(f["last_modified"].as_str().expect("string"));
    }
    svc.stop().await;
}

#[tokio::test]
async fn unreachable_s3_then_appearing_makes_the_service_ready() {
    // Data is there before the service can reach it.
    let mut s3 = S3::two_buckets().await;
    let seed = s3.client();
    seed.put(PUBLIC, "early.txt", "early").await;
    seed.put(PRIVATE, "hidden/early.bin", "hidden").await;
    seed.put(PRIVATE, "early.txt", "a duplicate").await;
    s3.stop().await;

    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = free.local_addr().expect("addr");
    drop(free);
    let svc = Service::start(common::two_bucket_env(&format!("http://{addr}"))).await;
    let err = first_storage_error(&svc, Duration::from_secs(10)).await;
    assert!(err.contains("unavailable"), "{err}");
    let (s, v) = svc.get_json("/readiness").await;
    assert_eq!(
        (s, v),
        (
            503,
            json!({"status": "not_ready", "ready": false, "file_count": 0})
        )
    );
    let (s, v) = svc.get_json("/healthcheck").await;
    assert_eq!((s, v), (200, json!({"status": "ok", "ready": false})));

    // S3 appears on that port with the data: ready without a restart.
    s3.addr = addr;
    s3.restart().await;
    svc.wait_ready(Duration::from_secs(15)).await;
    let (s, v) = svc.get_json("/readiness").await;
    assert_eq!(
        (s, v),
        (
            200,
            json!({"status": "ready", "ready": true, "file_count": 2})
        )
    );
    assert_eq!(
        svc.app.health().last_error,
        None,
        "the error is cleared once ready"
    );
    assert_eq!(
        svc.app
            .registry
            .get("early.txt")
            .expect("registered")
            .bucket
            .index(),
        0
    );
    assert_eq!(
        svc.app
            .registry
            .get("hidden/early.bin")
            .expect("registered")
            .bucket
            .index(),
        1
    );
    assert_eq!(svc.app.registry.duplicate_count(), 1);
    assert_eq!(registered(&svc, 0), holdings(&s3, PUBLIC).await);
    let seed = s3.client(); // the server's address changed
    assert_eq!(seed.manifest_keys(PUBLIC).await, ["early.txt"]);
    assert_eq!(seed.manifest_keys(PRIVATE).await, ["hidden/early.bin"]);
    svc.stop().await;
}

#[tokio::test]
async fn wrong_credentials_never_ready_and_the_secret_never_shown() {
    let s3 = S3::two_buckets().await;
    s3.client().put(PUBLIC, "f.txt", "f").await;
    let wrong = "wrong-secret-7f3a9c-do-not-print";
    let mut env = common::two_bucket_env(&s3.endpoint());
    env.push(("AWS_SECRET_ACCESS_KEY".into(), wrong.into()));
    let svc = Service::start(env).await;

    let started = Instant::now();
    let err = first_storage_error(&svc, Duration::from_secs(2)).await;
    assert!(err.contains("access denied"), "{err}");
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
    // It keeps trying, and stays not ready, for the rest of the ~2 s window.
    while started.elapsed() < Duration::from_secs(2) {
        assert!(!svc.app.is_ready(), "ready with a wrong secret");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(svc.app.registry.len(), 0);

    let r = svc.get("/status").await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("body");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["ready"], false);
    let reported = v["storage_error"].as_str().expect("storage_error reported");
    assert!(
        reported.contains("access denied") && reported.contains("SignatureDoesNotMatch"),
        "{reported}"
    );
    assert!(
        reported.contains("AWS_SECRET_ACCESS_KEY"),
        "says what to check: {reported}"
    );
    for secret in [wrong, common::SECRET_KEY] {
        assert!(!text.contains(secret), "/status shows a secret: {text}");
        assert!(!svc.metrics().await.contains(secret));
    }
    assert_eq!(svc.get("/readiness").await.status(), 503);
    assert_eq!(svc.get("/healthcheck").await.status(), 200);
    // Nothing was written with the refused credentials.
    assert_eq!(s3.stats().count("PutObject"), 1, "only the seeding PUT");
    svc.stop().await;
}

/// A listing split into ranges at keys the registry knows merges exactly at the seams:
/// a split point that was deleted, keys just around split points, keys that sort oddly,
/// a range left empty and a range of one page. Everything S3 holds is registered once;
/// nothing else is.
#[tokio::test]
async fn a_listing_in_ranges_merges_exactly_at_the_seams() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    // Keys that sort oddly against each other: a space, `+`, `%`, upper case, non-ASCII.
    let shapes = ["a b/", "a+b/", "a%2Fb/", "A/", "é/", "z~/"];
    let keys: Vec<String> = (0..6300)
        .map(|i| format!("{}{i:05}", shapes[i % shapes.len()]))
        .collect();
    seed.put_many(PUBLIC, keys.clone(), 32).await;
    let svc = Service::ready_with(
        &s3,
        &[
            ("PARPARCHIK_LIST_CONCURRENCY", "3"),
            ("PARPARCHIK_MAX_REMOVAL_SHARE", "1"),
        ],
    )
    .await;
    assert_eq!(svc.app.registry.len(), keys.len());

    // The split points the next sync will use (the same sample of the same registry).
    let splits = svc.app.registry.keys_in(BucketId::new(0), |known| {
        parparchik::coordinator::listing::split_points(known.iter().copied(), 3)
    });
    assert_eq!(splits.len(), 2, "{splits:?}");
    let mut sorted = keys.clone();
    sorted.sort();
    let at = |split: &str| {
        sorted
            .binary_search_by(|k| k.as_str().cmp(split))
            .expect("a key")
    };
    let (first, second) = (at(&splits[0]), at(&splits[1]));
    // The first split point itself is gone; keys appear right after both split points.
    seed.delete(PUBLIC, &splits[0]).await;
    let added = [
        format!("{} ", splits[0]),
        format!("{}~", splits[0]),
        format!("{}\u{e9}", splits[1]),
        format!("{} ", splits[1]),
    ];
    for k in &added {
        seed.put(PUBLIC, k, "seam").await;
    }
    // The middle range (first split, second split) is emptied but for what was just
    // added around the first split point; the first range keeps one page's worth.
    for k in &sorted[first + 1..second] {
        seed.delete(PUBLIC, k).await;
    }
    for k in &sorted[600..first] {
        seed.delete(PUBLIC, k).await;
    }

    let counts = parparchik::coordinator::sync::resync(&svc.app)
        .await
        .expect("sync");
    let truth: Vec<String> = holdings(&s3, PUBLIC).await.into_keys().collect();
    let registered = common::registered_keys(&svc, 0);
    assert_eq!(
        counts.listed,
        truth.len(),
        "each object listed exactly once"
    );
    assert_eq!(registered, truth);
    for k in &added {
        assert!(registered.contains(k), "{k:?} at a seam");
    }
    assert!(!registered.contains(&splits[0]), "the deleted split point");
    assert!(
        registered.contains(&splits[1]),
        "a key equal to a split point, once"
    );
    svc.stop().await;
}
