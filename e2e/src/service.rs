//! The service under test: the `parparchik` binary started as a child process, or an
//! already running one at `APP_URL`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::report::Report;
use crate::settings::Settings;

pub struct Service {
    /// e.g. `http://127.0.0.1:41234`
    pub base: String,
    /// The child process, when the suite started it.
    child: Option<Child>,
}

/// A port that was free a moment ago.
fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Service {
    /// The service already running at `APP_URL`.
    pub fn external(base: &str) -> Service {
        Service {
            base: base.to_owned(),
            child: None,
        }
    }

    /// Starts the binary against `endpoint` on a free port; its stdout and stderr go to `log`.
    pub fn spawn(settings: &Settings, endpoint: &str, log: &Path) -> Result<Service, String> {
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let file = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let file2 = file
            .try_clone()
            .map_err(|e| format!("cannot share {}: {e}", log.display()))?;
        let mut cmd = Command::new(&settings.app_bin);
        // Nothing of the caller's own configuration may change what is tested
        // (PARPARCHIK_BUCKETS would win over the two bucket variables, for instance).
        for (name, _) in std::env::vars_os() {
            let n = name.to_string_lossy();
            if n.starts_with("PARPARCHIK_") || n.starts_with("S3_") {
                cmd.env_remove(&name);
            }
        }
        cmd.env("PARPARCHIK_PUBLIC_BUCKET", &settings.public_bucket)
            .env("PARPARCHIK_PRIVATE_BUCKET", &settings.private_bucket)
            .env("S3_ENDPOINT", endpoint)
            .env("AWS_ACCESS_KEY_ID", &settings.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &settings.secret_key)
            .env("AWS_REGION", &settings.region)
            .env("PARPARCHIK_HOST", "127.0.0.1")
            .env("PARPARCHIK_PORT", port.to_string())
            .env("PARPARCHIK_SYNC_INTERVAL", "0")
            // Journal records at once, the manifest compacted within a second.
            .env("PARPARCHIK_MANIFEST_COMPACT_INTERVAL", "1")
            .envs(settings.events_token.as_ref().into_iter().flat_map(|t| {
                // The other scenarios move files behind the service's back and expect
                // the very next request to see it; while events are trusted a route
                // may lag by one event's delivery, so here every redirect is verified.
                [
                    ("PARPARCHIK_EVENTS_TOKEN", t.as_str()),
                    ("PARPARCHIK_EVENTS_VERIFY_TTL", "0"),
                ]
            }))
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", settings.app_bin.display()))?;
        Ok(Service {
            base: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        })
    }

    /// Waits until `/readiness` answers 200.
    pub async fn wait_ready(
        &mut self,
        http: &reqwest::Client,
        limit: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let url = format!("{}/readiness", self.base);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("the service exited ({status}) before it was ready"));
            }
            let last = match http.get(&url).timeout(Duration::from_secs(2)).send().await {
                Ok(r) if r.status() == 200 => return Ok(()),
                Ok(r) => format!("/readiness answered {}", r.status()),
                Err(e) => format!("/readiness: {e}"),
            };
            if Instant::now() >= deadline {
                return Err(format!("not ready within {limit:?} ({last})"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops a child with SIGTERM and checks that it shuts down cleanly (an assertion);
    /// leaves an external service alone.
    pub async fn stop(mut self, report: &mut Report) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let name = "service exits 0 within 15 s of SIGTERM (graceful shutdown)";
        let Some(pid) = child.id() else {
            let status = child.try_wait().ok().flatten();
            report.check(
                name,
                false,
                format_args!("it had already exited: {status:?}"),
            );
            return;
        };
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
        if !matches!(&sent, Ok(s) if s.success()) {
            report.check(
                name,
                false,
                format_args!("`kill -TERM {pid}` failed: {sent:?}"),
            );
            let _ = child.start_kill();
            let _ = child.wait().await;
            return;
        }
        match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
            Ok(Ok(status)) => {
                report.check(name, status.success(), format_args!("exit status {status}"));
            }
            Ok(Err(e)) => {
                report.check(name, false, format_args!("waiting for it: {e}"));
            }
            Err(_) => {
                report.check(name, false, "still running after 15 s; killed");
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }
}
