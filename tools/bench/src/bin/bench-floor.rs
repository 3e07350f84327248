//! `bench-floor --addr 127.0.0.1:PORT [--location-len 250]`: the throughput floor.
//!
//! A bare hyper 1.x HTTP/1.1 server on tokio's multi-threaded runtime (as the service
//! runs) that answers every request with the same `302`, a `Location` of
//! `--location-len` bytes (about what a presigned URL of the service is) and
//! `Cache-Control: no-store`, and does nothing else: no routing, no logging, no metrics.
//! Whatever the service spends above this is its own work. Prints its address once it
//! listens (`--addr` may use port 0) and serves until killed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, HeaderValue, LOCATION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use parparchik_bench::Args;

/// A URL shaped like a presigned one, exactly `len` bytes long (at least its prefix).
fn location(len: usize) -> String {
    let mut url = String::from(
        "http://127.0.0.1:9000/private-bucket/bench/1.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=minioadmin%2F20260101%2Fus-east-1%2Fs3%2Faws4_request\
         &X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host\
         &X-Amz-Signature=",
    );
    let hex = b"0123456789abcdef";
    let mut i = 0;
    while url.len() < len {
        url.push(char::from(hex[i % hex.len()]));
        i += 1;
    }
    url
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1), &[]).and_then(|a| {
        a.only(&["addr", "location-len"])?;
        Ok(a)
    }) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench-floor: {e}\nusage: bench-floor --addr HOST:PORT [--location-len N]");
            return ExitCode::from(2);
        }
    };
    let (addr, len) = match (
        args.parsed::<SocketAddr>("addr", SocketAddr::from(([127, 0, 0, 1], 0))),
        args.parsed("location-len", 250usize),
    ) {
        (Ok(a), Ok(l)) => (a, l),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("bench-floor: {e}");
            return ExitCode::from(2);
        }
    };
    let Ok(location) = HeaderValue::from_str(&location(len)) else {
        eprintln!("bench-floor: cannot build the Location header");
        return ExitCode::FAILURE;
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bench-floor: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(a) => println!("bench-floor: listening on http://{a} (Location {len} bytes)"),
        Err(e) => {
            eprintln!("bench-floor: {e}");
            return ExitCode::FAILURE;
        }
    }
    let no_store = HeaderValue::from_static("no-store");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // As the service does: small answers must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let (location, no_store) = (location.clone(), no_store.clone());
        tokio::spawn(async move {
            let service = service_fn(move |_req| {
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = StatusCode::FOUND;
                r.headers_mut().insert(LOCATION, location.clone());
                r.headers_mut().insert(CACHE_CONTROL, no_store.clone());
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn location_has_the_asked_length() {
        assert_eq!(super::location(250).len(), 250);
        assert!(super::location(10).starts_with("http://"));
    }
}
