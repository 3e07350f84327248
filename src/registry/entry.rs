//! A registered file, and its JSON form (in `/list`, `/update`, `/relocate`, manifests).
//!
//! Pure data, kept small: a million entries are the service's memory. What only files
//! people ask for need (when S3 last confirmed them, the redirect URLs built for them)
//! lives in bounded caches outside the registry.

use serde::Serialize;

use crate::config::{BucketConfig, BucketId};

/// A file the registry knows: which bucket holds it now, and what S3 said of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The object key, as in S3.
    pub key: String,
    /// The bucket that holds it now.
    pub bucket: BucketId,
    /// Bytes, as S3 (or the manifest) reported them.
    pub size: u64,
    /// Last modification as Unix seconds ([`UNKNOWN_TIME`] when S3 or an old manifest
    /// gave none that parses); rendered as RFC 3339 UTC.
    modified: i64,
}

/// `modified` of an entry whose time is unknown (rendered as `""`).
const UNKNOWN_TIME: i64 = i64::MIN;

impl Entry {
    /// An entry; `last_modified` as S3 or a manifest wrote it (an unparsable time is
    /// kept as unknown).
    pub fn new(
        key: impl Into<String>,
        bucket: BucketId,
        size: u64,
        last_modified: impl AsRef<str>,
    ) -> Entry {
        Entry {
            key: key.into(),
            bucket,
            size,
            modified: crate::timefmt::parse(last_modified.as_ref())
                .map_or(UNKNOWN_TIME, time::OffsetDateTime::unix_timestamp),
        }
    }

    /// RFC 3339 UTC (`2026-05-05T10:00:00Z`), or `""` when unknown.
    pub fn last_modified(&self) -> String {
        self.modified_unix()
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .map(crate::timefmt::format)
            .unwrap_or_default()
    }

    /// Whether this entry says `last_modified` (an RFC 3339 string as S3 metadata is
    /// normalised), without formatting its own time.
    pub fn modified_at(&self, last_modified: &str) -> bool {
        let other = crate::timefmt::parse(last_modified)
            .map_or(UNKNOWN_TIME, time::OffsetDateTime::unix_timestamp);
        other == self.modified
    }

    /// Last modification as Unix seconds, when known.
    pub fn modified_unix(&self) -> Option<i64> {
        (self.modified != UNKNOWN_TIME).then_some(self.modified)
    }

    /// `/<bucket>/<key>`.
    pub fn route(&self, buckets: &[BucketConfig]) -> String {
        route(&buckets[self.bucket].name, &self.key)
    }

    /// The contract's JSON object for this entry.
    pub fn json<'a>(&'a self, buckets: &'a [BucketConfig]) -> EntryJson<'a> {
        let b = &buckets[self.bucket];
        EntryJson {
            key: &self.key,
            bucket: &b.name,
            bucket_type: b.bucket_type(),
            route: route(&b.name, &self.key),
            size: self.size,
            last_modified: self.last_modified(),
        }
    }
}

/// `/<bucket>/<key>`, as written (not percent-encoded).
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
    /// The object key.
    pub key: &'a str,
    /// The bucket's name.
    pub bucket: &'a str,
    /// `public` or `private`.
    pub bucket_type: &'static str,
    /// `/<bucket>/<key>`.
    pub route: String,
    /// Bytes.
    pub size: u64,
    /// RFC 3339 UTC, or `""` when unknown.
    pub last_modified: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::test_buckets as buckets;

    #[test]
    fn json_has_the_contract_fields() {
        let e = Entry::new("a b.txt", BucketId::new(1), 5, "2026-05-05T10:00:00Z");
        let v = serde_json::to_value(e.json(&buckets())).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"key":"a b.txt","bucket":"priv","bucket_type":"private",
                "route":"/priv/a b.txt","size":5,"last_modified":"2026-05-05T10:00:00Z"})
        );
    }

    #[test]
    fn time_round_trips_and_unknown_is_empty() {
        let e = Entry::new("k", BucketId::new(0), 1, "2026-05-05T10:00:00Z");
        assert_eq!(e.last_modified(), "2026-05-05T10:00:00Z");
        assert!(e.modified_at("2026-05-05T10:00:00Z"));
        assert!(!e.modified_at("2026-05-05T10:00:01Z"));
        let unknown = Entry::new("k", BucketId::new(0), 1, "not a time");
        assert_eq!(unknown.last_modified(), "");
        assert_eq!(unknown.modified_unix(), None);
        assert!(unknown.modified_at(""));
    }

    #[test]
    fn an_entry_is_small() {
        // key (24) + bucket (8) + size (8) + time (8): memory per file is the point.
        assert!(size_of::<Entry>() <= 48);
    }
}
