//! Percent-decoding, query parsing and the `filename` parameter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parparchik::http::decode::{
    MAX_KEY_BYTES, filename, parse_query, percent_decode, validate_key,
};
use parparchik::sigv4::encode::{encode_component, encode_path};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Decoding never panics; what it returns is at most as long as what it got.
    for plus in [false, true] {
        if let Ok(d) = percent_decode(text, plus) {
            assert!(d.len() <= text.len());
            if !text.contains('%') && (!plus || !text.contains('+')) {
                assert_eq!(d, text);
            }
        }
    }
    // Decoding undoes encoding, in paths and in queries alike.
    for plus in [false, true] {
        assert_eq!(
            percent_decode(&encode_component(text), plus).as_deref(),
            Ok(text)
        );
        assert_eq!(
            percent_decode(&encode_path(text), plus).as_deref(),
            Ok(text)
        );
    }
    // The key rules.
    if validate_key(text).is_ok() {
        assert!(!text.is_empty() && text.len() <= MAX_KEY_BYTES);
        assert!(!text.chars().any(char::is_control));
        assert!(!text.split('/').any(|s| s == "." || s == ".."));
    }
    // Queries.
    if let Ok(pairs) = parse_query(text) {
        assert!(pairs.len() <= text.split('&').count());
    }
    match filename(Some(text)) {
        Ok(key) => {
            assert!(validate_key(&key).is_ok(), "{text:?} gave {key:?}");
            let pairs = parse_query(text).expect("filename parsed the query");
            assert_eq!(pairs.iter().filter(|(k, _)| k == "filename").count(), 1);
        }
        Err(reason) => assert!(!reason.is_empty()),
    }
    // A filename that round-trips through the query encoding comes back unchanged.
    if validate_key(text).is_ok() {
        let query = format!("x=1&filename={}", encode_component(text));
        assert_eq!(filename(Some(&query)).as_deref(), Ok(text));
    }
});
