//! The HTTP API end to end against the in-process S3 server, following redirects with a
//! real client and downloading the bytes.

use crate::support::common::{self, MANIFEST, PRIVATE, PUBLIC, S3, Service};
use serde_json::json;
use testkit::metric;

/// The Lua edition's end-to-end flow.
#[tokio::test]
async fn lua_edition_flow() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    let svc = Service::ready(&s3).await;
    let key = "reports/2026/q1 summary+final.txt";
    let body = b"hello from the public bucket".to_vec();
    seed.put(PUBLIC, key, body.clone()).await;

    // /update finds it, public, with its route.
    let (status, v) = svc
        .get_json(&format!("/update?filename={}", urlenc(key)))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["message"], "file located");
    assert_eq!(v["file"]["bucket"], PUBLIC);
    assert_eq!(v["file"]["bucket_type"], "public");
    assert_eq!(v["file"]["route"], format!("/{PUBLIC}/{key}"));
    assert_eq!(v["file"]["size"], body.len());
    let lm = v["file"]["last_modified"].as_str().unwrap();
    assert!(lm.ends_with('Z') && lm.len() == 20, "RFC 3339 UTC: {lm}");

    // The route redirects to a plain URL (anonymous read) and the download matches.
    let route = format!("/{PUBLIC}/{}", pathenc(key));
    let r = svc.get(&route).await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        !location.contains("X-Amz-Signature"),
        "public URL is plain: {location}"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    let got = svc.follow.get(svc.url(&route)).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), body);

    // Moved to the private bucket behind the service's back.
    seed.mv(PUBLIC, PRIVATE, key).await;
    let (status, v) = svc.get_json("/list").await;
    assert_eq!(status, 200);
    let files = v["files"].as_array().unwrap();
    let e = files.iter().find(|e| e["key"] == key).expect("listed");
    assert_eq!(e["bucket_type"], "private");
    assert_eq!(e["route"], format!("/{PRIVATE}/{key}"));
    assert_eq!(v["count"], files.len());

    // Old route 404, with the contract's body.
    let (status, v) = svc.get_json(&route).await;
    assert_eq!(status, 404);
    assert_eq!(
        v,
        json!({"error": "file not found", "route": format!("/{PUBLIC}/{key}")})
    );

    // /update shows it private.
    let (status, v) = svc
        .get_json(&format!("/update?filename={}", urlenc(key)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["file"]["bucket_type"], "private");

    // The new route redirects to a presigned URL; the download matches.
    let new_route = format!("/{PRIVATE}/{}", pathenc(key));
    let r = svc.get(&new_route).await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("X-Amz-Signature=") && location.contains("X-Amz-Expires=3600"));
    let got = svc.follow.get(svc.url(&new_route)).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), body);

    // Metrics and the four probe paths.
    let m = svc.metrics().await;
    assert_eq!(
        metric(
            &m,
            &format!("parparchik_volume_files{{volume=\"{PRIVATE}\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &m,
            &format!("parparchik_volume_files{{volume=\"{PUBLIC}\"}}")
        ),
        Some(0.0)
    );
    assert_eq!(metric(&m, "parparchik_duplicate_files"), Some(0.0));
    assert_eq!(metric(&m, "parparchik_uploads_per_week"), Some(1.0));
    for probe in ["/redines", "/readiness", "/helthcheck", "/healthcheck"] {
        assert_eq!(svc.get(probe).await.status(), 200, "{probe}");
    }
    svc.stop().await;
}

/// The C++ edition's manifest scenario.
#[tokio::test]
async fn manifest_scenario() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    let svc = Service::ready(&s3).await;
    seed.put(PRIVATE, "doc.pdf", "pdf").await;
    let (status, _) = svc.get_json("/update?filename=doc.pdf").await;
    assert_eq!(status, 200);
    assert_eq!(seed.manifest_keys(PUBLIC).await, Vec::<String>::new());
    assert_eq!(seed.manifest_keys(PRIVATE).await, vec!["doc.pdf"]);
    let m = seed.manifest(PRIVATE).await.unwrap();
    assert_eq!(m["version"], 1);
    assert_eq!(m["bucket"], PRIVATE);

    seed.mv(PRIVATE, PUBLIC, "doc.pdf").await;
    // Through the private alias: it now lives in a public bucket, so not found there.
    let (status, _) = svc.get_json("/private/doc.pdf").await;
    assert_eq!(status, 404);
    let (status, v) = svc.get_json("/update?filename=doc.pdf").await;
    assert_eq!(status, 200);
    assert_eq!(v["file"]["bucket"], PUBLIC);
    assert_eq!(seed.manifest_keys(PUBLIC).await, vec!["doc.pdf"]);
    assert_eq!(seed.manifest_keys(PRIVATE).await, Vec::<String>::new());
    // And the public alias finds it.
    assert_eq!(svc.get("/public/doc.pdf").await.status(), 302);
    svc.stop().await;
}

#[tokio::test]
async fn status_codes_and_bodies_of_the_contract() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    seed.put(PUBLIC, "a.txt", "a").await;
    seed.put(PUBLIC, "both.txt", "1").await;
    seed.put(PRIVATE, "both.txt", "2").await;
    let svc = Service::ready(&s3).await;

    let (s, v) = svc.get_json("/status").await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["region"], "us-east-1");
    assert_eq!(v["ready"], true);
    assert_eq!(v["file_count"], 2);
    assert_eq!(v["public_bucket"], PUBLIC);
    assert_eq!(v["private_bucket"], PRIVATE);
    assert_eq!(
        v["buckets"],
        json!([{"name": PUBLIC, "manifest_key": MANIFEST, "public": true},
               {"name": PRIVATE, "manifest_key": MANIFEST, "public": false}])
    );

    let (s, v) = svc.get_json("/readiness").await;
    assert_eq!(
        (s, v),
        (
            200,
            json!({"status": "ready", "ready": true, "file_count": 2})
        )
    );
    let (s, v) = svc.get_json("/healthcheck").await;
    assert_eq!((s, v), (200, json!({"status": "ok", "ready": true})));

    // /update errors.
    for q in ["/update", "/update?filename=", "/update?other=1"] {
        let (s, v) = svc.get_json(q).await;
        assert_eq!(
            (s, v),
            (400, json!({"error": "missing 'filename' query parameter"})),
            "{q}"
        );
    }
    let (s, v) = svc.get_json("/update?filename=nope.txt").await;
    assert_eq!(
        (s, v),
        (
            404,
            json!({"error": "file not found", "filename": "nope.txt"})
        )
    );

    // /relocate: POST only; last bucket wins; duplicate note.
    let r = svc.get("/relocate?filename=a.txt").await;
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let (s, v) = svc.post_json("/relocate").await;
    assert_eq!(
        (s, v),
        (400, json!({"error": "missing 'filename' query parameter"}))
    );
    let (s, v) = svc.post_json("/relocate?filename=nope.txt").await;
    assert_eq!(
        (s, v),
        (
            404,
            json!({"status": "fail", "error": "file not found in any bucket", "filename": "nope.txt"})
        )
    );
    let (s, v) = svc.post_json("/relocate?filename=both.txt").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "ok");
    assert_eq!(v["file"]["bucket"], PRIVATE);
    assert_eq!(v["relocated_from"], PUBLIC);
    assert_eq!(v["relocated_to"], PRIVATE);
    assert_eq!(v["duplicate"], true);
    assert_eq!(
        v["note"],
        "file exists in multiple buckets, last configured bucket takes precedence"
    );
    let (s, v) = svc.post_json("/relocate?filename=a.txt").await;
    assert_eq!(s, 200);
    assert!(
        v.get("relocated_from").is_none() && v.get("duplicate").is_none(),
        "{v}"
    );

    // Methods and unknown paths.
    let r = svc.http.post(svc.url("/status")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD");
    let r = svc
        .http
        .delete(svc.url(&format!("/{PUBLIC}/a.txt")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let (s, v) = svc.get_json("/nothing/here").await;
    assert_eq!((s, v), (404, json!({"error": "not found"})));
    let (s, v) = svc.get_json("/").await;
    assert_eq!((s, v), (404, json!({"error": "not found"})));

    let r = svc.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4");
    let m = r.text().await.unwrap();
    assert_eq!(metric(&m, "parparchik_duplicate_files"), Some(1.0));
    svc.stop().await;
}

#[tokio::test]
async fn head_requests_redirect_and_follow() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    seed.put(PUBLIC, "p.bin", vec![7u8; 100]).await;
    seed.put(PRIVATE, "q.bin", vec![8u8; 50]).await;
    let svc = Service::ready(&s3).await;
    for (route, len) in [
        (format!("/{PUBLIC}/p.bin"), 100),
        (format!("/{PRIVATE}/q.bin"), 50),
    ] {
        let r = svc.http.head(svc.url(&route)).send().await.unwrap();
        assert_eq!(r.status(), 302, "{route}");
        let r = svc.follow.head(svc.url(&route)).send().await.unwrap();
        assert_eq!(r.status(), 200, "HEAD following {route}");
        assert_eq!(r.headers()["content-length"], len.to_string().as_str());
    }
    // A presigned GET URL is not valid for HEAD and vice versa: signed per method.
    let get_loc = svc.get(&format!("/{PRIVATE}/q.bin")).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let r = svc.follow.head(&get_loc).send().await.unwrap();
    assert_eq!(r.status(), 403);
    svc.stop().await;
}

#[tokio::test]
async fn special_keys_end_to_end() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    let keys = [
        "with space.txt",
        "plus+sign.txt",
        "percent%41.txt",
        "tilde~(paren)!.txt",
        "ünïcødé/日本語.txt",
        "deep/a/b/c/d/e.txt",
    ];
    for (i, k) in keys.iter().enumerate() {
        let bucket = if i % 2 == 0 { PUBLIC } else { PRIVATE };
        seed.put(bucket, k, format!("body of {k}")).await;
    }
    let svc = Service::ready(&s3).await;
    for (i, k) in keys.iter().enumerate() {
        let bucket = if i % 2 == 0 { PUBLIC } else { PRIVATE };
        let got = svc
            .follow
            .get(svc.url(&format!("/{bucket}/{}", pathenc(k))))
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200, "{k}");
        assert_eq!(got.text().await.unwrap(), format!("body of {k}"));
        let (s, v) = svc
            .get_json(&format!("/update?filename={}", urlenc(k)))
            .await;
        assert_eq!(s, 200, "{k}");
        assert_eq!(v["file"]["key"], *k);
    }
    // The manifests written at start-up hold the keys unchanged.
    let mut all = seed.manifest_keys(PUBLIC).await;
    all.extend(seed.manifest_keys(PRIVATE).await);
    all.sort();
    let mut expected: Vec<String> = keys.iter().map(ToString::to_string).collect();
    expected.sort();
    assert_eq!(all, expected);
    svc.stop().await;
}

#[tokio::test]
async fn bad_keys_are_refused_without_an_s3_call() {
    let s3 = S3::two_buckets().await;
    let svc = Service::ready(&s3).await;
    s3.stats().reset();
    for path in [
        format!("/{PUBLIC}/"),
        format!("/{PUBLIC}/../{PRIVATE}/x"),
        format!("/{PUBLIC}/%2e%2e/{PRIVATE}/x"),
        format!("/{PUBLIC}/./x"),
        format!("/{PUBLIC}/a%00b"),
        format!("/{PUBLIC}/a%zzb"),
        format!("/{PUBLIC}/{}", "k".repeat(1025)),
        "/update?filename=..%2Fx".to_string(),
        "/update?filename=a%01".to_string(),
    ] {
        // Raw, so that no client normalises the dot segments away.
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let (s, body) = common::raw(&svc.base, req.as_bytes())
            .await
            .expect("an answer");
        assert_eq!(s, 400, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
        assert!(v["error"].is_string());
    }
    assert_eq!(s3.stats().total(), 0, "no S3 request for an invalid key");
    svc.stop().await;
}

#[tokio::test]
async fn s3_down_while_serving() {
    let mut s3 = S3::two_buckets().await;
    let seed = s3.client();
    seed.put(PUBLIC, "known.txt", "k").await;
    seed.put(PRIVATE, "secret.txt", "s").await;
    let svc = Service::ready_with(&s3, &[("PARPARCHIK_S3_ATTEMPTS", "1")]).await;
    let manifests_before = (
        seed.get(PUBLIC, MANIFEST).await,
        seed.get(PRIVATE, MANIFEST).await,
    );

    s3.stop().await;
    // Known routes still redirect from the registry.
    assert_eq!(svc.get(&format!("/{PUBLIC}/known.txt")).await.status(), 302);
    assert_eq!(
        svc.get(&format!("/{PRIVATE}/secret.txt")).await.status(),
        302
    );
    // Unknown keys: 503 with Retry-After, not 404.
    let r = svc.get(&format!("/{PUBLIC}/unknown.txt")).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v, json!({"error": "storage unavailable"}));
    let (s, _) = svc.get_json("/update?filename=known.txt").await;
    assert_eq!(s, 503);
    let (s, _) = svc.post_json("/relocate?filename=known.txt").await;
    assert_eq!(s, 503);
    assert_eq!(svc.app.registry.len(), 2, "no entry removed");
    let m = svc.metrics().await;
    assert!(metric(&m, "parparchik_stale_redirects_total").unwrap() >= 2.0);

    s3.restart().await;
    let seed = s3.client();
    assert_eq!(
        (
            seed.get(PUBLIC, MANIFEST).await,
            seed.get(PRIVATE, MANIFEST).await
        ),
        manifests_before
    );
    assert_eq!(svc.get(&format!("/{PUBLIC}/known.txt")).await.status(), 302);
    svc.stop().await;
}

#[tokio::test]
async fn graceful_readiness_before_rebuild() {
    // Nothing listens on this port yet: the service is alive but not ready.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let svc = Service::start(common::two_bucket_env(&format!("http://{addr}"))).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (s, v) = svc.get_json("/readiness").await;
    assert_eq!(
        (s, v),
        (
            503,
            json!({"status": "not_ready", "ready": false, "file_count": 0})
        )
    );
    let (s, v) = svc.get_json("/redines").await;
    assert_eq!(s, 503, "{v}");
    let (s, v) = svc.get_json("/healthcheck").await;
    assert_eq!((s, v), (200, json!({"status": "ok", "ready": false})));
    let (s, v) = svc.get_json("/status").await;
    assert_eq!(s, 200);
    let err = v["storage_error"].as_str().expect("storage_error reported");
    assert!(!err.contains(common::SECRET_KEY));

    // S3 appears on that port: ready without a restart.
    let mut s3 = S3::two_buckets().await;
    s3.stop().await;
    s3.addr = addr;
    s3.restart().await;
    svc.wait_ready(std::time::Duration::from_secs(15)).await;
    assert_eq!(svc.get("/readiness").await.status(), 200);
    svc.stop().await;
}

fn pathenc(key: &str) -> String {
    key.split('/').map(urlenc).collect::<Vec<_>>().join("/")
}

fn urlenc(s: &str) -> String {
    parparchik::sigv4::encode::encode_component(s)
}
