//! Shared bits of the benchmark helpers (`benches/run.sh` drives them):
//!
//! - `bench-floor`: a bare hyper server answering every request with a fixed 302;
//! - `bench-seed`: puts N objects into a running S3 (or writes them into an s3s-fs data
//!   directory) and writes the list of their routes for the wrk spread script;
//! - `bench-presign`: prints a presigned URL for one object, or times `presigned_url`;
//! - `bench-list`: lists buckets completely and says how long it took;
//! - `bench-s3`: a synthetic S3 holding generated objects in memory (scale and soak
//!   benchmarks; its pure parts are in [`synth`]);
//! - `bench-load`: the load clients of `benches/scale.sh` (`update`) and
//!   `benches/soak.sh` (`soak`).
//!
//! The object layout is fixed here so that every tool agrees on it: object `i` is
//! `bench/<i>.bin`, in the public bucket for even `i` and the private bucket for odd `i`.

pub mod synth;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parparchik::metrics::Metrics;
use parparchik::s3::client::ClientSettings;
use parparchik::s3::{Endpoint, S3Client};
use parparchik::sigv4::Credentials;

/// Region every tool signs for (what the service defaults to).
pub const REGION: &str = "us-east-1";

/// `--flag value` / `--flag=value` arguments; a flag may repeat.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<String, Vec<String>>,
    switches: Vec<String>,
}

impl Args {
    /// Parses `args`; `switches` are the flags that take no value.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        switches: &[&str],
    ) -> Result<Args, String> {
        let mut out = Args::default();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            if switches.contains(&flag) {
                out.switches.push(flag.to_owned());
                continue;
            }
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => {
                    let v = it.next().ok_or_else(|| format!("--{flag} needs a value"))?;
                    (flag.to_owned(), v)
                }
            };
            out.values.entry(name).or_default().push(value);
        }
        Ok(out)
    }

    pub fn switch(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }

    /// The last value of `--name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value of a repeated `--name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.values
            .get(name)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    pub fn required(&self, name: &str) -> Result<&str, String> {
        self.get(name)
            .ok_or_else(|| format!("--{name} is required"))
    }

    /// `--name` parsed, or `default` when absent.
    pub fn parsed<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| format!("bad --{name} {v:?}: {e}")),
        }
    }

    /// Refuses flags outside `known`, so a typo does not silently fall back to a default.
    pub fn only(&self, known: &[&str]) -> Result<(), String> {
        match self.values.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(format!("unknown flag --{k}")),
            None => Ok(()),
        }
    }
}

/// The environment variable, or `default` when unset or empty.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, defaulting to local-s3's `minioadmin`.
pub fn credentials() -> Credentials {
    Credentials::new(
        env_or("AWS_ACCESS_KEY_ID", "minioadmin"),
        env_or("AWS_SECRET_ACCESS_KEY", "minioadmin"),
        None,
    )
}

/// The service's own S3 client (reqwest + its SigV4), pointed at `endpoint`, with
/// `timeout` per attempt (local-s3 takes long over one listing page of a large bucket).
pub fn s3_client(endpoint: &str, timeout: Duration) -> Result<S3Client, String> {
    let endpoint = Endpoint::parse(endpoint).map_err(|e| format!("bad endpoint: {e}"))?;
    S3Client::new(
        endpoint,
        REGION,
        credentials(),
        ClientSettings {
            timeout,
            ..ClientSettings::default()
        },
        Arc::new(Metrics::default()),
    )
    .map_err(|e| e.to_string())
}

/// Bucket names of the two-bucket layout, overridable by `--public` / `--private`.
pub struct Buckets {
    pub public: String,
    pub private: String,
}

impl Buckets {
    pub fn from_args(args: &Args) -> Buckets {
        Buckets {
            public: args.get("public").unwrap_or("public-bucket").to_owned(),
            private: args.get("private").unwrap_or("private-bucket").to_owned(),
        }
    }

    /// The bucket of object `i`: even in the public bucket, odd in the private one.
    pub fn of(&self, i: usize) -> &str {
        if i.is_multiple_of(2) {
            &self.public
        } else {
            &self.private
        }
    }
}

/// The key of object `i`.
pub fn key_of(i: usize) -> String {
    format!("bench/{i}.bin")
}

/// The small body of object `i`.
pub fn body_of(i: usize) -> Vec<u8> {
    format!("parparchik bench object {i}\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|s| (*s).to_owned()), &["time"])
    }

    #[test]
    fn flags_values_and_switches() {
        let a = parse(&["--objects", "10", "--bucket=a", "--bucket", "b", "--time"]).unwrap();
        assert_eq!(a.parsed("objects", 0usize).unwrap(), 10);
        assert_eq!(a.all("bucket"), ["a", "b"]);
        assert_eq!(a.get("bucket"), Some("b"));
        assert!(a.switch("time"));
        assert!(a.only(&["objects", "bucket"]).is_ok());
        assert!(a.only(&["objects"]).is_err());
        assert!(a.parsed("bucket", 0u32).is_err());
        assert!(parse(&["--objects"]).is_err());
        assert!(parse(&["stray"]).is_err());
    }

    #[test]
    fn layout_splits_across_buckets() {
        let b = Buckets::from_args(&Args::default());
        assert_eq!(b.of(0), "public-bucket");
        assert_eq!(b.of(1), "private-bucket");
        assert_eq!(key_of(7), "bench/7.bin");
    }
}
