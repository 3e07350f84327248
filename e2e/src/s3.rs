//! Reading manifests, and encoders for object keys in paths and values in queries, as a
//! client builds the requests it sends to the service.

/// The keys of a manifest's entries (`files` array, or a bare array).
pub fn manifest_keys(manifest: Option<&serde_json::Value>) -> Vec<String> {
    let Some(m) = manifest else {
        return Vec::new();
    };
    let files = if m.is_array() { m } else { &m["files"] };
    files
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["key"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Percent-encodes everything outside the unreserved set `A-Z a-z 0-9 - . _ ~`,
/// keeping `/` when `keep_slash` (an object key in a path).
pub fn percent_encode(input: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len() * 3 / 2);
    for b in input.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/');
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A key as a path: each segment percent-encoded.
pub fn path_encode(key: &str) -> String {
    percent_encode(key, true)
}

/// `application/x-www-form-urlencoded` (a space is `+`), for query values.
pub fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(path_encode("a b/c+d%25~é"), "a%20b/c%2Bd%2525~%C3%A9");
        assert_eq!(percent_encode("a/b", false), "a%2Fb");
        assert_eq!(form_encode("a b+c/%"), "a+b%2Bc%2F%25");
    }
}
