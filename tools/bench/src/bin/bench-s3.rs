//! `bench-s3`: a synthetic S3 for the scale and soak benchmarks.
//!
//! ```text
//! bench-s3 [--addr 127.0.0.1:0] --layout NAME:COUNT[,NAME:COUNT...] [--overlap PCT]
//!          [--latency-ms MS] [--latency-on list|all] [--max-stored-body BYTES]
//! ```
//!
//! Path-style S3 over HTTP/1.1 (hyper), no signature checks (any `Authorization` is
//! accepted). Each bucket of `--layout` holds COUNT generated objects
//! (`dir0042/file0042123.bin`, see `parparchik_bench::synth`) that cost no memory; each
//! bucket after the first overlaps the previous one by `--overlap` % of its count
//! (duplicates). Objects written or deleted later are kept in a per-bucket overlay.
//!
//! S3 operations: ListObjectsV2 (`GET /B?list-type=2`: `max-keys` ≤ 1000, `prefix`,
//! `start-after`, `continuation-token`, `encoding-type=url`), HeadBucket, GET/HEAD/PUT
//! (`If-Match`, `If-None-Match`)/DELETE of objects, S3 error documents (`NoSuchKey`,
//! `NoSuchBucket`, `PreconditionFailed`, ...). `--latency-ms` delays listing pages
//! (`--latency-on list`, the default) or every S3 request (`all`).
//!
//! Control endpoints (never delayed nor faulted, not counted as S3 requests):
//! - `GET /_bench/stats`: JSON counters (requests by operation, statuses, bytes);
//! - `POST /_bench/reset`: zeroes them;
//! - `POST /_bench/mode?m=healthy|hang|bare404|s503`: fault mode of every S3 request
//!   (`hang`: never answers until the mode changes; `bare404`: `404 page not found` as
//!   text/plain, like an ingress default backend; `s503`: 503 `SlowDown`);
//! - `POST /_bench/put?bucket=B&key=K[&size=N]`: writes an object behind the service's
//!   back (the request body, or N filler bytes);
//! - `POST /_bench/delete?bucket=B&key=K`.
//!
//! Each flag can also come from the environment: `BENCH_S3_LAYOUT`, `BENCH_S3_ADDR`,
//! `BENCH_S3_LATENCY_MS`, ... (a flag on the command line wins).
//!
//! Prints `bench-s3: listening on http://ADDR ...` once it listens and serves until killed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderValue, LAST_MODIFIED};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parparchik_bench::Args;
use parparchik_bench::synth::{
    Bucket, Layout, ListQuery, Meta, PutCheck, Stored, check_put, decode_token, error_xml,
    http_time, list_xml, parse_query, percent_decode,
};
use tokio::sync::watch;

const USAGE: &str = "usage: bench-s3 [--addr HOST:PORT] --layout NAME:COUNT[,NAME:COUNT...] \
[--overlap PCT] [--latency-ms MS] [--latency-on list|all] [--max-stored-body BYTES]";

/// Largest request body read (a manifest of 10 million entries is about 1.5 GB).
const MAX_BODY: usize = 4 << 30;
/// Largest filler object `/_bench/put?size=` makes.
const MAX_FILLER: u64 = 1 << 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Healthy,
    Hang,
    Bare404,
    S503,
}

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        match s {
            "healthy" => Some(Mode::Healthy),
            "hang" => Some(Mode::Hang),
            "bare404" => Some(Mode::Bare404),
            "s503" => Some(Mode::S503),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Healthy => "healthy",
            Mode::Hang => "hang",
            Mode::Bare404 => "bare404",
            Mode::S503 => "s503",
        }
    }
}

/// Operations counted separately in the stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    List,
    HeadBucket,
    Head,
    Get,
    Put,
    Delete,
    Other,
}

const OPS: [(Op, &str); 7] = [
    (Op::List, "list"),
    (Op::HeadBucket, "head_bucket"),
    (Op::Head, "head"),
    (Op::Get, "get"),
    (Op::Put, "put"),
    (Op::Delete, "delete"),
    (Op::Other, "other"),
];

#[derive(Default)]
struct Stats {
    by_op: [AtomicU64; 7],
    /// Answers by status class: 2xx, 3xx, 404, 412, other 4xx, 503, other 5xx.
    by_status: [AtomicU64; 7],
    /// Requests answered (or held) by a fault mode: hang, bare404, s503.
    faulted: [AtomicU64; 3],
    put_bytes: AtomicU64,
    put_bytes_ok: AtomicU64,
    bytes_sent: AtomicU64,
    control: AtomicU64,
}

const STATUS_NAMES: [&str; 7] = ["2xx", "3xx", "404", "412", "4xx_other", "503", "5xx_other"];

impl Stats {
    fn op(&self, op: Op) {
        let i = OPS
            .iter()
            .position(|(o, _)| *o == op)
            .expect("every op is in OPS");
        self.by_op[i].fetch_add(1, Ordering::Relaxed);
    }

    fn status(&self, s: StatusCode) {
        let i = match s.as_u16() {
            200..=299 => 0,
            300..=399 => 1,
            404 => 2,
            412 => 3,
            400..=499 => 4,
            503 => 5,
            _ => 6,
        };
        self.by_status[i].fetch_add(1, Ordering::Relaxed);
    }

    fn reset(&self) {
        for c in self
            .by_op
            .iter()
            .chain(&self.by_status)
            .chain(&self.faulted)
            .chain([
                &self.put_bytes,
                &self.put_bytes_ok,
                &self.bytes_sent,
                &self.control,
            ])
        {
            c.store(0, Ordering::Relaxed);
        }
    }

    fn json(&self, mode: Mode) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let s3: u64 = self.by_op.iter().map(get).sum();
        let ops: Vec<String> = OPS
            .iter()
            .zip(&self.by_op)
            .map(|((_, n), c)| format!("\"{n}\":{}", get(c)))
            .collect();
        let statuses: Vec<String> = STATUS_NAMES
            .iter()
            .zip(&self.by_status)
            .map(|(n, c)| format!("\"{n}\":{}", get(c)))
            .collect();
        format!(
            "{{\"mode\":\"{}\",\"s3_requests\":{s3},\"requests\":{{{}}},\"statuses\":{{{}}},\
             \"faulted\":{{\"hang\":{},\"bare404\":{},\"s503\":{}}},\"put_bytes\":{},\
             \"put_bytes_ok\":{},\"bytes_sent\":{},\"control_requests\":{}}}\n",
            mode.name(),
            ops.join(","),
            statuses.join(","),
            get(&self.faulted[0]),
            get(&self.faulted[1]),
            get(&self.faulted[2]),
            get(&self.put_bytes),
            get(&self.put_bytes_ok),
            get(&self.bytes_sent),
            get(&self.control),
        )
    }
}

struct State {
    buckets: HashMap<String, RwLock<Bucket>>,
    stats: Stats,
    mode: watch::Sender<Mode>,
    latency: Duration,
    latency_on_all: bool,
    max_stored_body: usize,
    counter: AtomicU64,
}

type Resp = Response<Full<Bytes>>;

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl State {
    fn next_id(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh, unique quoted ETag for a write.
    fn new_etag(&self) -> String {
        let n = self.next_id();
        format!(
            "\"{:016x}{:016x}\"",
            n.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            now_secs()
        )
    }

    fn respond(&self, status: StatusCode, content_type: &str, body: Bytes) -> Resp {
        self.stats
            .bytes_sent
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = status;
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_str(content_type).expect("content types are static ASCII"),
        );
        r.headers_mut().insert(
            "x-amz-request-id",
            HeaderValue::from_str(&format!("{:016X}", self.next_id()))
                .expect("hex is a valid header value"),
        );
        r
    }

    fn error(&self, status: StatusCode, code: &str, message: &str, resource: &str) -> Resp {
        let xml = error_xml(code, message, resource, self.next_id());
        self.respond(status, "application/xml", Bytes::from(xml))
    }

    fn json(&self, status: StatusCode, body: String) -> Resp {
        self.respond(status, "application/json", Bytes::from(body))
    }
}

/// Headers describing an object. HEAD sets `Content-Length` explicitly (hyper keeps it);
/// GET gets it from the body.
fn object_headers(r: &mut Resp, meta: &Meta, head: bool) {
    let h = r.headers_mut();
    if head {
        h.insert(CONTENT_LENGTH, HeaderValue::from(meta.size));
    }
    if let Ok(v) = HeaderValue::from_str(&meta.etag) {
        h.insert(ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_time(meta.modified)) {
        h.insert(LAST_MODIFIED, v);
    }
}

fn header<'r>(req: &'r Request<Incoming>, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn query_value<'q>(q: &'q [(String, String)], name: &str) -> Option<&'q str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let resp = if req.uri().path().starts_with("/_bench/") {
        state.stats.control.fetch_add(1, Ordering::Relaxed);
        control(&state, req).await
    } else {
        let r = s3(&state, req).await;
        state.stats.status(r.status());
        r
    };
    Ok(resp)
}

async fn control(state: &State, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_owned();
    let Some(q) = parse_query(req.uri().query().unwrap_or("")) else {
        return state.json(
            StatusCode::BAD_REQUEST,
            "{\"error\":\"bad query\"}\n".into(),
        );
    };
    let method = req.method().clone();
    match (method, path.as_str()) {
        (Method::GET, "/_bench/stats") => {
            let mode = *state.mode.borrow();
            state.json(StatusCode::OK, state.stats.json(mode))
        }
        (Method::POST, "/_bench/reset") => {
            state.stats.reset();
            state.json(StatusCode::OK, "{\"reset\":true}\n".into())
        }
        (Method::POST, "/_bench/mode") => match query_value(&q, "m").and_then(Mode::parse) {
            Some(m) => {
                state.mode.send_replace(m);
                state.json(StatusCode::OK, format!("{{\"mode\":\"{}\"}}\n", m.name()))
            }
            None => state.json(
                StatusCode::BAD_REQUEST,
                "{\"error\":\"m must be healthy, hang, bare404 or s503\"}\n".into(),
            ),
        },
        (Method::POST, "/_bench/put" | "/_bench/delete") => {
            let (Some(b), Some(k)) = (query_value(&q, "bucket"), query_value(&q, "key")) else {
                return state.json(
                    StatusCode::BAD_REQUEST,
                    "{\"error\":\"bucket and key are required\"}\n".into(),
                );
            };
            let Some(bucket) = state.buckets.get(b) else {
                return state.json(
                    StatusCode::NOT_FOUND,
                    "{\"error\":\"no such bucket\"}\n".into(),
                );
            };
            if k.is_empty() {
                return state.json(
                    StatusCode::BAD_REQUEST,
                    "{\"error\":\"empty key\"}\n".into(),
                );
            }
            if path == "/_bench/delete" {
                let existed = bucket.write().expect("lock poisoned").delete(k);
                return state.json(StatusCode::OK, format!("{{\"deleted\":{existed}}}\n"));
            }
            let size: Option<u64> = match query_value(&q, "size").map(str::parse) {
                None => None,
                Some(Ok(s)) if s <= MAX_FILLER => Some(s),
                Some(_) => {
                    return state
                        .json(StatusCode::BAD_REQUEST, "{\"error\":\"bad size\"}\n".into());
                }
            };
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(r) => {
                    return state.json(StatusCode::BAD_REQUEST, format!("{{\"error\":\"{r}\"}}\n"));
                }
            };
            let (size, body) = match size {
                Some(s) if body.is_empty() => (s, None),
                _ => (body.len() as u64, Some(body)),
            };
            let etag = state.new_etag();
            let stored = Stored {
                meta: Meta {
                    size,
                    etag: etag.clone(),
                    modified: now_secs(),
                },
                body,
            };
            bucket.write().expect("lock poisoned").put(k, stored);
            state.json(
                StatusCode::OK,
                format!(
                    "{{\"etag\":\"{}\",\"size\":{size}}}\n",
                    etag.replace('"', "\\\"")
                ),
            )
        }
        _ => state.json(
            StatusCode::NOT_FOUND,
            "{\"error\":\"unknown control endpoint\"}\n".into(),
        ),
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, String> {
    Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|e| format!("cannot read the body: {e}"))
}

fn classify(method: &Method, key: Option<&str>, q: &[(String, String)]) -> Op {
    match (method, key) {
        (&Method::GET, None) if query_value(q, "list-type") == Some("2") => Op::List,
        (&Method::HEAD, None) => Op::HeadBucket,
        (&Method::HEAD, Some(_)) => Op::Head,
        (&Method::GET, Some(_)) => Op::Get,
        (&Method::PUT, Some(_)) => Op::Put,
        (&Method::DELETE, Some(_)) => Op::Delete,
        _ => Op::Other,
    }
}

async fn s3(state: &State, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_owned();
    let resource = path.clone();
    let rest = path.strip_prefix('/').unwrap_or(&path);
    let (bucket_raw, key_raw) = match rest.split_once('/') {
        Some((b, k)) => (b, Some(k).filter(|k| !k.is_empty())),
        None => (rest, None),
    };
    let q = parse_query(req.uri().query().unwrap_or(""));
    let op = classify(req.method(), key_raw, q.as_deref().unwrap_or(&[]));
    state.stats.op(op);

    // Fault modes first: they stand in for whatever sits in front of S3.
    let mut rx = state.mode.subscribe();
    loop {
        let mode = *rx.borrow_and_update();
        match mode {
            Mode::Healthy => break,
            Mode::Hang => {
                state.stats.faulted[0].fetch_add(1, Ordering::Relaxed);
                // Held until the mode changes; a client that gives up drops this future.
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            Mode::Bare404 => {
                state.stats.faulted[1].fetch_add(1, Ordering::Relaxed);
                // Nothing S3-like about it, as from an ingress default backend.
                let mut r = state.respond(
                    StatusCode::NOT_FOUND,
                    "text/plain",
                    Bytes::from_static(b"404 page not found\n"),
                );
                r.headers_mut().remove("x-amz-request-id");
                return r;
            }
            Mode::S503 => {
                state.stats.faulted[2].fetch_add(1, Ordering::Relaxed);
                return state.error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SlowDown",
                    "Please reduce your request rate.",
                    &resource,
                );
            }
        }
    }
    if !state.latency.is_zero() && (state.latency_on_all || op == Op::List) {
        tokio::time::sleep(state.latency).await;
    }

    let Some(q) = q else {
        return state.error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Malformed query string.",
            &resource,
        );
    };
    let Some(bucket_name) = percent_decode(bucket_raw, false).filter(|b| !b.is_empty()) else {
        return state.error(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "Only path-style bucket and object requests are implemented.",
            &resource,
        );
    };
    let Some(bucket) = state.buckets.get(&bucket_name) else {
        return state.error(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist",
            &resource,
        );
    };
    let key = match key_raw.map(|k| percent_decode(k, false)) {
        None => None,
        Some(Some(k)) => Some(k),
        Some(None) => {
            return state.error(
                StatusCode::BAD_REQUEST,
                "InvalidURI",
                "Couldn't parse the specified URI.",
                &resource,
            );
        }
    };
    let Some(key) = key else {
        return bucket_op(state, op, &bucket_name, bucket, &q, &resource);
    };
    match op {
        Op::Head | Op::Get => {
            let found = bucket.read().expect("lock poisoned").get(&key);
            let Some((meta, body)) = found else {
                return state.error(
                    StatusCode::NOT_FOUND,
                    "NoSuchKey",
                    "The specified key does not exist.",
                    &resource,
                );
            };
            let body = match (op, body) {
                (Op::Head, _) => Bytes::new(),
                (_, Some(b)) => b,
                (_, None) => {
                    let len = usize::try_from(meta.size.min(MAX_FILLER)).expect("capped at 1 GiB");
                    Bytes::from(vec![b'x'; len])
                }
            };
            let mut r = state.respond(StatusCode::OK, "application/octet-stream", body);
            object_headers(&mut r, &meta, op == Op::Head);
            r
        }
        Op::Put => {
            let if_match = header(&req, "if-match").map(str::to_owned);
            let if_none_match = header(&req, "if-none-match").map(str::to_owned);
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(e) => {
                    return state.error(StatusCode::BAD_REQUEST, "IncompleteBody", &e, &resource);
                }
            };
            state
                .stats
                .put_bytes
                .fetch_add(body.len() as u64, Ordering::Relaxed);
            // Checked and written under one lock, so conditional writes are atomic.
            let mut b = bucket.write().expect("lock poisoned");
            let current = b.get(&key).map(|(m, _)| m.etag);
            match check_put(
                current.as_deref(),
                if_match.as_deref(),
                if_none_match.as_deref(),
            ) {
                PutCheck::Proceed => {}
                PutCheck::Failed => {
                    drop(b);
                    return state.error(
                        StatusCode::PRECONDITION_FAILED,
                        "PreconditionFailed",
                        "At least one of the pre-conditions you specified did not hold",
                        &resource,
                    );
                }
                PutCheck::NoSuchKey => {
                    drop(b);
                    return state.error(
                        StatusCode::NOT_FOUND,
                        "NoSuchKey",
                        "The specified key does not exist.",
                        &resource,
                    );
                }
            }
            let size = body.len() as u64;
            let meta = Meta {
                size,
                etag: state.new_etag(),
                modified: now_secs(),
            };
            let keep = body.len() <= state.max_stored_body;
            b.put(
                &key,
                Stored {
                    meta: meta.clone(),
                    body: keep.then_some(body),
                },
            );
            drop(b);
            state.stats.put_bytes_ok.fetch_add(size, Ordering::Relaxed);
            let mut r = state.respond(StatusCode::OK, "application/xml", Bytes::new());
            if let Ok(v) = HeaderValue::from_str(&meta.etag) {
                r.headers_mut().insert(ETAG, v);
            }
            r
        }
        Op::Delete => {
            bucket.write().expect("lock poisoned").delete(&key);
            let mut r = state.respond(StatusCode::NO_CONTENT, "application/xml", Bytes::new());
            r.headers_mut().remove(CONTENT_TYPE);
            r
        }
        _ => state.error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
            &resource,
        ),
    }
}

fn bucket_op(
    state: &State,
    op: Op,
    name: &str,
    bucket: &RwLock<Bucket>,
    q: &[(String, String)],
    resource: &str,
) -> Resp {
    match op {
        Op::HeadBucket => state.respond(StatusCode::OK, "application/xml", Bytes::new()),
        Op::List => {
            let max_keys = match query_value(q, "max-keys").map(str::parse::<usize>) {
                None => 1000,
                Some(Ok(n)) => n.min(1000),
                Some(Err(_)) => {
                    return state.error(StatusCode::BAD_REQUEST, "InvalidArgument", "Provided max-keys not an integer or within integer range", resource);
                }
            };
            let url = match query_value(q, "encoding-type") {
                None => false,
                Some("url") => true,
                Some(_) => {
                    return state.error(StatusCode::BAD_REQUEST, "InvalidArgument", "Invalid Encoding Method specified in Request", resource);
                }
            };
            let delimiter = query_value(q, "delimiter").filter(|d| !d.is_empty()).map(str::to_owned);
            let token = query_value(q, "continuation-token");
            let after_token = match token.map(decode_token) {
                None => None,
                Some(Some(k)) => Some(k),
                Some(None) => {
                    return state.error(StatusCode::BAD_REQUEST, "InvalidArgument", "The continuation token provided is incorrect", resource);
                }
            };
            let query = ListQuery {
                prefix: query_value(q, "prefix").unwrap_or("").to_owned(),
                start_after: query_value(q, "start-after").filter(|s| !s.is_empty()).map(str::to_owned),
                after_token,
                max_keys,
            };
            let page = match &delimiter {
                Some(d) => bucket.read().expect("lock poisoned").list_delimited(&query, d),
                None => bucket.read().expect("lock poisoned").list(&query),
            };
            let xml = list_xml(name, &query, &page, url, token);
            state.respond(StatusCode::OK, "application/xml", Bytes::from(xml))
        }
        Op::Other if query_value(q, "location").is_some() => state.respond(
            StatusCode::OK,
            "application/xml",
            Bytes::from_static(
                b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></LocationConstraint>",
            ),
        ),
        _ => state.error(StatusCode::NOT_IMPLEMENTED, "NotImplemented", "bench-s3 implements ListObjectsV2 and HeadBucket on buckets", resource),
    }
}

const FLAGS: [&str; 6] = [
    "addr",
    "layout",
    "overlap",
    "latency-ms",
    "latency-on",
    "max-stored-body",
];

/// `BENCH_S3_ADDR`, `BENCH_S3_LAYOUT`, `BENCH_S3_LATENCY_MS`, ... as flags, placed before
/// the command line's so that a flag given there wins.
fn env_flags() -> Vec<String> {
    FLAGS
        .iter()
        .filter_map(|f| {
            let var = format!("BENCH_S3_{}", f.to_uppercase().replace('-', "_"));
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| format!("--{f}={v}"))
        })
        .collect()
}

fn setup(args: &Args) -> Result<(SocketAddr, State, Layout), String> {
    args.only(&FLAGS)?;
    let addr = args.parsed("addr", SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let layout = Layout::parse(args.required("layout")?, args.parsed("overlap", 0u64)?)?;
    let latency = Duration::from_millis(args.parsed("latency-ms", 0u64)?);
    let latency_on_all = match args.get("latency-on").unwrap_or("list") {
        "list" => false,
        "all" => true,
        other => return Err(format!("--latency-on must be list or all, not {other:?}")),
    };
    let buckets = layout
        .buckets
        .iter()
        .map(|(n, r)| (n.clone(), RwLock::new(Bucket::new(r.clone()))))
        .collect();
    let state = State {
        buckets,
        stats: Stats::default(),
        mode: watch::Sender::new(Mode::Healthy),
        latency,
        latency_on_all,
        max_stored_body: args.parsed("max-stored-body", 1usize << 30)?,
        counter: AtomicU64::new(1),
    };
    Ok((addr, state, layout))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (addr, state, layout) =
        match Args::parse(env_flags().into_iter().chain(std::env::args().skip(1)), &[])
            .and_then(|a| setup(&a))
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("bench-s3: {e}\n{USAGE}");
                return ExitCode::from(2);
            }
        };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bench-s3: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench-s3: {e}");
            return ExitCode::FAILURE;
        }
    };
    let buckets: Vec<String> = layout
        .buckets
        .iter()
        .map(|(n, r)| format!("{n}={}..{}", r.start, r.end))
        .collect();
    println!(
        "bench-s3: listening on http://{local} buckets {} distinct={} duplicates={} latency_ms={} on={}",
        buckets.join(","),
        layout.distinct(),
        layout.duplicates(),
        state.latency.as_millis(),
        if state.latency_on_all { "all" } else { "list" }
    );
    serve(listener, Arc::new(state)).await
}

/// The accept loop: one task per connection, keep-alive, until the process ends.
async fn serve(listener: tokio::net::TcpListener, state: Arc<State>) -> ExitCode {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of fds and the like: wait instead of spinning.
                eprintln!("bench-s3: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(state.clone(), req));
            // Errors here are clients going away (the soak's timeouts); nothing to do.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    //! The server end to end, through the service's own S3 client (SigV4-signed requests,
    //! its XML parser, its error classification of statuses with S3 error codes).

    use super::*;
    use parparchik::s3::{PutCondition, S3Error};
    use parparchik_bench::synth::{generated_meta, key_of};

    async fn start(layout: &str) -> (parparchik::s3::S3Client, Arc<State>) {
        let args = Args::parse(
            ["--layout", layout, "--overlap", "50"].map(str::to_owned),
            &[],
        )
        .expect("valid flags");
        let (_, state, _) = setup(&args).expect("valid layout");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        let state = Arc::new(state);
        tokio::spawn(serve(listener, state.clone()));
        let client = parparchik_bench::s3_client(&url, Duration::from_secs(5)).expect("client");
        (client, state)
    }

    fn failed(e: &S3Error) -> bool {
        matches!(e, S3Error::PreconditionFailed { .. })
    }

    #[tokio::test]
    async fn lists_heads_and_gets_through_the_service_client() {
        let (s3, state) = start("a:2500,b:100").await;
        let listed = s3.list_objects("a", |_| {}).await.unwrap();
        assert_eq!(listed.len(), 2500);
        for (i, o) in listed.iter().enumerate() {
            assert_eq!(o.key, key_of(i as u64));
        }
        assert_eq!(listed[7].etag, generated_meta(7).etag);
        assert_eq!(listed[7].last_modified, "2026-05-05T10:00:00Z");
        // 3 pages for "a", and "b" overlaps "a" by half its count.
        let b = s3.list_objects("b", |_| {}).await.unwrap();
        assert_eq!(b.first().map(|o| o.key.clone()), Some(key_of(2450)));
        let m = s3.head_object("a", &key_of(42)).await.unwrap();
        assert_eq!(m.size, generated_meta(42).size);
        assert_eq!(m.etag, generated_meta(42).etag);
        assert_eq!(m.last_modified, "2026-05-05T10:00:00Z");
        let (body, etag) = s3.get_object("a", &key_of(42)).await.unwrap();
        assert_eq!(body.len() as u64, m.size);
        assert_eq!(etag, m.etag);
        assert!(
            s3.head_object("a", &key_of(2500))
                .await
                .unwrap_err()
                .is_not_found()
        );
        assert!(s3.get_object("nobucket", "k").await.is_err());
        let get = |name| {
            let i = OPS.iter().position(|(_, n)| *n == name).unwrap();
            state.stats.by_op[i].load(Ordering::Relaxed)
        };
        assert_eq!(get("list"), 4);
        assert_eq!(get("head"), 2);
        assert_eq!(get("get"), 2);
    }

    #[tokio::test]
    async fn conditional_writes_follow_aws() {
        let (s3, state) = start("a:10").await;
        let put = |key: &'static str, body: &'static str, c: PutCondition| {
            let s3 = s3.clone();
            async move {
                s3.put_object("a", key, Bytes::from(body), "application/json", &c)
                    .await
            }
        };
        let e1 = put("m.json", "1", PutCondition::IfNoneMatch).await.unwrap();
        assert!(failed(
            &put("m.json", "x", PutCondition::IfNoneMatch)
                .await
                .unwrap_err()
        ));
        let e2 = put("m.json", "22", PutCondition::IfMatch(e1.clone()))
            .await
            .unwrap();
        assert_ne!(e1, e2);
        assert!(failed(
            &put("m.json", "x", PutCondition::IfMatch(e1.clone()))
                .await
                .unwrap_err()
        ));
        // If-Match on a missing key: 404 NoSuchKey, as AWS answers.
        assert!(
            put("other.json", "x", PutCondition::IfMatch(e1))
                .await
                .unwrap_err()
                .is_not_found()
        );
        let (body, etag) = s3.get_object("a", "m.json").await.unwrap();
        assert_eq!(
            (body.as_ref(), etag.as_str()),
            (b"22".as_ref(), e2.as_str())
        );
        let listed = s3.list_objects("a", |_| {}).await.unwrap();
        assert_eq!(listed.len(), 11);
        assert_eq!(listed.last().map(|o| o.key.as_str()), Some("m.json"));
        assert_eq!(
            state.stats.put_bytes.load(Ordering::Relaxed),
            1 + 1 + 2 + 1 + 1
        );
        assert_eq!(state.stats.put_bytes_ok.load(Ordering::Relaxed), 1 + 2);
    }

    #[tokio::test]
    async fn fault_modes_answer_for_s3() {
        let (s3, state) = start("a:10").await;
        state.mode.send_replace(Mode::S503);
        let e = s3.head_object("a", &key_of(1)).await.unwrap_err();
        assert!(e.is_unavailable(), "{e:?}");
        state.mode.send_replace(Mode::Bare404);
        assert!(s3.list_objects("a", |_| {}).await.is_err());
        state.mode.send_replace(Mode::Hang);
        let pending = tokio::spawn({
            let s3 = s3.clone();
            async move { s3.head_object("a", &key_of(2)).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!pending.is_finished());
        state.mode.send_replace(Mode::Healthy);
        let m = pending.await.unwrap().unwrap();
        assert_eq!(m.etag, generated_meta(2).etag);
        assert_eq!(state.stats.faulted[0].load(Ordering::Relaxed), 1);
        assert_eq!(state.stats.faulted[1].load(Ordering::Relaxed), 1);
        // The service client retries 503 three times.
        assert_eq!(state.stats.faulted[2].load(Ordering::Relaxed), 3);
    }
}
