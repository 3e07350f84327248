//! Configuration from environment variables (the contract's names and defaults).
//!
//! Sans-IO: [`Config::from_lookup`] takes a lookup function, so tests pass a map and
//! `main` passes `std::env::var`.

use std::fmt;
use std::time::Duration;

use crate::s3::endpoint::Endpoint;
use crate::sigv4::Credentials;

pub const DEFAULT_MANIFEST_KEY: &str = ".parparchik/files.json";

/// One bucket the service serves from. Position in [`Config::buckets`] is its priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketConfig {
    pub name: String,
    pub manifest_key: String,
    pub public: bool,
}

impl BucketConfig {
    pub fn bucket_type(&self) -> &'static str {
        if self.public { "public" } else { "private" }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// In priority order: the first bucket holding a key wins.
    pub buckets: Vec<BucketConfig>,
    pub host: String,
    pub port: u16,
    /// What the service talks to.
    pub endpoint: Endpoint,
    /// What redirect URLs name (what clients can reach).
    pub external_endpoint: Endpoint,
    pub region: String,
    pub credentials: Credentials,
    pub s3_connect_timeout: Duration,
    /// Bound on one S3 attempt (there are at most [`Config::s3_attempts`]).
    pub s3_timeout: Duration,
    pub s3_attempts: u32,
    /// 0 = confirm with S3 on every download (the contract's behaviour).
    pub verify_ttl: Duration,
    /// `None` = periodic re-sync off.
    pub sync_interval: Option<Duration>,
    /// How long in-flight requests may run after SIGTERM.
    pub drain_timeout: Duration,
    /// A client that has not sent its whole request head by then is dropped.
    pub header_timeout: Duration,
    pub presign_expires: u64,
    /// `Cache-Control` of redirect responses.
    pub redirect_cache_control: String,
    /// When not empty, every endpoint but the probes requires one of these keys.
    pub api_keys: ApiKeys,
    /// Requests per second and burst per client address; `None` = no limit.
    pub rate_limit: Option<(f64, u32)>,
    /// Where credentials come from (the AWS tools' variables); see [`crate::credentials`].
    pub credential_chain: crate::credentials::ChainSettings,
    /// How often `_FILE` credentials and the shared files are checked for changes.
    pub credentials_poll_interval: Duration,
    /// `PARPARCHIK_S3_CA_FILE`: a PEM bundle trusted besides the bundled and system roots.
    pub s3_ca_file: Option<std::path::PathBuf>,
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
    pub variable: &'static str,
    pub problem: String,
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

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());

        let buckets = match get("PARPARCHIK_BUCKETS") {
            Some(spec) => {
                let buckets = parse_buckets(&spec)?;
                for b in &buckets {
                    check_bucket_name("PARPARCHIK_BUCKETS", &b.name)?;
                }
                buckets
            }
            None => {
                let public = get("PARPARCHIK_PUBLIC_BUCKET");
                let private = get("PARPARCHIK_PRIVATE_BUCKET");
                let manifest_key = get("PARPARCHIK_REGISTRY_MANIFEST_KEY")
                    .unwrap_or_else(|| DEFAULT_MANIFEST_KEY.to_owned());
                match (public, private) {
                    (Some(public), Some(private)) => {
                        check_bucket_name("PARPARCHIK_PUBLIC_BUCKET", public.trim())?;
                        check_bucket_name("PARPARCHIK_PRIVATE_BUCKET", private.trim())?;
                        vec![
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
                        ]
                    }
                    (Some(_), None) => {
                        return Err(err(
                            "PARPARCHIK_PRIVATE_BUCKET",
                            "is not set but PARPARCHIK_PUBLIC_BUCKET is; set both, or PARPARCHIK_BUCKETS",
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(err(
                            "PARPARCHIK_PUBLIC_BUCKET",
                            "is not set but PARPARCHIK_PRIVATE_BUCKET is; set both, or PARPARCHIK_BUCKETS",
                        ));
                    }
                    (None, None) => {
                        return Err(err(
                            "PARPARCHIK_BUCKETS",
                            "no buckets configured: set PARPARCHIK_BUCKETS, or PARPARCHIK_PUBLIC_BUCKET and PARPARCHIK_PRIVATE_BUCKET",
                        ));
                    }
                }
            }
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

        let host = get("PARPARCHIK_HOST").unwrap_or_else(|| "0.0.0.0".to_owned());
        let port = match get("PARPARCHIK_PORT") {
            None => 8080,
            Some(p) => p
                .trim()
                .parse::<u16>()
                .map_err(|_| err("PARPARCHIK_PORT", format!("{p:?} is not a port number")))?,
        };

        let region = get("AWS_REGION").unwrap_or_else(|| "us-east-1".to_owned());
        let endpoint = match get("S3_ENDPOINT") {
            None => Endpoint::aws(&region),
            Some(e) => Endpoint::parse(&e).map_err(|p| err("S3_ENDPOINT", p))?,
        };
        let external_endpoint = match get("S3_EXTERNAL_ENDPOINT") {
            None => endpoint.clone(),
            Some(e) => Endpoint::parse(&e).map_err(|p| err("S3_EXTERNAL_ENDPOINT", p))?,
        };
        let credentials = Credentials::new(
            get("AWS_ACCESS_KEY_ID").unwrap_or_default(),
            get("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
            get("AWS_SESSION_TOKEN"),
        );

        let s3_attempts = match get("PARPARCHIK_S3_ATTEMPTS") {
            None => 3,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=10).contains(n))
                .ok_or_else(|| err("PARPARCHIK_S3_ATTEMPTS", format!("{v:?} is not 1..=10")))?,
        };
        let sync_interval = parse_seconds(
            "PARPARCHIK_SYNC_INTERVAL",
            get("PARPARCHIK_SYNC_INTERVAL"),
            Duration::from_secs(300),
        )?;

        let api_keys: Vec<String> = get("PARPARCHIK_API_KEYS")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let rate_limit =
            match get("PARPARCHIK_RATE_LIMIT_PER_SECOND") {
                None => None,
                Some(v) => {
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
                    let burst =
                        match get("PARPARCHIK_RATE_LIMIT_BURST") {
                            // Default burst: one second's worth, at least one request.
                            None => rate.ceil().max(1.0) as u32,
                            Some(b) => b.trim().parse::<u32>().ok().filter(|b| *b > 0).ok_or_else(
                                || {
                                    err(
                                        "PARPARCHIK_RATE_LIMIT_BURST",
                                        format!("{b:?} is not a positive whole number"),
                                    )
                                },
                            )?,
                        };
                    Some((rate, burst))
                }
            };

        // The credential chain's variables are checked here, so a half-configured
        // source stops the process at start like any other bad variable.
        let credential_chain = crate::credentials::ChainSettings::from_lookup(
            get,
            &region,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        )
        .map_err(|e| match e {
            crate::credentials::CredentialsError::Config { variable, problem } => {
                err(variable, problem)
            }
            other => err("AWS_ACCESS_KEY_ID", other.to_string()),
        })?;

        Ok(Config {
            api_keys: ApiKeys(api_keys),
            rate_limit,
            buckets,
            host,
            port,
            endpoint,
            external_endpoint,
            region,
            credentials,
            s3_connect_timeout: parse_seconds(
                "PARPARCHIK_S3_CONNECT_TIMEOUT",
                get("PARPARCHIK_S3_CONNECT_TIMEOUT"),
                Duration::from_secs(2),
            )?,
            s3_timeout: parse_seconds(
                "PARPARCHIK_S3_TIMEOUT",
                get("PARPARCHIK_S3_TIMEOUT"),
                Duration::from_secs(5),
            )?,
            s3_attempts,
            verify_ttl: parse_seconds(
                "PARPARCHIK_VERIFY_TTL",
                get("PARPARCHIK_VERIFY_TTL"),
                Duration::ZERO,
            )?,
            sync_interval: (!sync_interval.is_zero()).then_some(sync_interval),
            drain_timeout: parse_seconds(
                "PARPARCHIK_DRAIN_TIMEOUT",
                get("PARPARCHIK_DRAIN_TIMEOUT"),
                Duration::from_secs(10),
            )?,
            header_timeout: parse_seconds(
                "PARPARCHIK_HEADER_TIMEOUT",
                get("PARPARCHIK_HEADER_TIMEOUT"),
                Duration::from_secs(10),
            )?,
            presign_expires: match get("PARPARCHIK_PRESIGN_EXPIRES") {
                None => 3600,
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=u64::from(crate::sigv4::MAX_PRESIGN_EXPIRES)).contains(n))
                    .ok_or_else(|| {
                        err(
                            "PARPARCHIK_PRESIGN_EXPIRES",
                            format!("{v:?} is not 1..=604800 seconds"),
                        )
                    })?,
            },
            redirect_cache_control: match get("PARPARCHIK_REDIRECT_CACHE_CONTROL") {
                None => "no-store".to_owned(),
                Some(v) if v.bytes().all(|b| (0x20..0x7f).contains(&b)) => v.trim().to_owned(),
                Some(v) => {
                    return Err(err(
                        "PARPARCHIK_REDIRECT_CACHE_CONTROL",
                        format!("{v:?} is not a valid header value"),
                    ));
                }
            },
            credential_chain,
            credentials_poll_interval: parse_seconds(
                "PARPARCHIK_CREDENTIALS_POLL_INTERVAL",
                get("PARPARCHIK_CREDENTIALS_POLL_INTERVAL"),
                Duration::from_secs(10),
            )?
            .max(Duration::from_millis(100)),
            s3_ca_file: get("PARPARCHIK_S3_CA_FILE").map(|p| std::path::PathBuf::from(p.trim())),
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
}
