//! The accept loop: one task per connection, `serve_connection` with a service that
//! routes, answers, counts and logs; a connection cap and a write timeout per
//! connection; on a signal, readiness 503 for the shutdown delay, then a graceful drain.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};

use super::access::authorized;
use super::client_addr::client_address;
use super::conn::{self, WriteTimeout};
use super::handlers;
use super::request_id;
use super::respond::{self, Body};
use super::router::{Route, route};
use crate::app::App;
use crate::{info, warn};

/// Longest path and query accepted; longer is 414. Keys are at most 1024 bytes, which
/// percent-encoded is at most 3 KiB.
const MAX_TARGET_BYTES: usize = 8 * 1024;

/// Largest request head hyper buffers; a larger head is answered 431. Above
/// [`MAX_TARGET_BYTES`] so that a long request line gets the more precise 414.
const MAX_HEAD_BYTES: usize = 96 * 1024;

async fn serve_request(app: Arc<App>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    // A cheap clone (shared bytes), so path and query are borrowed, not copied.
    let uri = req.uri().clone();
    let path = uri.path();
    let query = uri.query();
    let target_len = path.len() + query.as_ref().map_or(0, |q| q.len() + 1);
    let request_id = match req.headers().get(request_id::HEADER) {
        Some(v) if request_id::accept(v.as_bytes()).is_some() => v.clone(),
        // Generated ids are hex and `-` only, always a valid header value.
        _ => {
            HeaderValue::from_str(&app.request_ids.next()).unwrap_or(HeaderValue::from_static("-"))
        }
    };
    let client = client_address(
        peer.ip(),
        req.headers()
            .get_all("x-forwarded-for")
            .iter()
            .map(HeaderValue::as_bytes),
        &app.config.trusted_proxies,
    );

    let route = route(path, &app.config.buckets);
    let kind = route.kind();
    let is_probe = matches!(route, Route::Health | Route::Readiness);
    // hyper drops this future when the client hangs up before the answer: the guard
    // still logs and counts the request, as 499 (nginx's "client closed request").
    let mut unanswered = Unanswered {
        app: &app,
        kind,
        method: &method,
        path,
        query,
        client,
        request_id: request_id.to_str().unwrap_or("-"),
        started,
    };
    let (mut response, s3_calls) = if target_len > MAX_TARGET_BYTES {
        (
            respond::error(StatusCode::URI_TOO_LONG, "request target too long"),
            0,
        )
    } else if is_probe {
        handled(&app, &method, &route, query).await
    } else if route == Route::Events {
        // Its own token (MinIO and SNS cannot send an API key), and no rate limit: a
        // burst of notifications is one sender catching up, not a client to slow down.
        counted(super::events::handle(&app, &method, req)).await
    } else {
        // The key is checked first so that the limit can keep apart the budgets of
        // requests with and without a valid key: failed attempts from an address never
        // use up the budget of a valid client behind the same address.
        let authenticated = authorized(req.headers(), &app.config.api_keys.0);
        let limited = app
            .rate_limiter
            .as_ref()
            .is_some_and(|rl| !rl.allow(client, authenticated, started));
        if limited {
            (
                respond::error(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded"),
                0,
            )
        } else if !authenticated {
            (respond::error(StatusCode::UNAUTHORIZED, "unauthorized"), 0)
        } else {
            handled(&app, &method, &route, query).await
        }
    };
    respond::no_store_if_error(&mut response);
    unanswered.done(response.status().as_u16(), Some(s3_calls));
    std::mem::forget(unanswered);
    response
        .headers_mut()
        .insert(request_id::HEADER, request_id);
    response
}

/// Logs and counts a request once it is answered, or, if dropped unanswered (the
/// client hung up), as status 499.
struct Unanswered<'a> {
    app: &'a App,
    kind: crate::metrics::EndpointKind,
    method: &'a hyper::Method,
    path: &'a str,
    query: Option<&'a str>,
    client: IpAddr,
    request_id: &'a str,
    started: Instant,
}

/// The status logged and counted for a request whose client left before its answer.
pub(crate) const CLIENT_CLOSED_REQUEST: u16 = 499;

impl Unanswered<'_> {
    fn done(&mut self, status: u16, s3_calls: Option<u32>) {
        let elapsed = self.started.elapsed();
        self.app.metrics.record_request(self.kind, status, elapsed);
        if let (crate::metrics::EndpointKind::Download, 302, Some(calls)) =
            (self.kind, status, s3_calls)
        {
            self.app.metrics.record_redirect(calls);
        }
        // Path and query are the client's own words (shortened by the renderer);
        // Location (which may carry a signature) is never logged.
        crate::log::access(&crate::log::Access {
            method: self.method.as_str(),
            path: self.path,
            query: self.query,
            status,
            duration_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            s3_calls,
            client: self.client,
            request_id: self.request_id,
        });
    }
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        self.done(CLIENT_CLOSED_REQUEST, None);
    }
}

/// The handler's answer and the S3 calls it made.
async fn handled(
    app: &Arc<App>,
    method: &hyper::Method,
    route: &Route,
    query: Option<&str>,
) -> (Response<Body>, u32) {
    counted(handlers::handle(app, method, route, query)).await
}

/// `answer`'s response and the S3 calls made while producing it.
async fn counted(answer: impl Future<Output = Response<Body>>) -> (Response<Body>, u32) {
    crate::s3::request_scope::counting_calls(answer).await
}

/// Everything a new connection needs.
struct Acceptor {
    app: Arc<App>,
    builder: http1::Builder,
    graceful: GracefulShutdown,
    /// Rejection answers being written now.
    rejecting: Arc<AtomicUsize>,
    /// Set when shutdown begins: answers ask clients to close their connection, so
    /// kept-alive clients reconnect (elsewhere) during the shutdown delay.
    closing: Arc<AtomicBool>,
}

impl Acceptor {
    async fn accepted(&self, accepted: std::io::Result<(TcpStream, SocketAddr)>) {
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
        };
        let app = &self.app;
        // Over the cap, a connection is answered 503 and closed at once rather than left
        // waiting: the client retries elsewhere, and its memory is not held here.
        let Some(slot) = conn::try_open(&app.metrics, app.config.max_connections) else {
            conn::reject(stream, &self.rejecting);
            return;
        };
        let _ = stream.set_nodelay(true);
        let io = WriteTimeout::new(stream, app.config.write_timeout, Arc::clone(&app.metrics));
        let app = Arc::clone(app);
        let closing = Arc::clone(&self.closing);
        let service = service_fn(move |req| {
            let app = Arc::clone(&app);
            let closing = Arc::clone(&closing);
            async move {
                let mut response = serve_request(app, peer, req).await;
                if closing.load(Ordering::Relaxed) {
                    response
                        .headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(response)
            }
        });
        let conn = self.builder.serve_connection(TokioIo::new(io), service);
        let conn = self.graceful.watch(conn);
        tokio::spawn(async move {
            // Client resets, header and write timeouts end here; nothing to report.
            let _ = conn.await;
            drop(slot);
        });
    }
}

/// Serves on `listener` until `shutdown` resolves; then answers readiness 503 while
/// still serving for the configured shutdown delay (so load balancers see it and stop
/// sending before the listener goes away), closes the listener, and drains in-flight
/// requests for at most the configured drain time.
pub(crate) async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(app.config.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let acceptor = Acceptor {
        app: Arc::clone(&app),
        builder,
        graceful: GracefulShutdown::new(),
        rejecting: Arc::new(AtomicUsize::new(0)),
        closing: Arc::new(AtomicBool::new(false)),
    };
    let delay = app.config.shutdown_delay;
    let stop_accepting = async {
        shutdown.await;
        // Readiness answers 503 from now on.
        app.begin_shutdown();
        acceptor.closing.store(true, Ordering::Relaxed);
        if !delay.is_zero() {
            info!(
                "shutting down: readiness 503, still serving for {} s",
                delay.as_secs_f64()
            );
            tokio::time::sleep(delay).await;
        }
    };
    tokio::pin!(stop_accepting);
    loop {
        tokio::select! {
            accepted = listener.accept() => acceptor.accepted(accepted).await,
            () = &mut stop_accepting => break,
        }
    }
    // Stop accepting, let in-flight requests finish.
    drop(listener);
    info!("shutting down: draining in-flight requests");
    let drain = app.config.drain_timeout;
    tokio::select! {
        () = acceptor.graceful.shutdown() => info!("all connections closed"),
        () = tokio::time::sleep(drain) => warn!("drain time of {} s exceeded; closing", drain.as_secs_f64()),
    }
}
