//! The URLs handed to clients: plain for public buckets, presigned for private ones.
//! Built against the external endpoint (what clients reach), never the internal one.

use time::OffsetDateTime;

use super::endpoint::Endpoint;
use crate::sigv4::{Credentials, Mode, PayloadHash, PresignError, Request, Signer};

pub struct DownloadUrls {
    external: Endpoint,
    signer: Signer,
}

impl DownloadUrls {
    pub fn new(external: Endpoint, region: &str, credentials: Credentials) -> DownloadUrls {
        DownloadUrls {
            external,
            signer: Signer::new(credentials, region, "s3", Mode::S3),
        }
    }

    /// `<external endpoint>/<bucket>/<key>` with the key percent-encoded per segment.
    pub fn public_url(&self, bucket: &str, key: &str) -> String {
        self.external.target(bucket, key).url("")
    }

    /// A URL valid `expires` seconds for `method` (GET or HEAD) on one object.
    pub fn presigned_url(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        expires: u64,
        now: OffsetDateTime,
    ) -> Result<String, PresignError> {
        let target = self.external.target(bucket, key);
        let presigned = self.signer.presign(
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
        )?;
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
}
