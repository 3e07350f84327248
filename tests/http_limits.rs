//! Limits that keep clients (and a stalled stderr) from exhausting the service, tested
//! from outside: raw HTTP and environment variables, `run` with a shutdown signal the
//! test controls, and for the log the real binary.

// The harness shared with `tests/it`; this binary uses only part of it.
#[allow(dead_code)]
#[path = "it/support/common.rs"]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{PUBLIC, S3, Service};
use testkit::metric;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Held by the tests that measure this process's memory, so they do not measure each
/// other.
static MEMORY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// This process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS line")
        * 1024
}

/// A connection with a small receive window, so that a client that does not read
/// stops the server's writes soon instead of parking megabytes in kernel buffers.
async fn stingy_connection(addr: &str) -> TcpStream {
    let addr: std::net::SocketAddr = addr.parse().expect("address");
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(addr).await.expect("connect")
}

fn addr(svc: &Service) -> String {
    svc.base.trim_start_matches("http://").to_owned()
}

async fn metric_of(svc: &Service, series: &str) -> Option<f64> {
    metric(&svc.metrics().await, series)
}

/// 100 clients ask for a 3.6 MB `/list` and never read: the service does not hold 100
/// bodies (the old code built each whole: +300 MB), and closes them after the write
/// timeout. 2 000 files with 830-byte keys make the body of 20 000 ordinary ones: the
/// debug-built test S3 lists only about 1 000 objects a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_list_readers_hold_bounded_memory_and_are_closed() {
    const FILES: usize = 2_000;
    const CLIENTS: usize = 100;
    let _alone = MEMORY.lock().await;
    let s3 = S3::two_buckets().await;
    // Objects written straight into the S3 server's data directory: seeding by PUT
    // would take most of the test's time. Path components stay under 255 bytes.
    let long: Vec<String> = "abcd".chars().map(|c| c.to_string().repeat(200)).collect();
    let prefix = format!("bulk/{}", long.join("/"));
    let dir = s3.dir.path().join(PUBLIC).join(&prefix);
    std::fs::create_dir_all(&dir).expect("mkdir");
    for i in 0..FILES {
        std::fs::write(dir.join(format!("file-{i:05}.bin")), b"x").expect("write object");
    }
    let svc = Service::ready_with(&s3, &[("PARPARCHIK_WRITE_TIMEOUT", "2")]).await;
    assert_eq!(svc.app.registry.len(), FILES);

    // One reader that reads everything: the body is whole and correct.
    let whole = svc.get("/list").await.bytes().await.expect("body");
    let v: serde_json::Value = serde_json::from_slice(&whole).expect("JSON");
    assert_eq!(v["count"], FILES);
    assert_eq!(v["files"].as_array().map(Vec::len), Some(FILES));
    assert_eq!(
        v["files"][0]["key"].as_str(),
        Some(format!("{prefix}/file-00000.bin").as_str())
    );
    println!("/list body: {} bytes", whole.len());
    assert!(whole.len() > 3_000_000, "{} bytes", whole.len());
    drop((whole, v));

    let before = rss();
    let addr = addr(&svc);
    let mut stalled = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let mut s = stingy_connection(&addr).await;
        s.write_all(b"GET /list HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .expect("request");
        stalled.push(s);
    }
    // Every handler has answered (the body is what remains to be sent).
    let series = "parparchik_http_requests_total{endpoint=\"list\",status=\"200\"}";
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric_of(&svc, series).await.unwrap_or(0.0) < (CLIENTS + 1) as f64 {
        assert!(
            Instant::now() < deadline,
            "the /list handlers did not answer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = rss();
    let grown = during.saturating_sub(before);
    println!(
        "RSS before {} MB, with {CLIENTS} stalled /list readers {} MB (+{} MB)",
        before >> 20,
        during >> 20,
        grown >> 20
    );
    assert!(
        grown < 60 << 20,
        "{CLIENTS} stalled readers grew RSS by {} MB",
        grown >> 20
    );

    // After the write timeout the service has closed them all.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let timeouts = metric_of(&svc, "parparchik_write_timeouts_total").await;
        if timeouts.unwrap_or(0.0) >= CLIENTS as f64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "write timeouts after 10 s: {timeouts:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let open = metric_of(&svc, "parparchik_connections_open").await;
    assert!(open.unwrap_or(f64::MAX) <= 2.0, "still open: {open:?}");
    // The clients see the end of the stream once they read: a cut-off body.
    for mut s in stalled.drain(..3) {
        let mut got = Vec::new();
        let end = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got)).await;
        assert!(end.is_ok(), "connection still open");
        assert!(got.len() < 3 << 20, "the whole body was never sent");
    }
    svc.stop().await;
}

/// Over `PARPARCHIK_MAX_CONNECTIONS`, a new connection is answered 503 with
/// `Retry-After` and closed at once, and counted.
#[tokio::test]
async fn connections_over_the_cap_get_503_and_are_closed() {
    let s3 = S3::two_buckets().await;
    let svc = Service::ready_with(&s3, &[("PARPARCHIK_MAX_CONNECTIONS", "20")]).await;
    let addr = addr(&svc);
    // Twenty connections open and idle (within the header timeout).
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        let mut extra = TcpStream::connect(&addr).await.expect("connect");
        let _ = extra
            .write_all(b"GET /status HTTP/1.1\r\nHost: t\r\n\r\n")
            .await;
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(3), extra.read_to_end(&mut answer))
            .await
            .expect("answered and closed at once, not left waiting")
            .expect("read");
        let text = String::from_utf8_lossy(&answer).to_lowercase();
        assert!(text.starts_with("http/1.1 503"), "{text}");
        assert!(text.contains("retry-after: 1\r\n"), "{text}");
        assert!(text.contains("cache-control: no-store\r\n"), "{text}");
    }
    // Below the cap again, connections are served; the rejections were counted.
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        if let Ok(r) = svc.http.get(svc.url("/metrics")).send().await
            && r.status() == 200
        {
            break r.text().await.expect("metrics");
        }
        assert!(Instant::now() < deadline, "never served again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        metric(&text, "parparchik_connections_rejected_total"),
        Some(3.0)
    );
    svc.stop().await;
}

/// Many clients trickling large, unfinished request heads: each head's buffer is capped
/// (431 beyond 96 KiB), all are dropped at the header timeout, and memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_slow_heads_cost_bounded_memory_and_are_dropped() {
    const CLIENTS: usize = 200;
    let _alone = MEMORY.lock().await;
    let s3 = S3::two_buckets().await;
    let svc = Service::ready_with(&s3, &[("PARPARCHIK_HEADER_TIMEOUT", "3")]).await;
    let addr = addr(&svc);
    let before = rss();
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let addr = addr.clone();
        clients.spawn(async move {
            let mut s = TcpStream::connect(&addr).await.expect("connect");
            let _ = s.write_all(b"GET /status HTTP/1.1\r\nHost: t\r\n").await;
            // 80 KiB of header lines in 8 KiB steps, never the blank line.
            let line = format!("X-Pad: {}\r\n", "a".repeat(8 * 1024 - 10));
            for _ in 0..10 {
                if s.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut buf = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
            (started.elapsed(), buf)
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = rss();
    let mut closed_after = Vec::new();
    while let Some(done) = clients.join_next().await {
        let (after, answer) = done.expect("client");
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
        closed_after.push(after);
    }
    let last = closed_after.iter().max().copied().unwrap_or_default();
    let grown = during.saturating_sub(before);
    println!(
        "{CLIENTS} slow 80 KiB heads: RSS +{} MB, all closed after {last:?}",
        grown >> 20
    );
    assert!(last < Duration::from_secs(6), "closed after {last:?}");
    // At most 96 KiB buffered per head, plus room for the allocator.
    assert!(
        grown < (CLIENTS as u64) * 192 * 1024 + (16 << 20),
        "RSS grew {} MB",
        grown >> 20
    );
    assert_eq!(svc.get("/healthcheck").await.status(), 200);
    svc.stop().await;
}

/// After the shutdown signal, readiness is 503 at once while new connections are still
/// served for `PARPARCHIK_SHUTDOWN_DELAY`; then the listener is closed.
#[tokio::test]
async fn shutdown_delay_keeps_serving_with_readiness_503() {
    let s3 = S3::two_buckets().await;
    let mut env = common::two_bucket_env(&s3.endpoint());
    env.push(("PARPARCHIK_SHUTDOWN_DELAY".into(), "1.5".into()));
    let map: HashMap<String, String> = env.into_iter().collect();
    let config = parparchik::config::Config::from_lookup(|k| map.get(k).cloned()).expect("config");
    let app = parparchik::app::App::new(config).expect("app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(parparchik::run(Arc::clone(&app), listener, async {
        let _ = stopped.await;
    }));
    let base = format!("http://{addr}");
    // A fresh connection per request, as a load balancer's probes and new clients make.
    let fresh = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client")
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !app.is_ready() {
        assert!(Instant::now() < deadline, "not ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let readiness = format!("{base}/readiness");
    assert_eq!(
        fresh().get(&readiness).send().await.expect("up").status(),
        200
    );

    let signalled = Instant::now();
    let _ = stop.send(());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = fresh().get(&readiness).send().await.expect("served");
    assert_eq!(r.status(), 503, "readiness turns 503 at once");
    assert_eq!(
        r.headers()
            .get("connection")
            .map(reqwest::header::HeaderValue::as_bytes),
        Some(&b"close"[..]),
        "kept-alive clients are asked to reconnect (elsewhere)"
    );
    while signalled.elapsed() < Duration::from_millis(1200) {
        let r = fresh()
            .get(format!("{base}/healthcheck"))
            .send()
            .await
            .expect("new connections are served during the delay");
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stopped after the delay")
        .expect("run");
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "stopped after {took:?}"
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed after the delay"
    );
}

/// Error answers are never cached by a CDN or browser: a 404 for a file that appears a
/// second later must not outlive it.
#[tokio::test]
async fn error_answers_carry_cache_control_no_store() {
    let mut s3 = S3::two_buckets().await;
    let svc = Service::ready(&s3).await;
    for (method, path, status) in [
        ("GET", "/public-bucket/missing.txt", 404),
        ("HEAD", "/public-bucket/missing.txt", 404),
        ("GET", "/update?filename=missing.txt", 404),
        ("GET", "/public-bucket/a%zzb", 400),
        ("GET", "/update", 400),
        ("GET", "/nowhere", 404),
        ("POST", "/status", 405),
        ("GET", "/relocate?filename=x", 405),
    ] {
        let r = svc
            .http
            .request(method.parse().expect("method"), svc.url(path))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), status, "{method} {path}");
        assert_eq!(
            r.headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap_or_default()),
            Some("no-store"),
            "{method} {path}"
        );
    }
    // Success answers are unchanged: /status carries no Cache-Control.
    assert!(
        svc.get("/status")
            .await
            .headers()
            .get("cache-control")
            .is_none()
    );
    // S3 down: the 503 for an unknown key is not cached either.
    s3.stop().await;
    let r = svc.get("/public-bucket/unknown.txt").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["cache-control"], "no-store");
    svc.stop().await;
}

/// The real binary with stderr a pipe nobody reads: requests are still answered (log
/// lines are dropped and counted instead of blocking the workers), and once stderr is
/// read again a line says how many were dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stderr_never_blocks_requests() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    const REQUESTS: usize = 40_000;
    let s3 = S3::two_buckets().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_parparchik"));
    cmd.env_clear()
        .envs(common::two_bucket_env(&s3.endpoint()))
        .env("PARPARCHIK_HOST", "127.0.0.1")
        .env("PARPARCHIK_PORT", port.to_string())
        .env("PARPARCHIK_SHUTDOWN_DELAY", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("binary starts");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut stderr = child.stderr.take().expect("stderr pipe");
    let child = Kill(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("{base}/readiness")).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "binary not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Far more log text than a pipe holds (64 KiB) or the log buffer keeps (1 MiB).
    let started = Instant::now();
    let answered = tokio::time::timeout(Duration::from_secs(120), async {
        let mut workers = tokio::task::JoinSet::new();
        for w in 0..4 {
            let (client, base) = (client.clone(), base.clone());
            workers.spawn(async move {
                for i in 0..REQUESTS / 4 {
                    let r = client
                        .get(format!("{base}/healthcheck?w={w}&i={i}"))
                        .send()
                        .await
                        .expect("answered");
                    assert_eq!(r.status(), 200);
                }
            });
        }
        while let Some(w) = workers.join_next().await {
            w.expect("worker");
        }
    })
    .await;
    assert!(
        answered.is_ok(),
        "requests hung while stderr was not read (after {:?})",
        started.elapsed()
    );
    println!(
        "{REQUESTS} requests with stderr stalled: {:?}",
        started.elapsed()
    );
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let dropped = metric(&text, "parparchik_log_lines_dropped_total").unwrap_or(0.0);
    assert!(dropped > 0.0, "no line was dropped: {dropped}");

    // Reading stderr again: the notice follows.
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            match stderr.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&all).contains("lines dropped while stderr") {
                break;
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    // One more line after the stall, so the writer has something to say.
    let _ = client.get(format!("{base}/healthcheck")).send().await;
    let log = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || reader.join().expect("reader")),
    )
    .await
    .expect("the notice was written")
    .expect("join");
    assert!(
        log.lines().any(|l| l.contains("WARN log: ")
            && l.ends_with("lines dropped while stderr did not take them")),
        "no notice in {} bytes of log",
        log.len()
    );
    drop(child);
}
