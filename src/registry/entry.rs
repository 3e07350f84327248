//! A registered file, and its JSON form (in `/list`, `/update`, `/relocate`, manifests).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;

use serde::Serialize;

use crate::config::BucketConfig;

/// A file the registry knows: which bucket holds it now, and what S3 said of it.
#[derive(Debug)]
pub struct Entry {
    pub key: String,
    /// Index into the configured buckets (its priority).
    pub bucket: usize,
    pub size: u64,
    /// RFC 3339 UTC, normalised whatever S3 or an old manifest said.
    pub last_modified: String,
    /// `last_modified` as Unix seconds, parsed once so `/metrics` stays cheap.
    pub modified_unix: Option<i64>,
    /// When S3 last confirmed the entry, as milliseconds on the service's monotonic clock
    /// plus one (0 = never); read lock-free on the redirect path.
    verified_at: AtomicU64,
    /// Redirect URLs built for this entry, reused (an entry never changes: a change is
    /// a new entry, with an empty cache).
    urls: UrlCache,
}

/// A public URL never changes; a presigned URL is byte-identical for the whole second
/// of its `X-Amz-Date`, so one signature serves every request of that second.
#[derive(Debug, Default)]
struct UrlCache {
    public: OnceLock<Bytes>,
    /// `(unix second, signed for HEAD, URL)`.
    presigned: Mutex<Option<(i64, bool, Bytes)>>,
}

impl Clone for Entry {
    fn clone(&self) -> Self {
        Entry {
            key: self.key.clone(),
            bucket: self.bucket,
            size: self.size,
            last_modified: self.last_modified.clone(),
            modified_unix: self.modified_unix,
            verified_at: AtomicU64::new(self.verified_at.load(Relaxed)),
            urls: UrlCache::default(),
        }
    }
}

impl PartialEq for Entry {
    /// Equal when a manifest would say the same; verification time does not count.
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
            && self.bucket == other.bucket
            && self.size == other.size
            && self.last_modified == other.last_modified
    }
}

impl Eq for Entry {}

impl Entry {
    pub fn new(
        key: impl Into<String>,
        bucket: usize,
        size: u64,
        last_modified: impl Into<String>,
    ) -> Entry {
        let last_modified = last_modified.into();
        Entry {
            key: key.into(),
            bucket,
            size,
            modified_unix: crate::timefmt::parse(&last_modified).map(|t| t.unix_timestamp()),
            last_modified,
            verified_at: AtomicU64::new(0),
            urls: UrlCache::default(),
        }
    }

    pub fn mark_verified(&self, now_ms: u64) {
        self.verified_at.store(now_ms + 1, Relaxed);
    }

    /// Whether S3 confirmed the entry less than `ttl_ms` ago.
    pub fn verified_within(&self, now_ms: u64, ttl_ms: u64) -> bool {
        match self.verified_at.load(Relaxed) {
            0 => false,
            at => now_ms.saturating_sub(at - 1) < ttl_ms,
        }
    }

    /// The public URL, built by `build` the first time.
    pub fn public_url(&self, build: impl FnOnce() -> String) -> Bytes {
        self.urls
            .public
            .get_or_init(|| Bytes::from(build()))
            .clone()
    }

    /// The presigned URL for `second` and method, built by `build` unless this second's
    /// is cached.
    pub fn presigned_url<E>(
        &self,
        second: i64,
        head: bool,
        build: impl FnOnce() -> Result<String, E>,
    ) -> Result<Bytes, E> {
        let mut slot = self
            .urls
            .presigned
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some((s, h, url)) = slot.as_ref()
            && *s == second
            && *h == head
        {
            return Ok(url.clone());
        }
        let url = Bytes::from(build()?);
        *slot = Some((second, head, url.clone()));
        Ok(url)
    }

    /// `/<bucket>/<key>`.
    pub fn route(&self, buckets: &[BucketConfig]) -> String {
        route(&buckets[self.bucket].name, &self.key)
    }

    pub fn json<'a>(&'a self, buckets: &'a [BucketConfig]) -> EntryJson<'a> {
        let b = &buckets[self.bucket];
        EntryJson {
            key: &self.key,
            bucket: &b.name,
            bucket_type: b.bucket_type(),
            route: route(&b.name, &self.key),
            size: self.size,
            last_modified: &self.last_modified,
        }
    }
}

pub fn route(bucket: &str, key: &str) -> String {
    let mut r = String::with_capacity(bucket.len() + key.len() + 2);
    r.push('/');
    r.push_str(bucket);
    r.push('/');
    r.push_str(key);
    r
}

/// The contract's entry object; field order as the Lua edition wrote it.
#[derive(Debug, Serialize)]
pub struct EntryJson<'a> {
    pub key: &'a str,
    pub bucket: &'a str,
    pub bucket_type: &'static str,
    pub route: String,
    pub size: u64,
    pub last_modified: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets() -> Vec<BucketConfig> {
        vec![
            BucketConfig {
                name: "pub".into(),
                manifest_key: "m".into(),
                public: true,
            },
            BucketConfig {
                name: "priv".into(),
                manifest_key: "m".into(),
                public: false,
            },
        ]
    }

    #[test]
    fn json_has_the_contract_fields() {
        let e = Entry::new("a b.txt", 1, 5, "2026-05-05T10:00:00Z");
        let v = serde_json::to_value(e.json(&buckets())).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"key":"a b.txt","bucket":"priv","bucket_type":"private",
                "route":"/priv/a b.txt","size":5,"last_modified":"2026-05-05T10:00:00Z"})
        );
    }

    #[test]
    fn urls_are_built_once_per_entry_and_second() {
        let e = Entry::new("k", 0, 1, "t");
        let mut builds = 0;
        for _ in 0..3 {
            e.public_url(|| {
                builds += 1;
                "u".into()
            });
        }
        assert_eq!(builds, 1);
        let mut signs = 0;
        let mut sign = |s: &str| -> Result<String, ()> {
            signs += 1;
            Ok(s.to_owned())
        };
        assert_eq!(e.presigned_url(10, false, || sign("a")).unwrap(), "a");
        assert_eq!(e.presigned_url(10, false, || sign("b")).unwrap(), "a");
        assert_eq!(e.presigned_url(10, true, || sign("c")).unwrap(), "c");
        assert_eq!(e.presigned_url(11, true, || sign("d")).unwrap(), "d");
        assert_eq!(signs, 3);
    }

    #[test]
    fn verification_window() {
        let e = Entry::new("k", 0, 1, "t");
        assert!(!e.verified_within(1000, 5000));
        e.mark_verified(1000);
        assert!(e.verified_within(1000, 5000));
        assert!(e.verified_within(5999, 5000));
        assert!(!e.verified_within(6000, 5000));
        assert!(!e.verified_within(1000, 0));
    }
}
