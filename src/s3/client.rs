//! The S3 client: reqwest for transport, the project's own SigV4 for every signature.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use time::OffsetDateTime;

use super::breaker::{Admission, Breaker};
use super::endpoint::{Endpoint, Target};
use super::error::{S3Error, classify};
use super::retry::{backoff, jitter};
use super::xml::{parse_error, parse_list_page};
use crate::credentials::CredentialsHandle;
use crate::metrics::{Metrics, S3Op, S3Outcome};
use crate::sigv4::{self, Credentials, PayloadHash, Request};
use crate::timefmt;

/// Metadata of an object, as HEAD reports it (timestamps normalised to RFC 3339).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Bytes (`Content-Length`).
    pub size: u64,
    /// RFC 3339 UTC.
    pub last_modified: String,
    /// The `ETag` header as sent, quotes included; empty if none.
    pub etag: String,
}

/// One object of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedObject {
    /// The object key.
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// RFC 3339 UTC.
    pub last_modified: String,
    /// `<ETag>` as listed.
    pub etag: String,
}

/// The precondition of a PutObject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutCondition {
    /// Unconditional: overwrites whatever is there.
    None,
    /// Only if the object still has this ETag.
    IfMatch(String),
    /// Only if no object exists at the key yet.
    IfNoneMatch,
}

/// Timeouts and retries.
#[derive(Clone, Copy, Debug)]
pub struct ClientSettings {
    /// Bound on opening a connection (the service sets `PARPARCHIK_S3_CONNECT_TIMEOUT`).
    pub connect_timeout: Duration,
    /// Bound on one attempt.
    pub timeout: Duration,
    /// Attempts for the unavailable class (1 = no retry).
    pub attempts: u32,
    /// First retry's backoff step; each later one doubles it, with jitter.
    pub backoff_base: Duration,
    /// Longest backoff step.
    pub backoff_max: Duration,
    /// Idle keep-alive connections kept per host.
    pub pool_idle_per_host: usize,
    /// S3 calls in flight at most; a call waits [`ClientSettings::queue_wait`] for a
    /// place, then is shed as overloaded (503 + `Retry-After` to the client).
    pub max_concurrency: usize,
    /// How long a call waits for a place under [`ClientSettings::max_concurrency`].
    pub queue_wait: Duration,
    /// How long a bucket that answered a listing is trusted to exist, so that a bodiless
    /// HEAD 404 for a key in it counts as "the key does not exist".
    pub bucket_proof_ttl: Duration,
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
            max_concurrency: 256,
            queue_wait: Duration::from_secs(1),
            bucket_proof_ttl: Duration::from_secs(5),
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
    in_flight: tokio::sync::Semaphore,
    breaker: Mutex<Breaker>,
    /// When each bucket last proved it exists (a readable listing answer).
    bucket_proofs: Mutex<HashMap<String, Instant>>,
    /// One bucket probe at a time: a burst of 404s waits for one probe, not a thousand.
    probing: tokio::sync::Mutex<()>,
}

/// A failed call: the error, and the HTTP status when S3 (or whatever answered) sent one.
struct Failure {
    status: Option<u16>,
    error: S3Error,
}

impl From<S3Error> for Failure {
    fn from(error: S3Error) -> Failure {
        Failure {
            status: None,
            error,
        }
    }
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
    /// Retry a plain 500: false where the 500 may be this key's own answer (HEAD), which
    /// the caller then tells apart from an outage by asking the bucket.
    retry_500: bool,
    /// A 2xx body longer than this is refused ([`S3Error::TooLarge`]) unread.
    max_body: Option<u64>,
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

/// Reads a body of at most `limit` bytes: a longer one (by its `Content-Length`, or as it
/// arrives) is refused before it is held whole.
async fn read_at_most(mut resp: reqwest::Response, limit: u64) -> Result<Bytes, Failure> {
    let too_large = |resp: &reqwest::Response| {
        Failure::from(S3Error::TooLarge {
            limit,
            etag: header_str(resp.headers(), "etag")
                .unwrap_or_default()
                .to_owned(),
        })
    };
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large(&resp));
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if (body.len() + chunk.len()) as u64 > limit {
                    return Err(too_large(&resp));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Bytes::from(body)),
            Err(e) => {
                return Err(S3Error::Unavailable {
                    reason: transport_reason(&e),
                }
                .into());
            }
        }
    }
}

impl S3Client {
    /// A client with fixed credentials and the bundled and system roots (tools, tests).
    pub fn new(
        endpoint: Endpoint,
        region: &str,
        credentials: Credentials,
        settings: ClientSettings,
        metrics: Arc<Metrics>,
    ) -> Result<S3Client, crate::tls::HttpClientError> {
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
    ) -> Result<S3Client, crate::tls::HttpClientError> {
        let builder = tls
            .apply(reqwest::Client::builder())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .pool_max_idle_per_host(settings.pool_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none());
        let http = crate::tls::build_client(builder, "S3")?;
        Ok(S3Client {
            inner: Arc::new(Inner {
                http,
                endpoint,
                credentials,
                in_flight: tokio::sync::Semaphore::new(settings.max_concurrency.max(1)),
                breaker: Mutex::new(Breaker::default()),
                bucket_proofs: Mutex::new(HashMap::new()),
                probing: tokio::sync::Mutex::new(()),
                settings,
                metrics,
            }),
        })
    }

    /// Whether the circuit breaker is shedding calls (for `/status`).
    pub fn breaker_open(&self) -> bool {
        self.inner
            .breaker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_open()
    }

    /// S3 calls being sent right now.
    pub fn calls_in_flight(&self) -> usize {
        self.inner.settings.max_concurrency.max(1) - self.inner.in_flight.available_permits()
    }

    /// The credentials calls are signed with.
    pub fn credentials(&self) -> &CredentialsHandle {
        &self.inner.credentials
    }

    /// Where calls go.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// One attempt: sign, send, classify.
    async fn attempt(&self, call: &Call<'_>, target: &Target) -> Result<Answer, Failure> {
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
        let query = sigv4::canonical_request::canonical_query(call.query);
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
                return Err(S3Error::InvalidResponse(format!("cannot send header {name}")).into());
            };
            req = req.header(name, value);
        }
        if let Some(b) = &call.body {
            req = req.body(b.clone());
        }
        super::request_scope::note_call();
        let resp = req.send().await.map_err(|e| S3Error::Unavailable {
            reason: crate::tls::explain(&e, &target.origin).unwrap_or_else(|| transport_reason(&e)),
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = match call.max_body {
            Some(limit) if (200..300).contains(&status) => read_at_most(resp, limit).await?,
            _ => resp.bytes().await.map_err(|e| S3Error::Unavailable {
                reason: transport_reason(&e),
            })?,
        };
        if (200..300).contains(&status) {
            return Ok(Answer { headers, body });
        }
        let doc = parse_error(&body);
        let error = if doc.code.is_empty() && !body.is_empty() && status < 500 {
            // Something answered that is not S3 (an HTML or plain-text error page).
            S3Error::Unproven {
                status,
                reason: "an answer whose body is not an S3 error document".into(),
            }
        } else {
            classify(status, &doc.code, &doc.message)
        };
        Err(Failure {
            status: Some(status),
            error,
        })
    }

    /// Sends with bounded retries for the unavailable class only, within the cap on
    /// calls in flight and while the circuit breaker lets calls through.
    async fn send(&self, call: Call<'_>) -> Result<Answer, Failure> {
        let target = self.inner.endpoint.target(call.bucket, call.key);
        let settings = &self.inner.settings;
        let mut attempt = 0;
        loop {
            let mut admission = self
                .inner
                .breaker
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .admit(Instant::now());
            if admission == Admission::Shed && super::request_scope::is_past_the_breaker() {
                admission = Admission::Send;
            }
            if admission == Admission::Shed {
                return Err(self.shed(call.op, "circuit breaker open after repeated S3 failures"));
            }
            let Ok(Ok(permit)) =
                tokio::time::timeout(settings.queue_wait, self.inner.in_flight.acquire()).await
            else {
                if admission == Admission::Trial {
                    // The trial was never sent: let the next call try instead.
                    self.inner
                        .breaker
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .record(Instant::now(), admission, true);
                }
                return Err(self.shed(call.op, "too many S3 calls in flight"));
            };
            let started = Instant::now();
            let result = self.attempt(&call, &target).await;
            drop(permit);
            let outcome = match &result {
                Ok(_) => S3Outcome::Ok,
                // A HEAD 404 is S3's usual "no such key" (a HEAD has no body to say it);
                // whether it proves anything is decided by the caller.
                Err(f) if call.method == reqwest::Method::HEAD && f.status == Some(404) => {
                    S3Outcome::NotFound
                }
                Err(f) => f.error.outcome(),
            };
            self.inner
                .metrics
                .record_s3(call.op, outcome, started.elapsed());
            let storage_failed = matches!(&result, Err(f) if matches!(f.error, S3Error::Unavailable { .. } | S3Error::Unproven { .. }));
            let bodiless_404 = call.method == reqwest::Method::HEAD
                && matches!(&result, Err(f) if f.status == Some(404));
            if matches!(&result, Err(f) if matches!(f.error, S3Error::Unproven { .. }))
                && !bodiless_404
                && !call.bucket.is_empty()
            {
                // An answer that is not S3's voids what the bucket proved before.
                self.inner
                    .bucket_proofs
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(call.bucket);
            }
            self.inner
                .breaker
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .record(Instant::now(), admission, storage_failed);
            attempt += 1;
            match result {
                Err(f)
                    if matches!(f.error, S3Error::Unavailable { .. })
                        && attempt < settings.attempts
                        && (call.retry_500 || f.status != Some(500)) =>
                {
                    let wait = backoff(
                        attempt - 1,
                        settings.backoff_base,
                        settings.backoff_max,
                        jitter(),
                    );
                    // Retries are silent at the default level (the caller reports what
                    // finally happened); `PARPARCHIK_LOG_LEVEL=debug` shows each one.
                    crate::debug!(
                        "S3 {} {}/{}: attempt {attempt} failed ({}); retrying in {} ms",
                        call.op.label(),
                        call.bucket,
                        call.key,
                        f.error,
                        wait.as_millis()
                    );
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    fn shed(&self, op: S3Op, reason: &str) -> Failure {
        let error = S3Error::Overloaded {
            reason: reason.to_owned(),
        };
        self.inner
            .metrics
            .record_s3(op, error.outcome(), Duration::ZERO);
        error.into()
    }

    /// Whether `bucket` is known to exist and answer as S3 does: a listing answer it gave
    /// within the proof TTL (or, with `since`, after that instant), else one asked for
    /// now (one probe at a time; callers waiting for it share its answer).
    pub async fn bucket_answers(
        &self,
        bucket: &str,
        since: Option<Instant>,
    ) -> Result<(), S3Error> {
        let fresh = |inner: &Inner| {
            inner
                .bucket_proofs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(bucket)
                .is_some_and(|at| match since {
                    Some(since) => *at > since,
                    None => at.elapsed() < inner.settings.bucket_proof_ttl,
                })
        };
        if fresh(&self.inner) {
            return Ok(());
        }
        let _one_probe = self.inner.probing.lock().await;
        if fresh(&self.inner) {
            return Ok(());
        }
        self.list_page(bucket, &ListPageRequest::probe()).await?;
        Ok(())
    }

    fn remember_bucket_answers(&self, bucket: &str) {
        self.inner
            .bucket_proofs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(bucket.to_owned(), Instant::now());
    }

    /// HeadObject: size, `Last-Modified` (as RFC 3339 UTC) and ETag, for a key nothing
    /// is known of (a bucket proof from the last few seconds backs a 404).
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, S3Error> {
        self.head_object_with(bucket, key, Evidence::Recent).await
    }

    /// HeadObject. A HEAD answer has no body, so a 404 cannot say `NoSuchKey`: it counts
    /// as [`S3Error::NotFound`] only while the bucket is known to answer, as `evidence`
    /// asks. Likewise a 500 or a 4xx for this one key while the bucket answers (asked
    /// after the HEAD) is [`S3Error::KeyRejected`]; otherwise it is the bucket's failure.
    pub async fn head_object_with(
        &self,
        bucket: &str,
        key: &str,
        evidence: Evidence,
    ) -> Result<ObjectMeta, S3Error> {
        let asked_at = Instant::now();
        let sent = self
            .send(Call {
                op: S3Op::HeadObject,
                method: reqwest::Method::HEAD,
                bucket,
                key,
                query: &[],
                headers: &[],
                body: None,
                retry_500: false,
                max_body: None,
            })
            .await;
        let answer = match sent {
            Ok(answer) => answer,
            Err(Failure {
                status: Some(404),
                error: S3Error::Unproven { .. },
            }) => {
                let since = match evidence {
                    Evidence::Recent => None,
                    Evidence::AfterTheAnswer => Some(asked_at),
                };
                self.bucket_answers(bucket, since).await?;
                return Err(S3Error::NotFound);
            }
            Err(Failure {
                status: Some(status),
                error,
            }) if status == 500 || (matches!(error, S3Error::Rejected { .. }) && status != 501) => {
                return match self.bucket_answers(bucket, Some(asked_at)).await {
                    Ok(()) => Err(S3Error::KeyRejected {
                        status,
                        code: match error {
                            S3Error::Rejected { code, .. } => code,
                            _ => String::new(),
                        },
                    }),
                    Err(_) => Err(error),
                };
            }
            Err(f) => return Err(f.error),
        };
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
        self.get_object_limited(bucket, key, u64::MAX).await
    }

    /// GetObject of a body of at most `limit` bytes ([`S3Error::TooLarge`] otherwise).
    pub async fn get_object_limited(
        &self,
        bucket: &str,
        key: &str,
        limit: u64,
    ) -> Result<(Bytes, String), S3Error> {
        let answer = self
            .send(Call {
                op: S3Op::GetObject,
                method: reqwest::Method::GET,
                bucket,
                key,
                query: &[],
                headers: &[],
                body: None,
                retry_500: true,
                max_body: (limit < u64::MAX).then_some(limit),
            })
            .await
            .map_err(|f| f.error)?;
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
                retry_500: true,
                max_body: None,
            })
            .await
            .map_err(|f| f.error)?;
        Ok(header_str(&answer.headers, "etag")
            .unwrap_or_default()
            .to_owned())
    }

    /// DeleteObject (S3 answers 204 whether or not the key existed).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), S3Error> {
        self.send(Call {
            op: S3Op::DeleteObject,
            method: reqwest::Method::DELETE,
            bucket,
            key,
            query: &[],
            headers: &[],
            body: None,
            retry_500: true,
            max_body: None,
        })
        .await
        .map(|_| ())
        .map_err(|f| f.error)
    }

    /// One ListObjectsV2 page. A readable answer also proves the bucket exists.
    pub async fn list_page(
        &self,
        bucket: &str,
        request: &ListPageRequest<'_>,
    ) -> Result<ListedPage, S3Error> {
        let max_keys = request.max_keys.to_string();
        // Tokens and keys are passed decoded: the signer and the URL encode them once.
        let mut query: Vec<(&str, &str)> = vec![("list-type", "2"), ("max-keys", &max_keys)];
        if let Some(t) = request.continuation_token {
            query.push(("continuation-token", t));
        }
        if let Some(after) = request.start_after {
            query.push(("start-after", after));
        }
        if let Some(d) = request.delimiter {
            query.push(("delimiter", d));
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
                retry_500: true,
                max_body: None,
            })
            .await
            .map_err(|f| f.error)?;
        let page =
            parse_list_page(&answer.body).map_err(|e| S3Error::InvalidResponse(e.to_string()))?;
        self.remember_bucket_answers(bucket);
        let mut objects = Vec::with_capacity(page.contents.len());
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
        Ok(ListedPage {
            objects,
            prefixes: page.common_prefixes,
            next_token: page.next_continuation_token.filter(|_| page.is_truncated),
        })
    }

    /// The first-level "folders" of `bucket` (common prefixes for `/`), at most
    /// `pages` pages of them; with whether that is all of them.
    pub async fn list_prefixes(
        &self,
        bucket: &str,
        pages: usize,
    ) -> Result<(Vec<String>, bool), S3Error> {
        let mut prefixes = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..pages {
            let page = self
                .list_page(
                    bucket,
                    &ListPageRequest {
                        continuation_token: token.as_deref(),
                        start_after: None,
                        max_keys: 1000,
                        delimiter: Some("/"),
                    },
                )
                .await?;
            prefixes.extend(page.prefixes);
            match page.next_token {
                Some(t) if token.as_deref() != Some(t.as_str()) => token = Some(t),
                Some(_) => return Ok((prefixes, false)),
                None => return Ok((prefixes, true)),
            }
        }
        Ok((prefixes, false))
    }

    /// ListObjectsV2, every page. `progress` is called after each page with the number of
    /// objects listed so far, so a long listing can be logged as it advances.
    pub async fn list_objects(
        &self,
        bucket: &str,
        progress: impl FnMut(usize),
    ) -> Result<Vec<ListedObject>, S3Error> {
        self.list_range(bucket, None, None, progress).await
    }

    /// Every object after `start_after` (exclusive) up to `until` (inclusive), page by
    /// page.
    pub async fn list_range(
        &self,
        bucket: &str,
        start_after: Option<&str>,
        until: Option<&str>,
        progress: impl FnMut(usize),
    ) -> Result<Vec<ListedObject>, S3Error> {
        self.list_range_kept(bucket, start_after, until, Some, progress)
            .await
    }

    /// As [`S3Client::list_range`], each object turned into what the caller keeps as
    /// soon as its page is read (a million listed objects with their ETags and times
    /// are several times the size of what a registry keeps of them). A server that
    /// repeats a continuation token or goes backwards is lying about its listing: stop
    /// with an error rather than loop or double keys.
    pub async fn list_range_kept<T>(
        &self,
        bucket: &str,
        start_after: Option<&str>,
        until: Option<&str>,
        mut keep: impl FnMut(ListedObject) -> Option<T>,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<T>, S3Error> {
        let mut kept: Vec<T> = Vec::new();
        let mut listed = 0usize;
        let mut floor: Option<String> = start_after.map(str::to_owned);
        let mut token: Option<String> = None;
        let mut seen_tokens = std::collections::HashSet::new();
        loop {
            let page = self
                .list_page(
                    bucket,
                    &ListPageRequest {
                        continuation_token: token.as_deref(),
                        start_after: if token.is_none() { start_after } else { None },
                        max_keys: 1000,
                        delimiter: None,
                    },
                )
                .await?;
            let mut past_the_end = false;
            for o in page.objects {
                if floor.as_deref().is_some_and(|f| o.key.as_str() <= f) {
                    self.inner.metrics.record_listing_loop();
                    return Err(S3Error::InvalidResponse(format!(
                        "listing of bucket {bucket} went backwards at key {:?}",
                        o.key
                    )));
                }
                if until.is_some_and(|u| o.key.as_str() > u) {
                    past_the_end = true;
                    break;
                }
                floor = Some(o.key.clone());
                listed += 1;
                kept.extend(keep(o));
            }
            progress(listed);
            if past_the_end {
                return Ok(kept);
            }
            match page.next_token {
                Some(t) => {
                    if !seen_tokens.insert(t.clone()) {
                        self.inner.metrics.record_listing_loop();
                        return Err(S3Error::InvalidResponse(format!(
                            "listing of bucket {bucket} repeated a continuation token"
                        )));
                    }
                    token = Some(t);
                }
                None => return Ok(kept),
            }
        }
    }
}

/// What a bodiless HEAD 404 must be backed by to count as "the key does not exist".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// The bucket answered a listing within the last few seconds: enough to answer 404
    /// for a key nothing is known of (nothing is forgotten on it).
    Recent,
    /// The bucket answered a listing after this HEAD was sent: needed before a
    /// registered file is forgotten, so an endpoint that just started answering bare
    /// 404s (an ingress default backend) cannot make the service forget anything.
    AfterTheAnswer,
}

/// Which page of a listing to ask for.
#[derive(Clone, Copy, Debug)]
pub struct ListPageRequest<'a> {
    pub(crate) continuation_token: Option<&'a str>,
    /// List keys after this one (exclusive).
    pub start_after: Option<&'a str>,
    /// Keys per page at most (S3 caps it at 1000).
    pub max_keys: u32,
    /// Groups keys by what precedes the first delimiter after the prefix into
    /// [`ListedPage::prefixes`].
    pub delimiter: Option<&'a str>,
}

impl ListPageRequest<'_> {
    /// The cheapest listing: proves the bucket exists and answers as S3.
    fn probe() -> ListPageRequest<'static> {
        ListPageRequest {
            continuation_token: None,
            start_after: None,
            max_keys: 1,
            delimiter: None,
        }
    }
}

/// One page's objects, and the token of the next page when there is one.
#[derive(Clone, Debug, Default)]
pub struct ListedPage {
    /// In key order, as S3 listed them.
    pub objects: Vec<ListedObject>,
    /// The common prefixes, when the request named a delimiter.
    pub prefixes: Vec<String>,
    /// `None` on the last page.
    pub next_token: Option<String>,
}
