//! The S3 client: reqwest for transport, the project's own SigV4 for every signature.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use time::OffsetDateTime;

use super::endpoint::{Endpoint, Target};
use super::error::{S3Error, classify};
use super::retry::{backoff, jitter};
use super::xml::{parse_error, parse_list_page};
use crate::credentials::CredentialsHandle;
use crate::metrics::{Metrics, S3Op};
use crate::sigv4::{self, Credentials, PayloadHash, Request};
use crate::timefmt;

tokio::task_local! {
    /// S3 calls made while serving one HTTP request, for its log line.
    pub static CALLS_IN_REQUEST: Cell<u32>;
}

/// Metadata of an object, as HEAD reports it (timestamps normalised to RFC 3339).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub last_modified: String,
    pub etag: String,
}

/// One object of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub last_modified: String,
    pub etag: String,
}

/// The precondition of a PutObject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutCondition {
    None,
    /// Only if the object still has this ETag.
    IfMatch(String),
    /// Only if no object exists at the key yet.
    IfNoneMatch,
}

/// Timeouts and retries.
#[derive(Clone, Copy, Debug)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    /// Bound on one attempt.
    pub timeout: Duration,
    /// Attempts for the unavailable class (1 = no retry).
    pub attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Idle keep-alive connections kept per host.
    pub pool_idle_per_host: usize,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            attempts: 3,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            pool_idle_per_host: 256,
        }
    }
}

/// One shared connection pool; cheap to clone.
#[derive(Clone)]
pub struct S3Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoint: Endpoint,
    /// The current credentials; a refresh swaps them under the client.
    credentials: CredentialsHandle,
    settings: ClientSettings,
    metrics: Arc<Metrics>,
}

/// A request before signing.
struct Call<'a> {
    op: S3Op,
    method: reqwest::Method,
    bucket: &'a str,
    key: &'a str,
    query: &'a [(&'a str, &'a str)],
    headers: &'a [(&'a str, &'a str)],
    body: Option<Bytes>,
}

struct Answer {
    headers: HeaderMap,
    body: Bytes,
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn transport_reason(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "connection broke while reading the answer"
    } else {
        "request failed"
    };
    // The source chain names the cause (refused, reset, …) without any URL or header.
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {cause}")
    }
}

impl S3Client {
    pub fn new(
        endpoint: Endpoint,
        region: &str,
        credentials: Credentials,
        settings: ClientSettings,
        metrics: Arc<Metrics>,
    ) -> Result<S3Client, String> {
        S3Client::with_credentials(
            endpoint,
            CredentialsHandle::fixed(credentials, region),
            settings,
            metrics,
            &crate::tls::TlsSettings::default(),
        )
    }

    /// A client whose credentials come from `credentials` (refreshed by its owner) and
    /// which trusts `tls`'s extra roots besides the bundled and system ones.
    pub fn with_credentials(
        endpoint: Endpoint,
        credentials: CredentialsHandle,
        settings: ClientSettings,
        metrics: Arc<Metrics>,
        tls: &crate::tls::TlsSettings,
    ) -> Result<S3Client, String> {
        let http = tls
            .apply(reqwest::Client::builder())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .pool_max_idle_per_host(settings.pool_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(S3Client {
            inner: Arc::new(Inner {
                http,
                endpoint,
                credentials,
                settings,
                metrics,
            }),
        })
    }

    pub fn credentials(&self) -> &CredentialsHandle {
        &self.inner.credentials
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// One attempt: sign, send, classify.
    async fn attempt(&self, call: &Call<'_>, target: &Target) -> Result<Answer, S3Error> {
        let inner = &self.inner;
        let body_hash;
        let payload = match &call.body {
            Some(b) => {
                body_hash = sigv4::sha256_hex(b);
                PayloadHash::Sha256(&body_hash)
            }
            None => PayloadHash::Sha256(sigv4::EMPTY_SHA256),
        };
        // Waits only before the first credentials of a remote source have arrived.
        let session = inner
            .credentials
            .session_wait(inner.settings.timeout)
            .await
            .map_err(|e| S3Error::Unavailable {
                reason: e.to_string(),
            })?;
        let signed = session.signer().sign(
            &Request {
                method: call.method.as_str(),
                host: &target.host,
                path: &target.path,
                query: call.query,
                headers: call.headers,
            },
            payload,
            OffsetDateTime::now_utc(),
        );
        let query = crate::sigv4::canonical_request::canonical_query(call.query);
        let mut req = inner.http.request(call.method.clone(), target.url(&query));
        for (name, value) in call
            .headers
            .iter()
            .copied()
            .chain(signed.headers().map(|(n, v)| (n as &str, v)))
        {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                return Err(S3Error::InvalidResponse(format!(
                    "cannot send header {name}"
                )));
            };
            req = req.header(name, value);
        }
        if let Some(b) = &call.body {
            req = req.body(b.clone());
        }
        let _ = CALLS_IN_REQUEST.try_with(|c| c.set(c.get() + 1));
        let resp = req.send().await.map_err(|e| S3Error::Unavailable {
            reason: crate::tls::explain(&e, &target.origin).unwrap_or_else(|| transport_reason(&e)),
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| S3Error::Unavailable {
            reason: transport_reason(&e),
        })?;
        if (200..300).contains(&status) {
            return Ok(Answer { headers, body });
        }
        let doc = parse_error(&body);
        Err(classify(status, &doc.code, &doc.message))
    }

    /// Sends with bounded retries for the unavailable class only.
    async fn send(&self, call: Call<'_>) -> Result<Answer, S3Error> {
        let target = self.inner.endpoint.target(call.bucket, call.key);
        let settings = &self.inner.settings;
        let mut attempt = 0;
        loop {
            let started = Instant::now();
            let result = self.attempt(&call, &target).await;
            let outcome = match &result {
                Ok(_) => "ok",
                Err(e) => e.kind(),
            };
            self.inner
                .metrics
                .record_s3(call.op, outcome, started.elapsed());
            attempt += 1;
            match result {
                Err(e) if e.is_unavailable() && attempt < settings.attempts => {
                    tokio::time::sleep(backoff(
                        attempt - 1,
                        settings.backoff_base,
                        settings.backoff_max,
                        jitter(),
                    ))
                    .await;
                }
                other => return other,
            }
        }
    }

    /// HeadObject: size, `Last-Modified` (as RFC 3339 UTC) and ETag.
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, S3Error> {
        let answer = self
            .send(Call {
                op: S3Op::HeadObject,
                method: reqwest::Method::HEAD,
                bucket,
                key,
                query: &[],
                headers: &[],
                body: None,
            })
            .await?;
        let h = &answer.headers;
        let size = header_str(h, "content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| S3Error::InvalidResponse("HEAD answer without Content-Length".into()))?;
        let last_modified = header_str(h, "last-modified")
            .and_then(timefmt::normalize)
            .ok_or_else(|| {
                S3Error::InvalidResponse("HEAD answer without a valid Last-Modified".into())
            })?;
        Ok(ObjectMeta {
            size,
            last_modified,
            etag: header_str(h, "etag").unwrap_or_default().to_owned(),
        })
    }

    /// GetObject: the body and its ETag.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<(Bytes, String), S3Error> {
        let answer = self
            .send(Call {
                op: S3Op::GetObject,
                method: reqwest::Method::GET,
                bucket,
                key,
                query: &[],
                headers: &[],
                body: None,
            })
            .await?;
        let etag = header_str(&answer.headers, "etag")
            .unwrap_or_default()
            .to_owned();
        Ok((answer.body, etag))
    }

    /// PutObject, optionally conditional; returns the new ETag.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
        condition: &PutCondition,
    ) -> Result<String, S3Error> {
        let mut headers: Vec<(&str, &str)> = vec![("content-type", content_type)];
        match condition {
            PutCondition::None => {}
            PutCondition::IfMatch(etag) => headers.push(("if-match", etag)),
            PutCondition::IfNoneMatch => headers.push(("if-none-match", "*")),
        }
        let answer = self
            .send(Call {
                op: S3Op::PutObject,
                method: reqwest::Method::PUT,
                bucket,
                key,
                query: &[],
                headers: &headers,
                body: Some(body),
            })
            .await?;
        Ok(header_str(&answer.headers, "etag")
            .unwrap_or_default()
            .to_owned())
    }

    /// ListObjectsV2, every page. `progress` is called after each page with the number of
    /// objects listed so far, so a long listing can be logged as it advances.
    pub async fn list_objects(
        &self,
        bucket: &str,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<ListedObject>, S3Error> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            // The token is passed decoded: the signer and the URL encode it exactly once.
            let mut query: Vec<(&str, &str)> = vec![("list-type", "2"), ("max-keys", "1000")];
            if let Some(t) = &token {
                query.push(("continuation-token", t));
            }
            let answer = self
                .send(Call {
                    op: S3Op::ListObjectsV2,
                    method: reqwest::Method::GET,
                    bucket,
                    key: "",
                    query: &query,
                    headers: &[],
                    body: None,
                })
                .await?;
            let page = parse_list_page(&answer.body).map_err(S3Error::InvalidResponse)?;
            for c in page.contents {
                let last_modified = timefmt::normalize(&c.last_modified).ok_or_else(|| {
                    S3Error::InvalidResponse(format!(
                        "listing has an invalid LastModified {:?}",
                        c.last_modified
                    ))
                })?;
                objects.push(ListedObject {
                    key: c.key,
                    size: c.size,
                    last_modified,
                    etag: c.etag,
                });
            }
            progress(objects.len());
            match page.next_continuation_token {
                Some(t) if page.is_truncated => token = Some(t),
                _ => return Ok(objects),
            }
        }
    }
}
