//! The per-bucket JSON manifest: rendering, and loading every form an earlier edition wrote.

use serde_json::Value;

use super::entry::Entry;
use crate::config::{BucketConfig, BucketId};
use crate::timefmt;

/// An entry as a manifest states it, before it is checked against the buckets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestEntry {
    /// The object key.
    pub key: String,
    /// The bucket the entry names (its own `bucket` field, else the manifest's, else the
    /// bucket the manifest is stored in). May name a bucket that is not configured.
    pub bucket: String,
    /// Bytes, stated as a number or a numeric string (0 when neither).
    pub size: u64,
    /// RFC 3339 UTC as normalised from what was stated; `""` when missing or unreadable.
    pub last_modified: String,
}

/// Why a manifest could not be read. The bucket is then rebuilt from its listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestError {
    /// Not JSON at all: the parser's message.
    InvalidJson(String),
    /// JSON, but in none of the forms an edition wrote: what was missing or wrong.
    UnexpectedShape(&'static str),
}

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManifestError::InvalidJson(e) => write!(f, "invalid JSON: {e}"),
            ManifestError::UnexpectedShape(what) => write!(f, "unexpected manifest shape: {what}"),
        }
    }
}

/// `{"version":1,"bucket":"<name>","files":[entry…]}`, entries sorted by key.
pub fn render(bucket: BucketId, entries: &[&Entry], buckets: &[BucketConfig]) -> Vec<u8> {
    render_compacted(bucket, entries, buckets, 0)
}

/// As [`render`], stating that the manifest includes every journal record up to
/// `journal_seq` (see [`super::journal`]); the field is left out when it is 0, so a
/// service without a journal writes exactly the form the other editions write, and
/// they ignore the field when it is there.
pub fn render_compacted(
    bucket: BucketId,
    entries: &[&Entry],
    buckets: &[BucketConfig],
    journal_seq: u64,
) -> Vec<u8> {
    /// The entries, each turned into its JSON form only as it is written: at a million
    /// entries a list of them all would be another 100 MiB beside the body.
    struct Files<'a> {
        sorted: Vec<&'a Entry>,
        buckets: &'a [BucketConfig],
    }
    impl serde::Serialize for Files<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.sorted.iter().map(|e| e.json(self.buckets)))
        }
    }
    #[derive(serde::Serialize)]
    struct Manifest<'a> {
        version: u32,
        bucket: &'a str,
        #[serde(skip_serializing_if = "is_zero")]
        journal_seq: u64,
        files: Files<'a>,
    }
    fn is_zero(n: &u64) -> bool {
        *n == 0
    }
    let mut sorted: Vec<&Entry> = entries.to_vec();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let m = Manifest {
        version: 1,
        bucket: &buckets[bucket].name,
        journal_seq,
        files: Files { sorted, buckets },
    };
    // Sized up front (an entry is its key twice, key and route, and about 200 bytes
    // of names and values): a doubling buffer would hold up to twice the body.
    let estimate: usize = m.files.sorted.iter().map(|e| 2 * e.key.len() + 220).sum();
    let mut out = Vec::with_capacity(estimate + 256);
    // Serialising plain strings and numbers into memory cannot fail.
    serde_json::to_writer_pretty(&mut out, &m).expect("manifest serialises");
    out.push(b'\n');
    out
}

/// Loads any accepted form: the current object form, a bare array of entries, the C++
/// two-bucket form with a top-level `bucket_type`, and `"files":{}` (the Lua edition's
/// empty list). Routes and bucket types in the file are ignored: they are recomputed
/// from configuration. Entries without a key are skipped.
pub fn parse(bytes: &[u8], stored_in: &str) -> Result<Vec<ManifestEntry>, ManifestError> {
    parse_compacted(bytes, stored_in).map(|(entries, _)| entries)
}

/// As [`parse`], with the journal sequence number the manifest includes (0 when it
/// says none: written without a journal, or by another edition).
pub fn parse_compacted(
    bytes: &[u8],
    stored_in: &str,
) -> Result<(Vec<ManifestEntry>, u64), ManifestError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::InvalidJson(e.to_string()))?;
    let journal_seq = value
        .get("journal_seq")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let (files, manifest_bucket) = match &value {
        Value::Array(items) => (items.as_slice(), None),
        Value::Object(map) => {
            let bucket = map.get("bucket").and_then(Value::as_str);
            match map.get("files") {
                Some(Value::Array(items)) => (items.as_slice(), bucket),
                Some(Value::Object(o)) if o.is_empty() => (&[][..], bucket),
                None | Some(Value::Null) => (&[][..], bucket),
                Some(_) => return Err(ManifestError::UnexpectedShape("\"files\" is not a list")),
            }
        }
        _ => {
            return Err(ManifestError::UnexpectedShape(
                "neither an object nor a list",
            ));
        }
    };
    let default_bucket = manifest_bucket.unwrap_or(stored_in);
    let mut out = Vec::with_capacity(files.len());
    for item in files {
        let Some(obj) = item.as_object() else {
            continue;
        };
        let Some(key) = obj
            .get("key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
        else {
            continue;
        };
        let size = match obj.get("size") {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
            Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
            _ => 0,
        };
        let last_modified = obj
            .get("last_modified")
            .and_then(Value::as_str)
            .and_then(timefmt::normalize)
            .unwrap_or_default();
        out.push(ManifestEntry {
            key: key.to_owned(),
            bucket: obj
                .get("bucket")
                .and_then(Value::as_str)
                .unwrap_or(default_bucket)
                .to_owned(),
            size,
            last_modified,
        });
    }
    Ok((out, journal_seq))
}
