//! `parparchik check-config`: loads and validates the configuration as the service
//! would, prints it (secrets masked), then asks S3 about each bucket with one attempt
//! and a short timeout: does it answer, can it be listed, is the manifest there, and,
//! for public buckets, can the plain URLs clients are redirected to be read without
//! credentials. Useful as an init container or a new operator's first step.

pub(crate) mod report;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use report::{BucketReport, Outcome};

use crate::app::{App, AppError};
use crate::config::{BucketConfig, Config};
use crate::s3::S3Error;
use crate::s3::client::ListPageRequest;

/// Bounds on each probe: an operator waits for the answer.
const MAX_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the whole check, writing as it goes; true when nothing failed.
pub fn run(get: &dyn Fn(&str) -> Option<String>, out: &mut dyn Write) -> bool {
    let _ = write!(out, "{}", report::settings(get));
    let mut config = match Config::from_lookup(get) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(out, "configuration: INVALID: {e}");
            return false;
        }
    };
    let _ = write!(out, "{}", summary(&config));
    // One attempt each, briefly: a slow S3 is itself the answer.
    config.s3_attempts = 1;
    config.s3_timeout = config.s3_timeout.min(MAX_TIMEOUT);
    config.s3_connect_timeout = config.s3_connect_timeout.min(MAX_CONNECT_TIMEOUT);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(out, "cannot start the runtime: {e}");
            return false;
        }
    };
    let reports = runtime.block_on(probe_all(config, out));
    let _ = write!(out, "{}", report::buckets(&reports));
    let _ = out.flush();
    reports.iter().all(|r| r.failures() == 0)
}

/// The parsed configuration in a few lines (what the variables amount to).
fn summary(c: &Config) -> String {
    let buckets: Vec<String> = c
        .buckets
        .iter()
        .map(|b| {
            format!(
                "{} ({}, manifest {})",
                b.name,
                b.bucket_type(),
                b.manifest_key
            )
        })
        .collect();
    format!(
        "configuration: valid\n  buckets (priority order): {}\n  S3 endpoint: {} (region {}); redirects name {}\n  \
         listening on {}:{}; logs {}, level {}, request lines {}; browse page {}\n",
        buckets.join(", "),
        c.endpoint.display(),
        c.region,
        c.external_endpoint.display(),
        c.host,
        c.port,
        c.log.format.name(),
        c.log.level.name(),
        if c.log.access { "on" } else { "off" },
        if c.browse { "on" } else { "off" },
    )
}

async fn probe_all(config: Config, out: &mut dyn Write) -> Vec<BucketReport> {
    let tls = crate::tls::TlsSettings::load(config.s3_ca_file.as_deref());
    let anonymous = tls.map_err(AppError::from).and_then(|tls| {
        crate::tls::build_client(
            tls.apply(reqwest::Client::builder())
                .connect_timeout(config.s3_connect_timeout)
                .timeout(config.s3_timeout)
                .redirect(reqwest::redirect::Policy::none()),
            "anonymous reads",
        )
        .map_err(AppError::from)
    });
    let (app, anonymous) = match (App::new(config.clone()), anonymous) {
        (Ok(app), Ok(anonymous)) => (app, anonymous),
        (Err(e), _) | (_, Err(e)) => {
            let _ = writeln!(out, "S3 client: cannot be built: {e}");
            return config
                .buckets
                .iter()
                .map(|b| unreachable_report(b, &e.to_string()))
                .collect();
        }
    };
    // Remote credential sources (STS, container, IMDS) deliver on the refresh task's
    // first run.
    let refresh = tokio::spawn(crate::credentials::refresh::run(app.credentials.clone()));
    let mut reports = Vec::with_capacity(config.buckets.len());
    for b in &config.buckets {
        reports.push(probe(&app, &anonymous, b).await);
    }
    let status = app.credentials.status();
    let _ = writeln!(
        out,
        "credentials: source {}{}\nbuckets (one attempt per call, timeout {} s):",
        status.source,
        status
            .error
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default(),
        config.s3_timeout.as_secs_f64(),
    );
    refresh.abort();
    reports
}

fn unreachable_report(b: &BucketConfig, why: &str) -> BucketReport {
    let skip = || Outcome::Skip("S3 was not reached".into());
    BucketReport {
        name: b.name.clone(),
        public: b.public,
        reachable: Outcome::Fail(why.to_owned()),
        listable: skip(),
        manifest: skip(),
        anonymous_read: b.public.then(skip),
    }
}

async fn probe(app: &Arc<App>, anonymous: &reqwest::Client, b: &BucketConfig) -> BucketReport {
    let first_page = ListPageRequest {
        continuation_token: None,
        start_after: None,
        max_keys: 10,
        delimiter: None,
    };
    let page = match app.s3.list_page(&b.name, &first_page).await {
        Ok(page) => page,
        Err(e) => return unlistable(b, &e),
    };
    let listed = page.objects.len();
    let listable = Outcome::Pass(format!(
        "{listed}{} object{} on the first page",
        if page.next_token.is_some() { "+" } else { "" },
        if listed == 1 { "" } else { "s" }
    ));
    let (manifest, manifest_present) = match app.s3.head_object(&b.name, &b.manifest_key).await {
        Ok(meta) => (
            Outcome::Pass(format!("{} ({} bytes)", b.manifest_key, meta.size)),
            true,
        ),
        Err(S3Error::NotFound) => (
            Outcome::Info(format!(
                "{} absent: the service writes it at its first start",
                b.manifest_key
            )),
            false,
        ),
        Err(e) => (Outcome::Fail(format!("{}: {e}", b.manifest_key)), false),
    };
    let anonymous_read = if b.public {
        // Any object will do; the manifest when there is one, else the first file.
        let key = if manifest_present {
            Some(b.manifest_key.as_str())
        } else {
            page.objects
                .iter()
                .map(|o| o.key.as_str())
                .find(|k| !b.owns(k))
        };
        Some(match key {
            Some(key) => anonymous_get(app, anonymous, &b.name, key).await,
            None => Outcome::Skip("the bucket holds no object to read".into()),
        })
    } else {
        None
    };
    BucketReport {
        name: b.name.clone(),
        public: b.public,
        reachable: Outcome::Pass(String::new()),
        listable,
        manifest,
        anonymous_read,
    }
}

/// The listing failed: did S3 answer at all?
fn unlistable(b: &BucketConfig, e: &S3Error) -> BucketReport {
    if e.is_unavailable() {
        return unreachable_report(b, &e.to_string());
    }
    let skip = || Outcome::Skip("the bucket cannot be listed".into());
    BucketReport {
        name: b.name.clone(),
        public: b.public,
        reachable: Outcome::Pass("S3 answered".into()),
        listable: Outcome::Fail(e.to_string()),
        manifest: skip(),
        anonymous_read: b.public.then(skip),
    }
}

/// GETs the first byte of `key` at its plain URL without credentials, as a client
/// redirected there would (at `S3_ENDPOINT`, which this process can reach).
async fn anonymous_get(app: &App, client: &reqwest::Client, bucket: &str, key: &str) -> Outcome {
    let url = app.config.endpoint.target(bucket, key).url("");
    match client.get(&url).header("range", "bytes=0-0").send().await {
        Ok(r) if r.status().is_success() => Outcome::Pass(format!(
            "GET {url} without credentials: {}",
            r.status().as_u16()
        )),
        Ok(r) => Outcome::Fail(format!(
            "GET {url} without credentials answered {}; clients redirected to this public bucket will be refused (allow anonymous reads, e.g. `mc anonymous set download`)",
            r.status().as_u16()
        )),
        Err(e) => Outcome::Fail(format!("GET {url} without credentials failed: {e}")),
    }
}
