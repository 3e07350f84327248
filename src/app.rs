//! The service's shared state: configuration, registry, S3 client, manifests, health.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use crate::config::Config;
use crate::http::access::RateLimiter;
use crate::keycache::KeyCache;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::s3::S3Client;
use crate::s3::client::ClientSettings;
use crate::s3::urls::DownloadUrls;
use crate::storage::coalesce::HeadCoalescer;
use crate::storage::misses::MissCache;

/// Files whose confirmation time and redirect URLs are kept (the most recently asked).
const CACHED_FILES: usize = 65_536;
use crate::storage::persist::ManifestStore;
use crate::storage::sync::SyncState;

/// What `/status` reports about S3 and the last sync.
#[derive(Clone, Debug, Default)]
pub struct StorageHealth {
    /// The last S3 error met by start-up or a sync (never a credential).
    pub last_error: Option<String>,
}

pub struct App {
    pub config: Config,
    pub registry: Registry,
    pub s3: S3Client,
    pub urls: DownloadUrls,
    pub metrics: Arc<Metrics>,
    pub manifests: ManifestStore,
    pub heads: HeadCoalescer,
    /// Keys S3 recently proved missing, per bucket.
    pub misses: MissCache,
    /// When S3 last confirmed a file (ms on [`App::now_ms`]'s clock, plus one), for the
    /// files people ask for; read by `PARPARCHIK_VERIFY_TTL`.
    pub confirmed: KeyCache<u64>,
    /// Redirect URLs built for the files people ask for.
    pub redirect_urls: KeyCache<crate::http::handlers::UrlSlot>,
    pub sync: SyncState,
    pub rate_limiter: Option<RateLimiter>,
    /// `Cache-Control` of redirects, parsed once.
    pub redirect_cache_control: hyper::header::HeaderValue,
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

impl App {
    pub fn new(config: Config) -> Result<Arc<App>, String> {
        let metrics = Arc::new(Metrics::default());
        let s3 = S3Client::new(
            config.endpoint.clone(),
            &config.region,
            config.credentials.clone(),
            ClientSettings {
                connect_timeout: config.s3_connect_timeout,
                timeout: config.s3_timeout,
                attempts: config.s3_attempts,
                max_concurrency: config.storage.s3_max_concurrency,
                ..ClientSettings::default()
            },
            Arc::clone(&metrics),
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
            rate_limiter: config
                .rate_limit
                .map(|(rate, burst)| RateLimiter::new(rate, burst)),
            // Validated by the configuration; the fallback is the default's value.
            redirect_cache_control: hyper::header::HeaderValue::from_str(
                &config.redirect_cache_control,
            )
            .unwrap_or(hyper::header::HeaderValue::from_static("no-store")),
            urls: DownloadUrls::new(
                config.external_endpoint.clone(),
                &config.region,
                config.credentials.clone(),
            ),
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

    /// Ready once the registry is rebuilt, and until shutdown begins.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.shutting_down.load(Ordering::Acquire)
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Milliseconds since start on a monotonic clock (verification window).
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn health(&self) -> StorageHealth {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn record_storage_error(&self, error: Option<String>) {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
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

    pub fn bucket_names(&self) -> Vec<&str> {
        self.config
            .buckets
            .iter()
            .map(|b| b.name.as_str())
            .collect()
    }
}
