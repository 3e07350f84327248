//! S3 semantics that s3s parses but s3s-fs ignores: conditional GET/HEAD and
//! `encoding-type=url` in listings.

use hyper::HeaderMap;
use hyper::header::{ETAG, HeaderValue, LAST_MODIFIED};
use s3s::dto::{
    CommonPrefix, ETag, ETagCondition, EncodingType, Object, Timestamp, TimestampFormat,
};
use s3s::{S3Error, S3ErrorCode, S3Result};

/// The conditional headers of a GET or HEAD.
pub(crate) struct Preconditions {
    pub(crate) if_match: Option<ETagCondition>,
    pub(crate) if_none_match: Option<ETagCondition>,
    pub(crate) if_modified_since: Option<Timestamp>,
    pub(crate) if_unmodified_since: Option<Timestamp>,
}

/// Moves the conditional headers out of a `GetObjectInput`/`HeadObjectInput`.
macro_rules! take_preconditions {
    ($input:expr) => {
        $crate::compat::Preconditions {
            if_match: $input.if_match.take(),
            if_none_match: $input.if_none_match.take(),
            if_modified_since: $input.if_modified_since.take(),
            if_unmodified_since: $input.if_unmodified_since.take(),
        }
    };
}
pub(crate) use take_preconditions;

impl Preconditions {
    /// RFC 9110 §13.2.2 evaluation order, which S3 follows for GET and HEAD.
    pub(crate) fn check(
        &self,
        etag: Option<&ETag>,
        last_modified: Option<&Timestamp>,
    ) -> S3Result<()> {
        // HTTP dates have whole seconds; file times don't.
        let secs = |t: &Timestamp| time::OffsetDateTime::from(t.clone()).unix_timestamp();
        let modified = last_modified.map(secs);

        let failed = if let Some(cond) = &self.if_match {
            match cond {
                ETagCondition::Any => false,
                ETagCondition::ETag(want) => !etag.is_some_and(|e| e.strong_cmp(want)),
            }
        } else if let (Some(since), Some(m)) = (&self.if_unmodified_since, modified) {
            m > secs(since)
        } else {
            false
        };
        if failed {
            return Err(S3Error::with_message(
                S3ErrorCode::PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold",
            ));
        }

        let not_modified = if let Some(cond) = &self.if_none_match {
            match cond {
                ETagCondition::Any => true,
                ETagCondition::ETag(have) => etag.is_some_and(|e| e.weak_cmp(have)),
            }
        } else if let (Some(since), Some(m)) = (&self.if_modified_since, modified) {
            m <= secs(since)
        } else {
            false
        };
        if not_modified {
            // A 304 carries the validators, so caches can refresh their entry.
            let mut headers = HeaderMap::new();
            if let Some(v) = etag.and_then(|e| e.to_http_header().ok()) {
                headers.insert(ETAG, v);
            }
            if let Some(v) = last_modified.and_then(http_date) {
                headers.insert(LAST_MODIFIED, v);
            }
            let mut err = S3Error::new(S3ErrorCode::NotModified);
            err.set_headers(headers);
            return Err(err);
        }
        Ok(())
    }
}

fn http_date(t: &Timestamp) -> Option<HeaderValue> {
    let mut buf = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut buf).ok()?;
    HeaderValue::from_bytes(&buf).ok()
}

/// Applies `encoding-type=url` to a listing page if it was requested: keys,
/// common prefixes and the given echoed fields (prefix, delimiter, ...).
pub(crate) fn url_encode_listing<'a>(
    encoding: Option<&EncodingType>,
    objects: Option<&'a mut [Object]>,
    prefixes: Option<&'a mut [CommonPrefix]>,
    fields: impl IntoIterator<Item = &'a mut Option<String>>,
) {
    if encoding.is_none_or(|e| e.as_str() != EncodingType::URL) {
        return;
    }
    let objects = objects.into_iter().flatten().filter_map(|o| o.key.as_mut());
    let prefixes = prefixes
        .into_iter()
        .flatten()
        .filter_map(|p| p.prefix.as_mut());
    let fields = fields.into_iter().flatten();
    for s in objects.chain(prefixes).chain(fields) {
        *s = url_encode(s);
    }
}

/// Form-style encoding as AWS and MinIO apply it to listings: unreserved
/// characters and `/` stay, a space becomes `+`, every other byte `%XX`.
fn url_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b'/' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xF)]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encode_like_forms() {
        assert_eq!(url_encode("a b+c/d%e~f"), "a+b%2Bc/d%25e%7Ef");
        assert_eq!(url_encode("é"), "%C3%A9");
        assert_eq!(url_encode("plain-key_1.txt"), "plain-key_1.txt");
    }

    #[test]
    fn url_encoding_only_when_requested() {
        let mut objects = vec![Object {
            key: Some("a b".into()),
            ..Default::default()
        }];
        let mut prefix = Some("p q/".to_owned());
        url_encode_listing(None, Some(&mut objects), None, [&mut prefix]);
        assert_eq!(objects[0].key.as_deref(), Some("a b"));
        let url = EncodingType::from_static(EncodingType::URL);
        url_encode_listing(Some(&url), Some(&mut objects), None, [&mut prefix]);
        assert_eq!(objects[0].key.as_deref(), Some("a+b"));
        assert_eq!(prefix.as_deref(), Some("p+q/"));
    }

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from(time::OffsetDateTime::from_unix_timestamp(secs).unwrap())
    }

    fn none() -> Preconditions {
        Preconditions {
            if_match: None,
            if_none_match: None,
            if_modified_since: None,
            if_unmodified_since: None,
        }
    }

    fn outcome(c: &Preconditions) -> Option<S3ErrorCode> {
        let etag = ETag::Strong("abc".into());
        c.check(Some(&etag), Some(&ts(1_000)))
            .err()
            .map(|e| e.code().clone())
    }

    #[test]
    fn precondition_order() {
        let same = || Some(ETagCondition::ETag(ETag::Strong("abc".into())));
        let other = || Some(ETagCondition::ETag(ETag::Strong("zzz".into())));
        let failed = Some(S3ErrorCode::PreconditionFailed);
        let not_modified = Some(S3ErrorCode::NotModified);

        assert_eq!(outcome(&none()), None);
        assert_eq!(
            outcome(&Preconditions {
                if_match: other(),
                ..none()
            }),
            failed
        );
        assert_eq!(
            outcome(&Preconditions {
                if_match: Some(ETagCondition::Any),
                ..none()
            }),
            None
        );
        // If-Match wins over If-Unmodified-Since.
        let c = Preconditions {
            if_match: same(),
            if_unmodified_since: Some(ts(10)),
            ..none()
        };
        assert_eq!(outcome(&c), None);
        assert_eq!(
            outcome(&Preconditions {
                if_unmodified_since: Some(ts(10)),
                ..none()
            }),
            failed
        );
        assert_eq!(
            outcome(&Preconditions {
                if_none_match: same(),
                ..none()
            }),
            not_modified
        );
        // If-None-Match wins over If-Modified-Since.
        let c = Preconditions {
            if_none_match: other(),
            if_modified_since: Some(ts(5_000)),
            ..none()
        };
        assert_eq!(outcome(&c), None);
        assert_eq!(
            outcome(&Preconditions {
                if_modified_since: Some(ts(1_000)),
                ..none()
            }),
            not_modified
        );
        assert_eq!(
            outcome(&Preconditions {
                if_modified_since: Some(ts(999)),
                ..none()
            }),
            None
        );
    }
}
