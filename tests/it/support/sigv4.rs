//! Helpers shared by the SigV4 vector tests: reading the files of `sigv4-vectors/`, parsing
//! the raw HTTP requests of the AWS suites, and comparing texts with a readable failure.
//!
//! The data files are kept byte for byte as published, so every quirk is handled here:
//! files with or without a final newline, request lines holding raw spaces or raw UTF-8,
//! request lines without an `HTTP/1.1` suffix, header values folded over several lines, and
//! bodies without a final newline.

// Each test binary uses a different subset of these helpers.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// `sigv4-vectors/` at the root of the package.
pub(crate) fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sigv4-vectors")
}

/// The whole file as UTF-8.
pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// An expected text (canonical request, string to sign, signature, …). Some files of the
/// suites end with a line break and most do not; none of these texts can itself end with
/// one (a canonical request ends with the payload hash, a string to sign with a hash), so
/// trailing line breaks are dropped.
pub(crate) fn read_expected(path: &Path) -> String {
    read(path).trim_end_matches(['\n', '\r']).to_owned()
}

/// Whether `path` exists; for the optional files of a case.
pub(crate) fn exists(path: &Path) -> bool {
    path.is_file()
}

/// One request of the suites, as written in a `.req`, `.sreq` or `*request.txt` file.
#[derive(Clone, Debug)]
pub(crate) struct RawRequest {
    pub method: String,
    /// The path of the request target exactly as written: not decoded, not normalised.
    pub path: String,
    /// What follows the first `?` of the request target, exactly as written.
    pub query: Option<String>,
    /// Headers in file order; folded continuation lines are joined to their header.
    pub headers: Vec<(String, String)>,
    /// Everything after the blank line that ends the headers, byte for byte.
    pub body: String,
}

impl RawRequest {
    /// The value of the first header called `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The query as decoded `(key, value)` pairs, in request order.
    pub(crate) fn query_pairs(&self) -> Vec<(String, String)> {
        self.query.as_deref().map(decode_query).unwrap_or_default()
    }
}

/// Parses a raw HTTP/1.1 request of the suites.
///
/// - The request line is `METHOD SP target [SP HTTP/x.y]`. The target runs to the last
///   space before the version, so it may hold raw spaces (`GET /example space/ HTTP/1.1`);
///   one file (`double-url-encode/header-signed-request.txt`) has no version at all.
/// - A header line starting with a space or a tab continues the previous header: it is
///   joined to the previous value with a single space (`get-header-value-multiline`).
/// - The first empty line ends the headers; the rest of the file, unchanged, is the body.
///   A file may end right after the last header, with or without a newline.
pub(crate) fn parse_request(text: &str) -> RawRequest {
    let (head, body) = match text.find("\n\n") {
        Some(i) => (&text[..i], &text[i + 2..]),
        None => (text.trim_end_matches('\n'), ""),
    };
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let (method, rest) = request_line
        .split_once(' ')
        .unwrap_or_else(|| panic!("request line without a target: {request_line:?}"));
    let target = match rest.rsplit_once(' ') {
        Some((target, version)) if version.starts_with("HTTP/") => target,
        _ => rest,
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (target, None),
    };

    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let (_, value) = headers
                .last_mut()
                .unwrap_or_else(|| panic!("continuation line before any header: {line:?}"));
            let joined = format!("{} {}", value.trim_end(), line.trim());
            *value = joined;
        } else {
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("header line without a colon: {line:?}"));
            headers.push((name.trim().to_owned(), value.to_owned()));
        }
    }
    RawRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        headers,
        body: body.to_owned(),
    }
}

/// Percent-decodes `%XX` escapes; anything else (raw UTF-8, `+`, a stray `%`) stays as is.
pub(crate) fn percent_decode(input: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| panic!("{input:?} does not decode to UTF-8: {e}"))
}

/// Splits a raw query on `&` and the first `=` of each part, then decodes keys and values.
/// A part without `=` is a key with an empty value (`?lifecycle`).
pub(crate) fn decode_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Lower-case name, value trimmed with inner runs of blanks folded to one space, sorted by
/// name (stably, so repeated headers keep their order): two header lists that compare equal
/// this way are signed identically.
pub(crate) fn normalized_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .into_iter()
        .map(|(n, v)| {
            (
                n.trim().to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `Signature=…` of an `Authorization` header value.
pub(crate) fn signature_of(authorization: &str) -> &str {
    authorization
        .rsplit_once("Signature=")
        .map(|(_, s)| s.trim())
        .unwrap_or_else(|| panic!("no Signature= in {authorization:?}"))
}

/// `(access key id, date, region, service)` of the `Credential=…` of an `Authorization`
/// header value.
pub(crate) fn credential_of(authorization: &str) -> (&str, &str, &str, &str) {
    let (_, rest) = authorization
        .split_once("Credential=")
        .unwrap_or_else(|| panic!("no Credential= in {authorization:?}"));
    let credential = rest.split([',', ' ']).next().unwrap_or_default();
    let parts: Vec<&str> = credential.split('/').collect();
    match parts[..] {
        [key, date, region, service, "aws4_request"] => (key, date, region, service),
        _ => panic!("malformed credential {credential:?}"),
    }
}

/// Asserts that two texts are equal; on failure shows both, with escapes visible, and the
/// first line that differs.
#[track_caller]
pub(crate) fn assert_text_eq(case: &str, what: &str, expected: &str, actual: &str) {
    if expected == actual {
        return;
    }
    let mut msg = format!("{case}: {what} differs\n");
    let (mut e, mut a) = (expected.split('\n'), actual.split('\n'));
    for line in 1.. {
        match (e.next(), a.next()) {
            (None, None) => break,
            (el, al) if el == al => {}
            (el, al) => {
                let show =
                    |l: Option<&str>| l.map_or("(no such line)".to_owned(), |l| format!("{l:?}"));
                let _ = writeln!(
                    msg,
                    "first difference on line {line}:\n  expected: {}\n  actual:   {}",
                    show(el),
                    show(al)
                );
                break;
            }
        }
    }
    let _ = write!(msg, "--- expected\n{expected}\n--- actual\n{actual}\n---");
    panic!("{msg}");
}
