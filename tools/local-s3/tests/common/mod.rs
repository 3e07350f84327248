//! Test helpers: a server per test, and two independent signing clients
//! (rusty-s3 presigned URLs, and a small SigV4 header signer written here
//! from the AWS spec, so neither shares code with s3s' verifier).

#![allow(dead_code)]

use std::time::Duration;

use hmac::{Hmac, Mac};
use local_s3::{Config, LocalS3};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) const ACCESS_KEY: &str = "test-access";
pub(crate) const SECRET_KEY: &str = "test-secret-key";
pub(crate) const REGION: &str = "us-east-1";
pub(crate) const PUBLIC: &str = "public-bucket";
pub(crate) const PRIVATE: &str = "private-bucket";
pub(crate) const TTL: Duration = Duration::from_secs(300);

pub(crate) struct TestS3 {
    pub s3: LocalS3,
    pub dir: tempfile::TempDir,
    pub creds: Credentials,
    pub http: reqwest::Client,
}

pub(crate) fn config(dir: &std::path::Path) -> Config {
    let mut cfg = Config::new(dir, ACCESS_KEY, SECRET_KEY);
    cfg.buckets = vec![PUBLIC.into(), PRIVATE.into()];
    cfg.public_buckets = vec![PUBLIC.into()];
    cfg
}

impl TestS3 {
    pub(crate) async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let s3 = LocalS3::start(config(dir.path())).await.unwrap();
        Self {
            s3,
            dir,
            creds: Credentials::new(ACCESS_KEY, SECRET_KEY),
            http: reqwest::Client::new(),
        }
    }

    pub(crate) fn bucket(&self, name: &str) -> Bucket {
        bucket_at(&self.s3.endpoint(), name)
    }

    pub(crate) fn signer(&self) -> Signer {
        Signer {
            endpoint: self.s3.endpoint(),
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
        }
    }

    /// Presigned PUT; returns (status, ETag header).
    pub(crate) async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: impl Into<Vec<u8>>,
    ) -> (u16, Option<String>) {
        let b = self.bucket(bucket);
        let url = b.put_object(Some(&self.creds), key).sign(TTL);
        let resp = self.http.put(url).body(body.into()).send().await.unwrap();
        (resp.status().as_u16(), header(&resp, "etag"))
    }

    /// Presigned GET; returns (status, body).
    pub(crate) async fn get(&self, bucket: &str, key: &str) -> (u16, Vec<u8>) {
        let b = self.bucket(bucket);
        let url = b.get_object(Some(&self.creds), key).sign(TTL);
        let resp = self.http.get(url).send().await.unwrap();
        (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
    }

    /// Presigned HEAD.
    pub(crate) async fn head(&self, bucket: &str, key: &str) -> reqwest::Response {
        let b = self.bucket(bucket);
        let url = b.head_object(Some(&self.creds), key).sign(TTL);
        self.http.head(url).send().await.unwrap()
    }
}

pub(crate) fn bucket_at(endpoint: &str, name: &str) -> Bucket {
    Bucket::new(
        endpoint.parse().unwrap(),
        UrlStyle::Path,
        name.to_owned(),
        REGION,
    )
    .unwrap()
}

pub(crate) fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// AWS URI encoding: unreserved characters stay, everything else is `%XX`;
/// `/` stays only in paths.
pub(crate) fn aws_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// SigV4 with an `Authorization` header and a hashed payload.
pub(crate) struct Signer {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

impl Signer {
    /// `path` is unencoded, e.g. `/bucket/some key`.
    pub(crate) fn request(
        &self,
        client: &reqwest::Client,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> reqwest::RequestBuilder {
        let now = time::OffsetDateTime::now_utc();
        let amz_date = now
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap();
        let date = &amz_date[..8];
        let host = self.endpoint.trim_start_matches("http://").to_owned();
        let payload_hash = hex::encode(Sha256::digest(&body));

        let canonical_uri = aws_encode(path, true);
        let mut q: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (aws_encode(k, false), aws_encode(v, false)))
            .collect();
        q.sort();
        let canonical_query = q
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");

        let mut hs: Vec<(String, String)> = vec![
            ("host".into(), host),
            ("x-amz-content-sha256".into(), payload_hash.clone()),
            ("x-amz-date".into(), amz_date.clone()),
        ];
        hs.extend(
            headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned())),
        );
        hs.sort();
        let canonical_headers: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let signed_headers = hs
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");

        let canonical_request = format!(
            "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}"
        );
        let scope = format!("{date}/{REGION}/s3/aws4_request");
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let mut key = hmac(
            format!("AWS4{}", self.secret_key).as_bytes(),
            date.as_bytes(),
        );
        for part in [REGION, "s3", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            self.access_key
        );

        let mut url = format!("{}{canonical_uri}", self.endpoint);
        if !canonical_query.is_empty() {
            url = format!("{url}?{canonical_query}");
        }
        let mut req = client
            .request(method.parse().unwrap(), url)
            .header("authorization", authorization)
            .body(body);
        for (k, v) in &hs {
            if k != "host" {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        req
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Minimal HTTP/1.1 client on one raw connection, to check keep-alive
/// without a connection pool in between.
pub(crate) struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    pub(crate) async fn connect(addr: std::net::SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    /// Sends a request without body; returns (status, body).
    pub(crate) async fn request(&mut self, method: &str, target: &str) -> (u16, Vec<u8>) {
        self.request_with(method, target, &[]).await
    }

    pub(crate) async fn request_with(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<u8>) {
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        let req = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n");
        self.stream.write_all(req.as_bytes()).await.unwrap();
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await;
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).unwrap();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        let body_len = if method == "HEAD" || status == 304 {
            0
        } else {
            len
        };
        while self.buf.len() < head_end + body_len {
            self.fill().await;
        }
        let body = self.buf[head_end..head_end + body_len].to_vec();
        self.buf.drain(..head_end + body_len);
        (status, body)
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed by server");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// True once the server has closed the connection (EOF or reset).
    pub(crate) async fn is_closed(&mut self) -> bool {
        let mut chunk = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(2), self.stream.read(&mut chunk)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}
