//! The journal beside a bucket's manifest: small records of what changed, so a change
//! costs a few hundred bytes in S3 instead of a rewrite of the whole manifest.
//!
//! Record `n` of the manifest at `<manifest_key>` is the object
//! `<manifest_key>.journal/<n, 20 digits>`; numbers only grow, and a record is only ever
//! created with `If-None-Match: *`, so two replicas cannot both write number `n`: the
//! loser reads the winner's record and takes the next number. A record states the
//! current state of each key it names in this bucket (present with size and time, or
//! removed), so applying it twice changes nothing.
//!
//! The manifest says up to which record it includes (`journal_seq`); the state of a
//! bucket is its manifest with every later record applied in order. Compaction writes
//! a new manifest and, a while later, deletes the records it includes.
//!
//! Pure: rendering, parsing and replaying; the I/O is in `coordinator::persist`.

use std::collections::HashMap;

use serde_json::Value;

use super::manifest::{ManifestEntry, ManifestError};
use crate::timefmt;

/// What follows the manifest key in a record's key.
pub const SUFFIX: &str = ".journal/";

/// Digits of a record number in its key: fixed width, so keys sort as numbers do.
const DIGITS: usize = 20;

/// The key of record `seq` of the manifest at `manifest_key`.
pub fn record_key(manifest_key: &str, seq: u64) -> String {
    format!("{manifest_key}{SUFFIX}{seq:0DIGITS$}")
}

/// The last key a record can have (the end of a listing of the journal).
pub fn last_record_key(manifest_key: &str) -> String {
    format!("{manifest_key}{SUFFIX}{}", "9".repeat(DIGITS))
}

/// The number of the record at `key`, when `key` is one of this manifest's records.
pub fn seq_of(manifest_key: &str, key: &str) -> Option<u64> {
    let digits = key.strip_prefix(manifest_key)?.strip_prefix(SUFFIX)?;
    if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One key's state in the record's bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The bucket holds the key and it is registered there.
    Present {
        /// The object key.
        key: String,
        /// Bytes.
        size: u64,
        /// RFC 3339 UTC, or `""` when unknown.
        last_modified: String,
    },
    /// The key is not registered in this bucket (deleted, or its route moved away).
    Absent {
        /// The object key.
        key: String,
    },
}

impl Change {
    /// The key this change is about.
    pub fn key(&self) -> &str {
        match self {
            Change::Present { key, .. } | Change::Absent { key } => key,
        }
    }
}

/// One journal record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The record's number (in its object key); numbers only grow.
    pub seq: u64,
    /// The bucket the record is stored in (and whose entries it changes).
    pub bucket: String,
    /// The state in this bucket of each key the record names.
    pub changes: Vec<Change>,
}

/// `{"version":1,"bucket":…,"seq":…,"files":[{"key","size","last_modified"}…],
/// "removed":[key…]}`, compact.
pub fn render(record: &Record) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct File<'a> {
        key: &'a str,
        size: u64,
        last_modified: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Out<'a> {
        version: u32,
        bucket: &'a str,
        seq: u64,
        files: Vec<File<'a>>,
        removed: Vec<&'a str>,
    }
    let mut out = Out {
        version: 1,
        bucket: &record.bucket,
        seq: record.seq,
        files: Vec::new(),
        removed: Vec::new(),
    };
    for change in &record.changes {
        match change {
            Change::Present {
                key,
                size,
                last_modified,
            } => out.files.push(File {
                key,
                size: *size,
                last_modified,
            }),
            Change::Absent { key } => out.removed.push(key),
        }
    }
    // Serialising plain strings and numbers cannot fail.
    serde_json::to_vec(&out).expect("journal record serialises")
}

/// Reads a record written by [`render`]. Entries without a key are skipped, as in
/// manifests; a record without a number is refused (it cannot be ordered).
pub fn parse(bytes: &[u8]) -> Result<Record, ManifestError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::InvalidJson(e.to_string()))?;
    let obj = value.as_object().ok_or(ManifestError::UnexpectedShape(
        "a journal record is an object",
    ))?;
    let seq = obj
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or(ManifestError::UnexpectedShape(
            "a journal record has a \"seq\"",
        ))?;
    let bucket = obj
        .get("bucket")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut changes = Vec::new();
    for item in obj
        .get("files")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(key) = item
            .get("key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
        else {
            continue;
        };
        changes.push(Change::Present {
            key: key.to_owned(),
            size: item.get("size").and_then(Value::as_u64).unwrap_or(0),
            last_modified: item
                .get("last_modified")
                .and_then(Value::as_str)
                .and_then(timefmt::normalize)
                .unwrap_or_default(),
        });
    }
    for key in obj
        .get("removed")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|k| !k.is_empty())
    {
        changes.push(Change::Absent {
            key: key.to_owned(),
        });
    }
    Ok(Record {
        seq,
        bucket,
        changes,
    })
}

/// A manifest's entries with `records` applied in order (the caller gives the records
/// after the manifest's `journal_seq`, sorted). Where the manifest names a key twice
/// the first entry counts, as when the registry is seeded. `stored_in` is the bucket
/// both are stored in. The result is sorted by key.
pub fn replay<'a>(
    manifest: Vec<ManifestEntry>,
    records: impl IntoIterator<Item = &'a Record>,
    stored_in: &str,
) -> Vec<ManifestEntry> {
    let mut state: HashMap<String, ManifestEntry> = HashMap::with_capacity(manifest.len());
    for e in manifest {
        state.entry(e.key.clone()).or_insert(e);
    }
    for record in records {
        for change in &record.changes {
            match change {
                Change::Present {
                    key,
                    size,
                    last_modified,
                } => {
                    state.insert(
                        key.clone(),
                        ManifestEntry {
                            key: key.clone(),
                            bucket: stored_in.to_owned(),
                            size: *size,
                            last_modified: last_modified.clone(),
                        },
                    );
                }
                Change::Absent { key } => {
                    state.remove(key);
                }
            }
        }
    }
    let mut out: Vec<ManifestEntry> = state.into_values().collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::config::BucketId;

    use proptest::prelude::*;

    use super::*;
    use crate::config::{BucketConfig, parse_buckets};
    use crate::registry::{Entry, manifest};

    const M: &str = ".parparchik/manifest.json";

    #[test]
    fn record_keys_sort_as_their_numbers_and_read_back() {
        let keys: Vec<String> = [1u64, 9, 10, 11, 100, u64::MAX]
            .iter()
            .map(|n| record_key(M, *n))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        for (k, n) in keys.iter().zip([1u64, 9, 10, 11, 100, u64::MAX]) {
            assert_eq!(seq_of(M, k), Some(n));
            assert!(k.as_str() <= last_record_key(M).as_str() || n == u64::MAX);
        }
        assert_eq!(seq_of(M, M), None);
        assert_eq!(seq_of(M, &format!("{M}{SUFFIX}12")), None);
        assert_eq!(seq_of(M, &format!("{M}{SUFFIX}0000000000000000000x")), None);
        assert_eq!(seq_of("other.json", &record_key(M, 3)), None);
    }

    #[test]
    fn the_manifest_owns_its_records_and_nothing_else() {
        let b = &parse_buckets("media:public").unwrap()[0];
        assert!(b.owns(&b.manifest_key));
        assert!(b.owns(&record_key(&b.manifest_key, 42)));
        assert!(!b.owns(&format!("{}.journal", b.manifest_key)));
        assert!(!b.owns("photos/cat.jpg"));
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let record = Record {
            seq: 7,
            bucket: "media".into(),
            changes: vec![
                Change::Present {
                    key: "a b/ü\"<>.txt".into(),
                    size: 12,
                    last_modified: "2026-05-05T10:00:00Z".into(),
                },
                Change::Present {
                    key: "no-time".into(),
                    size: 0,
                    last_modified: String::new(),
                },
                Change::Absent { key: "gone".into() },
            ],
        };
        assert_eq!(parse(&render(&record)), Ok(record));
    }

    #[test]
    fn a_record_without_a_number_or_shape_is_refused() {
        assert!(parse(b"{\"bucket\":\"b\",\"files\":[]}").is_err());
        assert!(parse(b"[1,2]").is_err());
        assert!(parse(b"{not json").is_err());
    }

    /// One step of a simulated history: a change to the bucket, or a point where the
    /// writer writes a record of what changed, or compacts.
    #[derive(Clone, Debug)]
    enum Step {
        Put(u8, u16),
        Remove(u8),
        Record,
        Compact,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0u8..24, any::<u16>()).prop_map(|(k, s)| Step::Put(k, s)),
            2 => (0u8..24).prop_map(Step::Remove),
            2 => Just(Step::Record),
            1 => Just(Step::Compact),
        ]
    }

    fn key(k: u8) -> String {
        // Keys that sort oddly: spaces, non-ASCII, a slash, a quote.
        ["a", "a b", "é", "z/1", "\"q\"", "A"][usize::from(k) % 6].to_owned() + &k.to_string()
    }

    proptest! {
        /// Any sequence of changes, written as records at any points and compacted at
        /// any points, replays (manifest + the records after it, as S3 holds them) to
        /// exactly the registry's state.
        #[test]
        fn any_history_compacted_anywhere_replays_to_the_registry(
            steps in proptest::collection::vec(step(), 0..80)
        ) {
            let buckets: Vec<BucketConfig> = parse_buckets("media:public").unwrap();
            let name = &buckets[0].name;
            let mut registry: BTreeMap<String, Entry> = BTreeMap::new();
            let mut changed: std::collections::BTreeSet<String> = Default::default();
            let mut records: Vec<Vec<u8>> = Vec::new();
            let mut manifest_body: Option<Vec<u8>> = None;
            let mut seq = 0u64;
            let write_record = |registry: &BTreeMap<String, Entry>,
                                    changed: &mut std::collections::BTreeSet<String>,
                                    records: &mut Vec<Vec<u8>>,
                                    seq: &mut u64| {
                if changed.is_empty() {
                    return;
                }
                *seq += 1;
                let changes = changed
                    .iter()
                    .map(|k| match registry.get(k) {
                        Some(e) => Change::Present {
                            key: k.clone(),
                            size: e.size,
                            last_modified: e.last_modified(),
                        },
                        None => Change::Absent { key: k.clone() },
                    })
                    .collect();
                records.push(render(&Record { seq: *seq, bucket: "media".into(), changes }));
                changed.clear();
            };
            for s in steps {
                match s {
                    Step::Put(k, size) => {
                        let e = Entry::new(key(k), BucketId::new(0), u64::from(size), "2026-05-05T10:00:00Z");
                        registry.insert(key(k), e);
                        changed.insert(key(k));
                    }
                    Step::Remove(k) => {
                        registry.remove(&key(k));
                        changed.insert(key(k));
                    }
                    Step::Record => write_record(&registry, &mut changed, &mut records, &mut seq),
                    Step::Compact => {
                        // Compaction first journals what is pending, then states the
                        // registry as of that record.
                        write_record(&registry, &mut changed, &mut records, &mut seq);
                        let refs: Vec<&Entry> = registry.values().collect();
                        manifest_body =
                            Some(manifest::render_compacted(BucketId::new(0), &refs, &buckets, seq));
                    }
                }
            }
            write_record(&registry, &mut changed, &mut records, &mut seq);

            let (base, journal_seq) = match &manifest_body {
                Some(body) => manifest::parse_compacted(body, name).unwrap(),
                None => (Vec::new(), 0),
            };
            let parsed: Vec<Record> = records.iter().map(|r| parse(r).unwrap()).collect();
            let later = parsed.iter().filter(|r| r.seq > journal_seq);
            let replayed = replay(base, later, name);
            let expected: Vec<ManifestEntry> = registry
                .values()
                .map(|e| ManifestEntry {
                    key: e.key.clone(),
                    bucket: name.clone(),
                    size: e.size,
                    last_modified: e.last_modified(),
                })
                .collect();
            prop_assert_eq!(replayed, expected);
        }
    }

    #[test]
    fn a_manifest_states_its_journal_number_only_when_it_has_one() {
        let buckets = parse_buckets("media:public").unwrap();
        let plain = manifest::render(BucketId::new(0), &[], &buckets);
        assert!(!String::from_utf8_lossy(&plain).contains("journal_seq"));
        assert_eq!(
            manifest::parse_compacted(&plain, "media"),
            Ok((Vec::new(), 0))
        );
        let compacted = manifest::render_compacted(BucketId::new(0), &[], &buckets, 41);
        assert_eq!(
            manifest::parse_compacted(&compacted, "media"),
            Ok((Vec::new(), 41))
        );
        // Other editions read it as an ordinary manifest.
        assert_eq!(manifest::parse(&compacted, "media"), Ok(Vec::new()));
    }
}
