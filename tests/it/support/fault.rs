//! A fault-injecting TCP proxy for tests: it sits between the service and the in-process
//! S3 server and, request by request, forwards or misbehaves.
//!
//! The service keeps connections to S3 alive, so faults are decided per request, not per
//! connection: the proxy parses just enough HTTP/1.1 to find where each message ends
//! (request: head + `Content-Length` or chunked body; response: head + `Content-Length`,
//! chunked or read-to-close body, none for HEAD, 1xx, 204 and 304).
//!
//! ```ignore
//! let proxy = Proxy::start(s3.addr).await;          // then point the service at proxy.endpoint()
//! proxy.set(Fault::SlowDown);                       // every request: 503 SlowDown
//! proxy.set(Fault::InternalError.only("PUT"));      // only PUTs fail
//! proxy.set(Fault::Stall(d).lasting(window));       // a time window
//! proxy.set(Fault::Reset.times(2));                 // the next two requests
//! proxy.set(Fault::Pass);                           // healthy again
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Forward it untouched.
    Pass,
    /// Close connections right after accepting them; an open connection is closed,
    /// unanswered, when its next request arrives.
    Refuse,
    /// Stop listening (connecting is refused) and close every open connection. The
    /// listener closes as soon as the proxy's task runs: a connection attempted in the
    /// same instant as `set` may be reset rather than refused.
    Unreachable,
    /// Hold the request this long before forwarding it (given up if the client leaves).
    Stall(Duration),
    /// Forward the request, send back half of the response, then reset the connection.
    Reset,
    /// Answer 500 `InternalError` instead of forwarding.
    InternalError,
    /// Answer 503 `SlowDown` instead of forwarding.
    SlowDown,
    /// Answer 403 `AccessDenied` instead of forwarding.
    AccessDenied,
    /// Every other request is answered 503 `SlowDown`; the others are forwarded.
    Flapping,
    /// Answer 501 `NotImplemented` (a server without, e.g., conditional writes).
    NotImplemented,
    /// Answer `404 page not found` in plain text, as an ingress default backend or a
    /// wrong path prefix does: a 404 that is not S3's.
    Bare404,
    /// Answer 200 with an HTML page: something that is not S3 at all.
    Html,
    /// Answer a listing as complete and empty (a glitch, or an empty node behind a
    /// balancer): a 200 that is S3's form but not the bucket's truth.
    EmptyListing,
}

/// A fault and the requests it applies to.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub fault: Fault,
    /// Only requests with this method (`None`: all).
    method: Option<String>,
    /// Only requests whose target contains this (`None`: all).
    target: Option<String>,
    /// Only until then (`None`: until changed).
    until: Option<Instant>,
    /// Only this many more requests (`None`: no limit).
    remaining: Option<u64>,
}

impl From<Fault> for Rule {
    fn from(fault: Fault) -> Rule {
        Rule {
            fault,
            method: None,
            target: None,
            until: None,
            remaining: None,
        }
    }
}

impl Rule {
    /// Applies only to requests with `method` (e.g. `"PUT"`).
    pub(crate) fn only(mut self, method: &str) -> Rule {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Applies only to requests whose target (path and query) contains `part`; a `part`
    /// ending in `$` must end the target.
    pub(crate) fn on_target(mut self, part: &str) -> Rule {
        self.target = Some(part.to_owned());
        self
    }

    /// Applies for `window` from now, then the proxy forwards again.
    pub(crate) fn lasting(mut self, window: Duration) -> Rule {
        self.until = Some(Instant::now() + window);
        self
    }

    /// Applies to the next `n` matching requests only.
    pub(crate) fn times(mut self, n: u64) -> Rule {
        self.remaining = Some(n);
        self
    }

    fn in_force(&self) -> bool {
        self.until.is_none_or(|u| Instant::now() < u) && self.remaining != Some(0)
    }

    /// Whether it applies to whole connections (no method filter), now.
    fn is_connection_fault(&self, fault: &Fault) -> bool {
        self.fault == *fault && self.method.is_none() && self.target.is_none() && self.in_force()
    }
}

impl Fault {
    pub(crate) fn only(self, method: &str) -> Rule {
        Rule::from(self).only(method)
    }
    pub(crate) fn on_target(self, part: &str) -> Rule {
        Rule::from(self).on_target(part)
    }
    pub(crate) fn lasting(self, window: Duration) -> Rule {
        Rule::from(self).lasting(window)
    }
    pub(crate) fn times(self, n: u64) -> Rule {
        Rule::from(self).times(n)
    }
}

struct Shared {
    upstream: SocketAddr,
    rule: Mutex<Rule>,
    seen: AtomicU64,
    faulted: AtomicU64,
    refused: AtomicU64,
    flap: AtomicU64,
    /// `METHOD target` of every request seen, in order.
    log: Mutex<Vec<String>>,
    /// Listing requests (ListObjectsV2) being handled now, and the most at once.
    listings_now: AtomicU64,
    listings_most: AtomicU64,
    /// Bumped to close every open connection.
    kill: watch::Sender<u64>,
}

impl Shared {
    fn rule(&self) -> std::sync::MutexGuard<'_, Rule> {
        self.rule
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a request and decides its fate.
    fn decide(&self, method: &str, target: &str) -> Fault {
        self.seen.fetch_add(1, Ordering::SeqCst);
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(format!("{method} {target}"));
        let fault = {
            let mut rule = self.rule();
            let matches = rule.method.as_deref().is_none_or(|m| m == method)
                && rule
                    .target
                    .as_deref()
                    .is_none_or(|t| match t.strip_suffix('$') {
                        Some(end) => target.ends_with(end),
                        None => target.contains(t),
                    });
            if !matches || !rule.in_force() {
                return Fault::Pass;
            }
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            rule.fault.clone()
        };
        let fault = match fault {
            Fault::Flapping if self.flap.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) => {
                Fault::Pass
            }
            Fault::Flapping => Fault::SlowDown,
            other => other,
        };
        if fault != Fault::Pass {
            self.faulted.fetch_add(1, Ordering::SeqCst);
        }
        fault
    }
}

/// The proxy; stops (and closes its connections) when dropped.
pub(crate) struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards to `upstream`.
    pub(crate) async fn start(upstream: SocketAddr) -> Proxy {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            upstream,
            rule: Mutex::new(Rule::from(Fault::Pass)),
            seen: AtomicU64::new(0),
            faulted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            flap: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            listings_now: AtomicU64::new(0),
            listings_most: AtomicU64::new(0),
            kill: watch::channel(0).0,
        });
        let accept = tokio::spawn(accept_loop(Arc::clone(&shared), listener, addr));
        Proxy {
            addr,
            shared,
            accept,
        }
    }

    /// `http://127.0.0.1:<port>`, for `S3_ENDPOINT`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the rule in force. `Refuse` and `Unreachable` (without a method filter)
    /// also close every open connection at once.
    pub(crate) fn set(&self, rule: impl Into<Rule>) {
        let rule = rule.into();
        let closes =
            rule.method.is_none() && matches!(rule.fault, Fault::Refuse | Fault::Unreachable);
        *self.shared.rule() = rule;
        if closes {
            self.shared.kill.send_modify(|n| *n += 1);
        }
    }

    /// Requests seen (complete request heads read from the service).
    pub(crate) fn seen(&self) -> u64 {
        self.shared.seen.load(Ordering::SeqCst)
    }

    /// `METHOD target` of every request seen from index `from` on.
    pub(crate) fn requests_since(&self, from: usize) -> Vec<String> {
        let log = self
            .shared
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        log.get(from..).map(<[String]>::to_vec).unwrap_or_default()
    }

    /// The most listing requests (ListObjectsV2) the proxy handled at once.
    pub(crate) fn most_listings_at_once(&self) -> u64 {
        self.shared.listings_most.load(Ordering::SeqCst)
    }

    /// How many requests were seen so far (an index for [`Proxy::requests_since`]).
    pub(crate) fn mark(&self) -> usize {
        self.shared
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Requests a fault was applied to.
    pub(crate) fn faulted(&self) -> u64 {
        self.shared.faulted.load(Ordering::SeqCst)
    }

    /// Connections closed right after accept (`Refuse`).
    pub(crate) fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.shared.kill.send_modify(|n| *n += 1);
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // Rebinding the same port after `Unreachable` must not wait for TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, addr: SocketAddr) {
    let mut listener = Some(listener);
    let mut changed = shared.kill.subscribe();
    loop {
        if shared.rule().is_connection_fault(&Fault::Unreachable) {
            listener = None;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let Some(l) = &listener else {
            match bind(addr) {
                Ok(l) => listener = Some(l),
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
            continue;
        };
        // Wake up now and then to notice a rule change (or the end of a window).
        tokio::select! {
            accepted = l.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                if shared.rule().is_connection_fault(&Fault::Refuse) {
                    shared.refused.fetch_add(1, Ordering::SeqCst);
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let mut kill = shared.kill.subscribe();
                    tokio::select! {
                        _ = serve(&shared, stream) => {}
                        _ = kill.changed() => {}
                    }
                });
            }
            _ = changed.changed() => {}
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
}

/// One side of a connection, with a read buffer.
struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
}

const MAX_HEAD: usize = 256 * 1024;

impl Peer {
    fn new(stream: TcpStream) -> Peer {
        Peer {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads more into the buffer; 0 at end of stream.
    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn eof() -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed mid-message",
        )
    }

    /// A message head up to its blank line, or `None` at a clean end of stream.
    async fn head(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                return Ok(Some(self.buf.drain(..end + 4).collect()));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
            }
            if self.fill().await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(Peer::eof())
                };
            }
        }
    }

    async fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill().await? == 0 {
                return Err(Peer::eof());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// One line, `\r\n` included.
    async fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                return Ok(self.buf.drain(..end + 2).collect());
            }
            if self.fill().await? == 0 {
                return Err(Peer::eof());
            }
        }
    }

    async fn rest(&mut self) -> io::Result<Vec<u8>> {
        while self.fill().await? > 0 {}
        Ok(std::mem::take(&mut self.buf))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The parts of a message head the proxy needs.
struct Head {
    /// Request method, or response status code.
    first: Vec<String>,
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(bytes: &[u8]) -> Head {
        let text = String::from_utf8_lossy(bytes);
        let mut lines = text.split("\r\n");
        let first = lines
            .next()
            .unwrap_or_default()
            .split(' ')
            .map(str::to_owned)
            .collect();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Head { first, headers }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    fn content_length(&self) -> Option<usize> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }
}

/// Reads the body `head` announces and appends its raw bytes (framing included) to
/// `out`. Without a length, a request has no body and a response runs to the close.
async fn body(peer: &mut Peer, head: &Head, response: bool, out: &mut Vec<u8>) -> io::Result<()> {
    if head.chunked() {
        loop {
            let line = peer.line().await?;
            let size = String::from_utf8_lossy(&line);
            let size = size.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            out.extend_from_slice(&line);
            if size == 0 {
                // Trailers, up to the blank line.
                loop {
                    let line = peer.line().await?;
                    out.extend_from_slice(&line);
                    if line == b"\r\n" {
                        return Ok(());
                    }
                }
            }
            out.extend(peer.take(size + 2).await?);
        }
    } else if let Some(n) = head.content_length() {
        out.extend(peer.take(n).await?);
        Ok(())
    } else if response {
        out.extend(peer.rest().await?);
        Ok(())
    } else {
        Ok(())
    }
}

/// Serves one connection from the service, request by request.
async fn serve(shared: &Shared, client: TcpStream) -> io::Result<()> {
    let mut client = Peer::new(client);
    let mut upstream: Option<Peer> = None;
    while let Some(mut request) = client.head().await? {
        let head = Head::parse(&request);
        let method = head.first.first().cloned().unwrap_or_default();
        let target = head.first.get(1).cloned().unwrap_or_default();
        body(&mut client, &head, false, &mut request).await?;
        let _listing = ListingInFlight::new(shared, &target);
        match shared.decide(&method, &target) {
            Fault::Pass | Fault::Flapping => {}
            Fault::Refuse | Fault::Unreachable => return Ok(()),
            Fault::Stall(d) => {
                let done = tokio::time::sleep(d);
                tokio::pin!(done);
                loop {
                    tokio::select! {
                        () = &mut done => break,
                        // The client gave up (its timeout): do not forward at all.
                        n = client.fill() => if n? == 0 { return Ok(()) },
                    }
                }
            }
            Fault::InternalError => {
                let r = s3_error(
                    500,
                    "InternalError",
                    "We encountered an internal error.",
                    &method,
                );
                client.stream.write_all(&r).await?;
                continue;
            }
            Fault::SlowDown => {
                let r = s3_error(503, "SlowDown", "Please reduce your request rate.", &method);
                client.stream.write_all(&r).await?;
                continue;
            }
            Fault::AccessDenied => {
                let r = s3_error(403, "AccessDenied", "Access Denied", &method);
                client.stream.write_all(&r).await?;
                continue;
            }
            Fault::NotImplemented => {
                let r = s3_error(
                    501,
                    "NotImplemented",
                    "A header you provided implies functionality that is not implemented",
                    &method,
                );
                client.stream.write_all(&r).await?;
                continue;
            }
            Fault::Bare404 => {
                let body: &[u8] = if method == "HEAD" {
                    b""
                } else {
                    b"404 page not found"
                };
                let mut r = format!(
                    "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
                    18
                )
                .into_bytes();
                r.extend_from_slice(body);
                client.stream.write_all(&r).await?;
                continue;
            }
            Fault::EmptyListing => {
                let page = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>";
                let r = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{page}",
                    page.len()
                );
                client.stream.write_all(r.as_bytes()).await?;
                continue;
            }
            Fault::Html => {
                let page = "<html><head><title>Welcome</title></head><body>It works!</body></html>";
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n",
                    page.len()
                )
                .into_bytes();
                if method != "HEAD" {
                    r.extend_from_slice(page.as_bytes());
                }
                client.stream.write_all(&r).await?;
                continue;
            }
            Fault::Reset => {
                let response = forward(shared, &mut upstream, &request, &method).await?;
                let half = (response.len() / 2).max(1);
                client.stream.write_all(&response[..half]).await?;
                client.stream.flush().await?;
                // SO_LINGER 0: closing sends RST instead of FIN.
                client.stream.set_zero_linger()?;
                return Ok(());
            }
        }
        let response = forward(shared, &mut upstream, &request, &method).await?;
        client.stream.write_all(&response).await?;
    }
    Ok(())
}

/// Counts a listing request while it is handled (stalled, answered or forwarded).
struct ListingInFlight<'a>(Option<&'a Shared>);

impl<'a> ListingInFlight<'a> {
    fn new(shared: &'a Shared, target: &str) -> ListingInFlight<'a> {
        if !target.contains("list-type=2") {
            return ListingInFlight(None);
        }
        let now = shared.listings_now.fetch_add(1, Ordering::SeqCst) + 1;
        shared.listings_most.fetch_max(now, Ordering::SeqCst);
        ListingInFlight(Some(shared))
    }
}

impl Drop for ListingInFlight<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.0 {
            shared.listings_now.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Sends `request` upstream (on the kept connection, or a new one if that one went
/// away) and returns the whole raw response.
async fn forward(
    shared: &Shared,
    upstream: &mut Option<Peer>,
    request: &[u8],
    method: &str,
) -> io::Result<Vec<u8>> {
    let reused = upstream.is_some();
    match exchange(shared, upstream, request, method).await {
        Err(_) if reused => {
            *upstream = None;
            exchange(shared, upstream, request, method).await
        }
        other => other,
    }
}

async fn exchange(
    shared: &Shared,
    upstream: &mut Option<Peer>,
    request: &[u8],
    method: &str,
) -> io::Result<Vec<u8>> {
    if upstream.is_none() {
        let s = TcpStream::connect(shared.upstream).await?;
        let _ = s.set_nodelay(true);
        *upstream = Some(Peer::new(s));
    }
    let up = upstream.as_mut().expect("connected above");
    let result = async {
        up.stream.write_all(request).await?;
        let mut out = up.head().await?.ok_or_else(Peer::eof)?;
        let head = Head::parse(&out);
        let status: u16 = head.first.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let bodyless = method == "HEAD" || status / 100 == 1 || status == 204 || status == 304;
        let to_close = head
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
            || (!bodyless && !head.chunked() && head.content_length().is_none());
        if !bodyless {
            body(up, &head, true, &mut out).await?;
        }
        Ok::<_, io::Error>((out, to_close))
    }
    .await;
    match result {
        Ok((out, to_close)) => {
            if to_close {
                *upstream = None;
            }
            Ok(out)
        }
        Err(e) => {
            *upstream = None;
            Err(e)
        }
    }
}

/// An S3 error answer; a HEAD answer carries no body, as S3's own.
fn s3_error(status: u16, code: &str, message: &str, method: &str) -> Vec<u8> {
    let reason = match status {
        403 => "Forbidden",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message} (injected by the fault proxy)</Message><RequestId>fault-proxy</RequestId></Error>"
    );
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nx-amz-request-id: fault-proxy\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    out
}
