//! `/browse/` served by the service: the registry's folders and files as HTML with a
//! per-response nonce in its policy, the same API-key rule as `/list`, and off when
//! `PARPARCHIK_BROWSE=off`. (The page in a real browser: the e2e suite.)

use crate::support::common::{PRIVATE, PUBLIC, S3, Service};

async fn seeded() -> S3 {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    seed.put(PUBLIC, "docs/guide one.txt", "guide").await;
    seed.put(PUBLIC, "docs/deep/x.bin", "x").await;
    seed.put(PRIVATE, "docs/secret.txt", "s").await;
    seed.put(PUBLIC, "<img src=x onerror=alert(1)>.txt", "h")
        .await;
    seed.put(PRIVATE, "top.txt", "t").await;
    s3
}

fn nonce_of(policy: &str) -> &str {
    let start = policy.find("script-src 'nonce-").expect("a script nonce") + 18;
    let len = policy[start..].find('\'').expect("closing quote");
    &policy[start..start + len]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_files_links_and_the_policy() {
    let s3 = seeded().await;
    let svc = Service::ready(&s3).await;

    let r = svc.get("/browse/").await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let policy = h["content-security-policy"].to_str().unwrap().to_owned();
    let nonce = nonce_of(&policy).to_owned();
    assert_eq!(nonce.len(), 32);
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!("<script nonce=\"{nonce}\">")));
    assert!(
        html.contains("<a href=\"/browse/docs/\">docs/</a>"),
        "{html}"
    );
    assert!(html.contains(&format!(
        "<a class=\"file\" href=\"/{PRIVATE}/top.txt\">top.txt</a>"
    )));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;.txt"));
    assert!(!html.contains("<img"));
    assert!(html.contains("3 entries; showing 1–3."), "{html}");

    // Every response has its own nonce.
    let again = svc.get("/browse/").await;
    let other = again.headers()["content-security-policy"].to_str().unwrap();
    assert_ne!(nonce_of(other), nonce);

    let r = svc.get("/browse/docs/").await;
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<a href=\"/browse/docs/deep/\">deep/</a>"),
        "{html}"
    );
    assert!(html.contains(&format!(
        "<a class=\"file\" href=\"/{PUBLIC}/docs/guide%20one.txt\">guide one.txt</a>"
    )));
    assert!(html.contains(&format!("href=\"/{PRIVATE}/docs/secret.txt\"")));

    // The filter without JavaScript: the server lists what matches.
    let html = svc.get("/browse/docs?q=GUIDE").await.text().await.unwrap();
    assert!(
        html.contains("guide one.txt") && !html.contains("secret.txt"),
        "{html}"
    );

    // The links lead where the page says: the stable route redirects to the object.
    let r = svc
        .follow
        .get(svc.url(&format!("/{PUBLIC}/docs/guide%20one.txt")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "guide");

    assert_eq!(svc.get("/browse/?q=%0a").await.status(), 400);
    // The cursor: what follows `docs/` at the root is the two files.
    let html = svc
        .get("/browse/?after=docs%2F")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("3 entries; showing 2–3."), "{html}");
    assert_eq!(svc.get("/browse/%zz/").await.status(), 400);
    let metrics = svc.metrics().await;
    assert!(
        metrics.contains("parparchik_http_requests_total{endpoint=\"browse\",status=\"200\"}"),
        "{metrics}"
    );
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_and_the_off_switch() {
    let s3 = seeded().await;
    let svc = Service::ready_with(&s3, &[("PARPARCHIK_API_KEYS", "k-1")]).await;
    assert_eq!(svc.get("/browse/").await.status(), 401);
    let r = svc
        .http
        .get(svc.url("/browse/"))
        .header("x-api-key", "k-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    svc.stop().await;

    let svc = Service::ready_with(&s3, &[("PARPARCHIK_BROWSE", "off")]).await;
    assert_eq!(svc.get("/browse/").await.status(), 404);
    assert_eq!(svc.get("/browse/docs/").await.status(), 404);
    svc.stop().await;
}
