//! The redirect hot path: the verification window.

use std::time::Duration;

use crate::support::common::{PRIVATE, PUBLIC, S3, Service};

#[tokio::test]
async fn verification_window_skips_s3_inside_and_checks_after() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    seed.put(PUBLIC, "hot.txt", "x").await;
    seed.put(PRIVATE, "hot-private.txt", "y").await;
    let svc = Service::ready_with(&s3, &[("PARPARCHIK_VERIFY_TTL", "1")]).await;

    for route in [
        format!("/{PUBLIC}/hot.txt"),
        format!("/{PRIVATE}/hot-private.txt"),
    ] {
        // The start-up listing does not count as a confirmation: the first request checks.
        s3.stats().reset();
        assert_eq!(svc.get(&route).await.status(), 302);
        assert_eq!(
            s3.stats().count("HeadObject"),
            1,
            "{route}: first request asks S3"
        );

        // Inside the window: no S3 call at all.
        s3.stats().reset();
        for _ in 0..5 {
            assert_eq!(svc.get(&route).await.status(), 302);
        }
        assert_eq!(
            s3.stats().total(),
            0,
            "{route}: inside the window S3 is not asked"
        );

        // After it: checked again.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        s3.stats().reset();
        assert_eq!(svc.get(&route).await.status(), 302);
        assert_eq!(
            s3.stats().count("HeadObject"),
            1,
            "{route}: after the window S3 is asked"
        );
    }
    svc.stop().await;
}

#[tokio::test]
async fn without_a_window_every_request_checks() {
    let s3 = S3::two_buckets().await;
    s3.client().put(PUBLIC, "f.txt", "x").await;
    let svc = Service::ready(&s3).await;
    s3.stats().reset();
    for _ in 0..3 {
        assert_eq!(svc.get(&format!("/{PUBLIC}/f.txt")).await.status(), 302);
    }
    assert_eq!(s3.stats().count("HeadObject"), 3);
    svc.stop().await;
}

#[tokio::test]
async fn a_window_never_hides_a_route_mismatch() {
    let s3 = S3::two_buckets().await;
    s3.client().put(PUBLIC, "f.txt", "x").await;
    let svc = Service::ready_with(&s3, &[("PARPARCHIK_VERIFY_TTL", "60")]).await;
    assert_eq!(svc.get(&format!("/{PUBLIC}/f.txt")).await.status(), 302);
    // Same key, other bucket's route: 404 from the registry, no redirect into the public bucket.
    let (s, _) = svc.get_json(&format!("/{PRIVATE}/f.txt")).await;
    assert_eq!(s, 404);
    svc.stop().await;
}
