//! Inputs found by the fuzz targets in `fuzz/` (see fuzz/README.md), kept as tests so
//! what they showed stays true without a fuzzer.

use std::sync::Arc;

use parparchik::metrics::Metrics;
use parparchik::s3::client::ClientSettings;
use parparchik::s3::{Endpoint, S3Client, S3Error};
use parparchik::sigv4::Credentials;
use parparchik::sigv4::canonical_request::canonical_headers;

/// fuzz target `sigv4`, input `25 00 04 0a 1a`: header `%` with the value
/// `"\x04\n\x1a"`. `canonical_headers` trims and folds spaces and tabs only, so a line
/// feed inside a value passes through and the canonical request gains a line. SigV4
/// does not define such values and HTTP forbids them; what matters is that a request
/// carrying one is never sent with that signature.
#[test]
fn sigv4_header_value_with_a_line_feed() {
    let input: &[u8] = b"%\x00\x04\n\x1a";
    let text = std::str::from_utf8(input).expect("UTF-8");
    let (name, value) = text.split_once('\0').expect("two fields");
    let (lines, signed) = canonical_headers(&[(name, value)]);
    assert_eq!(signed, "%");
    assert_eq!(lines, "%:\u{4}\n\u{1a}\n", "passed through as it is");
    assert!(
        reqwest::header::HeaderValue::from_str(value).is_err(),
        "HTTP refuses the value"
    );
}

/// The one header value that comes from outside, the session token: with a line feed
/// in it the client refuses to send anything (a clear error, no panic, no request).
#[tokio::test]
async fn a_session_token_with_a_line_feed_is_refused_not_sent() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let client = S3Client::new(
        Endpoint::parse(&endpoint).expect("endpoint"),
        "us-east-1",
        Credentials::new("AKID", "secret", Some("token\nX-Injected: 1".into())),
        ClientSettings {
            attempts: 1,
            ..ClientSettings::default()
        },
        Arc::new(Metrics::default()),
    )
    .expect("client");
    let got = client.head_object("bucket", "key").await;
    assert!(
        matches!(&got, Err(S3Error::InvalidResponse(why)) if why.contains("x-amz-security-token")),
        "{got:?}"
    );
    // Nothing was sent: no connection was even opened.
    let accepted =
        tokio::time::timeout(std::time::Duration::from_millis(100), listener.accept()).await;
    assert!(accepted.is_err(), "a request went out");
}
