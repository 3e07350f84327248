//! Manifest parsing as data: one file under `tests/data/manifests/` per form that an
//! edition of parparchik wrote (or that must be refused), and one test per file pinning
//! exactly what `manifest::parse` makes of it. Plus a render → parse round trip.

use crate::support::common::{MANIFEST, PRIVATE, PUBLIC};
use parparchik::config::{BucketConfig, BucketId};
use parparchik::registry::Entry;
use parparchik::registry::manifest::{self, ManifestEntry, ManifestError};

/// The bucket the manifest under test is "stored in" (its fallback bucket name). Chosen
/// to differ from every name inside the files, so a test sees which one was used.
const STORED_IN: &str = "stored-in-bucket";

fn load(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/manifests")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn parse(name: &str) -> Result<Vec<ManifestEntry>, ManifestError> {
    manifest::parse(&load(name), STORED_IN)
}

fn entry(key: &str, bucket: &str, size: u64, last_modified: &str) -> ManifestEntry {
    ManifestEntry {
        key: key.to_owned(),
        bucket: bucket.to_owned(),
        size,
        last_modified: last_modified.to_owned(),
    }
}

#[test]
fn current_form() {
    assert_eq!(
        parse("current.json"),
        Ok(vec![
            entry("c+d.bin", PUBLIC, 0, "2026-04-30T23:59:59Z"),
            entry("docs/a b.txt", PUBLIC, 12, "2026-05-05T10:00:00Z"),
        ])
    );
}

#[test]
fn bare_array_of_entries() {
    // No manifest-level bucket: an entry without its own falls back to where the file is.
    assert_eq!(
        parse("bare-array.json"),
        Ok(vec![
            entry("report.pdf", STORED_IN, 2048, "2026-05-05T10:00:00Z"),
            entry("elsewhere.txt", PRIVATE, 7, "2026-01-02T03:04:05Z"),
        ])
    );
}

#[test]
fn cpp_two_bucket_form_with_top_level_bucket_type() {
    // `bucket_type` is not a bucket name, and the C++ alias route is not trusted.
    assert_eq!(
        parse("cpp-two-bucket.json"),
        Ok(vec![entry(
            "secret/plan.txt",
            STORED_IN,
            3,
            "2026-03-01T08:30:00Z"
        )])
    );
}

#[test]
fn lua_empty_files_object() {
    assert_eq!(parse("lua-empty-files-object.json"), Ok(Vec::new()));
}

#[test]
fn an_entrys_own_bucket_wins_over_the_manifests() {
    assert_eq!(
        parse("entry-bucket-wins.json"),
        Ok(vec![
            // Its own bucket, although the manifest, its route and its bucket_type say public.
            entry("moved.txt", PRIVATE, 5, "2026-05-05T10:00:00Z"),
            // No bucket of its own: the manifest's, not the one it is stored in.
            entry("stays.txt", PUBLIC, 6, "2026-05-05T10:00:01Z"),
        ])
    );
}

#[test]
fn http_dates_and_offsets_are_normalised_to_rfc3339_utc() {
    assert_eq!(
        parse("http-date.json"),
        Ok(vec![
            // The Lua edition stored HEAD's headers as they came: both are strings.
            entry("lua.txt", PUBLIC, 1024, "2026-05-05T10:00:00Z"),
            entry("offset.txt", PUBLIC, 1, "2026-05-05T10:00:00Z"),
        ])
    );
}

#[test]
fn invalid_json_is_an_error() {
    match parse("invalid.json") {
        Err(ManifestError::InvalidJson(why)) => assert!(!why.is_empty()),
        other => panic!("expected InvalidJson, got {other:?}"),
    }
}

#[test]
fn files_that_are_not_a_list_are_an_error() {
    match parse("wrong-shape.json") {
        Err(e @ ManifestError::UnexpectedShape(_)) => {
            assert!(e.to_string().contains("files"), "{e}");
        }
        other => panic!("expected UnexpectedShape, got {other:?}"),
    }
}

#[test]
fn every_data_file_has_a_test() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/manifests");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("data dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bare-array.json",
            "cpp-two-bucket.json",
            "current.json",
            "entry-bucket-wins.json",
            "http-date.json",
            "invalid.json",
            "lua-empty-files-object.json",
            "wrong-shape.json",
        ],
        "a new manifest form needs its own test in this file"
    );
}

#[test]
fn render_then_parse_gives_the_same_entries() {
    let buckets = vec![
        BucketConfig {
            name: PUBLIC.into(),
            manifest_key: MANIFEST.into(),
            public: true,
        },
        BucketConfig {
            name: PRIVATE.into(),
            manifest_key: MANIFEST.into(),
            public: false,
        },
    ];
    let entries = [
        Entry::new("z/last.txt", BucketId::new(1), 3, "2026-05-05T10:00:00Z"),
        Entry::new(
            "a b+c%20~()!.txt",
            BucketId::new(1),
            0,
            "2025-12-31T23:59:59Z",
        ),
        Entry::new(
            "ünïcødé/файл.txt",
            BucketId::new(1),
            u64::from(u32::MAX) + 1,
            "2026-01-01T00:00:00Z",
        ),
    ];
    let refs: Vec<&Entry> = entries.iter().collect();
    let bytes = manifest::render(BucketId::new(1), &refs, &buckets);

    // The contract's form, entries sorted by key, routes and types from configuration.
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("rendered manifest is JSON");
    assert_eq!(v["version"], 1);
    assert_eq!(v["bucket"], PRIVATE);
    let files = v["files"].as_array().expect("files is a list");
    let keys: Vec<&str> = files.iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["a b+c%20~()!.txt", "z/last.txt", "ünïcødé/файл.txt"]);
    assert_eq!(
        files[1],
        serde_json::json!({"key": "z/last.txt", "bucket": PRIVATE, "bucket_type": "private",
            "route": format!("/{PRIVATE}/z/last.txt"), "size": 3,
            "last_modified": "2026-05-05T10:00:00Z"})
    );

    let mut expected: Vec<ManifestEntry> = entries
        .iter()
        .map(|e| entry(&e.key, PRIVATE, e.size, &e.last_modified()))
        .collect();
    expected.sort_by(|a, b| a.key.cmp(&b.key));
    // Parsed as stored in another bucket: the names come from the file itself.
    assert_eq!(manifest::parse(&bytes, PUBLIC), Ok(expected));

    // An empty bucket renders as an empty list (not the Lua edition's `{}`) and parses back.
    let empty = manifest::render(BucketId::new(0), &[], &buckets);
    let v: serde_json::Value = serde_json::from_slice(&empty).expect("JSON");
    assert_eq!(
        v,
        serde_json::json!({"version": 1, "bucket": PUBLIC, "files": []})
    );
    assert_eq!(manifest::parse(&empty, PUBLIC), Ok(Vec::new()));
}
