//! Configuration from environment variables (the contract's names and defaults).
//!
//! Sans-IO: [`Config::from_lookup`] takes a lookup function, so tests pass a map and
//! `main` passes `std::env::var`.

use std::fmt;
use std::time::Duration;

mod bucket_id;
pub mod events;
mod timings;
pub mod variables;

pub use bucket_id::BucketId;
use timings::Timings;

use crate::s3::endpoint::Endpoint;

/// Where a bucket's manifest is kept when `PARPARCHIK_REGISTRY_MANIFEST_KEY` and the
/// bucket's own entry in `PARPARCHIK_BUCKETS` name no other key.
pub const DEFAULT_MANIFEST_KEY: &str = ".parparchik/files.json";

/// One bucket the service serves from. Position in [`Config::buckets`] is its priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketConfig {
    /// The S3 bucket name, as in the routes (`/<name>/<key>`).
    pub name: String,
    /// The object holding this bucket's manifest (its journal records sit beside it).
    pub manifest_key: String,
    /// Public buckets are redirected to plain URLs, private ones to presigned URLs.
    pub public: bool,
}

impl BucketConfig {
    /// `public` or `private`, as `/list` and `/status` show it.
    pub fn bucket_type(&self) -> &'static str {
        if self.public { "public" } else { "private" }
    }

    /// Whether `key` is one of the service's own objects in this bucket (the manifest
    /// or one of its journal records), which is never a file: no route, no
    /// registration, not in `/list` or metrics.
    pub fn owns(&self, key: &str) -> bool {
        key == self.manifest_key
            || key
                .strip_prefix(self.manifest_key.as_str())
                .is_some_and(|rest| rest.starts_with(crate::registry::journal::SUFFIX))
    }
}

/// The whole configuration, read once from the environment ([`Config::from_env`]).
#[derive(Clone, Debug)]
pub struct Config {
    /// In priority order: the first bucket holding a key wins.
    pub buckets: Vec<BucketConfig>,
    /// Address to listen on (`PARPARCHIK_HOST`, default `0.0.0.0`).
    pub host: String,
    /// Port to listen on (`PARPARCHIK_PORT`).
    pub port: u16,
    /// What the service talks to.
    pub endpoint: Endpoint,
    /// What redirect URLs name (what clients can reach).
    pub external_endpoint: Endpoint,
    /// The SigV4 region (`AWS_REGION`, default `us-east-1`).
    pub region: String,
    pub(crate) s3_connect_timeout: Duration,
    /// Bound on one S3 attempt (there are at most `PARPARCHIK_S3_ATTEMPTS`).
    pub s3_timeout: Duration,
    pub(crate) s3_attempts: u32,
    /// 0 = confirm with S3 on every download (the contract's behaviour).
    pub verify_ttl: Duration,
    /// `None` = periodic re-sync off.
    pub sync_interval: Option<Duration>,
    /// How long in-flight requests may run after SIGTERM.
    pub drain_timeout: Duration,
    /// A client that has not sent its whole request head by then is dropped.
    pub header_timeout: Duration,
    pub(crate) presign_expires: u64,
    /// `Cache-Control` of redirect responses.
    pub redirect_cache_control: String,
    /// When not empty, every endpoint but the probes requires one of these keys.
    pub api_keys: ApiKeys,
    /// Requests per second and burst per client address; `None` = no limit.
    pub rate_limit: Option<(f64, u32)>,
    /// A write to a client that makes no progress for this long closes the connection.
    pub write_timeout: Duration,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Peers whose `X-Forwarded-For` names the client (for the rate limit).
    pub trusted_proxies: crate::http::client_addr::TrustedProxies,
    /// How long after SIGTERM the listener keeps serving with readiness 503.
    pub shutdown_delay: Duration,
    /// Where credentials come from (the AWS tools' variables); see the `credentials` module.
    pub credential_chain: crate::credentials::ChainSettings,
    /// How often `_FILE` credentials and the shared files are checked for changes.
    pub credentials_poll_interval: Duration,
    /// `PARPARCHIK_S3_CA_FILE`: a PEM bundle trusted besides the bundled and system roots.
    pub s3_ca_file: Option<std::path::PathBuf>,
    /// How the layer between the registry and S3 protects itself and the routes.
    pub storage: StorageSettings,
    /// Log format, level and request lines.
    pub log: crate::log::Settings,
    /// `PARPARCHIK_BROWSE`: the HTML listing at `/browse/`.
    pub browse: bool,
    /// Bucket notifications (`POST /events`).
    pub events: events::EventsSettings,
}

/// Limits of the layer between the registry and S3 (see README, "Failure behaviour").
#[derive(Clone, Debug, PartialEq)]
pub struct StorageSettings {
    /// A manifest object larger than this is ignored unread (the bucket is then rebuilt
    /// from its listing).
    pub manifest_max_bytes: u64,
    /// A known route waits this long for S3 to confirm it, then answers from the
    /// registry while the check goes on in the background.
    pub verify_deadline: Duration,
    /// S3 calls in flight at most.
    pub s3_max_concurrency: usize,
    /// A sync may remove at most this share of a bucket's entries (or
    /// `PARPARCHIK_MAX_REMOVAL_FLOOR` entries, whichever is more) unless a second complete
    /// listing of that bucket confirms it.
    pub removal_share: f64,
    pub(crate) removal_floor: usize,
    /// How long a key S3 proved missing is answered 404 without asking again.
    pub miss_ttl: Duration,
    /// Missing keys remembered at most.
    pub miss_cache_entries: usize,
    /// Ranges of one bucket listed at once.
    pub list_concurrency: usize,
    /// How far the manifest may lag behind its journal (see `coordinator::persist`); zero
    /// writes the whole manifest with every change and keeps no journal.
    pub compact_interval: Duration,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            manifest_max_bytes: 512 * 1024 * 1024,
            verify_deadline: Duration::from_secs(1),
            s3_max_concurrency: 256,
            removal_share: 0.10,
            removal_floor: 5,
            miss_ttl: Duration::from_secs(5),
            miss_cache_entries: 100_000,
            list_concurrency: 8,
            compact_interval: Duration::from_secs(60),
        }
    }
}

fn parse_count(
    variable: &'static str,
    value: Option<String>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                err(
                    variable,
                    format!(
                        "{v:?} is not a whole number in {}..={}",
                        range.start(),
                        range.end()
                    ),
                )
            }),
    }
}

impl StorageSettings {
    fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<StorageSettings, ConfigError> {
        let d = StorageSettings::default();
        let share = match get("PARPARCHIK_MAX_REMOVAL_SHARE") {
            None => d.removal_share,
            Some(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| (0.0..=1.0).contains(s))
                .ok_or_else(|| {
                    err(
                        "PARPARCHIK_MAX_REMOVAL_SHARE",
                        format!("{v:?} is not a share between 0 and 1"),
                    )
                })?,
        };
        let count = |var: &'static str, default: usize, range| {
            parse_count(var, get(var), default as u64, range).map(|n| n as usize)
        };
        Ok(StorageSettings {
            manifest_max_bytes: parse_count(
                "PARPARCHIK_MANIFEST_MAX_BYTES",
                get("PARPARCHIK_MANIFEST_MAX_BYTES"),
                d.manifest_max_bytes,
                1024..=(64 << 30),
            )?,
            verify_deadline: parse_seconds(
                "PARPARCHIK_VERIFY_DEADLINE",
                get("PARPARCHIK_VERIFY_DEADLINE"),
                d.verify_deadline,
            )?,
            s3_max_concurrency: count(
                "PARPARCHIK_S3_MAX_CONCURRENCY",
                d.s3_max_concurrency,
                1..=65_536,
            )?,
            removal_share: share,
            removal_floor: count(
                "PARPARCHIK_MAX_REMOVAL_FLOOR",
                d.removal_floor,
                0..=1_000_000_000,
            )?,
            miss_ttl: parse_seconds(
                "PARPARCHIK_MISS_TTL",
                get("PARPARCHIK_MISS_TTL"),
                d.miss_ttl,
            )?,
            miss_cache_entries: count(
                "PARPARCHIK_MISS_CACHE_ENTRIES",
                d.miss_cache_entries,
                0..=100_000_000,
            )?,
            list_concurrency: count("PARPARCHIK_LIST_CONCURRENCY", d.list_concurrency, 1..=64)?,
            compact_interval: parse_seconds(
                "PARPARCHIK_MANIFEST_COMPACT_INTERVAL",
                get("PARPARCHIK_MANIFEST_COMPACT_INTERVAL"),
                d.compact_interval,
            )?,
        })
    }
}

/// API keys; `Debug` shows how many, never the keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKeys(pub Vec<String>);

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys(<{} redacted>)", self.0.len())
    }
}

/// A configuration problem: which variable, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub(crate) variable: &'static str,
    pub(crate) problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

fn err(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

/// Two buckets for unit tests: `pub` (public) and `priv`, both with manifest key `m`.
#[cfg(test)]
pub(crate) fn test_buckets() -> Vec<BucketConfig> {
    ["pub", "priv"]
        .iter()
        .map(|name| BucketConfig {
            name: (*name).into(),
            manifest_key: "m".into(),
            public: *name == "pub",
        })
        .collect()
}

/// Parses `name:manifest_key:public,...`.
pub fn parse_buckets(spec: &str) -> Result<Vec<BucketConfig>, ConfigError> {
    const VAR: &str = "PARPARCHIK_BUCKETS";
    let mut buckets = Vec::new();
    for item in spec.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let mut fields = item.splitn(3, ':').map(str::trim);
        let name = fields.next().unwrap_or_default();
        let manifest = fields.next().unwrap_or_default();
        let public = fields.next().unwrap_or_default() == "public";
        if name.is_empty() {
            return Err(err(VAR, format!("entry {item:?} has an empty bucket name")));
        }
        buckets.push(BucketConfig {
            name: name.to_owned(),
            manifest_key: if manifest.is_empty() {
                DEFAULT_MANIFEST_KEY.to_owned()
            } else {
                manifest.to_owned()
            },
            public,
        });
    }
    if buckets.is_empty() {
        return Err(err(VAR, "names no bucket"));
    }
    Ok(buckets)
}

fn check_bucket_name(variable: &'static str, name: &str) -> Result<(), ConfigError> {
    // Route segments and URL paths hold bucket names as they are, so refuse what could
    // not be an S3 bucket name anyway rather than build broken URLs.
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(err(
            variable,
            format!("{name:?} is not a valid bucket name"),
        ))
    }
}

/// `on`/`off` (also `true`/`false`, `yes`/`no`, `1`/`0`).
fn parse_switch(
    variable: &'static str,
    value: Option<String>,
    default: bool,
) -> Result<bool, ConfigError> {
    let Some(v) = value else {
        return Ok(default);
    };
    let t = v.trim().to_ascii_lowercase();
    match t.as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(err(variable, format!("{v:?} is not on or off"))),
    }
}

fn parse_log(get: &dyn Fn(&str) -> Option<String>) -> Result<crate::log::Settings, ConfigError> {
    use crate::log::{Format, Level};
    let d = crate::log::Settings::default();
    Ok(crate::log::Settings {
        format: match get("PARPARCHIK_LOG_FORMAT") {
            None => d.format,
            Some(v) => Format::parse(&v).ok_or_else(|| {
                err(
                    "PARPARCHIK_LOG_FORMAT",
                    format!("{v:?} is not text or json"),
                )
            })?,
        },
        level: match get("PARPARCHIK_LOG_LEVEL") {
            None => d.level,
            Some(v) => Level::parse(&v).ok_or_else(|| {
                err(
                    "PARPARCHIK_LOG_LEVEL",
                    format!("{v:?} is not error, warn, info or debug"),
                )
            })?,
        },
        access: parse_switch(
            "PARPARCHIK_ACCESS_LOG",
            get("PARPARCHIK_ACCESS_LOG"),
            d.access,
        )?,
    })
}

fn parse_seconds(
    variable: &'static str,
    value: Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| err(variable, format!("{v:?} is not a number of seconds"))),
    }
}

/// A whole number in `range`, refused as `"{v:?} is not {range}{unit}"` (the raw value, as
/// these variables have always been quoted; [`parse_count`] quotes it trimmed).
fn parse_whole(
    variable: &'static str,
    value: Option<String>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    unit: &str,
) -> Result<u64, ConfigError> {
    let Some(v) = value else {
        return Ok(default);
    };
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            let (lo, hi) = (range.start(), range.end());
            err(variable, format!("{v:?} is not {lo}..={hi}{unit}"))
        })
}

/// `PARPARCHIK_BUCKETS`, or the two-bucket pair; at most 64, each named once.
fn buckets(get: &dyn Fn(&str) -> Option<String>) -> Result<Vec<BucketConfig>, ConfigError> {
    let buckets = match get("PARPARCHIK_BUCKETS") {
        Some(spec) => {
            let buckets = parse_buckets(&spec)?;
            for b in &buckets {
                check_bucket_name("PARPARCHIK_BUCKETS", &b.name)?;
            }
            buckets
        }
        None => bucket_pair(get)?,
    };
    if buckets.len() > 64 {
        return Err(err(
            "PARPARCHIK_BUCKETS",
            "at most 64 buckets are supported",
        ));
    }
    for (i, b) in buckets.iter().enumerate() {
        if buckets[..i].iter().any(|earlier| earlier.name == b.name) {
            let var = if get("PARPARCHIK_BUCKETS").is_some() {
                "PARPARCHIK_BUCKETS"
            } else {
                "PARPARCHIK_PRIVATE_BUCKET"
            };
            return Err(err(var, format!("bucket {:?} is configured twice", b.name)));
        }
    }
    Ok(buckets)
}

/// The two-bucket mode: `PARPARCHIK_PUBLIC_BUCKET` and `PARPARCHIK_PRIVATE_BUCKET`.
fn bucket_pair(get: &dyn Fn(&str) -> Option<String>) -> Result<Vec<BucketConfig>, ConfigError> {
    let public = get("PARPARCHIK_PUBLIC_BUCKET");
    let private = get("PARPARCHIK_PRIVATE_BUCKET");
    let manifest_key =
        get("PARPARCHIK_REGISTRY_MANIFEST_KEY").unwrap_or_else(|| DEFAULT_MANIFEST_KEY.to_owned());
    match (public, private) {
        (Some(public), Some(private)) => {
            check_bucket_name("PARPARCHIK_PUBLIC_BUCKET", public.trim())?;
            check_bucket_name("PARPARCHIK_PRIVATE_BUCKET", private.trim())?;
            Ok(vec![
                BucketConfig {
                    name: public.trim().to_owned(),
                    manifest_key: manifest_key.clone(),
                    public: true,
                },
                BucketConfig {
                    name: private.trim().to_owned(),
                    manifest_key,
                    public: false,
                },
            ])
        }
        (Some(_), None) => Err(err(
            "PARPARCHIK_PRIVATE_BUCKET",
            "is not set but PARPARCHIK_PUBLIC_BUCKET is; set both, or PARPARCHIK_BUCKETS",
        )),
        (None, Some(_)) => Err(err(
            "PARPARCHIK_PUBLIC_BUCKET",
            "is not set but PARPARCHIK_PRIVATE_BUCKET is; set both, or PARPARCHIK_BUCKETS",
        )),
        (None, None) => Err(err(
            "PARPARCHIK_BUCKETS",
            "no buckets configured: set PARPARCHIK_BUCKETS, or PARPARCHIK_PUBLIC_BUCKET and PARPARCHIK_PRIVATE_BUCKET",
        )),
    }
}

/// `PARPARCHIK_HOST` and `PARPARCHIK_PORT`.
fn listen_address(get: &dyn Fn(&str) -> Option<String>) -> Result<(String, u16), ConfigError> {
    let host = get("PARPARCHIK_HOST").unwrap_or_else(|| "0.0.0.0".to_owned());
    let port = match get("PARPARCHIK_PORT") {
        None => 8080,
        Some(p) => p
            .trim()
            .parse::<u16>()
            .map_err(|_| err("PARPARCHIK_PORT", format!("{p:?} is not a port number")))?,
    };
    Ok((host, port))
}

/// Which S3 the service talks to, as whom, and how many attempts a call gets.
struct S3Access {
    region: String,
    endpoint: Endpoint,
    external_endpoint: Endpoint,
    attempts: u32,
}

impl S3Access {
    fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<S3Access, ConfigError> {
        let region = get("AWS_REGION").unwrap_or_else(|| "us-east-1".to_owned());
        let endpoint = match get("S3_ENDPOINT") {
            None => Endpoint::aws(&region),
            Some(e) => Endpoint::parse(&e).map_err(|p| err("S3_ENDPOINT", p))?,
        };
        let external_endpoint = match get("S3_EXTERNAL_ENDPOINT") {
            None => endpoint.clone(),
            Some(e) => Endpoint::parse(&e).map_err(|p| err("S3_EXTERNAL_ENDPOINT", p))?,
        };
        let attempts = parse_whole(
            "PARPARCHIK_S3_ATTEMPTS",
            get("PARPARCHIK_S3_ATTEMPTS"),
            3,
            1..=10,
            "",
        )?;
        Ok(S3Access {
            region,
            endpoint,
            external_endpoint,
            // In 1..=10.
            attempts: attempts as u32,
        })
    }
}

/// `PARPARCHIK_API_KEYS`: comma-separated, blanks ignored.
fn api_keys(get: &dyn Fn(&str) -> Option<String>) -> ApiKeys {
    ApiKeys(
        get("PARPARCHIK_API_KEYS")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    )
}

/// Requests per second and burst per client; `None` when no rate is set.
fn rate_limit(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<(f64, u32)>, ConfigError> {
    let Some(v) = get("PARPARCHIK_RATE_LIMIT_PER_SECOND") else {
        return Ok(None);
    };
    let rate = v
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r > 0.0)
        .ok_or_else(|| {
            err(
                "PARPARCHIK_RATE_LIMIT_PER_SECOND",
                format!("{v:?} is not a positive number"),
            )
        })?;
    let burst = match get("PARPARCHIK_RATE_LIMIT_BURST") {
        // Default burst: one second's worth, at least one request.
        None => rate.ceil().max(1.0) as u32,
        Some(b) => b
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|b| *b > 0)
            .ok_or_else(|| {
                err(
                    "PARPARCHIK_RATE_LIMIT_BURST",
                    format!("{b:?} is not a positive whole number"),
                )
            })?,
    };
    Ok(Some((rate, burst)))
}

/// The credential chain's variables, checked here so that a half-configured source
/// stops the process at start like any other bad variable.
fn credential_chain(
    get: &dyn Fn(&str) -> Option<String>,
    region: &str,
) -> Result<crate::credentials::ChainSettings, ConfigError> {
    crate::credentials::ChainSettings::from_lookup(
        get,
        region,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
    .map_err(|e| match e {
        crate::credentials::CredentialsError::Config { variable, problem } => {
            err(variable, problem)
        }
        other => err("AWS_ACCESS_KEY_ID", other.to_string()),
    })
}

/// `PARPARCHIK_REDIRECT_CACHE_CONTROL`: any printable ASCII, sent as it is.
fn redirect_cache_control(get: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    match get("PARPARCHIK_REDIRECT_CACHE_CONTROL") {
        None => Ok("no-store".to_owned()),
        Some(v) if v.bytes().all(|b| (0x20..0x7f).contains(&b)) => Ok(v.trim().to_owned()),
        Some(v) => Err(err(
            "PARPARCHIK_REDIRECT_CACHE_CONTROL",
            format!("{v:?} is not a valid header value"),
        )),
    }
}

fn trusted_proxies(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<crate::http::client_addr::TrustedProxies, ConfigError> {
    match get("PARPARCHIK_TRUSTED_PROXIES") {
        None => Ok(Default::default()),
        Some(v) => crate::http::client_addr::TrustedProxies::parse(&v)
            .map_err(|p| err("PARPARCHIK_TRUSTED_PROXIES", p)),
    }
}

impl Config {
    /// Reads the process environment; see [`Config::from_lookup`].
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Each concern in turn; the first bad variable met is the error.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| {
            // Every name read here is in the documented table (and so in `--help` and
            // the deployment checks).
            debug_assert!(
                variables::find(name).is_some(),
                "{name} is read but missing from config::variables::VARIABLES"
            );
            get(name).filter(|v| !v.trim().is_empty())
        };
        let get: &dyn Fn(&str) -> Option<String> = &get;
        let buckets = buckets(get)?;
        let (host, port) = listen_address(get)?;
        let s3 = S3Access::from_lookup(get)?;
        let timings = Timings::from_lookup(get)?;
        let rate_limit = rate_limit(get)?;
        let storage = StorageSettings::from_lookup(get)?;
        let events = events::EventsSettings::from_lookup(get)?;
        let credential_chain = credential_chain(get, &s3.region)?;
        let log = parse_log(get)?;
        let browse = parse_switch("PARPARCHIK_BROWSE", get("PARPARCHIK_BROWSE"), true)?;
        Ok(Config {
            buckets,
            host,
            port,
            endpoint: s3.endpoint,
            external_endpoint: s3.external_endpoint,
            region: s3.region,
            s3_attempts: s3.attempts,
            s3_connect_timeout: timings.s3_connect_timeout,
            s3_timeout: timings.s3_timeout,
            verify_ttl: timings.verify_ttl,
            // 0 turns the periodic re-sync off.
            sync_interval: (!timings.sync_interval.is_zero()).then_some(timings.sync_interval),
            drain_timeout: timings.drain_timeout,
            header_timeout: timings.header_timeout,
            write_timeout: timings.write_timeout,
            shutdown_delay: timings.shutdown_delay,
            credentials_poll_interval: timings.credentials_poll_interval,
            presign_expires: parse_whole(
                "PARPARCHIK_PRESIGN_EXPIRES",
                get("PARPARCHIK_PRESIGN_EXPIRES"),
                3600,
                1..=u64::from(crate::sigv4::MAX_PRESIGN_EXPIRES),
                " seconds",
            )?,
            redirect_cache_control: redirect_cache_control(get)?,
            api_keys: api_keys(get),
            rate_limit,
            // In 1..=1000000.
            max_connections: parse_whole(
                "PARPARCHIK_MAX_CONNECTIONS",
                get("PARPARCHIK_MAX_CONNECTIONS"),
                10_000,
                1..=1_000_000,
                "",
            )? as usize,
            trusted_proxies: trusted_proxies(get)?,
            credential_chain,
            s3_ca_file: get("PARPARCHIK_S3_CA_FILE").map(|p| std::path::PathBuf::from(p.trim())),
            storage,
            log,
            browse,
            events,
        })
    }

    /// The first public and the first private bucket, for `/status`.
    pub fn first_bucket(&self, public: bool) -> &str {
        self.buckets
            .iter()
            .find(|b| b.public == public)
            .map(|b| b.name.as_str())
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn two_bucket_mode_with_defaults() {
        let c = load(&[
            ("PARPARCHIK_PUBLIC_BUCKET", "pub"),
            ("PARPARCHIK_PRIVATE_BUCKET", "priv"),
        ])
        .unwrap();
        assert_eq!(c.buckets.len(), 2);
        assert!(c.buckets[0].public && !c.buckets[1].public);
        assert_eq!(c.buckets[0].manifest_key, DEFAULT_MANIFEST_KEY);
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 8080));
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.verify_ttl, Duration::ZERO);
        assert_eq!(c.sync_interval, Some(Duration::from_secs(300)));
    }

    #[test]
    fn multi_bucket_mode_wins_and_trims() {
        let c = load(&[
            ("PARPARCHIK_BUCKETS", " a : m.json : public , b::private,c"),
            ("PARPARCHIK_PUBLIC_BUCKET", "ignored"),
        ])
        .unwrap();
        let names: Vec<_> = c.buckets.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(c.buckets[0].manifest_key, "m.json");
        assert!(c.buckets[0].public);
        assert_eq!(c.buckets[1].manifest_key, DEFAULT_MANIFEST_KEY);
        assert!(!c.buckets[1].public && !c.buckets[2].public);
    }

    #[test]
    fn bad_configurations_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "PARPARCHIK_BUCKETS"),
            (
                &[("PARPARCHIK_PUBLIC_BUCKET", "a")],
                "PARPARCHIK_PRIVATE_BUCKET",
            ),
            (
                &[("PARPARCHIK_PRIVATE_BUCKET", "a")],
                "PARPARCHIK_PUBLIC_BUCKET",
            ),
            (&[("PARPARCHIK_BUCKETS", "a,b,a")], "PARPARCHIK_BUCKETS"),
            (
                &[("PARPARCHIK_BUCKETS", "a"), ("PARPARCHIK_PORT", "80x")],
                "PARPARCHIK_PORT",
            ),
            (
                &[("PARPARCHIK_BUCKETS", "a"), ("PARPARCHIK_PORT", "70000")],
                "PARPARCHIK_PORT",
            ),
            (
                &[("PARPARCHIK_BUCKETS", "a"), ("S3_ENDPOINT", "ftp://x")],
                "S3_ENDPOINT",
            ),
            (
                &[
                    ("PARPARCHIK_BUCKETS", "a"),
                    ("S3_EXTERNAL_ENDPOINT", "http://"),
                ],
                "S3_EXTERNAL_ENDPOINT",
            ),
            (
                &[("PARPARCHIK_BUCKETS", "a"), ("PARPARCHIK_VERIFY_TTL", "-1")],
                "PARPARCHIK_VERIFY_TTL",
            ),
            (&[("PARPARCHIK_BUCKETS", "a b")], "PARPARCHIK_BUCKETS"),
            (
                &[
                    ("PARPARCHIK_PUBLIC_BUCKET", "x"),
                    ("PARPARCHIK_PRIVATE_BUCKET", "x"),
                ],
                "PARPARCHIK_PRIVATE_BUCKET",
            ),
        ];
        for (vars, variable) in cases {
            let e = load(vars).unwrap_err();
            assert_eq!(&e.variable, variable, "{vars:?} gave {e}");
        }
    }

    fn refused(var: &str, value: &str) {
        let e = load(&[("PARPARCHIK_BUCKETS", "a"), (var, value)]).unwrap_err();
        assert_eq!(e.variable, var, "{value:?} gave {e}");
    }

    #[test]
    fn connection_limits() {
        let c = load(&[("PARPARCHIK_BUCKETS", "a")]).unwrap();
        assert_eq!(c.write_timeout, Duration::from_secs(30));
        assert_eq!(c.max_connections, 10_000);
        let c = load(&[
            ("PARPARCHIK_BUCKETS", "a"),
            ("PARPARCHIK_WRITE_TIMEOUT", "2.5"),
            ("PARPARCHIK_MAX_CONNECTIONS", "100"),
        ])
        .unwrap();
        assert_eq!(c.write_timeout, Duration::from_millis(2500));
        assert_eq!(c.max_connections, 100);
        refused("PARPARCHIK_WRITE_TIMEOUT", "0");
        refused("PARPARCHIK_WRITE_TIMEOUT", "x");
        refused("PARPARCHIK_MAX_CONNECTIONS", "0");
        refused("PARPARCHIK_MAX_CONNECTIONS", "-5");
    }

    #[test]
    fn logs_and_browse() {
        use crate::log::{Format, Level, Settings};
        let c = load(&[("PARPARCHIK_BUCKETS", "a")]).unwrap();
        assert_eq!(c.log, Settings::default());
        assert_eq!(
            (c.log.format, c.log.level, c.log.access),
            (Format::Text, Level::Info, true)
        );
        assert!(c.browse);
        let c = load(&[
            ("PARPARCHIK_BUCKETS", "a"),
            ("PARPARCHIK_LOG_FORMAT", "json"),
            ("PARPARCHIK_LOG_LEVEL", "Debug"),
            ("PARPARCHIK_ACCESS_LOG", "off"),
            ("PARPARCHIK_BROWSE", "false"),
        ])
        .unwrap();
        assert_eq!(
            c.log,
            Settings {
                format: Format::Json,
                level: Level::Debug,
                access: false
            }
        );
        assert!(!c.browse);
        refused("PARPARCHIK_LOG_FORMAT", "xml");
        refused("PARPARCHIK_LOG_LEVEL", "trace");
        refused("PARPARCHIK_ACCESS_LOG", "sometimes");
        refused("PARPARCHIK_BROWSE", "maybe");
    }

    #[test]
    fn shutdown_delay() {
        let c = load(&[("PARPARCHIK_BUCKETS", "a")]).unwrap();
        assert_eq!(c.shutdown_delay, Duration::from_secs(5));
        let c = load(&[
            ("PARPARCHIK_BUCKETS", "a"),
            ("PARPARCHIK_SHUTDOWN_DELAY", "0"),
        ])
        .unwrap();
        assert_eq!(c.shutdown_delay, Duration::ZERO);
        refused("PARPARCHIK_SHUTDOWN_DELAY", "soon");
    }

    #[test]
    fn trusted_proxies() {
        let c = load(&[("PARPARCHIK_BUCKETS", "a")]).unwrap();
        assert!(c.trusted_proxies.0.is_empty());
        let c = load(&[
            ("PARPARCHIK_BUCKETS", "a"),
            ("PARPARCHIK_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
        ])
        .unwrap();
        assert_eq!(c.trusted_proxies.0.len(), 2);
        refused("PARPARCHIK_TRUSTED_PROXIES", "10.0.0.0/40");
    }

    #[test]
    fn debug_output_has_no_secret() {
        let c = load(&[
            ("PARPARCHIK_BUCKETS", "a"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t-value"),
            ("AWS_SESSION_TOKEN", "t0ken-value"),
            ("PARPARCHIK_API_KEYS", "api-k3y-1, api-k3y-2"),
        ])
        .unwrap();
        assert_eq!(c.api_keys.0, ["api-k3y-1", "api-k3y-2"]);
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t-value") && !shown.contains("t0ken-value"));
        assert!(!shown.contains("api-k3y"));
    }

    #[test]
    fn every_documented_variable_is_read_and_no_other() {
        use std::cell::RefCell;
        use std::collections::BTreeSet;
        let asked = RefCell::new(BTreeSet::new());
        let two = [
            ("PARPARCHIK_PUBLIC_BUCKET", "pub"),
            ("PARPARCHIK_PRIVATE_BUCKET", "priv"),
            ("PARPARCHIK_RATE_LIMIT_PER_SECOND", "10"),
        ];
        // The chain reads a source's other variables only once the source is configured.
        let multi = [
            ("PARPARCHIK_BUCKETS", "a,b"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r"),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1:9/creds",
            ),
        ];
        for env in [&two[..], &multi[..]] {
            let env: HashMap<&str, &str> = env.iter().copied().collect();
            Config::from_lookup(|name| {
                asked.borrow_mut().insert(name.to_owned());
                env.get(name).map(|v| (*v).to_owned())
            })
            .expect("valid");
        }
        let asked = asked.into_inner();
        let documented: BTreeSet<String> = variables::VARIABLES
            .iter()
            .filter(|v| v.read_by == variables::ReadBy::Parser)
            .map(|v| v.name.to_owned())
            .collect();
        assert_eq!(asked, documented);
    }
}
