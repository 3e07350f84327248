//! The SigV4 canonicalisers: canonical query, headers and path, and the URI encoders.
//! Input: NUL-separated fields, taken in pairs for queries and headers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parparchik::http::decode::percent_decode;
use parparchik::sigv4::canonical_request::{
    PathMode, canonical_headers, canonical_path, canonical_query,
};
use parparchik::sigv4::encode::{encode_component, encode_path, normalize_path};

/// Only the unreserved set, `%XX` with upper-case hex, and `extra`.
fn assert_encoded(s: &str, extra: &[u8], what: &str) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = &b[i + 1..i + 3];
                assert!(
                    hex.iter()
                        .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c)),
                    "{what}: lower-case or bad escape in {s:?}"
                );
                i += 3;
            }
            c => {
                assert!(
                    c.is_ascii_alphanumeric() || b"-._~".contains(&c) || extra.contains(&c),
                    "{what}: {:?} left unencoded in {s:?}",
                    c as char
                );
                i += 1;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let fields: Vec<&str> = text.split('\0').collect();

    // Encoders.
    for f in &fields {
        let c = encode_component(f);
        assert_encoded(&c, b"", "encode_component");
        assert_eq!(percent_decode(&c, false).as_deref(), Ok(*f));
        let p = encode_path(f);
        assert_encoded(&p, b"/", "encode_path");
        assert_eq!(percent_decode(&p, false).as_deref(), Ok(*f));
        assert_eq!(p.matches('/').count(), f.matches('/').count());
    }

    // Canonical query: pairs encoded, sorted, joined; never '+', never a lower-case escape.
    let pairs: Vec<(&str, &str)> = fields
        .chunks(2)
        .map(|c| (c[0], c.get(1).copied().unwrap_or("")))
        .collect();
    let q = canonical_query(&pairs);
    assert!(!q.contains('+'), "'+' in canonical query {q:?}");
    assert_encoded(&q, b"=&", "canonical_query");
    if !pairs.is_empty() {
        let parts: Vec<&str> = q.split('&').collect();
        assert_eq!(parts.len(), pairs.len());
        assert!(parts.iter().all(|p| p.matches('=').count() == 1));
        let keys: Vec<&str> = parts
            .iter()
            .map(|p| p.split('=').next().unwrap_or(""))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "unsorted {q:?}");
    }
    // Order of the input pairs does not matter.
    let mut reversed = pairs.clone();
    reversed.reverse();
    assert_eq!(canonical_query(&reversed), q);

    // Canonical headers: lower-case names, sorted, one line each. Checked for what HTTP
    // can carry (token names; values without CR or LF, see tests/it/fuzz_regressions.rs);
    // anything else only must not panic.
    let _ = canonical_headers(&pairs);
    let is_token = |n: &str| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    let headers: Vec<(&str, &str)> = pairs
        .iter()
        .copied()
        .filter(|(n, v)| is_token(n) && !v.contains(['\r', '\n']))
        .collect();
    let (lines, signed) = canonical_headers(&headers);
    let names: Vec<&str> = if signed.is_empty() {
        Vec::new()
    } else {
        signed.split(';').collect()
    };
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "signed headers not sorted and unique: {signed:?}"
    );
    assert!(
        names.iter().all(|n| *n == n.to_ascii_lowercase()),
        "{signed:?}"
    );
    if !headers.is_empty() {
        assert!(lines.ends_with('\n'));
        assert_eq!(
            lines.lines().count(),
            names.len(),
            "one line per name: {lines:?}"
        );
    }

    // Canonical path.
    for f in &fields {
        let s3 = canonical_path(f, PathMode::S3);
        assert!(s3.starts_with('/') || !f.starts_with('/') || f.is_empty());
        assert_encoded(&s3, b"/", "canonical_path S3");
        if !f.is_empty() {
            assert_eq!(
                percent_decode(&s3, false).as_deref(),
                Ok(*f),
                "S3 paths are encoded once, not normalised"
            );
        }
        let generic = canonical_path(f, PathMode::NormalizedDoubleEncoded);
        assert!(generic.starts_with('/'));
        assert_encoded(&generic, b"/", "canonical_path generic");
        let n = normalize_path(f);
        assert!(n.starts_with('/'));
        assert!(!n.contains("//"), "{f:?} normalised to {n:?}");
        assert!(
            !n.split('/').any(|s| s == "." || s == ".."),
            "{f:?} normalised to {n:?}"
        );
        assert_eq!(normalize_path(&n), n, "normalisation is idempotent");
    }
});
