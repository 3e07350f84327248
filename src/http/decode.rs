//! Percent-decoding of paths and query strings, and the contract's key rules. Pure.

/// Why a path or query value was refused (the text of the 400 answer).
pub type Reason = &'static str;

use std::borrow::Cow;

/// Longest key accepted, in bytes after decoding (S3's own limit).
pub const MAX_KEY_BYTES: usize = 1024;

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes once. `plus_is_space` is for query strings (form encoding);
/// in paths a `+` stays a `+`.
/// Borrows the input when there is nothing to decode (the common case on the redirect
/// path, which then allocates nothing here).
pub fn percent_decode(input: &str, plus_is_space: bool) -> Result<Cow<'_, str>, Reason> {
    let escaped = input.contains('%') || (plus_is_space && input.contains('+'));
    if !escaped {
        return Ok(Cow::Borrowed(input));
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let (Some(h), Some(l)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err("invalid percent-encoding");
                };
                out.push(h << 4 | l);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| "not valid UTF-8 after percent-decoding")
}

/// The contract's key rules: not empty, at most 1024 bytes, no control characters, no
/// `.` or `..` segment.
pub fn validate_key(key: &str) -> Result<(), Reason> {
    if key.is_empty() {
        return Err("empty key");
    }
    if key.len() > MAX_KEY_BYTES {
        return Err("key longer than 1024 bytes");
    }
    if key.chars().any(char::is_control) {
        return Err("key contains control characters");
    }
    if key.split('/').any(|s| s == "." || s == "..") {
        return Err("key contains a '.' or '..' segment");
    }
    Ok(())
}

/// Decoded `(name, value)` pairs of a query string.
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, Reason> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((
                percent_decode(k, true)?.into_owned(),
                percent_decode(v, true)?.into_owned(),
            ))
        })
        .collect()
}

/// The `filename` parameter: present once and not empty.
pub fn filename(query: Option<&str>) -> Result<String, Reason> {
    const MISSING: Reason = "missing 'filename' query parameter";
    let pairs = parse_query(query.unwrap_or(""))?;
    let mut found = pairs
        .into_iter()
        .filter(|(k, _)| k == "filename")
        .map(|(_, v)| v);
    let first = found.next().ok_or(MISSING)?;
    if found.next().is_some() {
        return Err("duplicate 'filename' query parameter");
    }
    if first.is_empty() {
        return Err(MISSING);
    }
    validate_key(&first)?;
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_once_and_keeps_plus_in_paths() {
        assert_eq!(percent_decode("a%20b+c", false).unwrap(), "a b+c");
        assert_eq!(percent_decode("a%20b+c", true).unwrap(), "a b c");
        assert_eq!(percent_decode("%2541", false).unwrap(), "%41");
        assert_eq!(percent_decode("%E1%88%B4", false).unwrap(), "ሴ");
        for bad in ["%", "%4", "%zz", "a%g1"] {
            assert_eq!(
                percent_decode(bad, false),
                Err("invalid percent-encoding"),
                "{bad}"
            );
        }
        assert!(percent_decode("%ff", false).is_err());
    }

    #[test]
    fn key_rules() {
        assert!(validate_key("dir/a b+c~(1)!.txt").is_ok());
        assert!(validate_key("..hidden/x..y").is_ok());
        let too_long = "k".repeat(1025);
        for bad in [
            "",
            "a/../b",
            "..",
            "./a",
            "a/.",
            "a\u{0}b",
            "a\nb",
            "a\u{7f}",
            too_long.as_str(),
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        assert!(validate_key(&"k".repeat(1024)).is_ok());
    }

    #[test]
    fn filename_parameter() {
        assert_eq!(filename(Some("filename=a%20b+c")).unwrap(), "a b c");
        assert_eq!(filename(Some("x=1&filename=a%2Bb")).unwrap(), "a+b");
        assert_eq!(filename(None), Err("missing 'filename' query parameter"));
        assert_eq!(
            filename(Some("filename=")),
            Err("missing 'filename' query parameter")
        );
        assert_eq!(
            filename(Some("filename=a&filename=b")),
            Err("duplicate 'filename' query parameter")
        );
        assert_eq!(
            filename(Some("filename=%zz")),
            Err("invalid percent-encoding")
        );
        assert!(filename(Some("filename=%00")).is_err());
    }
}
