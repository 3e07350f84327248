//! Route parsing: any path yields a route, and a download route always carries a key
//! that passes the contract's key rules, in a configured bucket.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parparchik::config::BucketConfig;
use parparchik::http::decode::{percent_decode, validate_key};
use parparchik::http::router::{BucketRef, Route, route};

fn buckets() -> Vec<BucketConfig> {
    ["public-bucket", "private-bucket", "private", "a.b"]
        .iter()
        .enumerate()
        .map(|(i, n)| BucketConfig {
            name: (*n).to_owned(),
            manifest_key: ".parparchik/files.json".to_owned(),
            public: i == 0,
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let buckets = buckets();
    match route(path, &buckets) {
        Route::Download { bucket, key } => {
            assert!(
                validate_key(&key).is_ok(),
                "{path:?} gave a bad key {key:?}"
            );
            assert!(!key.chars().any(char::is_control), "{path:?}");
            assert!(
                !key.split('/').any(|s| s == "." || s == ".."),
                "{path:?}: dot segment in {key:?}"
            );
            // The key is exactly the rest of the path after the bucket segment, decoded once.
            let raw = path[1..].split_once('/').expect("a download has a key").1;
            assert_eq!(percent_decode(raw, false).as_deref(), Ok(key.as_str()));
            if let BucketRef::Named(i) = bucket {
                assert!(i < buckets.len());
                let segment = path[1..].split('/').next().unwrap_or_default();
                assert_eq!(
                    percent_decode(segment, false).as_deref(),
                    Ok(buckets[i].name.as_str()),
                    "{path:?} routed into bucket {i}"
                );
            }
        }
        Route::BadKey(reason) => assert!(!reason.is_empty()),
        _ => {}
    }
});
