//! The two front doors: header signing and URL presigning.

use std::fmt;

use time::OffsetDateTime;

use super::canonical_request::{
    CanonicalRequest, ContentSha256Header, Mode, PayloadHash, SessionTokenMode, canonical_request,
};
use super::credentials::Credentials;
use super::signing_key::SigningKeyCache;
use super::string_to_sign::{scope, string_to_sign};
use super::{MAX_PRESIGN_EXPIRES, amz_date};

/// The parts of a request that SigV4 covers.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `GET`, `PUT`, … as sent.
    pub method: &'a str,
    /// The `Host` header as sent: `127.0.0.1:9000`, with any non-default port.
    pub host: &'a str,
    /// See [`super::PathMode`] for what the path means in each mode.
    pub path: &'a str,
    /// Decoded `(key, value)` pairs.
    pub query: &'a [(&'a str, &'a str)],
    /// Headers to sign besides `host` and the `x-amz-*` ones the signer adds.
    pub headers: &'a [(&'a str, &'a str)],
}

/// The headers to add to a request, and the intermediate texts for diagnosis and tests.
#[derive(Clone, Debug)]
pub struct SignedHeaders {
    /// The `Authorization` header's value.
    pub authorization: String,
    pub(crate) x_amz_date: String,
    /// `None` when the mode omits the header.
    pub x_amz_content_sha256: Option<String>,
    pub(crate) x_amz_security_token: Option<String>,
    /// What was hashed, for diagnosis.
    pub canonical_request: CanonicalRequest,
    /// What was signed.
    pub string_to_sign: String,
    /// Lower-case hex; also inside `authorization`.
    pub signature: String,
}

impl SignedHeaders {
    /// `(name, value)` of every header to add, in lower case.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            Some(("authorization", self.authorization.as_str())),
            Some(("x-amz-date", self.x_amz_date.as_str())),
            self.x_amz_content_sha256
                .as_deref()
                .map(|v| ("x-amz-content-sha256", v)),
            self.x_amz_security_token
                .as_deref()
                .map(|v| ("x-amz-security-token", v)),
        ]
        .into_iter()
        .flatten()
    }
}

/// A presigned query string, encoded exactly as it was signed.
#[derive(Clone, Debug)]
pub struct Presigned {
    /// Everything after `?`, ending with `X-Amz-Signature=…`.
    pub query: String,
    /// What was hashed, for diagnosis.
    pub canonical_request: CanonicalRequest,
    /// What was signed.
    pub string_to_sign: String,
    /// Lower-case hex; also the query's last parameter.
    pub signature: String,
}

/// Why a URL could not be presigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PresignError {
    /// `X-Amz-Expires` must be 1..=604800 seconds (seven days); S3 refuses anything else,
    /// so the signer refuses it too rather than produce a URL that cannot work.
    ExpiresOutOfRange(u64),
}

impl fmt::Display for PresignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PresignError::ExpiresOutOfRange(s) => write!(
                f,
                "presigned URL expiry of {s} s is outside 1..={MAX_PRESIGN_EXPIRES} s"
            ),
        }
    }
}

impl std::error::Error for PresignError {}

/// Signs for one set of credentials, region and service; caches the day's signing key.
#[derive(Debug)]
pub struct Signer {
    credentials: Credentials,
    region: String,
    service: String,
    mode: Mode,
    keys: SigningKeyCache,
}

impl Signer {
    /// A signer for `service` (`s3`) in `region`.
    pub fn new(
        credentials: Credentials,
        region: impl Into<String>,
        service: impl Into<String>,
        mode: Mode,
    ) -> Self {
        Signer {
            credentials,
            region: region.into(),
            service: service.into(),
            mode,
            keys: SigningKeyCache::default(),
        }
    }

    /// The credentials it signs with.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The region in its scope.
    pub fn region(&self) -> &str {
        &self.region
    }

    fn sign_text(&self, date: &str, creq: &CanonicalRequest) -> (String, String, String) {
        let scope = scope(date, &self.region, &self.service);
        let (sts, sig) = self.sign_scoped(date, &scope, creq);
        (scope, sts, sig)
    }

    fn sign_scoped(&self, date: &str, scope: &str, creq: &CanonicalRequest) -> (String, String) {
        let sts = string_to_sign(date, scope, &creq.sha256_hex());
        let sig = self.keys.sign(
            self.credentials.secret_access_key(),
            date.get(..8).unwrap_or(date),
            &self.region,
            &self.service,
            &sts,
        );
        (sts, sig)
    }

    /// Header signing: returns `authorization`, `x-amz-date`, and, as the mode says,
    /// `x-amz-content-sha256` and `x-amz-security-token`.
    pub fn sign(
        &self,
        req: &Request<'_>,
        payload: PayloadHash<'_>,
        now: OffsetDateTime,
    ) -> SignedHeaders {
        let date = amz_date(now);
        let content_sha256 = match self.mode.content_sha256 {
            ContentSha256Header::Include => Some(payload.as_str().to_owned()),
            ContentSha256Header::Omit => None,
        };
        let token = self.credentials.session_token();
        let signed_token = match self.mode.session_token {
            SessionTokenMode::Signed => token,
            SessionTokenMode::AppendedUnsigned => None,
        };

        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(req.headers.len() + 4);
        headers.extend_from_slice(req.headers);
        headers.push(("host", req.host));
        headers.push(("x-amz-date", &date));
        if let Some(h) = &content_sha256 {
            headers.push(("x-amz-content-sha256", h));
        }
        if let Some(t) = signed_token {
            headers.push(("x-amz-security-token", t));
        }
        let creq = canonical_request(
            req.method,
            req.path,
            req.query,
            &headers,
            payload,
            self.mode.path,
        );
        let (scope, sts, sig) = self.sign_text(&date, &creq);
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={}, Signature={sig}",
            self.credentials.access_key_id(),
            creq.signed_headers
        );
        SignedHeaders {
            authorization,
            x_amz_date: date,
            x_amz_content_sha256: content_sha256,
            x_amz_security_token: token.map(str::to_owned),
            canonical_request: creq,
            string_to_sign: sts,
            signature: sig,
        }
    }

    /// Query signing: the query string of a URL valid for `expires_secs` seconds from `now`.
    /// `req.headers` are signed too and must then be sent by whoever uses the URL.
    pub fn presign(
        &self,
        req: &Request<'_>,
        payload: PayloadHash<'_>,
        expires_secs: u64,
        now: OffsetDateTime,
    ) -> Result<Presigned, PresignError> {
        if !(1..=u64::from(MAX_PRESIGN_EXPIRES)).contains(&expires_secs) {
            return Err(PresignError::ExpiresOutOfRange(expires_secs));
        }
        let date = amz_date(now);
        let scope = scope(&date, &self.region, &self.service);
        let credential = format!("{}/{scope}", self.credentials.access_key_id());
        let expires = expires_secs.to_string();

        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(req.headers.len() + 1);
        headers.extend_from_slice(req.headers);
        headers.push(("host", req.host));
        let (lines, signed_headers) = super::canonical_request::canonical_headers(&headers);

        let token = self.credentials.session_token();
        let mut query: Vec<(&str, &str)> = Vec::with_capacity(req.query.len() + 6);
        query.extend_from_slice(req.query);
        query.push(("X-Amz-Algorithm", "AWS4-HMAC-SHA256"));
        query.push(("X-Amz-Credential", &credential));
        query.push(("X-Amz-Date", &date));
        query.push(("X-Amz-Expires", &expires));
        query.push(("X-Amz-SignedHeaders", &signed_headers));
        if let (Some(t), SessionTokenMode::Signed) = (token, self.mode.session_token) {
            query.push(("X-Amz-Security-Token", t));
        }

        let creq = super::canonical_request::canonical_request_with(
            req.method,
            req.path,
            &query,
            (lines, signed_headers.clone()),
            payload,
            self.mode.path,
        );
        let (sts, sig) = self.sign_scoped(&date, &scope, &creq);

        let mut out = String::with_capacity(creq.query.len() + 100);
        out.push_str(&creq.query);
        if let (Some(t), SessionTokenMode::AppendedUnsigned) = (token, self.mode.session_token) {
            out.push_str("&X-Amz-Security-Token=");
            out.push_str(&super::encode::encode_component(t));
        }
        out.push_str("&X-Amz-Signature=");
        out.push_str(&sig);
        Ok(Presigned {
            query: out,
            canonical_request: creq,
            string_to_sign: sts,
            signature: sig,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn s3_signer(token: Option<&str>) -> Signer {
        Signer::new(
            Credentials::new(
                "AKIAIOSFODNN7EXAMPLE",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                token.map(str::to_owned),
            ),
            "us-east-1",
            "s3",
            Mode::S3,
        )
    }

    #[test]
    fn expiry_outside_seven_days_is_an_error_not_a_clamp() {
        let s = s3_signer(None);
        let req = Request {
            method: "GET",
            host: "h",
            path: "/b/k",
            query: &[],
            headers: &[],
        };
        let now = datetime!(2013-05-24 00:00:00 UTC);
        for bad in [0, 604_801] {
            assert_eq!(
                s.presign(&req, PayloadHash::Unsigned, bad, now)
                    .unwrap_err(),
                PresignError::ExpiresOutOfRange(bad)
            );
        }
        assert!(s.presign(&req, PayloadHash::Unsigned, 604_800, now).is_ok());
    }

    #[test]
    fn session_token_is_signed_into_headers_and_query() {
        let s = s3_signer(Some("the/token+"));
        let req = Request {
            method: "HEAD",
            host: "127.0.0.1:9000",
            path: "/b/a b",
            query: &[],
            headers: &[],
        };
        let now = datetime!(2013-05-24 00:00:00 UTC);
        let h = s.sign(&req, PayloadHash::Unsigned, now);
        assert!(
            h.canonical_request
                .signed_headers
                .contains("x-amz-security-token")
        );
        assert!(
            h.canonical_request
                .headers
                .contains("host:127.0.0.1:9000\n")
        );
        let p = s.presign(&req, PayloadHash::Unsigned, 60, now).unwrap();
        assert!(p.query.contains("X-Amz-Security-Token=the%2Ftoken%2B"));
        assert!(
            p.query
                .ends_with(&format!("&X-Amz-Signature={}", p.signature))
        );
        assert_eq!(p.canonical_request.path, "/b/a%20b");
    }
}
