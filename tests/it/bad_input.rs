//! Hostile input: the catalogue in `tests/data/bad-requests/catalogue.tsv` sent as raw
//! bytes, a slowloris client, and a crowd of idle connections.

use std::fmt;
use std::time::{Duration, Instant};

use crate::support::common::{PRIVATE, PUBLIC, S3, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CATALOGUE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/bad-requests/catalogue.tsv"
);

/// What a case expects (one alternative).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    /// Closed without any answer.
    Closed,
    /// These answers, in order.
    Statuses(Vec<u16>),
}

impl Expect {
    fn answers(&self) -> usize {
        match self {
            Expect::Closed => 1,
            Expect::Statuses(s) => s.len(),
        }
    }
}

struct Case {
    line: usize,
    name: String,
    expect: Vec<Expect>,
    /// Whether the case may cause S3 requests (a valid request).
    s3_allowed: bool,
    request: Vec<u8>,
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Expands the catalogue's escapes: `\r \n \t \\ \xHH` and `{repeat:N:TEXT}`.
fn expand(text: &str) -> Result<Vec<u8>, String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"{repeat:") {
            let rest = &text[i + 8..];
            let (n, rest) = rest.split_once(':').ok_or("repeat without count")?;
            let n: usize = n.parse().map_err(|_| format!("bad repeat count {n:?}"))?;
            let end = rest.find('}').ok_or("repeat without '}'")?;
            let unit = expand(&rest[..end])?;
            out.extend(unit.repeat(n));
            i = text.len() - rest.len() + end + 1;
            continue;
        }
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let byte = b
                    .get(i + 2)
                    .copied()
                    .and_then(hex_digit)
                    .zip(b.get(i + 3).copied().and_then(hex_digit))
                    .map(|(h, l)| h << 4 | l)
                    .ok_or("bad \\x escape")?;
                out.push(byte);
                i += 4;
                continue;
            }
            other => return Err(format!("unknown escape \\{:?}", other.map(|c| *c as char))),
        }
        i += 2;
    }
    Ok(out)
}

fn parse_catalogue(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, expect, s3, request] = fields[..] else {
            panic!("catalogue line {line_no}: 4 TAB-separated fields expected: {line:?}");
        };
        let expect = expect
            .split('|')
            .map(|alt| match alt.trim() {
                "closed" => Expect::Closed,
                statuses => Expect::Statuses(
                    statuses
                        .split(',')
                        .map(|s| {
                            s.trim().parse().unwrap_or_else(|_| {
                                panic!("catalogue line {line_no}: bad status {s:?}")
                            })
                        })
                        .collect(),
                ),
            })
            .collect();
        let s3_allowed = match s3 {
            "none" => false,
            "any" => true,
            other => panic!("catalogue line {line_no}: s3 is `none` or `any`, not {other:?}"),
        };
        let request = expand(request).unwrap_or_else(|e| panic!("catalogue line {line_no}: {e}"));
        cases.push(Case {
            line: line_no,
            name: name.to_owned(),
            expect,
            s3_allowed,
            request,
        });
    }
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "case names are unique");
    cases
}

/// One answer read back.
#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    location: Option<String>,
}

/// What the client saw on the connection.
#[derive(Debug)]
struct Observed {
    answers: Vec<Answer>,
    /// The server closed (or reset) the connection.
    closed: bool,
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let statuses: Vec<String> = self.answers.iter().map(|a| a.status.to_string()).collect();
        match (statuses.is_empty(), self.closed) {
            (true, true) => f.write_str("closed"),
            (true, false) => f.write_str("no answer, still open"),
            (false, closed) => write!(
                f,
                "{}{}",
                statuses.join(","),
                if closed { " then closed" } else { "" }
            ),
        }
    }
}

impl Observed {
    fn matches(&self, e: &Expect) -> bool {
        match e {
            Expect::Closed => self.answers.is_empty() && self.closed,
            Expect::Statuses(s) => self.answers.iter().map(|a| a.status).eq(s.iter().copied()),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Takes complete answers off the front of `buf`. `head_only`: answers to HEAD.
fn take_answers(buf: &mut Vec<u8>, head_only: bool, out: &mut Vec<Answer>) {
    while let Some(end) = find(buf, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0;
        let mut location = None;
        for l in lines {
            if let Some((name, value)) = l.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "location" => location = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
        }
        if head_only || status == 304 || status == 204 {
            length = 0;
        }
        if buf.len() < end + 4 + length {
            return;
        }
        buf.drain(..end + 4 + length);
        out.push(Answer { status, location });
    }
}

/// Sends `request` in one write (from its own task, so a server that stops reading
/// cannot block the reader) and reads answers until `want` arrived, the connection
/// closes, or `limit` passes. A short grace period then catches surplus answers.
async fn exchange(base: &str, request: &[u8], want: usize, limit: Duration) -> Observed {
    let addr = base.trim_start_matches("http://");
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let bytes = request.to_vec();
    // The write half stays open (inside the task's output) until the reader is done:
    // dropping it would half-close the connection.
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&bytes).await;
        wr
    });
    let head_only = request.starts_with(b"HEAD ");
    let mut buf = Vec::new();
    let mut answers = Vec::new();
    let mut closed = false;
    let deadline = Instant::now() + limit;
    let mut grace: Option<Instant> = None;
    loop {
        let until = grace.unwrap_or(deadline);
        let now = Instant::now();
        if now >= until {
            break;
        }
        let mut chunk = vec![0u8; 64 * 1024];
        match tokio::time::timeout(until - now, rd.read(&mut chunk)).await {
            Err(_) => break,
            Ok(Ok(0) | Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                take_answers(&mut buf, head_only, &mut answers);
                if answers.len() >= want && grace.is_none() {
                    grace = Some(Instant::now() + Duration::from_millis(25));
                }
            }
        }
    }
    writer.abort();
    Observed { answers, closed }
}

/// Request lines (`METHOD target HTTP/x`) in a raw request, in order.
fn request_targets(request: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(request)
        .split("\r\n")
        .filter_map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            (parts.len() == 3 && parts[2].starts_with("HTTP/")).then(|| parts[1].to_owned())
        })
        .collect()
}

/// The bucket a route's target names, or `None` if it names none.
fn route_bucket(target: &str) -> Option<&'static str> {
    let path = match target.find("://") {
        Some(i) => target[i + 3..]
            .find('/')
            .map_or("", |j| &target[i + 3 + j..]),
        None => target,
    };
    let segment = path.strip_prefix('/')?.split('/').next()?;
    let decoded = parparchik::http::decode::percent_decode(segment, false).ok()?;
    match &*decoded {
        PUBLIC | "public" => Some(PUBLIC),
        PRIVATE | "private" => Some(PRIVATE),
        _ => None,
    }
}

/// The bucket a Location names (path style).
fn location_bucket(location: &str) -> Option<String> {
    let url = url::Url::parse(location).ok()?;
    url.path_segments()?.next().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_request_catalogue() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    seed.put(PUBLIC, "ok.txt", "public file").await;
    seed.put(PRIVATE, "secret.txt", "private file").await;
    let svc = Service::ready_with(&s3, &[("PARPARCHIK_HEADER_TIMEOUT", "2")]).await;

    let text = std::fs::read_to_string(CATALOGUE).expect("catalogue");
    let cases = parse_catalogue(&text);
    assert!(cases.len() >= 40, "catalogue has {} cases", cases.len());

    let mut failures = Vec::new();
    let mut s3_for_invalid = 0;
    for case in &cases {
        let want = case.expect.iter().map(Expect::answers).max().unwrap_or(1);
        let s3_before = s3.stats().total();
        let seen = exchange(&svc.base, &case.request, want, Duration::from_secs(5)).await;
        let s3_calls = s3.stats().total() - s3_before;

        let mut problems = Vec::new();
        if !case.expect.iter().any(|e| seen.matches(e)) {
            problems.push("unexpected answer".to_owned());
        }
        if seen.answers.iter().any(|a| a.status >= 500) {
            problems.push("a 5xx".to_owned());
        }
        if !case.s3_allowed && s3_calls > 0 {
            s3_for_invalid += s3_calls;
            problems.push(format!("{s3_calls} S3 request(s) for an invalid request"));
        }
        let targets = request_targets(&case.request);
        for (i, a) in seen.answers.iter().enumerate() {
            if a.status != 302 {
                continue;
            }
            let route = targets.get(i).and_then(|t| route_bucket(t));
            let into = a.location.as_deref().and_then(location_bucket);
            if route.is_none() || route != into.as_deref() {
                problems.push(format!(
                    "302 from route bucket {route:?} into {into:?} ({:?})",
                    a.location
                ));
            }
        }
        let expected: Vec<String> = case
            .expect
            .iter()
            .map(|e| match e {
                Expect::Closed => "closed".to_owned(),
                Expect::Statuses(s) => s.iter().map(u16::to_string).collect::<Vec<_>>().join(","),
            })
            .collect();
        let verdict = if problems.is_empty() { "PASS" } else { "FAIL" };
        println!(
            "{verdict} {:<32} expected {:<16} got {seen} (s3 calls: {s3_calls}){}",
            case.name,
            expected.join("|"),
            if problems.is_empty() {
                String::new()
            } else {
                format!(" -- {}", problems.join("; "))
            }
        );
        if !problems.is_empty() {
            failures.push(format!(
                "line {} {}: expected {}, got {seen}: {}",
                case.line,
                case.name,
                expected.join("|"),
                problems.join("; ")
            ));
        }
    }
    // Still alive and answering after all of it.
    let (s, _) = svc.get_json("/healthcheck").await;
    assert_eq!(s, 200, "the service survived the catalogue");
    assert_eq!(svc.app.registry.len(), 2);
    svc.stop().await;
    println!(
        "{} cases, {} failed; S3 requests for invalid requests: {s3_for_invalid}",
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} catalogue cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn catalogue_escapes_expand() {
    assert_eq!(expand(r"a\r\n\t\\\x00\xff").unwrap(), b"a\r\n\t\\\x00\xff");
    assert_eq!(expand("x{repeat:3:ab}y").unwrap(), b"xabababy");
    assert_eq!(expand(r"{repeat:2:H: v\r\n}").unwrap(), b"H: v\r\nH: v\r\n");
    assert_eq!(expand("{repeat:65536:a}").unwrap().len(), 65536);
    assert!(expand(r"\q").is_err());
    assert!(expand("{repeat:x:a}").is_err());
    assert_eq!(
        request_targets(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nHEAD /b HTTP/1.1\r\n\r\n"),
        ["/a", "/b"]
    );
    assert_eq!(route_bucket("/public-bucket/x"), Some(PUBLIC));
    assert_eq!(route_bucket("/public%2dbucket/x"), Some(PUBLIC));
    assert_eq!(route_bucket("http://h/private/x"), Some(PRIVATE));
    assert_eq!(route_bucket("/other/x"), None);
}

/// A client that never finishes its request head is disconnected after
/// `PARPARCHIK_HEADER_TIMEOUT`, even while it keeps trickling bytes.
#[tokio::test]
async fn slowloris_is_disconnected_after_the_header_timeout() {
    let s3 = S3::two_buckets().await;
    let svc = Service::ready_with(&s3, &[("PARPARCHIK_HEADER_TIMEOUT", "1")]).await;
    let addr = svc.base.trim_start_matches("http://").to_owned();

    let mut s = TcpStream::connect(&addr).await.expect("connect");
    let started = Instant::now();
    s.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: t\r\n")
        .await
        .expect("first bytes");
    let mut buf = [0u8; 1024];
    let mut got = Vec::new();
    let closed_after = loop {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "still connected after {:?}",
            started.elapsed()
        );
        // One more header line every 200 ms; never the blank line.
        let _ = s.write_all(b"X-Slow: a\r\n").await;
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0) | Err(_)) => break started.elapsed(),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    };
    println!(
        "slowloris closed after {closed_after:?}; answer before closing: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        closed_after >= Duration::from_millis(900),
        "closed by the header timeout, not at once: {closed_after:?}"
    );
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
        "no answer other than 408: {:?}",
        String::from_utf8_lossy(&got)
    );

    // A silent client (connects, sends nothing) — report what happens.
    let mut quiet = TcpStream::connect(&addr).await.expect("connect");
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(3), quiet.read(&mut buf)).await;
    println!(
        "silent connection after {:?}: {}",
        started.elapsed(),
        match outcome {
            Err(_) => "still open".to_owned(),
            Ok(Ok(0)) => "closed".to_owned(),
            Ok(Ok(n)) => format!("answered {:?}", String::from_utf8_lossy(&buf[..n])),
            Ok(Err(e)) => format!("error {e}"),
        }
    );

    // A kept-alive connection idle after an answer — report what happens.
    let mut kept = TcpStream::connect(&addr).await.expect("connect");
    kept.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("request");
    let n = kept.read(&mut buf).await.expect("answer");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(3), kept.read(&mut buf)).await;
    println!(
        "kept-alive connection idle after an answer, after {:?}: {}",
        started.elapsed(),
        match outcome {
            Err(_) => "still open".to_owned(),
            Ok(Ok(0)) => "closed".to_owned(),
            Ok(Ok(n)) => format!("answered {:?}", String::from_utf8_lossy(&buf[..n])),
            Ok(Err(e)) => format!("error {e}"),
        }
    );

    // The service still answers others.
    assert_eq!(svc.get("/healthcheck").await.status(), 200);
    svc.stop().await;
}

/// 2000 idle connections do not keep the service from answering a probe promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_connections_do_not_block_probes() {
    let s3 = S3::two_buckets().await;
    let svc = Service::ready(&s3).await;
    let addr = svc.base.trim_start_matches("http://").to_owned();

    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..2000 {
        let addr = addr.clone();
        opening.spawn(async move { TcpStream::connect(addr).await });
    }
    let mut idle = Vec::with_capacity(2000);
    while let Some(c) = opening.join_next().await {
        idle.push(c.expect("task").expect("connect"));
    }
    assert_eq!(idle.len(), 2000);

    // A new client (a new connection) is answered promptly, several times.
    let client = reqwest::Client::new();
    for path in ["/healthcheck", "/readiness", "/status"] {
        let started = Instant::now();
        let r = client.get(svc.url(path)).send().await.expect("answered");
        let took = started.elapsed();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            took < Duration::from_millis(500),
            "{path} took {took:?} with 2000 idle connections open"
        );
    }
    // The idle connections still work, too.
    let mut one = idle.pop().expect("a connection");
    one.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), one.read_to_end(&mut answer))
        .await
        .expect("answered in time")
        .expect("read");
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );

    drop(idle);
    let started = Instant::now();
    assert_eq!(
        client
            .get(svc.url("/healthcheck"))
            .send()
            .await
            .expect("ok")
            .status(),
        200
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    svc.stop().await;
}
