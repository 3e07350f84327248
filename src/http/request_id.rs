//! Request ids: the client's `X-Request-Id` when it is a sane token, else one made here;
//! returned in the answer's `X-Request-Id` and written in the request's log line, so a
//! client's complaint can be found in the logs.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) const HEADER: &str = "x-request-id";

/// Longest id taken from a client.
pub const MAX_LEN: usize = 128;

/// A sane id: 1 to [`MAX_LEN`] characters of `A-Z a-z 0-9 . _ : -`. Anything else (spaces,
/// quotes, control characters, non-ASCII, an overlong value) is replaced by a generated
/// id rather than copied into logs and answers.
pub fn accept(value: &[u8]) -> Option<&str> {
    let sane = (1..=MAX_LEN).contains(&value.len())
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if sane {
        std::str::from_utf8(value).ok()
    } else {
        None
    }
}

/// Makes ids unique within the process and, with a random prefix, across processes:
/// `<16 hex digits>-<counter in hex>`. One atomic increment per id.
pub struct RequestIds {
    prefix: u64,
    next: AtomicU64,
}

impl RequestIds {
    /// A random prefix: std's `RandomState` is seeded from the OS's randomness, so no
    /// crate is needed for 64 unpredictable-enough bits (ids are not secrets).
    pub fn new() -> RequestIds {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let prefix = std::hash::RandomState::new().hash_one((std::process::id(), now));
        RequestIds::with_prefix(prefix)
    }

    /// A fixed prefix (tests, reproducible ids); counting starts at 1.
    pub fn with_prefix(prefix: u64) -> RequestIds {
        RequestIds {
            prefix,
            next: AtomicU64::new(1),
        }
    }

    /// `<prefix as 16 hex digits>-<counter in hex>`.
    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}-{n:x}", self.prefix)
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_tokens_are_kept_and_others_refused() {
        for ok in [
            "a",
            "0123-abcd",
            "req.1:2_3-4",
            "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        ] {
            assert_eq!(accept(ok.as_bytes()), Some(ok));
        }
        assert!(accept("x".repeat(MAX_LEN).as_bytes()).is_some());
        for bad in [
            "".to_owned(),
            "x".repeat(MAX_LEN + 1),
            "a b".into(),
            "a\"b".into(),
            "a\nb".into(),
            "<script>".into(),
            "id=1;".into(),
            "ü".into(),
            "a/b".into(),
        ] {
            assert_eq!(accept(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(accept(b"\xff\xfe"), None);
    }

    #[test]
    fn generated_ids_are_unique_sane_and_prefixed() {
        let ids = RequestIds::with_prefix(0xabc);
        let a = ids.next();
        let b = ids.next();
        assert_eq!(a, "0000000000000abc-1");
        assert_eq!(b, "0000000000000abc-2");
        let other = RequestIds::new();
        let c = other.next();
        assert!(accept(c.as_bytes()).is_some(), "{c}");
        assert_ne!(&c[..16], &RequestIds::new().next()[..16], "random prefixes");
        let many: std::collections::HashSet<String> = (0..10_000).map(|_| ids.next()).collect();
        assert_eq!(many.len(), 10_000);
    }
}
