//! S3 failing in every way the fault proxy can make it fail: down before start, down
//! while serving (refused, unreachable, 500, 503 SlowDown, reset mid-response), 403,
//! slow, flapping, and a manifest write that fails. The service sits behind the proxy;
//! the tests seed and inspect the buckets directly, never through it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::common::{self, MANIFEST, PRIVATE, PUBLIC, S3, SECRET_KEY, Service};
use crate::support::fault::{Fault, Proxy};
use serde_json::Value;
use testkit::metric;

/// Files seeded before start: `(bucket, key)`.
const FILES: [(&str, &str); 4] = [
    (PUBLIC, "pub/a.txt"),
    (PUBLIC, "pub/b c+d.txt"),
    (PRIVATE, "priv/x.bin"),
    (PRIVATE, "priv/y z.bin"),
];

/// S3, the proxy in front of it, and the service behind the proxy.
struct Rig {
    s3: S3,
    proxy: Proxy,
    svc: Service,
}

async fn seeded_s3() -> S3 {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    for (bucket, key) in FILES {
        seed.put(bucket, key, format!("content of {key}")).await;
    }
    s3
}

fn env_via(proxy: &Proxy, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = common::two_bucket_env(&proxy.endpoint());
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

/// A ready service behind a healthy proxy, over the seeded buckets.
async fn rig(extra: &[(&str, &str)]) -> Rig {
    let s3 = seeded_s3().await;
    let proxy = Proxy::start(s3.addr).await;
    let svc = Service::start(env_via(&proxy, extra)).await;
    svc.wait_ready(Duration::from_secs(20)).await;
    assert_eq!(svc.app.registry.len(), FILES.len());
    Rig { s3, proxy, svc }
}

/// Path-encodes a key for a route (`/` kept).
fn pathenc(key: &str) -> String {
    parparchik::sigv4::encode::encode_path(key)
}

fn route(bucket: &str, key: &str) -> String {
    format!("/{bucket}/{}", pathenc(key))
}

/// The raw manifests, read straight from S3 (not through the proxy).
async fn manifests(s3: &S3) -> [Option<Vec<u8>>; 2] {
    let seed = s3.client();
    [
        seed.get(PUBLIC, MANIFEST).await,
        seed.get(PRIVATE, MANIFEST).await,
    ]
}

/// `key → bucket index` of every registered entry.
fn registered(svc: &Service) -> BTreeMap<String, usize> {
    svc.app
        .registry
        .all()
        .iter()
        .map(|e| (e.key.clone(), e.bucket.index()))
        .collect()
}

async fn metric_value(svc: &Service, series: &str) -> f64 {
    metric(&svc.metrics().await, series).unwrap_or(0.0)
}

/// Asserts a 302 whose Location names `bucket` (path style: `<endpoint>/<bucket>/…`).
fn assert_redirects_into(r: &reqwest::Response, bucket: &str, what: &str) {
    assert_eq!(r.status(), 302, "{what}");
    let location = r.headers()["location"].to_str().expect("ASCII Location");
    let url = url::Url::parse(location).expect("Location is a URL");
    let first = url.path_segments().and_then(|mut s| s.next());
    assert_eq!(first, Some(bucket), "{what}: Location {location}");
}

// ---------------------------------------------------------------------------------------
// S3 down before start

async fn down_before_start(fault: Fault) {
    let s3 = seeded_s3().await;
    let proxy = Proxy::start(s3.addr).await;
    proxy.set(fault.clone());
    let svc = Service::start(env_via(&proxy, &[])).await;

    // The first start-up attempt fails and is reported.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (text, status) = loop {
        let r = svc.get("/status").await;
        assert_eq!(r.status(), 200, "{fault:?}: /status");
        let text = r.text().await.expect("body");
        let v: Value = serde_json::from_str(&text).expect("/status is JSON");
        if v["storage_error"].is_string() {
            break (text, v);
        }
        assert!(
            Instant::now() < deadline,
            "{fault:?}: no storage_error: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let error = status["storage_error"].as_str().expect("a string");
    assert!(!error.is_empty(), "{fault:?}");
    assert!(error.contains("unavailable"), "{fault:?}: {error}");
    assert!(
        !text.contains(SECRET_KEY),
        "{fault:?}: /status shows the secret"
    );
    assert_eq!(status["ready"], false, "{fault:?}");

    // Alive and not ready, for a while (several start-up attempts).
    let down_until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < down_until {
        let (s, v) = svc.get_json("/healthcheck").await;
        assert_eq!(s, 200, "{fault:?}: /healthcheck {v}");
        assert_eq!(v["ready"], false, "{fault:?}");
        let (s, v) = svc.get_json("/readiness").await;
        assert_eq!(s, 503, "{fault:?}: /readiness {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !svc.metrics().await.contains(SECRET_KEY),
        "{fault:?}: secret in metrics"
    );
    assert!(proxy.faulted() + proxy.refused() > 0 || fault == Fault::Unreachable);

    // S3 is back: ready within a few seconds, without a restart.
    proxy.set(Fault::Pass);
    let back = Instant::now();
    svc.wait_ready(Duration::from_secs(8)).await;
    let took = back.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "{fault:?}: ready {took:?} after S3 came back"
    );
    let (s, v) = svc.get_json("/readiness").await;
    assert_eq!(s, 200, "{fault:?}: {v}");
    assert_eq!(v["file_count"], FILES.len());
    let (_, v) = svc.get_json("/status").await;
    assert!(
        v["storage_error"].is_null(),
        "{fault:?}: error cleared: {v}"
    );
    let r = svc.get(&route(PUBLIC, "pub/a.txt")).await;
    assert_redirects_into(&r, PUBLIC, "after recovery");
    svc.stop().await;
}

#[tokio::test]
async fn s3_unreachable_before_start_then_back() {
    down_before_start(Fault::Unreachable).await;
}

#[tokio::test]
async fn s3_answering_slowdown_before_start_then_back() {
    down_before_start(Fault::SlowDown).await;
}

// ---------------------------------------------------------------------------------------
// S3 down while serving

async fn down_while_serving(fault: Fault) {
    let Rig { s3, proxy, svc } = rig(&[("PARPARCHIK_S3_ATTEMPTS", "2")]).await;
    let what = format!("{fault:?}");
    let before = registered(&svc);
    let manifests_before = manifests(&s3).await;
    assert!(manifests_before.iter().all(Option::is_some));
    // Keep-alive connections to the proxy exist now: faults must hit them too.
    let r = svc.get(&route(PUBLIC, "pub/a.txt")).await;
    assert_redirects_into(&r, PUBLIC, "healthy");
    let stale_before = metric_value(&svc, "parparchik_stale_redirects_total").await;

    proxy.set(fault.clone());

    // Known routes keep redirecting, from the registry, GET and HEAD alike.
    for (bucket, key) in FILES {
        let r = svc.get(&route(bucket, key)).await;
        assert_redirects_into(&r, bucket, &format!("{what}: GET {key}"));
        let r = svc
            .http
            .head(svc.url(&route(bucket, key)))
            .send()
            .await
            .expect("HEAD sent");
        assert_redirects_into(&r, bucket, &format!("{what}: HEAD {key}"));
    }
    // The aliases too; a known key on the other bucket's route is still a 404.
    let r = svc.get(&route("public", "pub/a.txt")).await;
    assert_redirects_into(&r, PUBLIC, &format!("{what}: /public alias"));
    let r = svc.get(&route("private", "priv/x.bin")).await;
    assert_redirects_into(&r, PRIVATE, &format!("{what}: /private alias"));
    for path in [route(PRIVATE, "pub/a.txt"), route("private", "pub/a.txt")] {
        let (s, _) = svc.get_json(&path).await;
        assert_eq!(s, 404, "{what}: {path} names the wrong bucket");
    }

    // Unknown keys cannot be vouched for: 503 with Retry-After.
    let r = svc.get(&route(PUBLIC, "never/seen.txt")).await;
    assert_eq!(r.status(), 503, "{what}: unknown key");
    assert!(
        r.headers().contains_key("retry-after"),
        "{what}: Retry-After"
    );

    // The API answers 503, not 404.
    for path in [
        "/update?filename=pub/a.txt",
        "/update?filename=never/seen.txt",
    ] {
        let r = svc.get(path).await;
        assert_eq!(r.status(), 503, "{what}: {path}");
        assert!(r.headers().contains_key("retry-after"), "{what}: {path}");
    }
    for path in [
        "/relocate?filename=priv/x.bin",
        "/relocate?filename=never/seen.txt",
    ] {
        let (s, v) = svc.post_json(path).await;
        assert_eq!(s, 503, "{what}: POST {path}: {v}");
    }
    let (s, _) = svc.get_json("/list").await;
    assert_eq!(s, 503, "{what}: /list");

    // Nothing forgotten, nothing moved.
    assert_eq!(registered(&svc), before, "{what}: registry changed");
    assert!(
        proxy.faulted() + proxy.refused() > 0 || fault == Fault::Unreachable,
        "{what}: the proxy never acted"
    );
    let stale = metric_value(&svc, "parparchik_stale_redirects_total").await;
    assert!(
        stale - stale_before >= (2 * FILES.len()) as f64,
        "{what}: stale redirects counted: {stale_before} -> {stale}"
    );
    let unavailable = metric_value(
        &svc,
        "parparchik_s3_requests_total{operation=\"HeadObject\",outcome=\"unavailable\"}",
    )
    .await;
    assert!(unavailable > 0.0, "{what}: failures counted");

    // S3 is back: manifests byte-identical, everything still served.
    proxy.set(Fault::Pass);
    assert_eq!(
        manifests(&s3).await,
        manifests_before,
        "{what}: manifests changed"
    );
    for (bucket, key) in FILES {
        let r = svc.get(&route(bucket, key)).await;
        assert_redirects_into(&r, bucket, &format!("{what}: after recovery {key}"));
    }
    let (s, v) = svc.get_json("/update?filename=pub/a.txt").await;
    assert_eq!(s, 200, "{what}: {v}");
    let (s, v) = svc.get_json("/list").await;
    assert_eq!(s, 200, "{what}: {v}");
    assert_eq!(v["count"], FILES.len(), "{what}");
    assert_eq!(registered(&svc), before, "{what}: registry after recovery");
    assert_eq!(
        manifests(&s3).await,
        manifests_before,
        "{what}: manifests rewritten after recovery"
    );
    svc.stop().await;
}

#[tokio::test]
async fn s3_refusing_connections_while_serving() {
    down_while_serving(Fault::Refuse).await;
}

#[tokio::test]
async fn s3_unreachable_while_serving() {
    down_while_serving(Fault::Unreachable).await;
}

#[tokio::test]
async fn s3_answering_500_while_serving() {
    down_while_serving(Fault::InternalError).await;
}

#[tokio::test]
async fn s3_answering_503_slowdown_while_serving() {
    down_while_serving(Fault::SlowDown).await;
}

#[tokio::test]
async fn s3_resetting_mid_response_while_serving() {
    down_while_serving(Fault::Reset).await;
}

// ---------------------------------------------------------------------------------------
// 403

#[tokio::test]
async fn access_denied_while_serving_is_not_a_not_found() {
    let Rig { s3, proxy, svc } = rig(&[]).await;
    let before = registered(&svc);
    let manifests_before = manifests(&s3).await;
    proxy.set(Fault::AccessDenied);

    for (bucket, key) in FILES {
        let r = svc.get(&route(bucket, key)).await;
        assert_redirects_into(&r, bucket, &format!("403: GET {key}"));
    }
    let (s, v) = svc.get_json(&route(PUBLIC, "never/seen.txt")).await;
    assert!(
        (500..600).contains(&s),
        "403: unknown key must not be 404/302: {s} {v}"
    );
    for (bucket, key) in FILES {
        let (s, v) = svc
            .get_json(&format!("/update?filename={}", pathenc(key)))
            .await;
        assert_ne!(s, 404, "403: /update {key}: {v}");
        assert_ne!(s, 200, "403: /update {key} cannot be confirmed: {v}");
        let (s, v) = svc
            .post_json(&format!("/relocate?filename={}", pathenc(key)))
            .await;
        assert_ne!(s, 404, "403: /relocate {key}: {v}");
        assert_eq!(
            svc.app.registry.get(key).map(|e| e.bucket.index()),
            Some(usize::from(bucket == PRIVATE)),
            "403: {key} kept where it was"
        );
    }
    assert!(proxy.faulted() >= FILES.len() as u64);
    let denied = metric_value(
        &svc,
        "parparchik_s3_requests_total{operation=\"HeadObject\",outcome=\"denied\"}",
    )
    .await;
    assert!(denied > 0.0, "403s counted as denied");
    // A 403 is not retried: one HEAD per check.
    assert_eq!(registered(&svc), before, "403 removed or moved an entry");
    proxy.set(Fault::Pass);
    assert_eq!(manifests(&s3).await, manifests_before);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------
// Slow S3

#[tokio::test]
async fn slow_s3_bounds_download_time_and_probes_stay_fast() {
    let Rig {
        s3: _s3,
        proxy,
        svc,
    } = rig(&[
        ("PARPARCHIK_S3_TIMEOUT", "0.5"),
        ("PARPARCHIK_S3_ATTEMPTS", "2"),
    ])
    .await;
    let svc = Arc::new(svc);
    proxy.set(Fault::Stall(Duration::from_secs(10)));
    // Two attempts of 0.5 s plus at most 0.1 s of backoff; 3 s leaves a wide margin.
    let bound = Duration::from_secs(3);

    let started = Instant::now();
    let r = svc.get(&route(PRIVATE, "priv/x.bin")).await;
    let took = started.elapsed();
    assert_redirects_into(&r, PRIVATE, "slow S3, known key");
    assert!(took < bound, "known key answered after {took:?}");
    assert!(
        took >= Duration::from_millis(900),
        "S3 was really asked (two timeouts): {took:?}"
    );

    let started = Instant::now();
    let r = svc.get(&route(PUBLIC, "never/seen.txt")).await;
    let took = started.elapsed();
    assert_eq!(r.status(), 503, "slow S3, unknown key");
    assert!(took < bound, "unknown key answered after {took:?}");

    // Probes, /status and /metrics answer fast while a download waits on S3.
    let slow = {
        let svc = Arc::clone(&svc);
        tokio::spawn(async move {
            let started = Instant::now();
            let s = svc.get(&route(PUBLIC, "never/seen-2.txt")).await.status();
            (s, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    for path in ["/healthcheck", "/status", "/metrics", "/readiness"] {
        let started = Instant::now();
        let r = svc.get(path).await;
        let took = started.elapsed();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            took < Duration::from_millis(200),
            "{path} took {took:?} during a slow download"
        );
    }
    assert!(!slow.is_finished(), "the slow download was still in flight");
    let (s, took) = slow.await.expect("slow download task");
    assert_eq!(s, 503);
    assert!(took < bound, "{took:?}");
    match Arc::try_unwrap(svc) {
        Ok(svc) => svc.stop().await,
        Err(_) => unreachable!("all clones joined"),
    }
}

// ---------------------------------------------------------------------------------------
// Coalescing

#[tokio::test]
async fn concurrent_checks_of_one_route_cost_one_head() {
    let Rig { s3, proxy, svc } = rig(&[]).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    // Open 50 connections first, so the burst below is not slowed by connecting.
    let warm: Vec<_> = (0..50)
        .map(|_| client.get(svc.url("/healthcheck")).send())
        .collect();
    for r in futures_join(warm).await {
        assert_eq!(r.expect("warm-up").status(), 200);
    }

    proxy.set(Fault::Stall(Duration::from_millis(300)));
    let heads = s3.stats().count("HeadObject");
    let seen = proxy.seen();
    let coalesced = metric_value(&svc, "parparchik_coalesced_checks_total").await;
    let target = svc.url(&route(PRIVATE, "priv/y z.bin"));
    let burst: Vec<_> = (0..50).map(|_| client.get(&target).send()).collect();
    let answers = futures_join(burst).await;
    for r in &answers {
        let r = r.as_ref().expect("answered");
        assert_redirects_into(r, PRIVATE, "coalesced");
    }
    assert_eq!(
        s3.stats().count("HeadObject") - heads,
        1,
        "50 concurrent checks, one HeadObject"
    );
    assert_eq!(proxy.seen() - seen, 1, "one request through the proxy");
    let coalesced = metric_value(&svc, "parparchik_coalesced_checks_total").await - coalesced;
    assert!(coalesced >= 49.0, "coalesced checks counted: {coalesced}");
    svc.stop().await;
}

/// Runs futures concurrently (all polled from this task) and returns their outputs.
async fn futures_join<F: Future + Send + 'static>(futures: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Flapping

async fn flapping_for(duration: Duration) {
    let Rig { s3, proxy, svc } = rig(&[]).await;
    let svc = Arc::new(svc);
    let before = registered(&svc);
    let manifests_before = manifests(&s3).await;
    proxy.set(Fault::Flapping);

    let deadline = Instant::now() + duration;
    let mut workers = Vec::new();
    for w in 0..8usize {
        let svc = Arc::clone(&svc);
        workers.push(tokio::spawn(async move {
            let mut bad = Vec::new();
            let mut n = 0usize;
            while Instant::now() < deadline {
                let (bucket, key) = FILES[(w + n) % FILES.len()];
                let (path, allowed): (String, &[u16]) = match n % 7 {
                    0..=3 => (route(bucket, key), &[302, 503]),
                    4 => (route(bucket, &format!("unknown-{w}-{n}")), &[404, 503]),
                    5 => (format!("/update?filename={}", pathenc(key)), &[200, 503]),
                    _ => ("/list".to_owned(), &[200, 503]),
                };
                let r = svc.get(&path).await;
                let s = r.status().as_u16();
                if !allowed.contains(&s) {
                    bad.push(format!("{path}: {s}"));
                } else if s == 302 {
                    let location = r.headers()["location"].to_str().unwrap_or_default();
                    if !location.contains(&format!("/{bucket}/")) {
                        bad.push(format!("{path}: Location {location}"));
                    }
                }
                n += 1;
            }
            (n, bad)
        }));
    }
    let mut total = 0;
    let mut bad = Vec::new();
    for w in workers {
        let (n, b) = w.await.expect("worker did not panic");
        total += n;
        bad.extend(b);
    }
    assert!(total > 0);
    assert!(bad.is_empty(), "unexpected answers: {bad:#?}");
    assert!(proxy.faulted() > 0, "the proxy failed some requests");
    let m = svc.metrics().await;
    let unavailable = metric(
        &m,
        "parparchik_s3_requests_total{operation=\"HeadObject\",outcome=\"unavailable\"}",
    )
    .unwrap_or(0.0);
    assert!(unavailable > 0.0, "failures counted");
    for status in ["500", "other"] {
        let series =
            format!("parparchik_http_requests_total{{endpoint=\"download\",status=\"{status}\"}}");
        assert_eq!(metric(&m, &series).unwrap_or(0.0), 0.0, "{series}");
    }

    proxy.set(Fault::Pass);
    assert_eq!(registered(&svc), before, "an entry was lost or moved");
    assert_eq!(svc.get("/healthcheck").await.status(), 200);
    assert_eq!(manifests(&s3).await, manifests_before, "manifests changed");
    eprintln!(
        "flapping for {duration:?}: {total} requests, proxy saw {} and failed {}",
        proxy.seen(),
        proxy.faulted()
    );
    match Arc::try_unwrap(svc) {
        Ok(svc) => svc.stop().await,
        Err(_) => unreachable!("all workers joined"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_s3_under_load_short() {
    flapping_for(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run with cargo test --test it faults:: -- --ignored"]
async fn flapping_s3_under_load_for_a_minute() {
    flapping_for(Duration::from_secs(60)).await;
}

// ---------------------------------------------------------------------------------------
// A failed manifest write

/// Set in the child process that runs the scenario with its stderr captured.
const CHILD: &str = "PARPARCHIK_FAULTS_CHILD";

/// The service logs to the process's stderr, which the test harness does not capture;
/// so the scenario runs in a child process (this test binary, this test only) whose
/// stderr is read here.
#[tokio::test]
async fn failed_manifest_write_is_logged_and_retried_with_the_next_change() {
    if std::env::var_os(CHILD).is_some() {
        return manifest_write_scenario().await;
    }
    let exe = std::env::current_exe().expect("test binary");
    // The harness names a test by its path below the crate root (`faults::...`).
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let name =
        format!("{module}::failed_manifest_write_is_logged_and_retried_with_the_next_change");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
    })
    .await
    .expect("join")
    .expect("child runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "scenario failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the scenario ran: {stdout}");
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("manifest of bucket {PUBLIC} not written")))
        .unwrap_or_else(|| panic!("failed write not logged:\n{stderr}"));
    for reason in [
        "HTTP 500",
        "InternalError",
        "We encountered an internal error. (injected by the fault proxy)",
        "will retry with the next change",
    ] {
        assert!(line.contains(reason), "log line lacks {reason:?}: {line}");
    }
    assert!(!stderr.contains(SECRET_KEY), "the secret was logged");
}

async fn manifest_write_scenario() {
    let Rig { s3, proxy, svc } = rig(&[("PARPARCHIK_S3_ATTEMPTS", "2")]).await;
    let seed = s3.client();
    let manifest_before = seed.get(PUBLIC, MANIFEST).await.expect("manifest");
    let failed_before =
        metric_value(&svc, "parparchik_manifest_writes_total{outcome=\"failed\"}").await;

    // PUTs fail; a change is found by /update.
    proxy.set(Fault::InternalError.only("PUT"));
    seed.put(PUBLIC, "new/one.txt", "one").await;
    let (s, v) = svc.get_json("/update?filename=new/one.txt").await;
    assert_eq!(
        s, 200,
        "the file is located even if its manifest is not written: {v}"
    );
    assert_eq!(v["file"]["bucket"], PUBLIC);
    assert!(proxy.faulted() >= 1, "the PUT reached the proxy and failed");
    assert_eq!(
        seed.get(PUBLIC, MANIFEST).await.expect("manifest"),
        manifest_before,
        "a failed write left the manifest as it was"
    );
    let failed = metric_value(&svc, "parparchik_manifest_writes_total{outcome=\"failed\"}").await;
    assert!(failed - failed_before >= 1.0, "failed write counted");
    let put_failures = metric_value(
        &svc,
        "parparchik_s3_requests_total{operation=\"PutObject\",outcome=\"unavailable\"}",
    )
    .await;
    assert!(put_failures >= 2.0, "500 retried: {put_failures}");
    // The registry has it, and serves it.
    let r = svc.get(&route(PUBLIC, "new/one.txt")).await;
    assert_redirects_into(&r, PUBLIC, "new/one.txt");

    // PUTs work again; the next change writes both.
    proxy.set(Fault::Pass);
    seed.put(PUBLIC, "new/two.txt", "two").await;
    let (s, v) = svc.get_json("/update?filename=new/two.txt").await;
    assert_eq!(s, 200, "{v}");
    let keys = seed.manifest_keys(PUBLIC).await;
    for key in ["new/one.txt", "new/two.txt", "pub/a.txt", "pub/b c+d.txt"] {
        assert!(keys.iter().any(|k| k == key), "{key} missing from {keys:?}");
    }
    let ok = metric_value(&svc, "parparchik_manifest_writes_total{outcome=\"ok\"}").await;
    assert!(ok >= 1.0);
    svc.stop().await;
}

/// The pending write of one bucket is retried with a change in another bucket.
#[tokio::test]
async fn failed_manifest_write_is_retried_with_a_change_in_another_bucket() {
    retried_with_another_bucket(&[("PARPARCHIK_S3_ATTEMPTS", "1")]).await;
}

/// The same with journals: the record that failed is written with the other change,
/// and what was saved (manifest plus journal) holds both.
#[tokio::test]
async fn failed_journal_record_is_retried_with_a_change_in_another_bucket() {
    retried_with_another_bucket(&[
        ("PARPARCHIK_S3_ATTEMPTS", "1"),
        ("PARPARCHIK_MANIFEST_COMPACT_INTERVAL", "60"),
    ])
    .await;
}

async fn retried_with_another_bucket(env: &[(&str, &str)]) {
    let Rig { s3, proxy, svc } = rig(env).await;
    let seed = s3.client();
    proxy.set(Fault::InternalError.only("PUT"));
    seed.put(PUBLIC, "late/public.txt", "p").await;
    let (s, _) = svc.get_json("/update?filename=late/public.txt").await;
    assert_eq!(s, 200);
    assert!(
        !seed
            .manifest_keys(PUBLIC)
            .await
            .contains(&"late/public.txt".to_owned())
    );

    proxy.set(Fault::Pass);
    seed.put(PRIVATE, "late/private.txt", "q").await;
    let (s, _) = svc.get_json("/update?filename=late/private.txt").await;
    assert_eq!(s, 200);
    assert!(
        seed.manifest_keys(PRIVATE)
            .await
            .contains(&"late/private.txt".to_owned())
    );
    assert!(
        seed.manifest_keys(PUBLIC)
            .await
            .contains(&"late/public.txt".to_owned()),
        "the public manifest's failed write was retried with the private change"
    );
    svc.stop().await;
}

/// A manifest PUT that S3 carried out but whose answer was cut off: the service retries,
/// loses the compare-and-swap to its own earlier write, re-reads, and converges.
#[tokio::test]
async fn reset_during_a_manifest_write_converges() {
    let Rig { s3, proxy, svc } = rig(&[]).await;
    let seed = s3.client();
    seed.put(PRIVATE, "cut/answer.bin", "x").await;
    let puts = s3.stats().count("PutObject");
    proxy.set(Fault::Reset.only("PUT").times(1));
    let (s, v) = svc.get_json("/update?filename=cut/answer.bin").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(proxy.faulted(), 1, "one PUT was cut off");
    assert!(
        s3.stats().count("PutObject") - puts >= 2,
        "the cut PUT reached S3 and was retried"
    );
    let keys = seed.manifest_keys(PRIVATE).await;
    assert_eq!(keys, ["cut/answer.bin", "priv/x.bin", "priv/y z.bin"]);
    let m = svc.metrics().await;
    assert_eq!(
        metric(&m, "parparchik_manifest_writes_total{outcome=\"failed\"}"),
        Some(0.0),
        "the write ended well"
    );
    assert!(
        metric(&m, "parparchik_manifest_write_conflicts_total").unwrap_or(0.0) >= 1.0,
        "the retried PUT lost the compare-and-swap to the cut one"
    );
    // The next change writes on the ETag the service re-read.
    seed.put(PRIVATE, "cut/next.bin", "y").await;
    let (s, _) = svc.get_json("/update?filename=cut/next.bin").await;
    assert_eq!(s, 200);
    assert!(
        seed.manifest_keys(PRIVATE)
            .await
            .contains(&"cut/next.bin".to_owned())
    );
    svc.stop().await;
}

/// `/relocate` must say when it could not persist (contract: 500).
#[tokio::test]
async fn relocate_reports_a_failed_manifest_write() {
    let Rig { s3, proxy, svc } = rig(&[("PARPARCHIK_S3_ATTEMPTS", "1")]).await;
    let seed = s3.client();
    seed.mv(PUBLIC, PRIVATE, "pub/a.txt").await;
    proxy.set(Fault::InternalError.only("PUT"));
    let (s, v) = svc.post_json("/relocate?filename=pub/a.txt").await;
    assert_eq!(s, 500, "{v}");
    assert_eq!(v["error"], "failed to persist manifests");
    proxy.set(Fault::Pass);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------
// The proxy itself, seen through the project's own S3 client

#[tokio::test]
async fn the_proxy_forwards_and_fails_as_told() {
    use parparchik::metrics::Metrics;
    use parparchik::s3::client::ClientSettings;
    use parparchik::s3::{Endpoint, PutCondition, S3Client, S3Error};
    use parparchik::sigv4::Credentials;

    let s3 = seeded_s3().await;
    let proxy = Proxy::start(s3.addr).await;
    let client = S3Client::new(
        Endpoint::parse(&proxy.endpoint()).expect("endpoint"),
        "us-east-1",
        Credentials::new(common::ACCESS_KEY, SECRET_KEY, None),
        ClientSettings {
            attempts: 1,
            connect_timeout: Duration::from_millis(500),
            timeout: Duration::from_millis(500),
            ..ClientSettings::default()
        },
        Arc::new(Metrics::default()),
    )
    .expect("client");
    let get = || client.get_object(PUBLIC, "pub/a.txt");
    let reason = |r: Result<(bytes::Bytes, String), S3Error>| match r {
        Err(S3Error::Unavailable { reason }) => reason,
        other => panic!("expected unavailable, got {other:?}"),
    };

    // Healthy: every operation goes through, on kept-alive connections.
    let (body, _) = get().await.expect("GET through the proxy");
    assert_eq!(&body[..], b"content of pub/a.txt");
    assert_eq!(
        client
            .head_object(PRIVATE, "priv/x.bin")
            .await
            .expect("HEAD")
            .size,
        "content of priv/x.bin".len() as u64
    );
    let listed = client.list_objects(PUBLIC, |_| {}).await.expect("LIST");
    assert_eq!(listed.len(), 2);
    client
        .put_object(
            PUBLIC,
            "through/proxy.txt",
            "p".into(),
            "text/plain",
            &PutCondition::None,
        )
        .await
        .expect("PUT");
    assert_eq!(proxy.seen(), 4);
    assert_eq!(proxy.faulted(), 0);

    // Answers S3 would give, with S3's error documents.
    proxy.set(Fault::SlowDown);
    let r = reason(get().await);
    assert!(
        r.contains("503 SlowDown: Please reduce your request rate."),
        "{r}"
    );
    assert!(matches!(
        client.head_object(PUBLIC, "pub/a.txt").await,
        Err(S3Error::Unavailable { .. })
    ));
    proxy.set(Fault::InternalError);
    assert!(reason(get().await).contains("500 InternalError"));
    proxy.set(Fault::AccessDenied);
    assert!(matches!(get().await, Err(S3Error::Denied { code, .. }) if code == "AccessDenied"));
    assert_eq!(proxy.faulted(), 4);

    // Per request, per method, per window.
    proxy.set(Fault::InternalError.times(1));
    assert!(get().await.is_err());
    assert!(get().await.is_ok());
    proxy.set(Fault::InternalError.only("PUT"));
    assert!(get().await.is_ok());
    assert!(
        client
            .put_object(PUBLIC, "x", "x".into(), "text/plain", &PutCondition::None)
            .await
            .is_err()
    );
    proxy.set(Fault::SlowDown.lasting(Duration::from_millis(300)));
    assert!(get().await.is_err());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(get().await.is_ok());

    // Flapping: every other request fails.
    proxy.set(Fault::Flapping);
    let outcomes: Vec<bool> = {
        let mut v = Vec::new();
        for _ in 0..6 {
            v.push(get().await.is_ok());
        }
        v
    };
    assert_eq!(outcomes, [true, false, true, false, true, false]);

    // Stalled longer than the client waits: a timeout, and nothing forwarded.
    proxy.set(Fault::Stall(Duration::from_secs(5)));
    let gets = s3.stats().count("GetObject");
    let r = reason(get().await);
    assert!(r.contains("timed out"), "{r}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s3.stats().count("GetObject"), gets);

    // Cut off mid-answer; refused; unreachable; and back.
    proxy.set(Fault::Reset);
    let r = reason(get().await);
    assert!(!r.is_empty());
    proxy.set(Fault::Refuse);
    reason(get().await);
    assert!(proxy.refused() >= 1);
    proxy.set(Fault::Unreachable);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = reason(get().await);
    assert!(r.contains("connection failed"), "{r}");
    proxy.set(Fault::Pass);
    let deadline = Instant::now() + Duration::from_secs(2);
    while get().await.is_err() {
        assert!(Instant::now() < deadline, "the proxy listens again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A server without conditional writes (501 to `If-Match`/`If-None-Match`): the service
/// says so once, in the log and in `/status`, and writes unconditionally from then on
/// rather than never persisting.
#[tokio::test]
async fn a_server_without_conditional_writes_is_reported_not_silently_bypassed() {
    let rig = rig(&[]).await;
    let (s, v) = rig.svc.get_json("/status").await;
    assert_eq!(s, 200);
    assert_eq!(v["conditional_writes"], true);

    rig.s3.client().put(PUBLIC, "new-file.txt", "n").await;
    // The next PUT (the conditional manifest write) is refused as not implemented.
    rig.proxy.set(Fault::NotImplemented.only("PUT").times(1));
    let (s, v) = rig.svc.get_json("/update?filename=new-file.txt").await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = rig.svc.get_json("/status").await;
    assert_eq!(v["conditional_writes"], false, "reported in /status");
    let keys = rig.s3.client().manifest_keys(PUBLIC).await;
    assert!(
        keys.contains(&"new-file.txt".to_owned()),
        "still persisted: {keys:?}"
    );
    assert_eq!(
        metric_value(
            &rig.svc,
            "parparchik_manifest_writes_total{outcome=\"failed\"}"
        )
        .await,
        0.0
    );
}
