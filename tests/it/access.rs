//! Access control: API keys and the per-client rate limit (both off by default).

use crate::support::common::{PUBLIC, S3, Service};
use serde_json::json;

#[tokio::test]
async fn api_keys_guard_everything_but_the_probes() {
    let s3 = S3::two_buckets().await;
    s3.client().put(PUBLIC, "f.txt", "x").await;
    let svc = Service::ready_with(&s3, &[("PARPARCHIK_API_KEYS", "key-one,key-two")]).await;

    for path in ["/healthcheck", "/helthcheck", "/readiness", "/redines"] {
        assert_eq!(svc.get(path).await.status(), 200, "{path} needs no key");
    }
    s3.stats().reset();
    for path in [
        "/status",
        "/list",
        "/metrics",
        "/update?filename=f.txt",
        "/public-bucket/f.txt",
    ] {
        let (s, v) = svc.get_json(path).await;
        assert_eq!((s, v), (401, json!({"error": "unauthorized"})), "{path}");
    }
    assert_eq!(s3.stats().total(), 0, "refused requests never reach S3");
    let wrong = svc
        .http
        .get(svc.url("/status"))
        .header("x-api-key", "key-on")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let r = svc
        .http
        .get(svc.url("/public-bucket/f.txt"))
        .header("x-api-key", "key-two")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let r = svc
        .http
        .get(svc.url("/status"))
        .header("authorization", "Bearer key-one")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = svc
        .http
        .post(svc.url("/relocate?filename=f.txt"))
        .header("authorization", "Bearer key-one")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    svc.stop().await;
}

#[tokio::test]
async fn rate_limit_answers_429_per_client() {
    let s3 = S3::two_buckets().await;
    let svc = Service::ready_with(
        &s3,
        &[
            ("PARPARCHIK_RATE_LIMIT_PER_SECOND", "1"),
            ("PARPARCHIK_RATE_LIMIT_BURST", "3"),
        ],
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(svc.get("/status").await.status().as_u16());
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert_eq!(statuses[4], 429);
    let (s, v) = svc.get_json("/status").await;
    assert_eq!((s, v), (429, json!({"error": "rate limit exceeded"})));
    // Probes are never limited.
    assert_eq!(svc.get("/healthcheck").await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(svc.get("/status").await.status(), 200, "the bucket refills");
    svc.stop().await;
}
