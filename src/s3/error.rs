//! What can go wrong talking to S3, sorted by what the caller must do about it.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum S3Error {
    /// The object (404 / `NoSuchKey`) does not exist. The only error that may make the
    /// service forget a file.
    NotFound,
    /// 403: wrong credentials, bad signature, or a policy refuses. Check the keys,
    /// region and clock; retrying the same request will not help.
    Denied { code: String, message: String },
    /// 412 or 409: a conditional write lost a race; re-read and try again.
    PreconditionFailed { status: u16, code: String },
    /// 5xx, `SlowDown`, a timeout, a refused or reset connection: S3 is (for now)
    /// unavailable. Retried with backoff; never a reason to forget a file.
    Unavailable { reason: String },
    /// Any other answer S3 refused the request with (400, 501, `NoSuchBucket`, …).
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    /// S3 answered 2xx with a body this client cannot read.
    InvalidResponse(String),
}

impl S3Error {
    pub fn is_not_found(&self) -> bool {
        matches!(self, S3Error::NotFound)
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, S3Error::Unavailable { .. })
    }

    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            S3Error::NotFound => "not_found",
            S3Error::Denied { .. } => "denied",
            S3Error::PreconditionFailed { .. } => "precondition_failed",
            S3Error::Unavailable { .. } => "unavailable",
            S3Error::Rejected { .. } => "rejected",
            S3Error::InvalidResponse(_) => "invalid_response",
        }
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            S3Error::NotFound => f.write_str("object not found"),
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
pub fn classify(status: u16, code: &str, message: &str) -> S3Error {
    let owned = || (code.to_owned(), message.to_owned());
    match (status, code) {
        (404, "" | "NoSuchKey") => S3Error::NotFound,
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
        assert!(classify(404, "", "").is_not_found());
        assert!(!classify(404, "NoSuchBucket", "").is_not_found());
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
