//! What can go wrong talking to S3, sorted by what the caller must do about it.
//!
//! The one rule that matters most: only [`S3Error::NotFound`] may make the service
//! forget a file, and it is produced only when S3 has *proved* the bucket exists and
//! the key does not (an S3 `NoSuchKey` error body, or a bodiless HEAD 404 while the
//! bucket is known to answer). Everything else that looks like a 404 (an ingress
//! default backend, a wrong path prefix, `NoSuchBucket`) is [`S3Error::Unproven`].
//! The S3 client is the only producer, with one exception above it: `coordinator::locate`
//! answers `NotFound` without asking for a bucket's own objects (its manifest and
//! journal records), which are never files and so are never registered to forget.

use std::fmt;

use crate::metrics::S3Outcome;

/// A failed S3 call, by what the caller must do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum S3Error {
    /// S3 proved the object does not exist while its bucket does. The only error that
    /// may make the service forget a file.
    NotFound,
    /// An answer that proves nothing about the key: a 404 without an S3 error code,
    /// `NoSuchBucket`, or a body that is not S3's. Treated as "storage unavailable" (the
    /// registry and manifests stay as they are) but not retried: the same request would
    /// get the same answer. Check `S3_ENDPOINT`, the bucket names and any proxy between.
    Unproven {
        /// The HTTP status.
        status: u16,
        /// What the answer was instead (for the log and `/status`).
        reason: String,
    },
    /// S3 refused this one key (e.g. a 500 for a key a file-backed S3 cannot map) while
    /// the bucket itself answers: the key's own answer, not an outage, so not retried.
    KeyRejected {
        /// The HTTP status.
        status: u16,
        /// S3's error code, if the body had one.
        code: String,
    },
    /// The object is larger than the caller accepts; its body was not read whole.
    TooLarge {
        /// The caller's limit, in bytes.
        limit: u64,
        /// The object's `ETag` header (empty if none).
        etag: String,
    },
    /// Too many S3 calls in flight, or the circuit breaker is open after repeated
    /// failures: the call was not sent. Answer 503 with `Retry-After`.
    Overloaded {
        /// Which guard shed the call.
        reason: String,
    },
    /// 403: wrong credentials, bad signature, or a policy refuses. Check the keys,
    /// region and clock; retrying the same request will not help.
    Denied {
        /// S3's error code (`AccessDenied`, `SignatureDoesNotMatch`, …).
        code: String,
        /// S3's error message.
        message: String,
    },
    /// 412 or 409: a conditional write lost a race; re-read and try again.
    PreconditionFailed {
        /// 412 or 409.
        status: u16,
        /// S3's error code.
        code: String,
    },
    /// 5xx, `SlowDown`, a timeout, a refused or reset connection: S3 is (for now)
    /// unavailable. Retried with backoff; never a reason to forget a file.
    Unavailable {
        /// The status, error code or connection failure met.
        reason: String,
    },
    /// Any other answer S3 refused the request with (400, 501, `NoSuchBucket`, …).
    Rejected {
        /// The HTTP status.
        status: u16,
        /// S3's error code.
        code: String,
        /// S3's error message.
        message: String,
    },
    /// S3 answered 2xx with a body this client cannot read.
    InvalidResponse(String),
}

impl S3Error {
    /// Whether S3 proved the key missing: the only error that may make a file forgotten.
    pub fn is_not_found(&self) -> bool {
        matches!(self, S3Error::NotFound)
    }

    /// The transient class: S3 could not answer now (down, slow, or shed by the cap or
    /// the circuit breaker); worth retrying later.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            S3Error::Unavailable { .. } | S3Error::Overloaded { .. }
        )
    }

    /// Whether this failure says something about S3 as a whole (an outage, a wrong
    /// endpoint, refused credentials), as opposed to one key's own answer.
    pub fn is_storage_failure(&self) -> bool {
        !matches!(
            self,
            S3Error::NotFound
                | S3Error::KeyRejected { .. }
                | S3Error::PreconditionFailed { .. }
                | S3Error::TooLarge { .. }
        )
    }

    /// How a call that failed this way is counted. A body refused as too large came
    /// with a successful answer, so the call counts as `ok`.
    pub fn outcome(&self) -> S3Outcome {
        match self {
            S3Error::NotFound => S3Outcome::NotFound,
            S3Error::Unproven { .. } => S3Outcome::Unproven,
            S3Error::KeyRejected { .. } => S3Outcome::KeyRejected,
            S3Error::Overloaded { .. } => S3Outcome::Overloaded,
            S3Error::TooLarge { .. } => S3Outcome::Ok,
            S3Error::Denied { .. } => S3Outcome::Denied,
            S3Error::PreconditionFailed { .. } => S3Outcome::PreconditionFailed,
            S3Error::Unavailable { .. } => S3Outcome::Unavailable,
            S3Error::Rejected { .. } => S3Outcome::Rejected,
            S3Error::InvalidResponse(_) => S3Outcome::InvalidResponse,
        }
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            S3Error::NotFound => f.write_str("object not found"),
            S3Error::Unproven { status, reason } => write!(
                f,
                "S3 endpoint answered {status} without proving anything ({reason}); check S3_ENDPOINT, the bucket names and any proxy in between"
            ),
            S3Error::KeyRejected { status, code } => {
                write!(
                    f,
                    "S3 refused this key ({status} {code}) while its bucket answers"
                )
            }
            S3Error::Overloaded { reason } => write!(f, "S3 calls shed: {reason}"),
            S3Error::TooLarge { limit, .. } => {
                write!(f, "object larger than the {limit} bytes accepted")
            }
            S3Error::Denied { code, message } => write!(
                f,
                "access denied by S3 ({code}: {message}); check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and the clock"
            ),
            S3Error::PreconditionFailed { status, code } => {
                write!(
                    f,
                    "precondition failed ({status} {code}): the object changed meanwhile"
                )
            }
            S3Error::Unavailable { reason } => write!(f, "S3 unavailable: {reason}"),
            S3Error::Rejected {
                status,
                code,
                message,
            } => {
                write!(f, "S3 refused the request ({status} {code}: {message})")
            }
            S3Error::InvalidResponse(why) => write!(f, "unreadable S3 response: {why}"),
        }
    }
}

impl std::error::Error for S3Error {}

/// Classifies an S3 error answer from its status and (possibly empty) error code.
///
/// A 404 without an error code is [`S3Error::Unproven`] here: for a HEAD (which has no
/// body) the client turns it into `NotFound` only once the bucket is known to answer.
pub(crate) fn classify(status: u16, code: &str, message: &str) -> S3Error {
    let owned = || (code.to_owned(), message.to_owned());
    match (status, code) {
        (404, "NoSuchKey") => S3Error::NotFound,
        (404, "") => S3Error::Unproven {
            status,
            reason: "a 404 without an S3 error code".into(),
        },
        (_, "NoSuchBucket") => S3Error::Unproven {
            status,
            reason: format!("NoSuchBucket: {message}"),
        },
        (403, _) => {
            let (code, message) = owned();
            S3Error::Denied { code, message }
        }
        // 501 means "this server lacks the feature" (e.g. conditional writes): retrying
        // cannot help, so it is not "unavailable".
        (501, _) => {
            let (code, message) = owned();
            S3Error::Rejected {
                status,
                code,
                message,
            }
        }
        (409 | 412, _) => S3Error::PreconditionFailed {
            status,
            code: code.to_owned(),
        },
        (500..=599, _)
        | (_, "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable") => {
            S3Error::Unavailable {
                reason: if code.is_empty() {
                    format!("HTTP {status}")
                } else {
                    format!("HTTP {status} {code}: {message}")
                },
            }
        }
        _ => {
            let (code, message) = owned();
            S3Error::Rejected {
                status,
                code,
                message,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_key_is_not_found() {
        assert!(classify(404, "NoSuchKey", "").is_not_found());
        // A bare 404 (an ingress default backend, a wrong prefix) proves nothing.
        assert!(matches!(
            classify(404, "", ""),
            S3Error::Unproven { status: 404, .. }
        ));
        assert!(matches!(
            classify(404, "NoSuchBucket", ""),
            S3Error::Unproven { .. }
        ));
        assert!(classify(404, "NoSuchBucket", "").is_storage_failure());
        assert!(!classify(404, "NoSuchKey", "").is_storage_failure());
        assert!(matches!(
            classify(403, "SignatureDoesNotMatch", "m"),
            S3Error::Denied { .. }
        ));
        assert!(matches!(
            classify(412, "PreconditionFailed", ""),
            S3Error::PreconditionFailed { .. }
        ));
        assert!(matches!(
            classify(409, "ConditionalRequestConflict", ""),
            S3Error::PreconditionFailed { .. }
        ));
        assert!(classify(503, "SlowDown", "").is_unavailable());
        assert!(classify(500, "", "").is_unavailable());
        assert!(matches!(
            classify(501, "NotImplemented", ""),
            S3Error::Rejected { status: 501, .. }
        ));
        assert!(matches!(
            classify(400, "InvalidArgument", ""),
            S3Error::Rejected { .. }
        ));
    }
}
