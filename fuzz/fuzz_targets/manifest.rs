//! Manifest parsing never panics, and what it reads survives a render/parse round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parparchik::config::BucketConfig;
use parparchik::registry::Entry;
use parparchik::registry::manifest::{parse, render};

fuzz_target!(|data: &[u8]| {
    let Ok(entries) = parse(data, "public-bucket") else {
        return;
    };
    let buckets = vec![BucketConfig {
        name: "public-bucket".to_owned(),
        manifest_key: ".parparchik/files.json".to_owned(),
        public: true,
    }];
    let mut registered: Vec<Entry> = Vec::new();
    for e in &entries {
        assert!(!e.key.is_empty(), "an entry without a key was kept");
        // What the registry would hold: one entry per key, the last one wins.
        registered.retain(|r| r.key != e.key);
        registered.push(Entry::new(
            e.key.clone(),
            0,
            e.size,
            e.last_modified.clone(),
        ));
    }
    let refs: Vec<&Entry> = registered.iter().collect();
    let rendered = render(0, &refs, &buckets);
    let again = parse(&rendered, "public-bucket").expect("a rendered manifest parses");
    assert_eq!(again.len(), registered.len());
    for (a, r) in again.iter().zip({
        let mut sorted = refs.clone();
        sorted.sort_by(|x, y| x.key.cmp(&y.key));
        sorted
    }) {
        assert_eq!(a.key, r.key);
        assert_eq!(a.bucket, "public-bucket");
        assert_eq!(a.size, r.size);
        // Timestamps are normalised once; normalising again changes nothing.
        assert_eq!(a.last_modified, r.last_modified, "key {:?}", r.key);
    }
});
