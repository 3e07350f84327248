//! The service's shared state: configuration, registry, S3 client, manifests, health.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use crate::config::Config;
use crate::coordinator::coalesce::HeadCoalescer;
use crate::coordinator::misses::MissCache;
use crate::credentials::CredentialsHandle;
use crate::http::access::RateLimiter;
use crate::keycache::KeyCache;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::s3::S3Client;
use crate::s3::client::ClientSettings;
use crate::s3::urls::DownloadUrls;

/// Files whose confirmation time and redirect URLs are kept (the most recently asked).
const CACHED_FILES: usize = 65_536;
use crate::coordinator::persist::ManifestStore;
use crate::coordinator::sync::SyncState;

/// What `/status` reports about S3 and the last sync.
#[derive(Clone, Debug, Default)]
pub struct StorageHealth {
    /// The last S3 error met by start-up or a sync (never a credential).
    pub last_error: Option<String>,
}

/// Everything a request or a background task needs, shared behind one `Arc`.
pub struct App {
    /// The configuration read at start; never changed afterwards.
    pub config: Config,
    /// Every known file and its route, in memory.
    pub registry: Registry,
    /// The client for `S3_ENDPOINT` (listing, HEAD, manifest reads and writes).
    pub s3: S3Client,
    pub(crate) urls: DownloadUrls,
    /// Counters for `/metrics`, shared with the S3 client and the credentials.
    pub metrics: Arc<Metrics>,
    /// Per bucket: the manifest as last read or written, and its writer.
    pub manifests: ManifestStore,
    pub(crate) heads: HeadCoalescer,
    /// Keys S3 recently proved missing, per bucket.
    pub misses: MissCache,
    /// When S3 last confirmed a file (ms on [`App::now_ms`]'s clock, plus one), for the
    /// files people ask for; read by `PARPARCHIK_VERIFY_TTL`.
    pub confirmed: KeyCache<u64>,
    /// Redirect URLs built for the files people ask for.
    pub redirect_urls: KeyCache<crate::http::handlers::UrlSlot>,
    /// Serialises syncs and keeps the last one's report for `/status`.
    pub sync: SyncState,
    /// Bucket notifications: last applied event per object, trust per bucket, counters.
    pub events: crate::coordinator::events::EventsState,
    /// Per-client request limit; `None` when `PARPARCHIK_RATE_LIMIT_PER_SECOND` is unset.
    pub rate_limiter: Option<RateLimiter>,
    /// Ids for requests that bring none (`X-Request-Id`).
    pub request_ids: crate::http::request_id::RequestIds,
    /// `Cache-Control` of redirects, parsed once.
    pub redirect_cache_control: hyper::header::HeaderValue,
    /// The current S3 credentials (shared with `s3` and `urls`), refreshed in the
    /// background by `credentials::refresh::run`.
    pub credentials: CredentialsHandle,
    /// `max-age` of `redirect_cache_control`, if any: capped per presigned redirect.
    redirect_max_age: Option<u64>,
    ready: AtomicBool,
    shutting_down: AtomicBool,
    /// An episode of S3 failures is under way (warned about once, at its start).
    storage_failing: AtomicBool,
    health: Mutex<StorageHealth>,
    started: Instant,
    /// The `Arc` this app lives in, for the tasks it starts itself (manifest writers,
    /// background checks) that must outlive the request that started them.
    me: Weak<App>,
}

/// Why the service could not be assembled from a valid configuration.
#[derive(Debug)]
pub enum AppError {
    /// `PARPARCHIK_S3_CA_FILE` cannot be used: fix or unset it.
    CaFile(crate::tls::CaFileError),
    /// An HTTP client could not be built.
    HttpClient(crate::tls::HttpClientError),
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::CaFile(e) => e.fmt(f),
            AppError::HttpClient(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AppError::CaFile(e) => Some(e),
            AppError::HttpClient(e) => Some(e),
        }
    }
}

impl From<crate::tls::CaFileError> for AppError {
    fn from(e: crate::tls::CaFileError) -> AppError {
        AppError::CaFile(e)
    }
}

impl From<crate::tls::HttpClientError> for AppError {
    fn from(e: crate::tls::HttpClientError) -> AppError {
        AppError::HttpClient(e)
    }
}

impl App {
    /// Builds the clients and empty state from `config`; nothing is asked of S3 yet.
    /// Not ready until the registry is rebuilt ([`crate::run`] starts that).
    pub fn new(config: Config) -> Result<Arc<App>, AppError> {
        let metrics = Arc::new(Metrics::default());
        let tls = crate::tls::TlsSettings::load(config.s3_ca_file.as_deref())?;
        // STS and the container endpoint may sit behind the same internal CA as S3.
        let credentials_http = crate::tls::build_client(
            tls.apply(reqwest::Client::builder())
                .connect_timeout(std::time::Duration::from_secs(2))
                .redirect(reqwest::redirect::Policy::none()),
            "credentials",
        )?;
        let credentials = CredentialsHandle::from_chain(
            &config.credential_chain,
            &config.region,
            credentials_http,
            Arc::clone(&metrics),
            config.credentials_poll_interval,
        );
        let s3 = S3Client::with_credentials(
            config.endpoint.clone(),
            credentials.clone(),
            ClientSettings {
                connect_timeout: config.s3_connect_timeout,
                timeout: config.s3_timeout,
                attempts: config.s3_attempts,
                max_concurrency: config.storage.s3_max_concurrency,
                ..ClientSettings::default()
            },
            Arc::clone(&metrics),
            &tls,
        )?;
        Ok(Arc::new_cyclic(|me| App {
            me: me.clone(),
            manifests: ManifestStore::new(config.buckets.len()),
            registry: Registry::default(),
            heads: HeadCoalescer::default(),
            confirmed: KeyCache::new(CACHED_FILES),
            redirect_urls: KeyCache::new(CACHED_FILES),
            misses: MissCache::new(config.storage.miss_ttl, config.storage.miss_cache_entries),
            sync: SyncState::default(),
            request_ids: crate::http::request_id::RequestIds::new(),
            events: crate::coordinator::events::EventsState::new(config.buckets.len()),
            rate_limiter: config
                .rate_limit
                .map(|(rate, burst)| RateLimiter::new(rate, burst)),
            // Validated by the configuration; the fallback is the default's value.
            redirect_cache_control: hyper::header::HeaderValue::from_str(
                &config.redirect_cache_control,
            )
            .unwrap_or(hyper::header::HeaderValue::from_static("no-store")),
            urls: DownloadUrls::with_credentials(
                config.external_endpoint.clone(),
                credentials.clone(),
            ),
            redirect_max_age: max_age(&config.redirect_cache_control),
            credentials,
            s3,
            metrics,
            config,
            ready: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            storage_failing: AtomicBool::new(false),
            health: Mutex::new(StorageHealth::default()),
            started: Instant::now(),
        }))
    }

    /// A handle for tasks this app starts; upgrading fails once the app is gone.
    pub fn weak(&self) -> Weak<App> {
        self.me.clone()
    }

    /// Ready once the registry is rebuilt, and until shutdown begins, while there are
    /// credentials to sign with (`/status` says why not).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
            && !self.shutting_down.load(Ordering::Acquire)
            && self.credentials.usable()
    }

    /// `Cache-Control` of a redirect: the configured one, with its `max-age` cut to the
    /// presigned URL's lifetime so no cache keeps a URL past its expiry.
    pub fn redirect_cache_control_for(&self, presigned: bool) -> hyper::header::HeaderValue {
        let configured = &self.redirect_cache_control;
        let (true, Some(age)) = (presigned, self.redirect_max_age) else {
            return configured.clone();
        };
        let now = time::OffsetDateTime::now_utc();
        let lifetime = self
            .urls
            .lifetime(self.config.presign_expires, now)
            .unwrap_or(0);
        if age <= lifetime {
            return configured.clone();
        }
        let capped = set_max_age(configured.to_str().unwrap_or("no-store"), lifetime);
        hyper::header::HeaderValue::from_str(&capped).unwrap_or_else(|_| configured.clone())
    }

    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Readiness answers 503 from now on (SIGTERM), so balancers stop sending traffic.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Milliseconds since start on a monotonic clock (verification window).
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A copy of what `/status` reports about S3.
    pub fn health(&self) -> StorageHealth {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn record_storage_error(&self, error: Option<String>) {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .last_error = error;
    }

    /// A request met a storage failure: `/status.storage_error` says what, and one
    /// warning is logged per episode (not one per request while S3 is down).
    pub fn note_storage_failure(&self, error: &crate::s3::S3Error) {
        if !error.is_storage_failure() {
            return;
        }
        // Shedding is a consequence: keep the cause that opened the episode on show.
        let consequence = matches!(error, crate::s3::S3Error::Overloaded { .. });
        if !consequence || self.health().last_error.is_none() {
            self.record_storage_error(Some(error.to_string()));
        }
        if !self.storage_failing.swap(true, Ordering::AcqRel) {
            crate::warn!(
                "S3 storage unavailable: {error}; known routes are answered from the registry, nothing is forgotten until S3 answers again"
            );
        }
    }

    /// A request got a real answer from S3: ends a failure episode if one was under way.
    pub fn note_storage_ok(&self) {
        if self.storage_failing.load(Ordering::Relaxed)
            && self.storage_failing.swap(false, Ordering::AcqRel)
        {
            self.record_storage_error(None);
            crate::info!("S3 answers again");
        }
    }

    pub(crate) fn bucket_names(&self) -> Vec<&str> {
        self.config
            .buckets
            .iter()
            .map(|b| b.name.as_str())
            .collect()
    }
}

/// The `max-age` directive of a `Cache-Control` value.
fn max_age(value: &str) -> Option<u64> {
    value.split(',').find_map(|d| {
        let (name, v) = d.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| v.trim().trim_matches('"').parse().ok())?
    })
}

/// `value` with its `max-age` (and `s-maxage`) set to `secs`.
fn set_max_age(value: &str, secs: u64) -> String {
    value
        .split(',')
        .map(|d| {
            let name = d.split('=').next().unwrap_or_default().trim();
            if name.eq_ignore_ascii_case("max-age") || name.eq_ignore_ascii_case("s-maxage") {
                format!("{}={secs}", name.to_ascii_lowercase())
            } else {
                d.trim().to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_and_capped() {
        assert_eq!(max_age("no-store"), None);
        assert_eq!(max_age("private, max-age=600"), Some(600));
        assert_eq!(
            set_max_age("private, max-age=600, s-maxage=900", 42),
            "private, max-age=42, s-maxage=42"
        );
    }
}
