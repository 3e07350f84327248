//! The rate limit against real requests: failed authentication keeps its own budget, and
//! `X-Forwarded-For` names the client only when a trusted proxy sends it. (The bounds of
//! the limiter's map are unit tests in `src/http/access.rs`.)

use crate::support::common::{S3, Service};

async fn status(svc: &Service, key: Option<&str>, forwarded: Option<&str>) -> u16 {
    let mut r = svc.http.get(svc.url("/status"));
    if let Some(k) = key {
        r = r.header("x-api-key", k);
    }
    if let Some(f) = forwarded {
        r = r.header("x-forwarded-for", f);
    }
    r.send().await.expect("answer").status().as_u16()
}

/// Three requests without a valid key from an address do not use up the budget of a
/// client with a valid key behind the same address; the failures are limited on their
/// own.
#[tokio::test]
async fn unauthorized_requests_do_not_use_up_a_valid_clients_budget() {
    let s3 = S3::two_buckets().await;
    let svc = Service::ready_with(
        &s3,
        &[
            ("PARPARCHIK_API_KEYS", "good-key"),
            ("PARPARCHIK_RATE_LIMIT_PER_SECOND", "0.01"),
            ("PARPARCHIK_RATE_LIMIT_BURST", "3"),
        ],
    )
    .await;
    assert_eq!(status(&svc, None, None).await, 401);
    assert_eq!(status(&svc, Some("wrong"), None).await, 401);
    assert_eq!(status(&svc, None, None).await, 401);
    for _ in 0..3 {
        assert_eq!(status(&svc, Some("good-key"), None).await, 200);
    }
    assert_eq!(
        status(&svc, Some("good-key"), None).await,
        429,
        "its own budget"
    );
    // Guessing keys stays limited.
    assert_eq!(status(&svc, Some("guess"), None).await, 429);
    svc.stop().await;
}

/// Behind a trusted proxy every forwarded client has its own budget; from a peer that
/// is not trusted, the header is ignored (anyone could send it).
#[tokio::test]
async fn forwarded_for_is_honoured_only_from_trusted_proxies() {
    let s3 = S3::two_buckets().await;
    let limit = [
        ("PARPARCHIK_RATE_LIMIT_PER_SECOND", "0.01"),
        ("PARPARCHIK_RATE_LIMIT_BURST", "1"),
    ];
    let mut trusted_env = limit.to_vec();
    trusted_env.push(("PARPARCHIK_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1/32"));
    let trusted = Service::ready_with(&s3, &trusted_env).await;
    assert_eq!(status(&trusted, None, Some("198.51.100.1")).await, 200);
    assert_eq!(status(&trusted, None, Some("198.51.100.1")).await, 429);
    assert_eq!(status(&trusted, None, Some("198.51.100.2")).await, 200);
    // The right-most untrusted hop counts; what a client wrote before it does not.
    assert_eq!(
        status(&trusted, None, Some("203.0.113.7, 198.51.100.2, 10.1.2.3")).await,
        429
    );
    assert_eq!(
        status(&trusted, None, Some("198.51.100.1, 198.51.100.3")).await,
        200
    );
    trusted.stop().await;

    let mut untrusted_env = limit.to_vec();
    untrusted_env.push(("PARPARCHIK_TRUSTED_PROXIES", "10.0.0.0/8"));
    let untrusted = Service::ready_with(&s3, &untrusted_env).await;
    assert_eq!(status(&untrusted, None, Some("198.51.100.1")).await, 200);
    assert_eq!(
        status(&untrusted, None, Some("198.51.100.2")).await,
        429,
        "the peer's own budget, whatever the header says"
    );
    untrusted.stop().await;
}
