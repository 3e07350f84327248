//! `GET /browse/` and `/browse/<folder>/`: the registry as a directory a person can read,
//! to find a file's stable link. [`listing`] picks one page of a folder, [`render`]
//! writes it as HTML; both are pure. Nothing here asks S3: the page shows the registry
//! as the last sync (or request) left it.

pub(crate) mod listing;
pub(crate) mod render;

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::http::decode::{Reason, parse_query};

/// Longest filter accepted (bytes).
const MAX_FILTER: usize = 256;

/// The page's query: `q` (filter) and `after` (the cursor of the page).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Query {
    /// As typed, trimmed; `None` when absent or empty.
    pub filter: Option<String>,
    /// The last name of the previous page; `None` for the first page.
    pub after: Option<String>,
}

impl Query {
    pub(crate) fn parse(query: Option<&str>) -> Result<Query, Reason> {
        let mut q = Query::default();
        for (name, value) in parse_query(query.unwrap_or(""))? {
            match name.as_str() {
                "q" => {
                    if value.chars().any(char::is_control) {
                        return Err("filter contains control characters");
                    }
                    let v = value.trim();
                    if v.len() > MAX_FILTER {
                        return Err("filter longer than 256 bytes");
                    }
                    q.filter = (!v.is_empty()).then(|| v.to_owned());
                }
                "after" => {
                    if value.len() > crate::http::decode::MAX_KEY_BYTES {
                        return Err("'after' longer than 1024 bytes");
                    }
                    q.after = (!value.is_empty()).then_some(value);
                }
                // Unknown parameters (a tracker's, a cache buster) change nothing.
                _ => {}
            }
        }
        Ok(q)
    }
}

/// The folder a decoded `/browse/…` path names: `""` for the root, else the path with
/// exactly one trailing `/`.
pub(crate) fn folder(decoded: &str) -> String {
    if decoded.is_empty() || decoded.ends_with('/') {
        decoded.to_owned()
    } else {
        format!("{decoded}/")
    }
}

/// A fresh 128-bit nonce as 32 hex characters, for the page's `Content-Security-Policy`.
/// `RandomState` keys come from the OS's randomness; a counter keeps two nonces of one
/// process apart even within the same clock tick.
pub(crate) fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let state = std::hash::RandomState::new();
    let a = state.hash_one((n, now, 1u8));
    let b = state.hash_one((n, now, 2u8));
    format!("{a:016x}{b:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_and_refuse() {
        assert_eq!(Query::parse(None), Ok(Query::default()));
        assert_eq!(
            Query::parse(Some("q=+Report%20A+&after=a%2Fb%2F&utm=x")),
            Ok(Query {
                filter: Some("Report A".into()),
                after: Some("a/b/".into()),
            })
        );
        assert_eq!(Query::parse(Some("q=")).map(|q| q.filter), Ok(None));
        assert!(Query::parse(Some(&format!("after={}", "a".repeat(1025)))).is_err());
        for bad in ["q=%0a", "q=%zz", "after=%ff"] {
            assert!(Query::parse(Some(bad)).is_err(), "{bad}");
        }
        assert!(Query::parse(Some(&format!("q={}", "a".repeat(257)))).is_err());
    }

    #[test]
    fn folders_end_in_one_slash() {
        assert_eq!(folder(""), "");
        assert_eq!(folder("a/b"), "a/b/");
        assert_eq!(folder("a/b/"), "a/b/");
    }

    #[test]
    fn nonces_differ_and_are_hex() {
        let a = nonce();
        let b = nonce();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
