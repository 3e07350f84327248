//! The URLs handed to clients: plain for public buckets, presigned for private ones.
//! Built against the external endpoint (what clients reach), never the internal one.

use std::fmt;

use time::OffsetDateTime;

use super::endpoint::Endpoint;
use crate::credentials::CredentialsHandle;
use crate::sigv4::{Credentials, PayloadHash, PresignError, Request};

/// Builds the URLs clients are redirected to, against the external endpoint.
pub struct DownloadUrls {
    external: Endpoint,
    credentials: CredentialsHandle,
}

/// Why a presigned URL could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlError {
    /// The signer refused (an expiry out of range).
    Presign(PresignError),
    /// No credentials valid long enough to sign with (expired, not fetched yet, …).
    Credentials(String),
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::Presign(e) => e.fmt(f),
            UrlError::Credentials(e) => write!(f, "cannot presign: {e}"),
        }
    }
}

impl std::error::Error for UrlError {}

/// The instant a URL's validity counts from: `X-Amz-Date` has whole seconds, so S3
/// counts `X-Amz-Expires` from the start of the signing second.
fn signed_at(now: OffsetDateTime) -> OffsetDateTime {
    now.replace_nanosecond(0).unwrap_or(now)
}

impl DownloadUrls {
    /// URLs signed with fixed `credentials` for `region` (tools, tests).
    pub fn new(external: Endpoint, region: &str, credentials: Credentials) -> DownloadUrls {
        DownloadUrls::with_credentials(external, CredentialsHandle::fixed(credentials, region))
    }

    /// URLs signed with whatever `credentials` holds at the time of signing.
    pub fn with_credentials(external: Endpoint, credentials: CredentialsHandle) -> DownloadUrls {
        DownloadUrls {
            external,
            credentials,
        }
    }

    /// The lifetime a URL signed at `now` gets: `wanted`, cut to what is left of
    /// temporary credentials (S3 refuses a URL once its credentials have expired, so a
    /// longer `X-Amz-Expires` would only be a lie). `None` when nothing can be signed.
    pub fn lifetime(&self, wanted: u64, now: OffsetDateTime) -> Option<u64> {
        let session = self.credentials.session().ok()?;
        let secs = match session.remaining(signed_at(now)) {
            Some(left) => wanted.min(left.as_secs()),
            None => wanted,
        };
        (secs > 0).then_some(secs)
    }

    /// `<external endpoint>/<bucket>/<key>` with the key percent-encoded per segment.
    pub fn public_url(&self, bucket: &str, key: &str) -> String {
        self.external.target(bucket, key).url("")
    }

    /// A URL valid `expires` seconds (less if the credentials expire sooner, see
    /// [`DownloadUrls::lifetime`]) for `method` (GET or HEAD) on one object.
    pub fn presigned_url(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        expires: u64,
        now: OffsetDateTime,
    ) -> Result<String, UrlError> {
        let session = self
            .credentials
            .session()
            .map_err(|e| UrlError::Credentials(e.to_string()))?;
        let expires = match session.remaining(signed_at(now)) {
            Some(left) if left.as_secs() == 0 => {
                return Err(UrlError::Credentials(
                    "the credentials expire in less than a second".into(),
                ));
            }
            Some(left) => expires.min(left.as_secs()),
            None => expires,
        };
        let target = self.external.target(bucket, key);
        let presigned = session
            .signer()
            .presign(
                &Request {
                    method,
                    host: &target.host,
                    path: &target.path,
                    query: &[],
                    headers: &[],
                },
                PayloadHash::Unsigned,
                expires,
                now,
            )
            .map_err(UrlError::Presign)?;
        Ok(target.url(&presigned.query))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_encode_keys_per_segment() {
        let u = DownloadUrls::new(
            Endpoint::parse("localhost:9000").unwrap(),
            "us-east-1",
            Credentials::new("a", "b", None),
        );
        assert_eq!(
            u.public_url("public-bucket", "dir/a b+ሴ.txt"),
            "http://localhost:9000/public-bucket/dir/a%20b%2B%E1%88%B4.txt"
        );
    }

    #[test]
    fn presigned_urls_name_the_external_host_and_method() {
        let u = DownloadUrls::new(
            Endpoint::parse("http://localhost:9000").unwrap(),
            "us-east-1",
            Credentials::new("AKID", "secret", Some("tok".into())),
        );
        let now = time::macros::datetime!(2026-05-05 10:00:00 UTC);
        let get = u
            .presigned_url("GET", "private-bucket", "a b", 3600, now)
            .unwrap();
        let head = u
            .presigned_url("HEAD", "private-bucket", "a b", 3600, now)
            .unwrap();
        assert!(get.starts_with("http://localhost:9000/private-bucket/a%20b?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20260505%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260505T100000Z&X-Amz-Expires=3600&X-Amz-Security-Token=tok&X-Amz-SignedHeaders=host&X-Amz-Signature="));
        assert_ne!(get, head);
    }

    #[test]
    fn presigned_urls_never_outlive_their_credentials() {
        let now = OffsetDateTime::now_utc();
        let u = DownloadUrls::with_credentials(
            Endpoint::parse("http://localhost:9000").unwrap(),
            CredentialsHandle::fixed_until(
                Credentials::new("ASIA", "secret", Some("tok".into())),
                now + time::Duration::seconds(100),
                "us-east-1",
            ),
        );
        let url = u.presigned_url("GET", "b", "k", 3600, now).unwrap();
        assert!(url.contains("&X-Amz-Expires=100&"), "{url}");
        assert_eq!(u.lifetime(3600, now), Some(100));
        assert_eq!(u.lifetime(60, now), Some(60));
        let short = u.presigned_url("GET", "b", "k", 60, now).unwrap();
        assert!(short.contains("&X-Amz-Expires=60&"), "{short}");

        let expired = DownloadUrls::with_credentials(
            Endpoint::parse("http://localhost:9000").unwrap(),
            CredentialsHandle::fixed_until(
                Credentials::new("ASIA", "secret", Some("tok".into())),
                now - time::Duration::seconds(1),
                "us-east-1",
            ),
        );
        let e = expired
            .presigned_url("GET", "b", "k", 3600, now)
            .unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
        assert_eq!(expired.lifetime(3600, now), None);
    }
}
