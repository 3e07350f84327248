//! The binary's logs as a log pipeline reads them: with `PARPARCHIK_LOG_FORMAT=json`
//! every line on stderr is one JSON object; request lines carry their fields and the
//! request id the answer's `X-Request-Id` names; no secret, signature or `Location`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::common::{PRIVATE, PUBLIC, S3, SECRET_KEY, two_bucket_env};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs the binary with `extra` over the two-bucket environment, sends the requests
/// `exercise` makes, stops it with SIGTERM and returns its stderr.
async fn run_service<F, Fut>(s3: &S3, extra: &[(&str, &str)], exercise: F) -> String
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let port = free_port();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_parparchik"));
    cmd.env_clear()
        .envs(two_bucket_env(&s3.endpoint()))
        .env("PARPARCHIK_HOST", "127.0.0.1")
        .env("PARPARCHIK_PORT", port.to_string())
        .env("PARPARCHIK_SHUTDOWN_DELAY", "0")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("the binary starts");
    // Killed if the test fails before SIGTERM.
    struct Reaper(Option<std::process::Child>);
    impl Drop for Reaper {
        fn drop(&mut self) {
            if let Some(c) = self.0.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut child = Reaper(Some(child));
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = reqwest::get(format!("{base}/readiness"))
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "not ready in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    exercise(base).await;
    let running = child.0.take().expect("running");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &running.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || running.wait_with_output()),
    )
    .await
    .expect("exits after SIGTERM")
    .expect("joined")
    .expect("output");
    assert!(out.status.success(), "{:?}", out.status);
    String::from_utf8(out.stderr).expect("UTF-8 logs")
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_with_request_fields_and_ids() {
    let s3 = S3::two_buckets().await;
    s3.client().put(PRIVATE, "dir/secret report.txt", "x").await;
    s3.client().put(PUBLIC, "a.txt", "y").await;
    let mut seen_ids = Vec::new();
    let logs = run_service(&s3, &[("PARPARCHIK_LOG_FORMAT", "json")], |base| {
        let seen_ids = &mut seen_ids;
        async move {
            let http = no_redirects();
            // A sane id is kept; an insane one (a space, a quote) is replaced.
            for (sent, kept) in [
                (Some("client-id.42:x_y"), true),
                (Some("bad id\""), false),
                (None, false),
            ] {
                let mut req = http.get(format!("{base}/{PRIVATE}/dir/secret%20report.txt?x=1"));
                if let Some(id) = sent {
                    req = req.header("x-request-id", id);
                }
                let r = req.send().await.expect("answer");
                assert_eq!(r.status(), 302);
                let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
                if kept {
                    assert_eq!(Some(id.as_str()), sent);
                } else {
                    assert_ne!(Some(id.as_str()), sent);
                    assert!(parparchik::http::request_id::accept(id.as_bytes()).is_some());
                }
                seen_ids.push(id);
            }
            let r = http
                .get(format!("{base}/nope"))
                .send()
                .await
                .expect("answer");
            assert_eq!(r.status(), 404);
            assert!(
                r.headers().contains_key("x-request-id"),
                "errors carry it too"
            );
        }
    })
    .await;

    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 5, "{logs}");
    for v in &lines {
        let ts = v["ts"].as_str().expect("ts");
        // RFC 3339, milliseconds, UTC: 2026-05-05T10:00:00.123Z
        assert!(
            ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.',
            "{ts}"
        );
        assert!(
            time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).is_ok()
        );
        assert!(matches!(
            v["level"].as_str(),
            Some("error" | "warn" | "info" | "debug")
        ));
        assert!(v["msg"].is_string());
    }
    let requests: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["path"] == format!("/{PRIVATE}/dir/secret%20report.txt"))
        .collect();
    assert_eq!(requests.len(), 3, "{logs}");
    for (v, id) in requests.iter().zip(&seen_ids) {
        assert_eq!(v["method"], "GET");
        assert_eq!(v["query"], "x=1");
        assert_eq!(v["status"], 302);
        assert!(v["duration_us"].is_u64());
        assert!(v["s3_calls"].is_u64());
        assert_eq!(v["client"], "127.0.0.1");
        assert_eq!(&v["request_id"], id);
    }
    assert!(
        lines
            .iter()
            .any(|v| v["path"] == "/nope" && v["status"] == 404),
        "{logs}"
    );
    assert!(!logs.contains("X-Amz-Signature") && !logs.contains("Signature="));
    assert!(!logs.contains(SECRET_KEY));
    assert!(!logs.to_ascii_lowercase().contains("location"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn level_and_access_switch_silence_lines() {
    let s3 = S3::two_buckets().await;
    let logs = run_service(
        &s3,
        &[
            ("PARPARCHIK_LOG_LEVEL", "warn"),
            ("PARPARCHIK_ACCESS_LOG", "off"),
        ],
        |base| async move {
            let r = reqwest::get(format!("{base}/status"))
                .await
                .expect("answer");
            assert_eq!(r.status(), 200);
        },
    )
    .await;
    // Start-up and shutdown say only INFO things; no request line either.
    assert!(!logs.contains(" INFO "), "{logs}");
    assert!(!logs.contains("/status"), "{logs}");

    let logs = run_service(&s3, &[], |base| async move {
        let r = reqwest::Client::new()
            .get(format!("{base}/status"))
            .header("x-request-id", "text-id-1")
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 200);
    })
    .await;
    let line = logs
        .lines()
        .find(|l| l.contains(" GET /status "))
        .unwrap_or_else(|| panic!("no request line: {logs}"));
    assert!(
        line.ends_with(" 200") || line.contains(" 200 "),
        "text request line: {line}"
    );
    assert!(
        line.ends_with(" client=127.0.0.1 request_id=text-id-1"),
        "{line}"
    );
    assert!(line.contains(" INFO GET /status 200 "), "{line}");
}

/// The binary against an S3 that refuses connections, for `wait`, then stopped; its stderr.
fn against_a_dead_s3(level: &str, wait: Duration) -> String {
    let dead = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_parparchik"))
        .env_clear()
        .envs(two_bucket_env(&format!("http://127.0.0.1:{dead}")))
        .env("PARPARCHIK_HOST", "127.0.0.1")
        .env("PARPARCHIK_PORT", free_port().to_string())
        .env("PARPARCHIK_SHUTDOWN_DELAY", "0")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PARPARCHIK_LOG_LEVEL", level)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    std::thread::sleep(wait);
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let out = child.wait_with_output().expect("output");
    String::from_utf8(out.stderr).expect("UTF-8 logs")
}

#[test]
fn debug_shows_each_s3_retry_and_info_does_not() {
    let debug = against_a_dead_s3("debug", Duration::from_millis(1500));
    assert!(
        debug.contains(
            " DEBUG S3 GetObject public-bucket/.parparchik/files.json: attempt 1 failed ("
        ),
        "{debug}"
    );
    let info = against_a_dead_s3("info", Duration::from_millis(1500));
    assert!(!info.contains("DEBUG"), "{info}");
    assert!(info.contains(" WARN start-up attempt 1 failed"), "{info}");
}
