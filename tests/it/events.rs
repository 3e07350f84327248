//! Bucket notifications (`POST /events`, issue #15) end to end: the in-process S3 emits
//! MinIO-format webhook events for every put, copy and delete to the service, which
//! keeps routes fresh without `/update`; hand-made bodies cover duplicates, reordering,
//! replays, authentication and limits.

use std::time::{Duration, Instant};

use crate::support::common::{self, PRIVATE, PUBLIC, S3, Service};
use local_s3::{Delivery, NotifyTarget};
use serde_json::json;
use testkit::metric;

const TOKEN: &str = "events-token-0123456789abcdef";

/// The service with events on, and the S3 server sending them to it.
async fn rig(extra: &[(&str, &str)]) -> (S3, Service) {
    let s3 = S3::two_buckets().await;
    let mut env = vec![("PARPARCHIK_EVENTS_TOKEN", TOKEN)];
    env.extend_from_slice(extra);
    let svc = Service::ready_with(&s3, &env).await;
    s3.server
        .as_ref()
        .expect("S3 running")
        .notifier()
        .set_target(Some(NotifyTarget {
            url: svc.url("/events"),
            token: Some(TOKEN.to_owned()),
        }));
    (s3, svc)
}

fn notifier(s3: &S3) -> &local_s3::Notifier {
    s3.server.as_ref().expect("S3 running").notifier()
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; whether it held.
async fn within(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn registered_in(svc: &Service, key: &str) -> Option<String> {
    svc.app
        .registry
        .get(key)
        .map(|e| svc.app.config.buckets[e.bucket].name.clone())
}

/// A MinIO webhook body about one object.
fn minio_event(name: &str, bucket: &str, key: &str, sequencer: &str) -> String {
    json!({
        "EventName": format!("s3:{name}"),
        "Key": format!("{bucket}/{key}"),
        "Records": [{
            "eventVersion": "2.0", "eventSource": "minio:s3",
            "eventTime": "2026-05-05T10:00:00.000Z", "eventName": format!("s3:{name}"),
            "s3": {"bucket": {"name": bucket}, "object": {"key": key.replace(' ', "+"), "size": 3, "sequencer": sequencer}}
        }]
    })
    .to_string()
}

async fn post(svc: &Service, auth: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, String) {
    let mut req = svc.http.post(svc.url("/events")).body(body);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let r = req.send().await.expect("sent");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

async fn metric_of(svc: &Service, series: &str) -> f64 {
    metric(&svc.metrics().await, series).unwrap_or_else(|| panic!("no {series}"))
}

#[tokio::test]
async fn an_upload_gets_its_route_and_a_delete_loses_it_without_update() {
    let (s3, svc) = rig(&[]).await;
    let seed = s3.client();
    let key = "fresh/a b+c.txt";
    // Asked for before it exists: 404, and the miss is remembered for a while.
    assert_eq!(
        svc.get(&format!("/{PUBLIC}/fresh/a%20b+c.txt"))
            .await
            .status(),
        404
    );
    seed.put(PUBLIC, key, b"hello".to_vec()).await;
    assert!(
        within(Duration::from_secs(1), || registered_in(&svc, key)
            .as_deref()
            == Some(PUBLIC))
        .await,
        "the upload's event registers the route within 1 s"
    );
    // Durable before the event was answered: once answered, the manifest has it.
    assert!(notifier(&s3).idle(Duration::from_secs(5)).await);
    assert_eq!(seed.manifest_keys(PUBLIC).await, vec![key.to_owned()]);
    let r = svc.get(&format!("/{PUBLIC}/fresh/a%20b+c.txt")).await;
    assert_eq!(
        r.status(),
        302,
        "the remembered miss does not hide the upload"
    );
    assert!(
        !svc.app
            .misses
            .is_missing(parparchik::config::BucketId::new(0), key, Instant::now())
    );

    seed.delete(PUBLIC, key).await;
    assert!(
        within(Duration::from_secs(1), || registered_in(&svc, key)
            .is_none())
        .await,
        "the delete's event removes the route within 1 s"
    );
    assert!(notifier(&s3).idle(Duration::from_secs(5)).await);
    assert!(seed.manifest_keys(PUBLIC).await.is_empty());
    assert_eq!(
        svc.get(&format!("/{PUBLIC}/fresh/a%20b+c.txt"))
            .await
            .status(),
        404
    );
    let m = svc.metrics().await;
    assert!(
        metric(
            &m,
            "parparchik_events_total{type=\"created\",outcome=\"applied\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        metric(
            &m,
            "parparchik_events_total{type=\"removed\",outcome=\"applied\"}"
        )
        .unwrap()
            >= 1.0
    );
    // The service's own manifest writes come back as events, and are ignored.
    assert!(within(Duration::from_secs(2), || notifier(&s3).pending() == 0).await);
    assert!(
        metric_of(
            &svc,
            "parparchik_events_total{type=\"created\",outcome=\"own_object\"}"
        )
        .await
            >= 1.0
    );
    assert!(metric_of(&svc, "parparchik_event_lag_seconds_count").await >= 2.0);
    svc.stop().await;
}

#[tokio::test]
async fn with_a_journal_an_event_is_one_small_record() {
    let (s3, svc) = rig(&[("PARPARCHIK_MANIFEST_COMPACT_INTERVAL", "60")]).await;
    let seed = s3.client();
    seed.put(PUBLIC, "journaled.txt", b"j".to_vec()).await;
    assert!(notifier(&s3).idle(Duration::from_secs(5)).await);
    assert_eq!(
        registered_in(&svc, "journaled.txt").as_deref(),
        Some(PUBLIC)
    );
    // Saved before the event was answered, as a journal record beside the manifest.
    assert_eq!(
        seed.manifest_keys(PUBLIC).await,
        vec!["journaled.txt".to_owned()]
    );
    assert!(
        !seed
            .list_keys(
                PUBLIC,
                &format!(
                    "{}{}",
                    common::MANIFEST,
                    parparchik::registry::journal::SUFFIX
                )
            )
            .await
            .is_empty(),
        "a journal record"
    );
    // The records' own notifications are the service's objects: ignored.
    assert!(
        metric_of(
            &svc,
            "parparchik_events_total{type=\"created\",outcome=\"own_object\"}"
        )
        .await
            >= 1.0
    );
    svc.stop().await;
}

#[tokio::test]
async fn a_move_between_buckets_moves_the_route() {
    let (s3, svc) = rig(&[]).await;
    let seed = s3.client();
    let key = "moving.bin";
    seed.put(PUBLIC, key, b"data".to_vec()).await;
    assert!(
        within(Duration::from_secs(1), || registered_in(&svc, key)
            .as_deref()
            == Some(PUBLIC))
        .await
    );
    // Copy to the private bucket, then delete from the public one.
    seed.mv(PUBLIC, PRIVATE, key).await;
    assert!(
        within(Duration::from_secs(1), || registered_in(&svc, key)
            .as_deref()
            == Some(PRIVATE))
        .await,
        "the route follows the file within 1 s"
    );
    assert_eq!(svc.get(&format!("/{PUBLIC}/{key}")).await.status(), 404);
    assert_eq!(svc.get(&format!("/{PRIVATE}/{key}")).await.status(), 302);
    assert!(notifier(&s3).idle(Duration::from_secs(5)).await);
    assert_eq!(seed.manifest_keys(PRIVATE).await, vec![key.to_owned()]);
    assert!(seed.manifest_keys(PUBLIC).await.is_empty());
    svc.stop().await;
}

#[tokio::test]
async fn a_copy_elsewhere_keeps_the_sticky_route() {
    let (s3, svc) = rig(&[]).await;
    let seed = s3.client();
    let key = "sticky.txt";
    seed.put(PRIVATE, key, b"x".to_vec()).await;
    assert!(
        within(Duration::from_secs(1), || registered_in(&svc, key)
            .as_deref()
            == Some(PRIVATE))
        .await
    );
    // A copy appears in the first (priority) bucket: the route does not jump.
    seed.put(PUBLIC, key, b"x".to_vec()).await;
    assert!(
        within(Duration::from_secs(1), || svc
            .app
            .registry
            .duplicate_count()
            == 1)
        .await
    );
    assert_eq!(registered_in(&svc, key).as_deref(), Some(PRIVATE));
    // Its home loses it: the route moves to the bucket that still holds it.
    seed.delete(PRIVATE, key).await;
    assert!(
        within(Duration::from_secs(1), || registered_in(&svc, key)
            .as_deref()
            == Some(PUBLIC))
        .await
    );
    svc.stop().await;
}

#[tokio::test]
async fn duplicate_reordered_and_replayed_events_never_undo_a_newer_state() {
    let (s3, svc) = rig(&[]).await;
    let auth = Some(TOKEN);
    let key = "ordered.txt";
    // The newer creation (sequencer 0C) arrives first, then an older removal (0B).
    let (status, body) = post(
        &svc,
        auth,
        minio_event("ObjectCreated:Put", PUBLIC, key, "0C"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(registered_in(&svc, key).as_deref(), Some(PUBLIC));
    let (status, _) = post(
        &svc,
        auth,
        minio_event("ObjectRemoved:Delete", PUBLIC, key, "00B"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        registered_in(&svc, key).as_deref(),
        Some(PUBLIC),
        "an older removal changes nothing"
    );
    // The same creation again (a redelivery): stale, nothing changes.
    let (status, _) = post(
        &svc,
        auth,
        minio_event("ObjectCreated:Put", PUBLIC, key, "000C"),
    )
    .await;
    assert_eq!(status, 200);
    let stale = metric_of(
        &svc,
        "parparchik_events_total{type=\"created\",outcome=\"stale\"}",
    )
    .await;
    assert_eq!(stale, 1.0);
    assert_eq!(
        metric_of(
            &svc,
            "parparchik_events_total{type=\"removed\",outcome=\"stale\"}"
        )
        .await,
        1.0
    );
    // A newer removal applies: S3 proves the object missing, the route goes.
    let (status, _) = post(
        &svc,
        auth,
        minio_event("ObjectRemoved:Delete", PUBLIC, key, "0D"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(registered_in(&svc, key), None);

    // A real upload and delete, then the upload's event replayed (an old sequencer).
    let seed = s3.client();
    seed.put(PUBLIC, "replayed.txt", b"r".to_vec()).await;
    seed.delete(PUBLIC, "replayed.txt").await;
    assert!(notifier(&s3).idle(Duration::from_secs(5)).await);
    assert_eq!(registered_in(&svc, "replayed.txt"), None);
    let (status, _) = post(
        &svc,
        auth,
        minio_event(
            "ObjectCreated:Put",
            PUBLIC,
            "replayed.txt",
            "0000000000000001",
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        registered_in(&svc, "replayed.txt"),
        None,
        "a replayed old event is ignored"
    );

    // Unknown buckets and the service's own manifest objects are ignored and counted.
    let (status, _) = post(
        &svc,
        auth,
        minio_event("ObjectCreated:Put", "elsewhere", "k", "1"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(
        &svc,
        auth,
        minio_event("ObjectRemoved:Delete", PUBLIC, common::MANIFEST, "1"),
    )
    .await;
    assert_eq!(status, 200);
    let m = svc.metrics().await;
    assert_eq!(
        metric(
            &m,
            "parparchik_events_total{type=\"created\",outcome=\"unknown_bucket\"}"
        ),
        Some(1.0)
    );
    assert!(
        metric(
            &m,
            "parparchik_events_total{type=\"removed\",outcome=\"own_object\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(registered_in(&svc, "k"), None);
    svc.stop().await;
}

#[tokio::test]
async fn aws_s3_json_and_sns_envelopes_are_understood() {
    let (_s3, svc) = rig(&[]).await;
    let s3_json = json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventTime": "2026-05-05T10:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": PRIVATE}, "object": {"key": "caf%C3%A9+menu.pdf", "size": 10, "eTag": "e", "sequencer": "0055AED6DCD90281E5"}}
    }]});
    let (status, body) = post(&svc, Some(&format!("Bearer {TOKEN}")), s3_json.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        registered_in(&svc, "café menu.pdf").as_deref(),
        Some(PRIVATE)
    );
    let entry = svc.app.registry.get("café menu.pdf").unwrap();
    assert_eq!(entry.size, 10);
    assert_eq!(entry.last_modified(), "2026-05-05T10:00:00Z");

    // The same S3 JSON inside an SNS notification (SNS mode off: the token vouches).
    let removed = json!({"Records": [{"eventName": "ObjectRemoved:Delete", "eventTime": "2026-05-05T10:00:01.000Z",
        "s3": {"bucket": {"name": PRIVATE}, "object": {"key": "caf%C3%A9+menu.pdf", "sequencer": "0055AED6DCD90281E6"}}}]});
    let envelope = json!({"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t",
        "Message": removed.to_string(), "Timestamp": "2026-05-05T10:00:01.000Z"});
    let (status, body) = post(&svc, Some(TOKEN), envelope.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(registered_in(&svc, "café menu.pdf"), None);

    // A subscription confirmation is not followed while SNS mode is off.
    let confirmation = json!({"Type": "SubscriptionConfirmation", "MessageId": "m", "Token": "t",
        "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": "confirm",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription", "Timestamp": "2026-05-05T10:00:01.000Z"});
    let (status, _) = post(&svc, Some(TOKEN), confirmation.to_string()).await;
    assert_eq!(status, 403);
    svc.stop().await;
}

#[tokio::test]
async fn sns_mode_refuses_foreign_urls_and_bad_signatures() {
    let (_s3, svc) = rig(&[("PARPARCHIK_EVENTS_SNS_HOSTS", "sns.*.amazonaws.com")]).await;
    let confirmation = |url: &str| {
        json!({"Type": "SubscriptionConfirmation", "MessageId": "m", "Token": "t",
            "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": "confirm", "SubscribeURL": url,
            "Timestamp": "2026-05-05T10:00:01.000Z", "SignatureVersion": "2", "Signature": "AAAA",
            "SigningCertURL": "https://evil.example/cert.pem"})
        .to_string()
    };
    // Neither URL is fetched: the hosts are not allowed.
    for url in [
        "https://evil.example/?Action=ConfirmSubscription",
        "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
    ] {
        let (status, body) = post(&svc, Some(TOKEN), confirmation(url)).await;
        assert_eq!(status, 403, "{url}: {body}");
    }
    // A notification whose signature cannot be checked is refused, records unapplied.
    let envelope = json!({"Type": "Notification", "MessageId": "m", "TopicArn": "t",
        "Message": minio_event("ObjectCreated:Put", PUBLIC, "unsigned.txt", "1"),
        "Timestamp": "2026-05-05T10:00:01.000Z", "SignatureVersion": "1", "Signature": "AAAA",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem"});
    let (status, _) = post(&svc, Some(TOKEN), envelope.to_string()).await;
    assert_eq!(status, 403);
    assert_eq!(registered_in(&svc, "unsigned.txt"), None);
    assert_eq!(
        metric_of(&svc, "parparchik_sns_messages_refused_total").await,
        4.0
    );
    svc.stop().await;
}

/// A CA (made trusted in the service) and an RSA leaf for `host`; signs SNS messages.
fn sns_signer(
    host: &str,
) -> (
    rustls_pki_types::TrustAnchor<'static>,
    String,
    ring::signature::RsaKeyPair,
) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    use rustls_pki_types::pem::PemObject;
    const RSA_KEY: &str = include_str!("../../src/events/testdata/sns-test-rsa-key.pem");
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::from_pkcs8_pem_and_sign_algo(RSA_KEY, &rcgen::PKCS_RSA_SHA256).unwrap();
    let leaf = CertificateParams::new(vec![host.to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let anchor = webpki::anchor_from_trusted_cert(ca_cert.der())
        .unwrap()
        .to_owned();
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(RSA_KEY.as_bytes()).unwrap();
    let key = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
    (anchor, leaf.pem(), key)
}

#[tokio::test]
async fn sns_mode_applies_signed_notifications_only() {
    use base64::Engine as _;
    let (_s3, svc) = rig(&[("PARPARCHIK_EVENTS_SNS_HOSTS", "sns.*.amazonaws.com")]).await;
    let host = "sns.eu-west-1.amazonaws.com";
    let cert_url = format!("https://{host}/SimpleNotificationService-test.pem");
    let (anchor, leaf_pem, key) = sns_signer(host);
    // The certificate as if fetched before, and its CA trusted: no network here.
    svc.app.events.set_sns_roots(vec![anchor]);
    svc.app.events.remember_sns_cert(&cert_url, leaf_pem.into());
    let message = minio_event("ObjectCreated:Put", PUBLIC, "signed.txt", "1");
    let topic = "arn:aws:sns:eu-west-1:123456789012:parparchik";
    let timestamp = "2026-05-05T10:00:01.000Z";
    let text = format!(
        "Message\n{message}\nMessageId\nm-1\nTimestamp\n{timestamp}\nTopicArn\n{topic}\nType\nNotification\n"
    );
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        text.as_bytes(),
        &mut sig,
    )
    .unwrap();
    let envelope = |message: &str| {
        json!({"Type": "Notification", "MessageId": "m-1", "TopicArn": topic, "Message": message,
            "Timestamp": timestamp, "SignatureVersion": "2",
            "Signature": base64::engine::general_purpose::STANDARD.encode(&sig), "SigningCertURL": cert_url})
        .to_string()
    };
    // A message changed after signing is refused, its records unapplied.
    let forged = minio_event("ObjectCreated:Put", PUBLIC, "forged.txt", "1");
    let (status, _) = post(&svc, Some(TOKEN), envelope(&forged)).await;
    assert_eq!(status, 403);
    assert_eq!(registered_in(&svc, "forged.txt"), None);
    let (status, body) = post(&svc, Some(TOKEN), envelope(&message)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(registered_in(&svc, "signed.txt").as_deref(), Some(PUBLIC));
    svc.stop().await;
}

#[tokio::test]
async fn authentication_and_limits() {
    let (_s3, svc) = rig(&[
        ("PARPARCHIK_EVENTS_MAX_BYTES", "2048"),
        ("PARPARCHIK_API_KEYS", "api-key-1"),
    ])
    .await;
    let body = minio_event("ObjectCreated:Put", PUBLIC, "auth.txt", "1");
    for bad in [
        None,
        Some("wrong-token-0123456789abcdef"),
        Some("Bearer nope"),
        Some("api-key-1"),
    ] {
        let (status, _) = post(&svc, bad, body.clone()).await;
        assert_eq!(status, 401, "{bad:?}");
    }
    // The challenge SNS needs before it sends the Basic credentials of its URL.
    let r = svc
        .http
        .post(svc.url("/events"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["www-authenticate"],
        "Basic realm=\"parparchik events\""
    );
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("sns:{TOKEN}")
        )
    );
    let (status, _) = post(
        &svc,
        Some(&basic),
        minio_event("ObjectCreated:Put", PUBLIC, "basic.txt", "1"),
    )
    .await;
    assert_eq!(status, 200, "the token as the Basic password (SNS)");
    assert_eq!(registered_in(&svc, "auth.txt"), None);
    // The bare token (MinIO's auth_token) works, and needs no API key.
    let (status, _) = post(&svc, Some(TOKEN), body.clone()).await;
    assert_eq!(status, 200);
    // Malformed: 400, nothing applied.
    for malformed in ["{", "[]", "{\"Records\": 3}", "not json"] {
        let (status, _) = post(&svc, Some(TOKEN), malformed).await;
        assert_eq!(status, 400, "{malformed}");
    }
    // Oversized: 413, with or without a declared length.
    let big = format!("{{\"Records\":[],\"pad\":\"{}\"}}", "x".repeat(4096));
    let (status, _) = post(&svc, Some(TOKEN), big.clone()).await;
    assert_eq!(status, 413);
    let mut chunked = format!(
        "POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: {TOKEN}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for chunk in big.as_bytes().chunks(1000) {
        chunked.push_str(&format!(
            "{:x}\r\n{}\r\n",
            chunk.len(),
            String::from_utf8_lossy(chunk)
        ));
    }
    chunked.push_str("0\r\n\r\n");
    let (status, _) = common::raw(&svc.base, chunked.as_bytes())
        .await
        .expect("an answer");
    assert_eq!(status, 413, "a chunked body is cut at the limit too");
    // Other methods: 405.
    let r = svc
        .http
        .get(svc.url("/events"))
        .header("authorization", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let m = svc
        .http
        .get(svc.url("/metrics"))
        .header("x-api-key", "api-key-1")
        .send()
        .await
        .unwrap();
    let m = m.text().await.unwrap();
    assert!(
        metric(
            &m,
            "parparchik_http_requests_total{endpoint=\"events\",status=\"401\"}"
        )
        .unwrap()
            >= 4.0
    );
    svc.stop().await;
}

#[tokio::test]
async fn off_without_a_token() {
    let s3 = S3::two_buckets().await;
    let svc = Service::ready(&s3).await;
    let (status, body) = post(
        &svc,
        Some(TOKEN),
        minio_event("ObjectCreated:Put", PUBLIC, "k", "1"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({"error": "not found"})
    );
    let (_, status) = svc.get_json("/status").await;
    assert_eq!(status["events"]["enabled"], false);
    assert_eq!(status["events_trusted"], false);
    svc.stop().await;
}

#[tokio::test]
async fn flowing_events_spare_s3_and_lost_events_fall_back_to_verifying() {
    let (s3, svc) = rig(&[]).await;
    let seed = s3.client();
    for i in 0..5 {
        seed.put(PUBLIC, &format!("f{i}.txt"), b"x".to_vec()).await;
    }
    assert!(notifier(&s3).idle(Duration::from_secs(5)).await);
    let (_, status) = svc.get_json("/status").await;
    assert_eq!(
        status["events_trusted"], false,
        "no sync has agreed with the events yet"
    );
    assert_eq!(svc.get_json("/list").await.0, 200);
    let (_, status) = svc.get_json("/status").await;
    assert_eq!(
        status["events"]["buckets"][PUBLIC]["trusted"], true,
        "{status}"
    );
    assert_eq!(
        status["events"]["buckets"][PRIVATE]["trusted"], false,
        "no event about the private bucket yet: nothing shows its events are set up"
    );
    assert_eq!(
        status["events_trusted"], false,
        "trusted means every bucket"
    );
    seed.put(PRIVATE, "p.txt", b"p".to_vec()).await;
    assert!(notifier(&s3).idle(Duration::from_secs(5)).await);
    // A sync that finds nothing the events had not told: trusted.
    assert_eq!(svc.get_json("/list").await.0, 200);
    let (_, status) = svc.get_json("/status").await;
    assert_eq!(status["events_trusted"], true, "{status}");
    assert_eq!(status["events"]["buckets"][PUBLIC]["trusted"], true);
    assert!(status["last_event_age_s"].as_f64().is_some());
    assert_eq!(
        metric_of(
            &svc,
            &format!("parparchik_events_trusted{{bucket=\"{PUBLIC}\"}}")
        )
        .await,
        1.0
    );

    // Redirects now cost no S3 call.
    let heads = s3.stats().count("HeadObject");
    for i in 0..5 {
        assert_eq!(svc.get(&format!("/{PUBLIC}/f{i}.txt")).await.status(), 302);
    }
    assert_eq!(
        s3.stats().count("HeadObject"),
        heads,
        "served from the registry"
    );
    let m = svc.metrics().await;
    assert_eq!(metric(&m, "parparchik_redirects_total"), Some(5.0));
    assert_eq!(metric(&m, "parparchik_redirect_s3_calls_total"), Some(0.0));

    // Events get lost: a file appears that no event tells of.
    notifier(&s3).set_delivery(Delivery::Drop);
    seed.put(PUBLIC, "unannounced.txt", b"u".to_vec()).await;
    seed.delete(PUBLIC, "f0.txt").await;
    assert_eq!(registered_in(&svc, "unannounced.txt"), None);
    // The sync backstop converges, and sees that the events missed it.
    assert_eq!(svc.get_json("/list").await.0, 200);
    assert_eq!(
        registered_in(&svc, "unannounced.txt").as_deref(),
        Some(PUBLIC)
    );
    assert_eq!(registered_in(&svc, "f0.txt"), None);
    let (_, status) = svc.get_json("/status").await;
    assert_eq!(status["events_trusted"], false, "{status}");
    assert_eq!(status["events"]["buckets"][PUBLIC]["missed_syncs"], 1);
    assert_eq!(
        metric_of(&svc, "parparchik_events_missed_syncs_total").await,
        1.0
    );
    // Verification falls back: every redirect asks S3 again.
    let heads = s3.stats().count("HeadObject");
    for i in 1..5 {
        assert_eq!(svc.get(&format!("/{PUBLIC}/f{i}.txt")).await.status(), 302);
    }
    assert_eq!(s3.stats().count("HeadObject"), heads + 4);
    let m = svc.metrics().await;
    assert_eq!(metric(&m, "parparchik_redirects_total"), Some(9.0));
    assert_eq!(
        metric(&m, "parparchik_redirect_s3_calls_total"),
        Some(4.0),
        "one HEAD for each verified redirect"
    );

    // Events flow again and a sync agrees: trusted again.
    notifier(&s3).set_delivery(Delivery::Deliver);
    seed.put(PUBLIC, "again.txt", b"a".to_vec()).await;
    assert!(
        within(Duration::from_secs(1), || registered_in(&svc, "again.txt")
            .is_some())
        .await
    );
    assert_eq!(svc.get_json("/list").await.0, 200);
    assert_eq!(svc.get_json("/status").await.1["events_trusted"], true);
    svc.stop().await;
}

#[tokio::test]
async fn the_periodic_sync_is_the_backstop_for_lost_events() {
    let (s3, svc) = rig(&[("PARPARCHIK_SYNC_INTERVAL", "0.5")]).await;
    notifier(&s3).set_delivery(Delivery::Drop);
    s3.client()
        .put(PRIVATE, "lost-event.txt", b"l".to_vec())
        .await;
    assert!(
        within(Duration::from_secs(10), || registered_in(
            &svc,
            "lost-event.txt"
        )
        .is_some())
        .await,
        "the periodic sync registers what no event told"
    );
    assert!(notifier(&s3).counts().dropped >= 1);
    svc.stop().await;
}

#[tokio::test]
async fn delayed_events_still_arrive_in_order() {
    let (s3, svc) = rig(&[]).await;
    notifier(&s3).set_delivery(Delivery::Delay(Duration::from_millis(300)));
    let seed = s3.client();
    seed.put(PUBLIC, "late.txt", b"1".to_vec()).await;
    seed.delete(PUBLIC, "late.txt").await;
    seed.put(PUBLIC, "late.txt", b"22".to_vec()).await;
    assert_eq!(registered_in(&svc, "late.txt"), None, "not told yet");
    assert!(notifier(&s3).idle(Duration::from_secs(5)).await);
    assert_eq!(registered_in(&svc, "late.txt").as_deref(), Some(PUBLIC));
    assert_eq!(svc.app.registry.get("late.txt").unwrap().size, 2);
    svc.stop().await;
}
