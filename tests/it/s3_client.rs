//! The project's S3 client (its own SigV4 signer) against the in-process S3 server, which
//! verifies every signature. Objects are seeded and checked with the harness's
//! independent client (`rusty-s3`), so neither side can hide a bug of the other.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::common::{self, PRIVATE, PUBLIC, S3};
use bytes::Bytes;
use parparchik::metrics::{Metrics, S3Op};
use parparchik::s3::client::ClientSettings;
use parparchik::s3::{Endpoint, PutCondition, S3Client, S3Error};
use parparchik::sigv4::Credentials;

/// A client of `endpoint` signing with `secret`, and the metrics it records into.
fn client_with(endpoint: &str, secret: &str) -> (S3Client, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    let client = S3Client::new(
        Endpoint::parse(endpoint).expect("endpoint parses"),
        "us-east-1",
        Credentials::new(common::ACCESS_KEY, secret, None),
        ClientSettings::default(),
        Arc::clone(&metrics),
    )
    .expect("client builds");
    (client, metrics)
}

fn client(s3: &S3) -> (S3Client, Arc<Metrics>) {
    client_with(&s3.endpoint(), common::SECRET_KEY)
}

/// `YYYY-MM-DDTHH:MM:SSZ`, and within a few minutes of now (the object was just written).
fn assert_fresh_rfc3339(value: &str) {
    common::assert_rfc3339_utc(value);
    let t = parparchik::timefmt::parse(value).expect("parses");
    let age = (time::OffsetDateTime::now_utc() - t).abs();
    assert!(
        age < time::Duration::minutes(5),
        "{value} is {age} away from now"
    );
}

/// A port on which nothing listens (bound, then released).
fn free_port_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}")
}

const AWKWARD_KEYS: &[&str] = &[
    "with space.txt",
    "plus+sign.txt",
    "percent%20literal.txt",
    "100%.txt",
    "tilde~file.txt",
    "paren(1).txt",
    "bang!.txt",
    "ünïcødé/файл 日本語.txt",
    "deep/a/b/c/d/e/f/g/h/file.txt",
    "amp&ersand.txt",
    "eq=ual.txt",
    "question?mark.txt",
    "hash#tag.txt",
    "quote'.txt",
    "star*.txt",
    "semi;colon.txt",
    "comma,.txt",
    "at@sign.txt",
    "dollar$.txt",
    "dir with space/all !$&'()*+,;=@#?%~ of them.txt",
];

#[tokio::test]
async fn awkward_keys_head_list_and_get() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    let body = |k: &str| format!("body of {k}").into_bytes();
    for key in AWKWARD_KEYS {
        seed.put(PRIVATE, key, body(key)).await;
    }
    let (c, _) = client(&s3);

    let mut heads = BTreeMap::new();
    for key in AWKWARD_KEYS {
        let meta = c
            .head_object(PRIVATE, key)
            .await
            .unwrap_or_else(|e| panic!("HEAD {key:?}: {e}"));
        assert_eq!(meta.size, body(key).len() as u64, "{key:?}");
        assert_fresh_rfc3339(&meta.last_modified);
        assert!(!meta.etag.is_empty(), "{key:?} has an ETag");
        heads.insert(key.to_string(), meta);
    }

    let listed = c.list_objects(PRIVATE, |_| {}).await.expect("listing");
    let listed: BTreeMap<String, _> = listed.into_iter().map(|o| (o.key.clone(), o)).collect();
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        heads.keys().collect::<Vec<_>>(),
        "every key listed once, unchanged"
    );
    for (key, o) in &listed {
        let head = &heads[key];
        assert_eq!(o.size, head.size, "{key:?}");
        assert_eq!(
            o.last_modified, head.last_modified,
            "{key:?}: listing and HEAD agree"
        );
        assert_eq!(o.etag, head.etag, "{key:?}: listing and HEAD agree");
    }

    for key in AWKWARD_KEYS {
        let (bytes, etag) = c
            .get_object(PRIVATE, key)
            .await
            .unwrap_or_else(|e| panic!("GET {key:?}: {e}"));
        assert_eq!(bytes.as_ref(), body(key).as_slice(), "{key:?}");
        assert_eq!(etag, heads[*key].etag, "{key:?}");
    }
    // The other bucket is untouched by any of it.
    assert!(
        c.list_objects(PUBLIC, |_| {})
            .await
            .expect("listing")
            .is_empty()
    );
}

#[tokio::test]
async fn missing_objects_and_refused_credentials() {
    let s3 = S3::two_buckets().await;
    s3.client().put(PUBLIC, "here.txt", "x").await;
    let (c, _) = client(&s3);
    assert_eq!(
        c.head_object(PUBLIC, "not-here.txt").await,
        Err(S3Error::NotFound)
    );
    assert_eq!(
        c.get_object(PUBLIC, "not-here.txt").await,
        Err(S3Error::NotFound)
    );

    let wrong = "wrong-secret-that-must-not-leak";
    let (bad, _) = client_with(&s3.endpoint(), wrong);
    // GET and ListObjectsV2 answers carry an error document: its code is reported.
    let errors = [
        bad.get_object(PUBLIC, "here.txt").await.map(|_| ()),
        bad.list_objects(PUBLIC, |_| {}).await.map(|_| ()),
    ];
    for e in errors {
        let e = e.expect_err("a wrong secret is refused");
        match &e {
            S3Error::Denied { code, .. } => assert_eq!(code, "SignatureDoesNotMatch", "{e}"),
            other => panic!("expected Denied, got {other:?}"),
        }
        let text = e.to_string();
        assert!(text.contains("SignatureDoesNotMatch"), "{text}");
        for what in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "clock",
        ] {
            assert!(
                text.contains(what),
                "the message says to check {what}: {text}"
            );
        }
        assert!(
            !text.contains(wrong) && !text.contains(common::SECRET_KEY),
            "{text}"
        );
        assert!(!format!("{e:?}").contains(wrong));
    }
    // A HEAD answer has no body, but it is still "denied", never "not found".
    assert!(matches!(
        bad.head_object(PUBLIC, "here.txt").await,
        Err(S3Error::Denied { .. })
    ));
    assert!(matches!(
        bad.head_object(PUBLIC, "not-here.txt").await,
        Err(S3Error::Denied { .. })
    ));
}

#[tokio::test]
async fn conditional_put_object() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    let (c, _) = client(&s3);
    let key = ".parparchik/files.json";
    let put = |body: &'static str, cond: PutCondition| {
        let c = c.clone();
        async move {
            c.put_object(PUBLIC, key, Bytes::from(body), "application/json", &cond)
                .await
        }
    };

    let first = put("v1", PutCondition::IfNoneMatch)
        .await
        .expect("new key: If-None-Match succeeds");
    assert!(!first.is_empty(), "PutObject returns an ETag");
    assert_eq!(c.head_object(PUBLIC, key).await.expect("HEAD").etag, first);

    let e = put("v1-again", PutCondition::IfNoneMatch)
        .await
        .expect_err("key exists");
    assert!(matches!(e, S3Error::PreconditionFailed { .. }), "{e:?}");
    assert_eq!(seed.get(PUBLIC, key).await.as_deref(), Some(&b"v1"[..]));

    let second = put("v2", PutCondition::IfMatch(first.clone()))
        .await
        .expect("If-Match with the current ETag succeeds");
    assert!(!second.is_empty());
    assert_ne!(second, first, "new content, new ETag");
    assert_eq!(seed.get(PUBLIC, key).await.as_deref(), Some(&b"v2"[..]));

    let e = put("v3", PutCondition::IfMatch(first))
        .await
        .expect_err("stale ETag");
    assert!(matches!(e, S3Error::PreconditionFailed { .. }), "{e:?}");
    assert_eq!(seed.get(PUBLIC, key).await.as_deref(), Some(&b"v2"[..]));

    // Unconditional writes always go through.
    put("v4", PutCondition::None).await.expect("plain PUT");
    assert_eq!(seed.get(PUBLIC, key).await.as_deref(), Some(&b"v4"[..]));
}

#[tokio::test]
async fn listing_follows_every_page() {
    let s3 = S3::two_buckets().await;
    let keys: Vec<String> = (0..2100)
        .map(|i| format!("d{}/obj-{i:05}.txt", i % 7))
        .collect();
    s3.client().put_many(PUBLIC, keys.clone(), 32).await;
    let (c, _) = client(&s3);
    s3.stats().reset();

    let mut progress = Vec::new();
    let listed = c
        .list_objects(PUBLIC, |n| progress.push(n))
        .await
        .expect("listing");
    assert_eq!(listed.len(), 2100);
    let unique: BTreeSet<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(unique.len(), 2100, "every key once");
    assert_eq!(
        unique,
        keys.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    for o in &listed {
        assert_eq!(o.size, o.key.len() as u64, "{}", o.key);
    }

    assert!(
        progress.len() >= 3,
        "progress after each page: {progress:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[0] < w[1]),
        "increasing: {progress:?}"
    );
    assert_eq!(progress.last(), Some(&2100));
    assert!(
        s3.stats().count("ListObjectsV2") >= 3,
        "{:?}",
        s3.stats().snapshot()
    );
}

#[tokio::test]
async fn unreachable_endpoint_is_unavailable_after_bounded_retries() {
    let (c, metrics) = client_with(&free_port_endpoint(), common::SECRET_KEY);
    let started = Instant::now();
    let e = c
        .head_object(PUBLIC, "any.txt")
        .await
        .expect_err("nothing listens");
    let elapsed = started.elapsed();
    assert!(matches!(e, S3Error::Unavailable { .. }), "{e:?}");
    assert!(
        elapsed < Duration::from_secs(10),
        "gave up after {elapsed:?}"
    );
    // Three attempts, each one counted.
    assert_eq!(metrics.s3_calls(S3Op::HeadObject, "unavailable"), 3);
    assert_eq!(metrics.s3_calls(S3Op::HeadObject, "ok"), 0);
    let text = format!("{e} {e:?}");
    assert!(!text.contains(common::SECRET_KEY), "{text}");
    assert!(text.contains("S3 unavailable"), "{text}");

    let e = c
        .list_objects(PUBLIC, |_| {})
        .await
        .expect_err("nothing listens");
    assert!(e.is_unavailable(), "{e:?}");
    assert!(!e.to_string().contains(common::SECRET_KEY));
}

#[tokio::test]
async fn calls_are_counted_by_operation_and_outcome() {
    let s3 = S3::two_buckets().await;
    let (c, m) = client(&s3);
    let put = |cond: PutCondition| {
        let c = c.clone();
        async move {
            c.put_object(
                PUBLIC,
                "m.txt",
                Bytes::from_static(b"m"),
                "text/plain",
                &cond,
            )
            .await
        }
    };
    put(PutCondition::IfNoneMatch).await.expect("PUT");
    put(PutCondition::IfNoneMatch).await.expect_err("exists");
    c.head_object(PUBLIC, "m.txt").await.expect("HEAD");
    c.head_object(PUBLIC, "m.txt").await.expect("HEAD");
    c.head_object(PUBLIC, "gone.txt")
        .await
        .expect_err("missing");
    c.get_object(PUBLIC, "m.txt").await.expect("GET");
    c.list_objects(PUBLIC, |_| {}).await.expect("LIST");

    let expected = [
        (S3Op::PutObject, "ok", 1),
        (S3Op::PutObject, "precondition_failed", 1),
        (S3Op::HeadObject, "ok", 2),
        (S3Op::HeadObject, "not_found", 1),
        (S3Op::GetObject, "ok", 1),
        // The listing, and one probe: a HEAD 404 proves a key missing only while its
        // bucket is known to answer (a bare 404 from a proxy proves nothing).
        (S3Op::ListObjectsV2, "ok", 2),
        (S3Op::GetObject, "not_found", 0),
        (S3Op::HeadObject, "unavailable", 0),
    ];
    for (op, outcome, n) in expected {
        assert_eq!(m.s3_calls(op, outcome), n, "{} {outcome}", op.label());
    }
    let text = parparchik::metrics::render(&Default::default(), &m, true);
    assert!(
        text.contains("parparchik_s3_requests_total{operation=\"HeadObject\",outcome=\"ok\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("parparchik_s3_request_duration_seconds_count{operation=\"HeadObject\"} 3\n")
    );
    // The server saw exactly the calls the metrics counted.
    assert_eq!(s3.stats().count("HeadObject"), 3);
    assert_eq!(s3.stats().count("PutObject"), 2);
}

/// A server that answers every listing page "truncated, next: the same token" (or a page
/// whose keys go backwards): a client that believed it would list forever or double keys.
async fn lying_lister(pages: Vec<&'static str>) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&served);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (count, pages) = (Arc::clone(&count), pages.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    let i = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let body = pages[i.min(pages.len() - 1)];
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if socket.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (endpoint, served)
}

#[tokio::test]
async fn a_listing_that_repeats_its_token_or_goes_backwards_is_refused() {
    // Empty pages, each "truncated" with the same token.
    const SAME_TOKEN: &str = "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>again</NextContinuationToken></ListBucketResult>";
    let (endpoint, served) = lying_lister(vec![SAME_TOKEN]).await;
    let (c, metrics) = client_with(&endpoint, common::SECRET_KEY);
    let e = tokio::time::timeout(Duration::from_secs(10), c.list_objects(PUBLIC, |_| {}))
        .await
        .expect("the listing stops")
        .expect_err("a repeated token is an error");
    assert!(matches!(e, S3Error::InvalidResponse(_)), "{e:?}");
    assert!(served.load(std::sync::atomic::Ordering::SeqCst) <= 3);
    assert_eq!(
        metrics
            .listing_loops
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    const FIRST: &str = "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t1</NextContinuationToken><Contents><Key>m</Key><LastModified>2026-05-05T10:00:00.000Z</LastModified><Size>1</Size></Contents></ListBucketResult>";
    const BACKWARDS: &str = "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a</Key><LastModified>2026-05-05T10:00:00.000Z</LastModified><Size>1</Size></Contents></ListBucketResult>";
    let (endpoint, _) = lying_lister(vec![FIRST, BACKWARDS]).await;
    let (c, metrics) = client_with(&endpoint, common::SECRET_KEY);
    let e = c
        .list_objects(PUBLIC, |_| {})
        .await
        .expect_err("keys going backwards are an error");
    assert!(e.to_string().contains("backwards"), "{e}");
    assert_eq!(
        metrics
            .listing_loops
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}
