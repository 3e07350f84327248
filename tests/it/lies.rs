//! S3 answers that lie or prove nothing, and what the service must not do about them:
//! forget files on a bare 404, trust a page that is not S3, treat one key's error as an
//! outage, serve its own manifest as a file, lose a manifest write when the client hangs
//! up, wait on a hanging S3 for a known route, or ask S3 again and again about keys that
//! do not exist. Also: routes that stick (a relocation lasts through `/list`, syncs and
//! restarts) and the guard against one listing removing most of a bucket.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::common::{self, MANIFEST, PRIVATE, PUBLIC, S3, Service};
use crate::support::fault::{Fault, Proxy, Rule};
use testkit::metric;

const BULK: usize = 20_000;

struct Rig {
    s3: S3,
    proxy: Proxy,
    svc: Service,
}

/// Writes objects straight into local-s3's data directory (a file per key): seeding
/// 20 000 objects over HTTP would take most of the test's time.
fn write_on_disk(s3: &S3, bucket: &str, keys: impl Iterator<Item = String>) {
    for key in keys {
        let path = s3.dir.path().join(bucket).join(&key);
        std::fs::create_dir_all(path.parent().expect("key has a parent")).expect("mkdir");
        std::fs::write(&path, key.as_bytes()).expect("write object");
    }
}

fn bulk_key(i: usize) -> String {
    format!("bulk/{:03}/f{i:06}.txt", i % 100)
}

/// The proxy in front of `s3` (with `preset` in force from the first request) and the
/// service behind it, started, not waited for.
async fn behind_proxy(s3: &S3, preset: Option<Rule>, extra: &[(&str, &str)]) -> (Proxy, Service) {
    let proxy = Proxy::start(s3.addr).await;
    if let Some(rule) = preset {
        proxy.set(rule);
    }
    let mut env = common::two_bucket_env(&proxy.endpoint());
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    (proxy, Service::start(env).await)
}

async fn rig_with(s3: S3, extra: &[(&str, &str)]) -> Rig {
    let (proxy, svc) = behind_proxy(&s3, None, extra).await;
    // Up to 20 000 objects on a file-backed S3 that rescans per page: a busy machine
    // may need minutes; the wait is a guard against a hang, not a speed target.
    svc.wait_ready(Duration::from_secs(180)).await;
    Rig { s3, proxy, svc }
}

async fn small_s3() -> S3 {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    seed.put(PUBLIC, "hello.txt", "hello").await;
    seed.put(PRIVATE, "secret.bin", "s").await;
    s3
}

fn registered(svc: &Service) -> BTreeMap<String, usize> {
    svc.app
        .registry
        .all()
        .iter()
        .map(|e| (e.key.clone(), e.bucket.index()))
        .collect()
}

async fn raw_manifests(s3: &S3) -> [Option<Vec<u8>>; 2] {
    let seed = s3.client();
    [
        seed.get(PUBLIC, MANIFEST).await,
        seed.get(PRIVATE, MANIFEST).await,
    ]
}

async fn metric_value(svc: &Service, series: &str) -> f64 {
    metric(&svc.metrics().await, series).unwrap_or(0.0)
}

#[tokio::test]
async fn a_bare_404_for_everything_forgets_nothing() {
    let s3 = small_s3().await;
    write_on_disk(&s3, PUBLIC, (0..BULK).map(bulk_key));
    // local-s3 rescans its directory for every listing page: give pages time.
    let Rig { s3, proxy, svc } = rig_with(
        s3,
        &[
            ("PARPARCHIK_S3_ATTEMPTS", "2"),
            ("PARPARCHIK_S3_TIMEOUT", "30"),
        ],
    )
    .await;
    let before = registered(&svc);
    assert_eq!(before.len(), BULK + 2);
    // Wait for the writers to finish the start-up manifests, then take the reference copy.
    let deadline = Instant::now() + Duration::from_secs(30);
    while s3.client().manifest_keys(PUBLIC).await.len() != BULK + 1 {
        assert!(Instant::now() < deadline, "start-up manifests written");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let manifests_before = raw_manifests(&s3).await;

    // An ingress default backend answers everything now.
    proxy.set(Fault::Bare404);
    for key in ["hello.txt", &bulk_key(7), &bulk_key(19_999)] {
        let mark = proxy.mark();
        let r = svc.get(&format!("/{PUBLIC}/{key}")).await;
        assert_eq!(r.status(), 302, "{key} still redirects from the registry");
        let calls = proxy.requests_since(mark);
        assert!(
            calls.len() <= 4,
            "one download asks S3 a few things, not the whole registry: {calls:?}"
        );
    }
    let r = svc.get(&format!("/{PRIVATE}/secret.bin")).await;
    assert_eq!(r.status(), 302);
    // The API cannot tell, so it says so.
    let (s, _) = svc.get_json("/update?filename=hello.txt").await;
    assert_eq!(s, 503);
    let (s, _) = svc.get_json("/update?filename=never-seen.txt").await;
    assert_eq!(s, 503);
    let (s, v) = svc.post_json("/relocate?filename=hello.txt").await;
    assert_eq!(s, 503, "{v}");
    let (s, _) = svc.get_json("/list").await;
    assert_eq!(s, 503);
    let r = svc.get(&format!("/{PUBLIC}/never-seen.txt")).await;
    assert_eq!(r.status(), 503, "an unknown key cannot be vouched for");

    assert_eq!(registered(&svc), before, "nothing forgotten, nothing moved");
    let (s, status) = svc.get_json("/status").await;
    assert_eq!(s, 200);
    assert_eq!(status["file_count"], BULK + 2);
    let error = status["storage_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("404"),
        "/status says what happened: {status}"
    );

    proxy.set(Fault::Pass);
    assert_eq!(
        raw_manifests(&s3).await,
        manifests_before,
        "manifests untouched"
    );
    let (s, v) = svc.get_json("/update?filename=hello.txt").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = svc.get_json("/list").await;
    assert_eq!(s, 200);
    assert_eq!(v["count"], BULK + 2);
    let (_, status) = svc.get_json("/status").await;
    assert!(status["storage_error"].is_null(), "{status}");
    svc.stop().await;
}

#[tokio::test]
async fn a_page_that_is_not_s3_changes_nothing() {
    let Rig {
        s3: _s3,
        proxy,
        svc,
    } = rig_with(small_s3().await, &[]).await;
    let before = registered(&svc);
    proxy.set(Fault::Html);
    let (s, _) = svc.get_json("/list").await;
    assert_eq!(s, 503, "an HTML page is not an empty listing");
    let r = svc.get(&format!("/{PUBLIC}/hello.txt")).await;
    assert_eq!(r.status(), 302);
    assert_eq!(registered(&svc), before);
    svc.stop().await;
}

#[tokio::test]
async fn one_keys_500_is_that_keys_answer_not_an_outage() {
    let Rig {
        s3: _s3,
        proxy,
        svc,
    } = rig_with(small_s3().await, &[]).await;
    proxy.set(Fault::InternalError.on_target("/weird"));
    let mark = proxy.mark();
    let (s, v) = svc.get_json(&format!("/{PUBLIC}/weird")).await;
    assert_eq!(s, 404, "{v}");
    let heads = proxy
        .requests_since(mark)
        .iter()
        .filter(|r| r.starts_with("HEAD "))
        .count();
    assert_eq!(heads, 1, "not retried as an outage");
    let (s, v) = svc.get_json("/update?filename=weird").await;
    assert_eq!(s, 404, "{v}");
    // Other keys are not affected.
    let r = svc.get(&format!("/{PUBLIC}/hello.txt")).await;
    assert_eq!(r.status(), 302);
    svc.stop().await;
}

#[tokio::test]
async fn the_manifest_is_never_a_file() {
    let Rig {
        s3: _s3,
        proxy,
        svc,
    } = rig_with(small_s3().await, &[]).await;
    let mark = proxy.mark();
    for bucket in [PUBLIC, PRIVATE] {
        let (s, v) = svc.get_json(&format!("/{bucket}/{MANIFEST}")).await;
        assert_eq!(s, 404, "{v}");
    }
    assert!(
        proxy.requests_since(mark).is_empty(),
        "answered without asking S3"
    );
    let (s, _) = svc.get_json(&format!("/update?filename={MANIFEST}")).await;
    assert_eq!(s, 404);
    let (s, _) = svc
        .post_json(&format!("/relocate?filename={MANIFEST}"))
        .await;
    assert_eq!(s, 404);
    let (_, list) = svc.get_json("/list").await;
    let keys: Vec<&str> = list["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["key"].as_str())
        .collect();
    assert!(!keys.contains(&MANIFEST), "{keys:?}");
    assert!(svc.app.registry.get(MANIFEST).is_none());
    svc.stop().await;
}

#[tokio::test]
async fn a_client_that_hangs_up_does_not_lose_the_manifest_write() {
    hang_up_during_the_write(&[]).await;
}

/// The same when the write is a journal record.
#[tokio::test]
async fn a_client_that_hangs_up_does_not_lose_the_journal_record() {
    hang_up_during_the_write(&[("PARPARCHIK_MANIFEST_COMPACT_INTERVAL", "60")]).await;
}

async fn hang_up_during_the_write(env: &[(&str, &str)]) {
    let Rig { s3, proxy, svc } = rig_with(small_s3().await, env).await;
    let seed = s3.client();
    seed.put(PUBLIC, "late.txt", "late").await;
    // The manifest PUT is held long enough for the client to give up first.
    proxy.set(Fault::Stall(Duration::from_millis(800)).only("PUT"));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let r = impatient
        .get(svc.url("/update?filename=late.txt"))
        .send()
        .await;
    assert!(r.is_err(), "the client gave up before the answer");
    assert!(svc.app.registry.get("late.txt").is_some());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seed
        .manifest_keys(PUBLIC)
        .await
        .contains(&"late.txt".to_owned())
    {
        assert!(
            Instant::now() < deadline,
            "the manifest write was lost with the client"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The request is still logged and counted, as "client closed request".
    let closed = metric_value(
        &svc,
        "parparchik_http_requests_total{endpoint=\"update\",status=\"499\"}",
    )
    .await;
    assert_eq!(closed, 1.0);
    svc.stop().await;
}

#[tokio::test]
async fn a_hanging_s3_does_not_hold_a_known_route() {
    let Rig {
        s3: _s3,
        proxy,
        svc,
    } = rig_with(
        small_s3().await,
        &[
            ("PARPARCHIK_VERIFY_DEADLINE", "0.5"),
            ("PARPARCHIK_S3_TIMEOUT", "5"),
        ],
    )
    .await;
    proxy.set(Fault::Stall(Duration::from_secs(30)));
    let started = Instant::now();
    let r = svc.get(&format!("/{PUBLIC}/hello.txt")).await;
    assert_eq!(r.status(), 302);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered at the deadline from the registry, took {:?}",
        started.elapsed()
    );
    proxy.set(Fault::Pass);
    svc.stop().await;
}

#[tokio::test]
async fn s3_calls_in_flight_are_capped_and_the_excess_is_shed() {
    let Rig {
        s3: _s3,
        proxy,
        svc,
    } = rig_with(
        small_s3().await,
        &[
            ("PARPARCHIK_S3_MAX_CONCURRENCY", "4"),
            ("PARPARCHIK_S3_TIMEOUT", "3"),
            ("PARPARCHIK_S3_ATTEMPTS", "1"),
        ],
    )
    .await;
    proxy.set(Fault::Stall(Duration::from_secs(2)));
    let mark = proxy.mark();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (http, url) = (svc.http.clone(), svc.url(&format!("/{PUBLIC}/missing-{i}")));
        tasks.spawn(async move { http.get(url).send().await.map(|r| r.status().as_u16()) });
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let in_flight = proxy.requests_since(mark).len();
    assert!(in_flight <= 4, "{in_flight} S3 calls in flight, cap is 4");
    let mut shed = 0;
    while let Some(r) = tasks.join_next().await {
        if r.expect("task").expect("answered") == 503 {
            shed += 1;
        }
    }
    assert!(
        shed >= 30,
        "the excess is answered 503, not queued forever: {shed}"
    );
    proxy.set(Fault::Pass);
    svc.stop().await;
}

#[tokio::test]
async fn missing_keys_are_asked_about_once_and_only_where_needed() {
    let Rig { s3, proxy, svc } = rig_with(small_s3().await, &[("PARPARCHIK_MISS_TTL", "30")]).await;
    let mark = proxy.mark();
    let (s, _) = svc.get_json(&format!("/{PRIVATE}/nope.txt")).await;
    assert_eq!(s, 404);
    let calls = proxy.requests_since(mark);
    assert!(
        calls.iter().all(|c| !c.contains(PUBLIC)),
        "a miss on the private route does not ask the public bucket: {calls:?}"
    );
    assert_eq!(calls.iter().filter(|c| c.starts_with("HEAD ")).count(), 1);
    let mark = proxy.mark();
    for _ in 0..20 {
        let (s, _) = svc.get_json(&format!("/{PRIVATE}/nope.txt")).await;
        assert_eq!(s, 404);
    }
    assert!(proxy.requests_since(mark).is_empty(), "remembered");
    assert!(metric_value(&svc, "parparchik_miss_cache_hits_total").await >= 20.0);
    // `/update` asks S3 anyway, so an upload announced with it is found at once.
    s3.client().put(PRIVATE, "nope.txt", "now it exists").await;
    let (s, v) = svc.get_json("/update?filename=nope.txt").await;
    assert_eq!(s, 200, "{v}");
    let r = svc.get(&format!("/{PRIVATE}/nope.txt")).await;
    assert_eq!(r.status(), 302);
    svc.stop().await;
}

#[tokio::test]
async fn a_relocation_sticks_through_list_sync_and_restart_and_follows_its_file() {
    let s3 = small_s3().await;
    let seed = s3.client();
    seed.put(PUBLIC, "dup.txt", "one").await;
    seed.put(PRIVATE, "dup.txt", "two").await;
    let svc = Service::ready(&s3).await;
    assert_eq!(
        svc.app.registry.get("dup.txt").map(|e| e.bucket.index()),
        Some(0)
    );
    let (s, v) = svc.post_json("/relocate?filename=dup.txt").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["relocated_to"], PRIVATE);

    let (s, _) = svc.get_json("/list").await;
    assert_eq!(s, 200);
    assert_eq!(
        svc.app.registry.get("dup.txt").map(|e| e.bucket.index()),
        Some(1),
        "after /list"
    );
    parparchik::coordinator::sync::resync(&svc.app)
        .await
        .expect("sync");
    assert_eq!(
        svc.app.registry.get("dup.txt").map(|e| e.bucket.index()),
        Some(1),
        "after a sync"
    );
    let r = svc.get(&format!("/{PRIVATE}/dup.txt")).await;
    assert_eq!(r.status(), 302);
    let (s, _) = svc.get_json(&format!("/{PUBLIC}/dup.txt")).await;
    assert_eq!(s, 404);
    svc.stop().await;

    let svc = Service::ready(&s3).await;
    assert_eq!(
        svc.app.registry.get("dup.txt").map(|e| e.bucket.index()),
        Some(1),
        "after a restart"
    );
    // The file really leaves its bucket: the route follows it.
    seed.delete(PRIVATE, "dup.txt").await;
    let (s, _) = svc.get_json("/list").await;
    assert_eq!(s, 200);
    assert_eq!(
        svc.app.registry.get("dup.txt").map(|e| e.bucket.index()),
        Some(0)
    );
    svc.stop().await;
}

#[tokio::test]
async fn one_listing_cannot_empty_a_bucket_unless_a_second_confirms_it() {
    let s3 = small_s3().await;
    write_on_disk(&s3, PUBLIC, (0..100).map(bulk_key));
    let Rig { s3, proxy, svc } = rig_with(s3, &[]).await;
    let before = registered(&svc);
    assert_eq!(before.len(), 102);

    // One listing answers "empty" once; the second listing tells the truth.
    proxy.set(Fault::EmptyListing.on_target("list-type").times(1));
    let (s, _) = svc.get_json("/list").await;
    assert_eq!(s, 503, "the removal was refused");
    assert_eq!(registered(&svc), before);
    assert_eq!(
        metric_value(&svc, "parparchik_removals_refused_total").await,
        1.0
    );

    // The files really go: two listings agree, and the registry follows.
    proxy.set(Fault::Pass);
    for i in 0..60 {
        std::fs::remove_file(s3.dir.path().join(PUBLIC).join(bulk_key(i))).expect("rm");
    }
    let (s, v) = svc.get_json("/list").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["count"], 42);
    svc.stop().await;
}

#[tokio::test]
async fn a_foreign_manifest_of_phantoms_costs_a_few_calls_not_one_per_key() {
    let Rig { s3, proxy, svc } = rig_with(small_s3().await, &[]).await;
    let seed = s3.client();
    // Another writer (an older edition, say) lists 20 000 keys that do not exist.
    let mut m = seed.manifest(PUBLIC).await.expect("manifest");
    let files = m["files"].as_array_mut().expect("files");
    for i in 0..BULK {
        files.push(serde_json::json!({
            "key": format!("phantom/{i:06}.txt"), "bucket": PUBLIC, "bucket_type": "public",
            "route": format!("/{PUBLIC}/phantom/{i:06}.txt"), "size": 1,
            "last_modified": "2026-05-05T10:00:00Z"
        }));
    }
    seed.put(PUBLIC, MANIFEST, serde_json::to_vec(&m).expect("JSON"))
        .await;

    // A change makes this replica write that manifest: its swap loses, it merges.
    seed.put(PUBLIC, "fresh.txt", "fresh").await;
    let mark = proxy.mark();
    let started = Instant::now();
    let (s, v) = svc.get_json("/update?filename=fresh.txt").await;
    let took = started.elapsed();
    assert_eq!(s, 200, "{v}");
    let calls = proxy.requests_since(mark);
    let heads = calls.iter().filter(|c| c.starts_with("HEAD ")).count();
    assert!(
        heads <= 20,
        "the request waited on {heads} HEADs ({} calls in all, {took:?})",
        calls.len()
    );
    assert!(
        seed.manifest_keys(PUBLIC)
            .await
            .contains(&"fresh.txt".to_owned()),
        "the change is durable"
    );
    // The background sync settles the dispute from one listing: the phantoms go, the
    // files stay (the removal guard does not stop this: a second listing agrees).
    let deadline = Instant::now() + Duration::from_secs(30);
    while svc.app.registry.get("phantom/000000.txt").is_some() {
        assert!(Instant::now() < deadline, "phantoms settled by a sync");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        registered(&svc).keys().cloned().collect::<Vec<_>>(),
        ["fresh.txt", "hello.txt", "secret.bin"]
    );
    svc.stop().await;
}

#[tokio::test]
async fn a_manifest_over_the_size_limit_is_not_read_whole() {
    let s3 = small_s3().await;
    let seed = s3.client();
    // A manifest of 200 KiB that would say a file lives elsewhere.
    let padding = "x".repeat(200 * 1024);
    let body = serde_json::json!({"version": 1, "bucket": PUBLIC, "padding": padding,
        "files": [{"key": "hello.txt", "bucket": PRIVATE, "size": 5,
                   "last_modified": "2026-05-05T10:00:00Z"}]});
    seed.put(PUBLIC, MANIFEST, serde_json::to_vec(&body).expect("JSON"))
        .await;
    let Rig {
        s3: _s3,
        proxy: _proxy,
        svc,
    } = rig_with(s3, &[("PARPARCHIK_MANIFEST_MAX_BYTES", "65536")]).await;
    // Ignored: the bucket was rebuilt from its listing, and the service is ready.
    assert_eq!(
        svc.app.registry.get("hello.txt").map(|e| e.bucket.index()),
        Some(0)
    );
    assert_eq!(svc.app.registry.len(), 2);
    svc.stop().await;
}

#[tokio::test]
async fn a_listing_in_ranges_is_the_listing_exactly() {
    let s3 = small_s3().await;
    // Keys that sort oddly (case, punctuation, multibyte), and enough for several pages.
    let mut keys: Vec<String> = (0..2_500).map(bulk_key).collect();
    for k in [
        "A.txt",
        "a b.txt",
        "a+b.txt",
        "a-b.txt",
        "Z/ü.txt",
        "z/日本.txt",
        "~tilde",
    ] {
        keys.push(k.to_owned());
    }
    write_on_disk(&s3, PUBLIC, keys.iter().cloned());
    // local-s3 rescans its directory for every page, several ranges at once: on a busy
    // 2-core machine a page can take longer than the harness's 2 s.
    let svc = Service::ready_with(&s3, &[("PARPARCHIK_S3_TIMEOUT", "30")]).await;
    let client = &svc.app.s3;
    let whole = client.list_objects(PUBLIC, |_| {}).await.expect("listing");
    let whole: Vec<&str> = whole.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        whole.len(),
        keys.len() + 2,
        "hello.txt and the manifest too"
    );
    let splits_of = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    for splits in [
        // Split points equal to listed keys, between keys, before the first, after the
        // last (an empty range), one range of one page, and the odd keys themselves.
        splits_of(&[whole[10], whole[1200], whole[1201]]),
        splits_of(&["0", "bulk/050", "bulk/050/zzz"]),
        splits_of(&["~~~~"]),
        splits_of(&[whole[0]]),
        splits_of(&["A.txt", "a b.txt", "Z/ü.txt", "z/日本.txt"]),
    ] {
        let ranged = parparchik::coordinator::listing::list_bucket(
            client,
            PUBLIC,
            &splits,
            |o| Some(o.key),
            |_| {},
        )
        .await
        .expect("ranged listing");
        assert_eq!(ranged, whole, "splits {splits:?}");
    }
    svc.stop().await;
}

#[tokio::test]
async fn a_merge_cannot_remove_most_of_a_bucket_on_its_own() {
    let s3 = small_s3().await;
    let seed = s3.client();
    for i in 0..10 {
        seed.put(PUBLIC, &format!("gone/{i}.txt"), "x").await;
    }
    let a = Service::ready(&s3).await;
    let b = Service::ready(&s3).await;
    assert_eq!(a.app.registry.len(), 12);
    // Ten of the public bucket's eleven files go behind both replicas' backs; B notices
    // (its sync confirms with a second listing) and writes the public manifest.
    for i in 0..10 {
        seed.delete(PUBLIC, &format!("gone/{i}.txt")).await;
    }
    let (s, v) = b.get_json("/list").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["count"], 2);
    // A writes the public manifest next: its swap loses, and the merge's HEADs prove ten
    // of its eleven public entries missing: more than one merge may remove.
    seed.put(PUBLIC, "new.txt", "new").await;
    let (s, v) = a.get_json("/update?filename=new.txt").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        metric(&a.metrics().await, "parparchik_removals_refused_total"),
        Some(1.0),
        "the merge left the removals to a sync"
    );
    // The sync it started confirms them with two listings.
    let deadline = Instant::now() + Duration::from_secs(20);
    while a.app.registry.len() != 3 {
        assert!(
            Instant::now() < deadline,
            "the sync removed them: {:?}",
            registered(&a)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_list_before_ready_never_lists_beside_start_up() {
    let s3 = small_s3().await;
    let proxy = Proxy::start(s3.addr).await;
    // Every listing page takes 400 ms: start-up's listing is still running when /list
    // arrives.
    proxy.set(Fault::Stall(Duration::from_millis(400)).on_target("list-type"));
    let svc = Service::start(common::two_bucket_env(&proxy.endpoint())).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!svc.app.is_ready(), "start-up is still listing");
    let (s, v) = svc.get_json("/list").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["count"], 2);
    svc.wait_ready(Duration::from_secs(20)).await;
    // One sync at a time: start-up and /list run the same pipeline under one lock.
    assert_eq!(proxy.most_listings_at_once(), 1);
    svc.stop().await;
}

/// A first start (no manifest, so no known keys to cut at) still lists a large bucket in
/// ranges: split at its first-level folders, found with one delimiter listing. Every
/// object is registered exactly once.
#[tokio::test]
async fn a_first_start_lists_in_ranges_cut_at_folders() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    let keys: Vec<String> = (0..3000)
        .map(|i| format!("folder-{:02}/file-{i:05}.bin", i % 30))
        .collect();
    seed.put_many(PUBLIC, keys.clone(), 32).await;
    let proxy = Proxy::start(s3.addr).await;
    // Listing pages take long enough for ranges listed at once to overlap.
    proxy.set(Fault::Stall(Duration::from_millis(150)).on_target("list-type"));
    let mut env = common::two_bucket_env(&proxy.endpoint());
    env.push(("PARPARCHIK_LIST_CONCURRENCY".into(), "4".into()));
    let svc = Service::start(env).await;
    svc.wait_ready(Duration::from_secs(60)).await;
    assert!(
        proxy.most_listings_at_once() >= 2,
        "ranges were listed at once: {}",
        proxy.most_listings_at_once()
    );
    let registered = common::registered_keys(&svc, 0);
    let mut expected = keys;
    expected.sort();
    assert_eq!(registered, expected);
    svc.stop().await;
}

/// A compaction whose manifest PUT takes long (held 5 s here; at ten million files the
/// body alone takes a minute) does not hold up changes: an `/update` meanwhile is
/// journaled and answered without waiting for it.
#[tokio::test]
async fn a_long_compaction_does_not_hold_up_changes() {
    let Rig { s3, proxy, svc } = rig_with(
        small_s3().await,
        &[
            ("PARPARCHIK_MANIFEST_COMPACT_INTERVAL", "1"),
            ("PARPARCHIK_S3_TIMEOUT", "20"),
        ],
    )
    .await;
    let seed = s3.client();
    svc.settle(Duration::from_secs(10), "start-up writes settle")
        .await;
    proxy.set(
        Fault::Stall(Duration::from_secs(5))
            .only("PUT")
            .on_target(&format!("{MANIFEST}$")),
    );
    let from = proxy.seen() as usize;
    seed.put(PUBLIC, "first.txt", "1").await;
    assert_eq!(svc.get_json("/update?filename=first.txt").await.0, 200);
    // Within about an interval the compaction starts; its PUT is held.
    let manifest_put = format!("PUT /{PUBLIC}/{MANIFEST}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !proxy
        .requests_since(from)
        .iter()
        .any(|r| r == &manifest_put)
    {
        assert!(Instant::now() < deadline, "no compaction started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seed.put(PUBLIC, "second.txt", "2").await;
    let asked = Instant::now();
    let (status, v) = svc.get_json("/update?filename=second.txt").await;
    assert_eq!(status, 200, "{v}");
    assert!(
        asked.elapsed() < Duration::from_millis(2500),
        "the /update waited for the compaction: {:?}",
        asked.elapsed()
    );
    assert!(
        seed.manifest_keys(PUBLIC)
            .await
            .contains(&"second.txt".to_owned()),
        "journaled before the answer"
    );
    svc.stop().await;
}

/// A first start (no manifest yet) writes each whole manifest on its own task: an
/// `/update` meanwhile is journaled and answered without waiting for it, and the
/// manifest, when it lands, with the journal states both the start-up's files and the
/// update's.
#[tokio::test]
async fn a_first_start_manifest_write_does_not_hold_up_changes() {
    let s3 = small_s3().await;
    let held = Fault::Stall(Duration::from_secs(5))
        .only("PUT")
        .on_target(&format!("{MANIFEST}$"));
    let (proxy, svc) = behind_proxy(
        &s3,
        Some(held),
        &[
            ("PARPARCHIK_MANIFEST_COMPACT_INTERVAL", "60"),
            ("PARPARCHIK_S3_TIMEOUT", "20"),
        ],
    )
    .await;
    // Not `wait_ready`: it also waits for the manifests to settle.
    svc.wait_only_ready(Duration::from_secs(30)).await;
    let seed = s3.client();
    // Start-up has asked for the first manifests; their PUTs are held.
    let manifest_put = format!("PUT /{PUBLIC}/{MANIFEST}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !proxy.requests_since(0).iter().any(|r| r == &manifest_put) {
        assert!(Instant::now() < deadline, "no first manifest write started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seed.put(PUBLIC, "during.txt", "d").await;
    let asked = Instant::now();
    let (status, v) = svc.get_json("/update?filename=during.txt").await;
    assert_eq!(status, 200, "{v}");
    assert!(
        asked.elapsed() < Duration::from_millis(2500),
        "the /update waited for the first manifest write: {:?}",
        asked.elapsed()
    );
    assert!(
        seed.manifest_object(PUBLIC).await.is_none(),
        "the first manifest is still being written"
    );
    assert_eq!(
        seed.manifest_keys(PUBLIC).await,
        ["during.txt"],
        "journaled before the answer"
    );
    svc.settle(Duration::from_secs(20), "the first manifests are written")
        .await;
    assert!(seed.manifest_object(PUBLIC).await.is_some());
    assert_eq!(
        seed.manifest_keys(PUBLIC).await,
        ["during.txt", "hello.txt"],
        "the manifest and the journal state every file"
    );
    svc.stop().await;
}

/// A first manifest write on its own task that fails gives its changes back: the
/// writer retries after a backoff, and the manifests are written in the end.
#[tokio::test]
async fn a_failed_first_manifest_write_is_retried() {
    let s3 = small_s3().await;
    let failing = Fault::InternalError
        .only("PUT")
        .on_target(&format!("{MANIFEST}$"))
        .times(2);
    let (_proxy, svc) = behind_proxy(
        &s3,
        Some(failing),
        &[
            ("PARPARCHIK_MANIFEST_COMPACT_INTERVAL", "60"),
            ("PARPARCHIK_S3_ATTEMPTS", "1"),
        ],
    )
    .await;
    svc.wait_ready(Duration::from_secs(30)).await;
    svc.settle(
        Duration::from_secs(20),
        "the first manifests are written in the end",
    )
    .await;
    let seed = s3.client();
    assert_eq!(seed.manifest_keys(PUBLIC).await, ["hello.txt"]);
    assert_eq!(seed.manifest_keys(PRIVATE).await, ["secret.bin"]);
    assert!(seed.manifest_object(PUBLIC).await.is_some());
    assert!(
        metric_value(&svc, "parparchik_manifest_writes_total{outcome=\"failed\"}").await >= 1.0,
        "the failures are counted"
    );
    svc.stop().await;
}
