//! Step 1: the canonical request.

use std::fmt;

use super::encode::{encode_path, normalize_path, push_encoded_path};

/// How the request path becomes the canonical path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathMode {
    /// S3: the path is the decoded resource path (`/bucket/a b.txt`), encoded once per byte
    /// with `/` kept; no dot-segment removal, since `a/../b` is a legal object key.
    S3,
    /// The generic AWS services and the official suite: the path is the request-target as
    /// sent; dot segments and empty segments are removed, then it is encoded again, so an
    /// escape already present (`%3A`) is signed double-encoded (`%253A`).
    NormalizedDoubleEncoded,
}

/// Whether `x-amz-content-sha256` is sent and signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentSha256Header {
    /// S3 requires it on every header-signed request.
    Include,
    /// The generic services do not.
    Omit,
}

/// Where a session token goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionTokenMode {
    /// Signed, as S3 and STS expect.
    Signed,
    /// Added after signing, unsigned (a few legacy services; kept for the official suite).
    AppendedUnsigned,
}

/// How the signer canonicalises and which headers it adds. The service uses [`Mode::S3`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    /// How the path is canonicalised.
    pub path: PathMode,
    /// Whether `x-amz-content-sha256` is sent and signed.
    pub content_sha256: ContentSha256Header,
    /// Where a session token goes.
    pub session_token: SessionTokenMode,
}

impl Mode {
    /// S3's rules: the path encoded once, `x-amz-content-sha256` signed.
    pub const S3: Mode = Mode {
        path: PathMode::S3,
        content_sha256: ContentSha256Header::Include,
        session_token: SessionTokenMode::Signed,
    };
    /// The other AWS services' rules (the official test suite): the path normalised and
    /// encoded twice, no `x-amz-content-sha256`.
    pub const GENERIC: Mode = Mode {
        path: PathMode::NormalizedDoubleEncoded,
        content_sha256: ContentSha256Header::Omit,
        session_token: SessionTokenMode::Signed,
    };
}

/// The last line of the canonical request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadHash<'a> {
    /// `UNSIGNED-PAYLOAD`: allowed by S3 only, and what presigned URLs use.
    Unsigned,
    /// Lower-case hex SHA-256 of the body.
    Sha256(&'a str),
}

impl PayloadHash<'_> {
    /// The text that ends the canonical request.
    pub fn as_str(&self) -> &str {
        match self {
            PayloadHash::Unsigned => "UNSIGNED-PAYLOAD",
            PayloadHash::Sha256(h) => h,
        }
    }
}

/// The canonical request, field by field; `Display` gives the exact text that is hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanonicalRequest {
    /// `GET`, `PUT`, … as given.
    pub method: String,
    /// The canonical path, encoded per [`PathMode`].
    pub path: String,
    /// `name=value` pairs encoded and sorted, joined by `&`.
    pub query: String,
    /// One `name:value\n` line per header.
    pub headers: String,
    /// `name;name;…`
    pub signed_headers: String,
    pub(crate) payload_hash: String,
}

impl fmt::Display for CanonicalRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.method,
            self.path,
            self.query,
            self.headers,
            self.signed_headers,
            self.payload_hash
        )
    }
}

impl CanonicalRequest {
    /// Hex SHA-256 of the `Display` text, without building it.
    pub fn sha256_hex(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for (i, part) in [
            &self.method,
            &self.path,
            &self.query,
            &self.headers,
            &self.signed_headers,
            &self.payload_hash,
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                h.update(b"\n");
            }
            h.update(part.as_bytes());
        }
        super::hex32(&h.finalize().into())
    }
}

/// The canonical form of the path under `mode`.
pub fn canonical_path(path: &str, mode: PathMode) -> String {
    match mode {
        PathMode::S3 => {
            if path.is_empty() {
                "/".to_owned()
            } else {
                encode_path(path)
            }
        }
        PathMode::NormalizedDoubleEncoded => {
            let normalized = normalize_path(path);
            let mut out = String::with_capacity(normalized.len() + 8);
            push_encoded_path(&mut out, &normalized);
            out
        }
    }
}

/// The canonical query from decoded `(key, value)` pairs: each encoded with the unreserved
/// set, sorted by encoded key then encoded value, `key=` for an empty value.
pub fn canonical_query(params: &[(&str, &str)]) -> String {
    use super::encode::encode_component_into;
    let mut buf =
        String::with_capacity(params.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() * 2);
    let mut spans: Vec<(usize, usize, usize)> = Vec::with_capacity(params.len());
    for (k, v) in params {
        let start = buf.len();
        encode_component_into(&mut buf, k);
        let mid = buf.len();
        encode_component_into(&mut buf, v);
        spans.push((start, mid, buf.len()));
    }
    spans.sort_unstable_by(|a, b| {
        (&buf[a.0..a.1], &buf[a.1..a.2]).cmp(&(&buf[b.0..b.1], &buf[b.1..b.2]))
    });
    let mut out = String::with_capacity(buf.len() + 2 * params.len());
    for (i, (s, m, e)) in spans.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&buf[*s..*m]);
        out.push('=');
        out.push_str(&buf[*m..*e]);
    }
    out
}

/// Trims a header value and folds each run of spaces into one.
fn fold_value(out: &mut String, value: &str) {
    let mut pending_space = false;
    for ch in value.trim().chars() {
        if ch == ' ' || ch == '\t' {
            pending_space = true;
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(ch);
        }
    }
}

/// Canonical header lines and the signed-headers list. Names are lower-cased and sorted
/// (stably, so repeated headers keep their order and are joined with `,`).
pub fn canonical_headers(headers: &[(&str, &str)]) -> (String, String) {
    let mut lowered: Vec<(String, &str)> = headers
        .iter()
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), *value))
        .collect();
    lowered.sort_by(|a, b| a.0.cmp(&b.0));

    let mut lines = String::with_capacity(headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
    let mut signed = String::new();
    let mut previous: Option<&str> = None;
    for (name, value) in &lowered {
        if previous == Some(name.as_str()) {
            // Repeated header: same line, values joined in request order.
            lines.pop();
            lines.push(',');
        } else {
            if previous.is_some() {
                signed.push(';');
            }
            signed.push_str(name);
            lines.push_str(name);
            lines.push(':');
        }
        fold_value(&mut lines, value);
        lines.push('\n');
        previous = Some(name.as_str());
    }
    (lines, signed)
}

/// Builds the canonical request. `headers` must already hold every header to be signed
/// (`host`, `x-amz-date`, …); `query` holds decoded pairs.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    payload: PayloadHash<'_>,
    mode: PathMode,
) -> CanonicalRequest {
    canonical_request_with(
        method,
        path,
        query,
        canonical_headers(headers),
        payload,
        mode,
    )
}

pub(crate) fn canonical_request_with(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    (headers, signed_headers): (String, String),
    payload: PayloadHash<'_>,
    mode: PathMode,
) -> CanonicalRequest {
    CanonicalRequest {
        method: method.to_owned(),
        path: canonical_path(path, mode),
        query: canonical_query(query),
        headers,
        signed_headers,
        payload_hash: payload.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_sorted_by_encoded_key_then_value() {
        let q = canonical_query(&[
            ("b", "2"),
            ("a", "z"),
            ("a", "y"),
            ("c", ""),
            ("sp ace", "+"),
        ]);
        assert_eq!(q, "a=y&a=z&b=2&c=&sp%20ace=%2B");
    }

    #[test]
    fn headers_are_lowercased_sorted_trimmed_folded_and_joined() {
        let (lines, signed) = canonical_headers(&[
            ("X-B", "  one   two  "),
            ("Host", "127.0.0.1:9000"),
            ("x-b", "three"),
        ]);
        assert_eq!(lines, "host:127.0.0.1:9000\nx-b:one two,three\n");
        assert_eq!(signed, "host;x-b");
    }

    #[test]
    fn s3_paths_are_encoded_once_and_never_normalised() {
        assert_eq!(
            canonical_path("/b/a/../c %2B.txt", PathMode::S3),
            "/b/a/../c%20%252B.txt"
        );
    }

    #[test]
    fn generic_paths_are_normalised_and_double_encoded() {
        assert_eq!(
            canonical_path("/x/../a%3Ab", PathMode::NormalizedDoubleEncoded),
            "/a%253Ab"
        );
    }

    #[test]
    fn display_is_the_hashed_text() {
        let c = canonical_request(
            "GET",
            "/",
            &[],
            &[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
            ],
            PayloadHash::Sha256(crate::sigv4::EMPTY_SHA256),
            PathMode::S3,
        );
        assert_eq!(
            c.to_string(),
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
