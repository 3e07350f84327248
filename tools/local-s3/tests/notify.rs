//! Bucket notifications: after puts, copies and deletes the server POSTs MinIO-format
//! events to a webhook, in order, retrying a target that fails, with the token; and can
//! be told to drop events.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{PRIVATE, PUBLIC, TTL, TestS3};
use local_s3::{Delivery, NotifyTarget};
use rusty_s3::S3Action;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the webhook received: (Authorization header, body) per request, in order.
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A webhook on a free port that answers 503 to its first `fail_first` requests, then
/// 200. One request per connection (the client may reuse it: each is read in turn).
async fn webhook(fail_first: usize) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let seen = Arc::clone(&received);
    tokio::spawn(async move {
        let mut answered = 0usize;
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            // Requests on one connection, one after the other.
            let mut buf = Vec::new();
            loop {
                let Some(end) = find(&buf, b"\r\n\r\n") else {
                    let mut chunk = [0u8; 4096];
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let field = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                        })
                        .unwrap_or_default()
                };
                let len: usize = field("content-length").parse().unwrap_or(0);
                while buf.len() < end + 4 + len {
                    let mut chunk = [0u8; 4096];
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                buf.drain(..end + 4 + len);
                answered += 1;
                let status = if answered <= fail_first {
                    "503 Service Unavailable"
                } else {
                    seen.lock().unwrap().push((field("authorization"), body));
                    "200 OK"
                };
                let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                if conn.write_all(reply.as_bytes()).await.is_err() {
                    break;
                }
            }
        }
    });
    (url, received)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn field<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let start = body.find(&format!("\"{name}\":\""))? + name.len() + 4;
    let end = start + body[start..].find('"')?;
    Some(&body[start..end])
}

#[tokio::test]
async fn puts_copies_and_deletes_are_posted_in_order_with_retries() {
    let t = TestS3::start().await;
    let (url, received) = webhook(2).await;
    let n = t.s3.notifier();
    n.set_target(Some(NotifyTarget {
        url,
        token: Some("s3cr3t-token".into()),
    }));
    let (status, _) = t.put(PUBLIC, "dir/a b.txt", b"hello".to_vec()).await;
    assert_eq!(status, 200);
    // A server-side copy to the other bucket, then a delete of the original.
    let copy = t
        .bucket(PRIVATE)
        .put_object(Some(&t.creds), "dir/a b.txt")
        .sign(TTL);
    let r = t
        .http
        .put(copy)
        .header("x-amz-copy-source", "/public-bucket/dir/a%20b.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let del = t
        .bucket(PUBLIC)
        .delete_object(Some(&t.creds), "dir/a b.txt")
        .sign(TTL);
    assert!(
        t.http
            .delete(del)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );

    assert!(n.idle(Duration::from_secs(10)).await, "delivered");
    let counts = n.counts();
    assert_eq!((counts.delivered, counts.failed), (3, 0));
    assert_eq!(
        counts.failed_attempts, 2,
        "the first event was retried twice"
    );
    let got = received.lock().unwrap().clone();
    let names: Vec<&str> = got
        .iter()
        .filter_map(|(_, b)| field(b, "EventName"))
        .collect();
    assert_eq!(
        names,
        [
            "s3:ObjectCreated:Put",
            "s3:ObjectCreated:Copy",
            "s3:ObjectRemoved:Delete"
        ]
    );
    assert!(got.iter().all(|(auth, _)| auth == "Bearer s3cr3t-token"));
    let (_, put) = &got[0];
    assert_eq!(field(put, "Key"), Some("public-bucket/dir/a b.txt"));
    assert_eq!(
        field(put, "key"),
        Some("dir%2Fa+b.txt"),
        "query-escaped, as MinIO"
    );
    assert!(put.contains("\"size\":5"), "{put}");
    assert_eq!(field(&got[1].1, "name"), Some(PRIVATE));
    let seqs: Vec<&str> = got
        .iter()
        .filter_map(|(_, b)| field(b, "sequencer"))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequencers grow: {seqs:?}"
    );
}

#[tokio::test]
async fn dropped_and_delayed_events() {
    let t = TestS3::start().await;
    let (url, received) = webhook(0).await;
    let n = t.s3.notifier();
    n.set_target(Some(NotifyTarget { url, token: None }));
    n.set_delivery(Delivery::Drop);
    t.put(PUBLIC, "lost", b"x".to_vec()).await;
    assert_eq!(n.counts().dropped, 1);
    n.set_delivery(Delivery::Delay(Duration::from_millis(300)));
    t.put(PUBLIC, "late", b"x".to_vec()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(received.lock().unwrap().is_empty(), "held back");
    assert!(n.idle(Duration::from_secs(5)).await);
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(field(&got[0].1, "Key"), Some("public-bucket/late"));
    assert_eq!(got[0].0, "", "no token, no Authorization");
}
