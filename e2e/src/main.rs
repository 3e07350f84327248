//! `parparchik-e2e`: the end-to-end suite against any S3 endpoint.
//!
//! ```text
//! cargo build --bin parparchik && cargo run -p parparchik-e2e
//! E2E_S3_ENDPOINT=http://localhost:9000 cargo run -p parparchik-e2e    # e.g. MinIO
//! APP_URL=http://localhost:8080 E2E_S3_ENDPOINT=http://localhost:9000 cargo run -p parparchik-e2e
//! ```
//!
//! Environment: `E2E_S3_ENDPOINT` (unset: an embedded local S3), `E2E_PUBLIC_BUCKET`,
//! `E2E_PRIVATE_BUCKET`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `APP_URL` (unset: start the binary `E2E_APP_BIN`, default `debug/parparchik` in
//! `CARGO_TARGET_DIR` or `target/`). The `/browse/` scenario runs headless Chromium
//! (`E2E_CHROMIUM`, else `chromium` on `PATH`); without one it is noted and skipped,
//! unless `CI` or `E2E_REQUIRE_BROWSER` is set, where that is a failure. Its 1280×800
//! screenshot goes to `E2E_SCREENSHOT_DIR`, default `<target dir>/e2e/`.
//!
//! Prints one `PASS`/`FAIL` line per assertion, then `N passed, M failed`; exits 1 on
//! any failure, 2 when it cannot run at all.

mod chromium;
mod report;
mod s3;
mod scenarios;
mod service;
mod settings;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use report::Report;
use service::Service;
use settings::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    let mut settings = Settings::from_env();
    if settings.app_url.is_none() && !settings.app_bin.is_file() {
        eprintln!(
            "parparchik-e2e: the service binary {} does not exist.\n\
             Build it first: cargo build --bin parparchik\n\
             (or set E2E_APP_BIN to a binary, or APP_URL to a running service)",
            settings.app_bin.display()
        );
        return ExitCode::from(2);
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let work = std::env::temp_dir().join(format!("parparchik-e2e-{}-{nanos}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&work) {
        eprintln!("parparchik-e2e: cannot create {}: {e}", work.display());
        return ExitCode::from(2);
    }

    // The suite starts both the S3 and the service: the S3 sends them its notifications.
    if settings.s3_endpoint.is_none() && settings.app_url.is_none() {
        settings
            .events_token
            .get_or_insert_with(|| format!("e2e-events-token-{nanos}"));
    }
    let mut report = Report::default();
    let log = run(&settings, &work, &format!("e2e-{nanos}"), &mut report).await;

    // Keep the service's log when something failed; remove everything else.
    let keep = report.failed() > 0 && log.is_some();
    if keep {
        let _ = std::fs::remove_dir_all(work.join("s3"));
        if let Some(log) = &log {
            println!("service log: {}", log.display());
        }
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    report.summary();
    if report.failed() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Sets up S3 and the service, runs the scenarios, tears down. Returns the service's
/// log file, if the suite started the service.
async fn run(
    settings: &Settings,
    work: &Path,
    prefix: &str,
    report: &mut Report,
) -> Option<PathBuf> {
    let (embedded, endpoint) = match &settings.s3_endpoint {
        Some(e) => (None, e.clone()),
        None => {
            let mut cfg =
                local_s3::Config::new(work.join("s3"), &settings.access_key, &settings.secret_key);
            cfg.buckets = vec![
                settings.public_bucket.clone(),
                settings.private_bucket.clone(),
            ];
            cfg.public_buckets = vec![settings.public_bucket.clone()];
            match local_s3::LocalS3::start(cfg).await {
                Ok(s3) => {
                    let ep = s3.endpoint();
                    (Some(s3), ep)
                }
                Err(e) => {
                    report.check("embedded local S3 starts", false, e);
                    return None;
                }
            }
        }
    };
    println!(
        "e2e: S3 {endpoint}{}, buckets {} (public) and {} (private), keys under {prefix}/",
        if embedded.is_some() {
            " (embedded local-s3)"
        } else {
            ""
        },
        settings.public_bucket,
        settings.private_bucket
    );

    let log_path = work.join("service.log");
    let mut log = None;
    let service = match &settings.app_url {
        Some(url) => Ok(Service::external(url)),
        None => {
            Service::spawn(settings, &endpoint, &log_path).inspect(|_| log = Some(log_path.clone()))
        }
    };
    match service {
        Ok(mut service) => {
            println!(
                "e2e: service {}{}",
                service.base,
                if settings.app_url.is_some() {
                    " (APP_URL)"
                } else {
                    ""
                }
            );
            if let Some(s3) = &embedded {
                s3.notifier().set_target(Some(local_s3::NotifyTarget {
                    url: format!("{}/events", service.base),
                    token: settings.events_token.clone(),
                }));
            }
            let probe = reqwest::Client::new();
            let ready = service.wait_ready(&probe, Duration::from_secs(30)).await;
            let ready_ok = report.check(
                "service is ready (/readiness 200) within 30 s",
                ready.is_ok(),
                ready.err().unwrap_or_default(),
            );
            if ready_ok {
                let seed = seeder(&endpoint, settings);
                let ctx = seed.and_then(|seed| {
                    scenarios::Ctx::new(
                        &service.base,
                        seed,
                        &endpoint,
                        &settings.public_bucket,
                        &settings.private_bucket,
                        &settings.region,
                        prefix,
                    )
                });
                match ctx {
                    Ok(mut ctx) => {
                        scenarios::run_all(&mut ctx, report).await;
                        scenarios::cleanup(&ctx).await;
                    }
                    Err(e) => {
                        report.check("S3 client for seeding", false, e);
                    }
                }
            }
            service.stop(report).await;
        }
        Err(e) => {
            report.check("service starts", false, e);
        }
    }
    if let Some(s3) = embedded {
        s3.stop().await;
    }
    log
}

/// The S3 client that seeds and inspects the buckets, with the suite's credentials.
fn seeder(endpoint: &str, settings: &Settings) -> Result<testkit::Seeder, String> {
    let (access, secret) = (&settings.access_key, &settings.secret_key);
    let creds = match settings.session_token.as_deref() {
        Some(t) => rusty_s3::Credentials::new_with_token(access, secret, t),
        None => rusty_s3::Credentials::new(access, secret),
    };
    // A real network: a request that hangs is a failed check, not a hung run.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    testkit::Seeder::new(endpoint, &settings.region, creds, http)
        .map_err(|e| format!("E2E_S3_ENDPOINT: {e}"))
}
