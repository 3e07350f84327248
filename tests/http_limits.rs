//! Limits that keep clients (and a stalled stderr) from exhausting the service, tested
//! from outside: raw HTTP and environment variables, `run` with a shutdown signal the
//! test controls, and for the log the real binary.

mod common;

use std::time::{Duration, Instant};

use common::{S3, Service, metric};

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
