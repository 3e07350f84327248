mod common;

use std::time::Duration;

use common::*;
use local_s3::LocalS3;
use rusty_s3::S3Action;
use rusty_s3::actions::ListObjectsV2;

const SPECIAL_KEYS: &[&str] = &[
    "plain.txt",
    "with space.txt",
    "plus+sign.txt",
    "percent%20literal%.txt",
    "tilde~file",
    "paren(1).txt",
    "bang!.txt",
    "star*,comma;semi=eq@at$&amp'quote.txt",
    "unicode-ñ-日本-😀.txt",
    "a/b/c/d.txt",
    "mixed dir/sub+dir/ä ö (2)!.bin",
];

/// Lists a whole bucket page by page through rusty-s3 (`encoding-type=url`).
async fn list_all(
    t: &TestS3,
    bucket: &str,
    max_keys: Option<usize>,
) -> (
    Vec<rusty_s3::actions::list_objects_v2::ListObjectsContent>,
    usize,
) {
    let b = t.bucket(bucket);
    let mut token: Option<String> = None;
    let mut contents = Vec::new();
    let mut pages = 0;
    loop {
        let mut action = b.list_objects_v2(Some(&t.creds));
        if let Some(n) = max_keys {
            action.with_max_keys(n);
        }
        if let Some(tok) = &token {
            action.with_continuation_token(tok.clone());
        }
        let resp = t.http.get(action.sign(TTL)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let page = ListObjectsV2::parse_response(&resp.text().await.unwrap()).unwrap();
        pages += 1;
        contents.extend(page.contents);
        match page.next_continuation_token {
            Some(tok) => token = Some(tok),
            None => break,
        }
    }
    (contents, pages)
}

#[tokio::test]
async fn signed_round_trip_with_special_keys() {
    let t = TestS3::start().await;
    let signer = t.signer();
    for (i, key) in SPECIAL_KEYS.iter().enumerate() {
        let body = format!("body of {key} #{i}").into_bytes();
        // Header-signed PUT (hashed payload) ...
        let resp = signer
            .request(
                &t.http,
                "PUT",
                &format!("/{PRIVATE}/{key}"),
                &[],
                &[("content-type", "text/plain")],
                body.clone(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            200,
            "PUT {key}: {}",
            resp.text().await.unwrap()
        );
        let put_etag = header(&resp, "etag").unwrap();

        // ... presigned HEAD ...
        let head = t.head(PRIVATE, key).await;
        assert_eq!(head.status(), 200, "HEAD {key}");
        assert_eq!(
            header(&head, "content-length").unwrap(),
            body.len().to_string()
        );
        assert_eq!(header(&head, "etag").unwrap(), put_etag);
        assert_eq!(header(&head, "content-type").unwrap(), "text/plain");
        assert!(header(&head, "last-modified").unwrap().ends_with(" GMT"));

        // ... presigned GET and header-signed GET.
        assert_eq!(t.get(PRIVATE, key).await, (200, body.clone()), "GET {key}");
        let resp = signer
            .request(
                &t.http,
                "GET",
                &format!("/{PRIVATE}/{key}"),
                &[],
                &[],
                vec![],
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().await.unwrap(), body);
    }

    // rusty-s3 lists with encoding-type=url and decodes the keys.
    let (contents, _) = list_all(&t, PRIVATE, None).await;
    let mut listed: Vec<&str> = contents.iter().map(|c| c.key.as_str()).collect();
    let mut expected = SPECIAL_KEYS.to_vec();
    expected.sort_unstable();
    listed.sort_unstable();
    assert_eq!(listed, expected);
    assert!(
        contents
            .iter()
            .all(|c| c.etag.as_deref().is_some_and(|e| e.len() == 34)),
        "listing has ETags"
    );

    // Without encoding-type the keys come back raw (XML-escaped only).
    let resp = signer
        .request(
            &t.http,
            "GET",
            &format!("/{PRIVATE}"),
            &[("list-type", "2"), ("prefix", "mixed dir/")],
            &[],
            vec![],
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = ListObjectsV2::parse_response(&resp.text().await.unwrap()).unwrap();
    let keys: Vec<&str> = page.contents.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["mixed dir/sub+dir/ä ö (2)!.bin"]);

    // Delimiter listing: common prefixes, encoded and decoded correctly.
    let b = t.bucket(PRIVATE);
    let mut action = b.list_objects_v2(Some(&t.creds));
    action.with_delimiter("/");
    let text = t
        .http
        .get(action.sign(TTL))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let page = ListObjectsV2::parse_response(&text).unwrap();
    let prefixes: Vec<&str> = page
        .common_prefixes
        .iter()
        .map(|p| p.prefix.as_str())
        .collect();
    assert_eq!(prefixes, ["a/", "mixed dir/"]);
}

#[tokio::test]
async fn presigned_urls_and_bad_credentials() {
    let t = TestS3::start().await;
    assert_eq!(t.put(PRIVATE, "doc.txt", "secret doc").await.0, 200);
    assert_eq!(
        t.get(PRIVATE, "doc.txt").await,
        (200, b"secret doc".to_vec())
    );

    let b = t.bucket(PRIVATE);
    let wrong = rusty_s3::Credentials::new(ACCESS_KEY, "wrong-secret");
    let url = b.get_object(Some(&wrong), "doc.txt").sign(TTL);
    assert_eq!(t.http.get(url).send().await.unwrap().status(), 403);

    let unknown = rusty_s3::Credentials::new("nobody", SECRET_KEY);
    let url = b.get_object(Some(&unknown), "doc.txt").sign(TTL);
    assert_eq!(t.http.get(url).send().await.unwrap().status(), 403);

    // Signed an hour ago, valid for a minute: expired.
    let past = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let url = b
        .get_object(Some(&t.creds), "doc.txt")
        .sign_with_time(Duration::from_secs(60), &past);
    assert_eq!(t.http.get(url).send().await.unwrap().status(), 403);

    // Header signature with the wrong secret.
    let mut signer = t.signer();
    signer.secret_key = "wrong-secret".into();
    let resp = signer
        .request(
            &t.http,
            "GET",
            &format!("/{PRIVATE}/doc.txt"),
            &[],
            &[],
            vec![],
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // A tampered body does not match the signed payload hash.
    let signer = t.signer();
    let req = signer.request(
        &t.http,
        "PUT",
        &format!("/{PRIVATE}/doc.txt"),
        &[],
        &[],
        b"signed".to_vec(),
    );
    let mut req = req.build().unwrap();
    *req.body_mut() = Some(b"tampered".to_vec().into());
    let resp = t.http.execute(req).await.unwrap();
    assert_ne!(resp.status(), 200);
    assert_eq!(t.get(PRIVATE, "doc.txt").await.1, b"secret doc");
}

#[tokio::test]
async fn anonymous_access_only_reads_public_objects() {
    let t = TestS3::start().await;
    assert_eq!(t.put(PUBLIC, "dir/open file.txt", "open").await.0, 200);
    assert_eq!(t.put(PRIVATE, "closed.txt", "closed").await.0, 200);
    t.s3.stats().reset();

    let anon = |bucket: &str, key: &str| t.bucket(bucket).get_object(None, key).sign(TTL);
    let resp = t
        .http
        .get(anon(PUBLIC, "dir/open file.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap(), "open");
    let resp = t
        .http
        .head(anon(PUBLIC, "dir/open file.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-length").unwrap(), "4");
    // Missing object in a public bucket: 404, not 403.
    assert_eq!(
        t.http
            .get(anon(PUBLIC, "nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    assert_eq!(
        t.http
            .get(anon(PRIVATE, "closed.txt"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        t.http
            .head(anon(PRIVATE, "closed.txt"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    let put = t
        .bucket(PUBLIC)
        .put_object(None, "dir/open file.txt")
        .sign(TTL);
    assert_eq!(
        t.http
            .put(put)
            .body("overwritten")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let del = t
        .bucket(PUBLIC)
        .delete_object(None, "dir/open file.txt")
        .sign(TTL);
    assert_eq!(t.http.delete(del).send().await.unwrap().status(), 403);
    let list = t.bucket(PUBLIC).list_objects_v2(None).sign(TTL);
    assert_eq!(t.http.get(list).send().await.unwrap().status(), 403);
    let resp = t
        .http
        .put(format!("{}/new-bucket", t.s3.endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    assert_eq!(t.get(PUBLIC, "dir/open file.txt").await.1, b"open");

    // Refused anonymous requests are counted too.
    let stats = t.s3.stats();
    assert_eq!(stats.count("GetObject"), 3 + 1);
    assert_eq!(stats.count("HeadObject"), 2);
    assert_eq!(stats.count("PutObject"), 1);
    assert_eq!(stats.count("DeleteObject"), 1);
    assert_eq!(stats.count("ListObjectsV2"), 1);
    assert_eq!(stats.count("CreateBucket"), 1);
}

#[tokio::test]
async fn conditional_puts() {
    let t = TestS3::start().await;
    let signer = t.signer();
    let path = format!("/{PRIVATE}/cas/state.json");
    let put = |headers: Vec<(&'static str, String)>, body: &'static str| {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        signer
            .request(&t.http, "PUT", &path, &[], &hs, body.as_bytes().to_vec())
            .send()
    };

    // Create-only on a new key succeeds, then fails once it exists.
    let resp = put(vec![("if-none-match", "*".into())], "v1")
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let etag1 = header(&resp, "etag").unwrap();
    let resp = put(vec![("if-none-match", "*".into())], "v1-again")
        .await
        .unwrap();
    assert_eq!(resp.status(), 412);
    assert!(resp.text().await.unwrap().contains("PreconditionFailed"));

    // Compare-and-swap: the current ETag wins, a stale one gets 412.
    let resp = put(vec![("if-match", etag1.clone())], "v2").await.unwrap();
    assert_eq!(resp.status(), 200);
    let etag2 = header(&resp, "etag").unwrap();
    assert_ne!(etag1, etag2);
    let resp = put(vec![("if-match", etag1.clone())], "v3-stale")
        .await
        .unwrap();
    assert_eq!(resp.status(), 412);
    // Unquoted ETags (as some SDKs send them) work as well.
    let resp = put(vec![("if-match", etag2.trim_matches('"').to_owned())], "v3")
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(t.get(PRIVATE, "cas/state.json").await.1, b"v3");

    // If-Match on a missing key: 412 (s3s-fs behaviour; AWS answers 404).
    let resp = signer
        .request(
            &t.http,
            "PUT",
            &format!("/{PRIVATE}/missing"),
            &[],
            &[("if-match", &etag1)],
            b"x".to_vec(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 412);
    assert_eq!(t.head(PRIVATE, "missing").await.status(), 404);
}

#[tokio::test]
async fn concurrent_create_only_puts_have_one_winner() {
    let t = TestS3::start().await;
    let signer = t.signer();
    let path = format!("/{PRIVATE}/lock");
    let mut tasks = Vec::new();
    for i in 0..16 {
        // A larger body widens the window between check and commit.
        let body = format!("{i:>02}").repeat(64 * 1024).into_bytes();
        let req = signer.request(
            &t.http,
            "PUT",
            &path,
            &[],
            &[("if-none-match", "*")],
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            (req.send().await.unwrap().status().as_u16(), body)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            200 => winners.push(body),
            412 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(t.get(PRIVATE, "lock").await.1, winners[0]);
}

#[tokio::test]
async fn conditional_get_and_head() {
    let t = TestS3::start().await;
    let (_, etag) = t.put(PUBLIC, "c.txt", "cached").await;
    let etag = etag.unwrap();
    let head = t.head(PUBLIC, "c.txt").await;
    let last_modified = header(&head, "last-modified").unwrap();
    let url = t.bucket(PUBLIC).get_object(None, "c.txt").sign(TTL);
    let head_url = t.bucket(PUBLIC).head_object(None, "c.txt").sign(TTL);

    let resp = t
        .http
        .head(head_url.clone())
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    assert_eq!(header(&resp, "etag").unwrap(), etag);
    let resp = t
        .http
        .get(url.clone())
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    assert!(resp.bytes().await.unwrap().is_empty());
    let resp = t
        .http
        .get(url.clone())
        .header("if-modified-since", &last_modified)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    let resp = t
        .http
        .get(url.clone())
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap(), "cached");
    let resp = t
        .http
        .get(url.clone())
        .header("if-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 412);
    let resp = t
        .http
        .head(head_url)
        .header("if-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = t
        .http
        .get(url)
        .header("if-unmodified-since", "Mon, 01 Jan 2001 00:00:00 GMT")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 412);
}

#[tokio::test]
async fn list_pagination_over_1100_objects() {
    let t = TestS3::start().await;
    let keys: Vec<String> = (0..1100)
        .map(|i| format!("many/{:04} file+{}.txt", i, i % 7))
        .collect();
    let t = std::sync::Arc::new(t);
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in keys.chunks(100) {
        let (t, chunk) = (t.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for key in chunk {
                assert_eq!(t.put(PRIVATE, &key, key.clone()).await.0, 200);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }

    // Default page size is 1000, as on S3.
    let (contents, pages) = list_all(&t, PRIVATE, None).await;
    assert_eq!(pages, 2);
    let listed: Vec<String> = contents.iter().map(|c| c.key.clone()).collect();
    assert_eq!(listed, keys, "all keys, once each, in order");
    assert!(contents.iter().all(|c| c.size == Some(c.key.len() as u64)));

    let (contents, pages) = list_all(&t, PRIVATE, Some(250)).await;
    assert_eq!((contents.len(), pages), (1100, 5));

    // More than 1000 per page is capped, as on S3.
    let (contents, pages) = list_all(&t, PRIVATE, Some(5000)).await;
    assert_eq!((contents.len(), pages), (1100, 2));
}

#[tokio::test]
async fn copy_delete_and_create_bucket() {
    let t = TestS3::start().await;
    let signer = t.signer();
    let src_key = "incoming/report (final)+1.pdf";
    let (_, etag) = t.put(PRIVATE, src_key, "pdf bytes").await;

    // Move = CopyObject + DeleteObject, across buckets.
    let copy_source = format!("/{PRIVATE}/{}", aws_encode(src_key, true));
    let resp = signer
        .request(
            &t.http,
            "PUT",
            &format!("/{PUBLIC}/published/report.pdf"),
            &[],
            &[("x-amz-copy-source", &copy_source)],
            vec![],
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let resp = signer
        .request(
            &t.http,
            "DELETE",
            &format!("/{PRIVATE}/{src_key}"),
            &[],
            &[],
            vec![],
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    assert_eq!(t.head(PRIVATE, src_key).await.status(), 404);
    let head = t.head(PUBLIC, "published/report.pdf").await;
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "etag"), etag);
    assert_eq!(t.get(PUBLIC, "published/report.pdf").await.1, b"pdf bytes");
    // Deleting a missing key is not an error on S3.
    let resp = signer
        .request(
            &t.http,
            "DELETE",
            &format!("/{PRIVATE}/{src_key}"),
            &[],
            &[],
            vec![],
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    let resp = signer
        .request(&t.http, "PUT", "/fresh-bucket", &[], &[], vec![])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(t.put("fresh-bucket", "x", "y").await.0, 200);
    assert_eq!(t.get("no-such-bucket", "x").await.0, 404);
}

#[tokio::test]
async fn stats_count_requests() {
    let t = TestS3::start().await;
    t.put(PUBLIC, "k", "v").await;
    let stats = t.s3.stats();
    stats.reset();
    assert_eq!((stats.total(), stats.count("HeadObject")), (0, 0));

    assert_eq!(t.head(PUBLIC, "k").await.status(), 200);
    assert_eq!(stats.count("HeadObject"), 1);
    assert_eq!(stats.total(), 1);
    assert_eq!(t.head(PUBLIC, "missing").await.status(), 404);
    assert_eq!(stats.count("HeadObject"), 2);

    // A bad signature is rejected before an operation is resolved: it only
    // shows in total().
    let wrong = rusty_s3::Credentials::new(ACCESS_KEY, "wrong");
    let url = t.bucket(PUBLIC).head_object(Some(&wrong), "k").sign(TTL);
    assert_eq!(t.http.head(url).send().await.unwrap().status(), 403);
    assert_eq!(stats.count("HeadObject"), 2);
    assert_eq!(stats.total(), 3);
    assert_eq!(
        stats.snapshot().into_iter().collect::<Vec<_>>(),
        [("HeadObject".to_owned(), 2)]
    );

    // Clones share the counters.
    let clone = stats.clone();
    t.get(PUBLIC, "k").await;
    assert_eq!(clone.count("GetObject"), 1);
}

#[tokio::test]
async fn keep_alive_on_a_raw_connection() {
    let t = TestS3::start().await;
    let etag = t.put(PUBLIC, "ka.txt", "hello").await.1.unwrap();
    let mut conn = RawConn::connect(t.s3.addr()).await;
    for _ in 0..3 {
        assert_eq!(
            conn.request("GET", &format!("/{PUBLIC}/ka.txt")).await,
            (200, b"hello".to_vec())
        );
        // A 304 must not carry a body, or the next response would be garbled.
        let not_modified = conn
            .request_with(
                "GET",
                &format!("/{PUBLIC}/ka.txt"),
                &[("If-None-Match", &etag)],
            )
            .await;
        assert_eq!(not_modified.0, 304);
        assert_eq!(
            conn.request("HEAD", &format!("/{PUBLIC}/ka.txt")).await.0,
            200
        );
        assert_eq!(
            conn.request("GET", &format!("/{PUBLIC}/missing")).await.0,
            404
        );
        assert_eq!(
            conn.request("GET", &format!("/{PRIVATE}/ka.txt")).await.0,
            403
        );
    }
    assert_eq!(t.s3.stats().count("GetObject"), 12);
}

#[tokio::test]
async fn stop_then_restart_on_the_same_addr_keeps_data() {
    let t = TestS3::start().await;
    let (_, etag) = t.put(PUBLIC, "persist/me.txt", "still here").await;
    let addr = t.s3.addr();
    let mut idle = RawConn::connect(addr).await;
    assert_eq!(
        idle.request("GET", &format!("/{PUBLIC}/persist/me.txt"))
            .await
            .0,
        200
    );

    let TestS3 {
        s3,
        dir,
        creds,
        http,
    } = t;
    s3.stop().await;
    // Idle keep-alive connections are closed and nothing listens any more.
    assert!(
        idle.is_closed().await,
        "keep-alive connection survived stop()"
    );
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    assert!(
        http.get(format!("http://{addr}/{PUBLIC}/persist/me.txt"))
            .send()
            .await
            .is_err()
    );

    let mut cfg = config(dir.path());
    cfg.addr = addr;
    let s3 = LocalS3::start(cfg)
        .await
        .expect("port re-bindable right after stop()");
    assert_eq!(s3.addr(), addr);
    let t = TestS3 {
        s3,
        dir,
        creds,
        http,
    };
    assert_eq!(
        t.get(PUBLIC, "persist/me.txt").await,
        (200, b"still here".to_vec())
    );
    assert_eq!(
        header(&t.head(PUBLIC, "persist/me.txt").await, "etag"),
        etag
    );
    assert_eq!(
        t.s3.stats().count("GetObject"),
        1,
        "a new server has fresh counters"
    );

    // Dropping the server stops it as well.
    drop(t.s3);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn rejects_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.buckets.push("../escape".into());
    let err = LocalS3::start(cfg).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

    // Endpoint of a wildcard bind is reachable loopback.
    let mut cfg = config(dir.path());
    cfg.addr = "0.0.0.0:0".parse().unwrap();
    let s3 = LocalS3::start(cfg).await.unwrap();
    assert!(s3.endpoint().starts_with("http://127.0.0.1:"));
    s3.stop().await;
}
