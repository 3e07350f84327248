//! The I/O of each source: files for the local ones, one or a few HTTP calls for the
//! others. Every answer goes through the sans-IO parsers of the source's module.

use std::time::Duration;

use super::chain::Source;
use super::container::ContainerSettings;
use super::imds::{self, ImdsSettings};
use super::web_identity::{self, WebIdentitySettings};
use super::{CredentialsError, Fetched, SourceKind, container};
use crate::sigv4::Credentials;

/// Bound on one call to STS or the container endpoint.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why a call failed, from reqwest's error chain (which never holds headers or bodies).
fn unreachable(source: SourceKind, url: &str, e: &reqwest::Error) -> CredentialsError {
    // An untrusted STS certificate (internal CA) gets the same advice as one of S3.
    if let Some(reason) = crate::tls::explain(e, url) {
        return CredentialsError::Unreachable {
            source,
            url: url.to_owned(),
            reason,
        };
    }
    let mut reason = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        reason = format!("{reason}: {c}");
        cause = c.source();
    }
    CredentialsError::Unreachable {
        source,
        url: url.to_owned(),
        reason,
    }
}

async fn send(
    source: SourceKind,
    url: &str,
    req: reqwest::RequestBuilder,
) -> Result<(u16, bytes::Bytes), CredentialsError> {
    let resp = req.send().await.map_err(|e| unreachable(source, url, &e))?;
    let status = resp.status().as_u16();
    let body = resp
        .bytes()
        .await
        .map_err(|e| unreachable(source, url, &e))?;
    Ok((status, body))
}

/// Gets credentials from `source` once.
pub(crate) async fn fetch(
    source: &Source,
    http: &reqwest::Client,
) -> Result<Fetched, CredentialsError> {
    match source {
        Source::Env(e) => e.load().map(|credentials| Fetched {
            credentials,
            expires: None,
        }),
        Source::Profile(p) => match p.load()? {
            Some(credentials) => Ok(Fetched {
                credentials,
                expires: None,
            }),
            None => Err(CredentialsError::Profile {
                profile: p.profile.clone(),
                problem: "no longer has keys in the shared files".into(),
            }),
        },
        Source::WebIdentity(w) => web_identity(w, http).await,
        Source::Container(c) => container(c, http).await,
        Source::Imds(i) => imds(i, http).await,
        // Empty keys: S3 will refuse them with a clear "access denied".
        Source::None => Ok(Fetched {
            credentials: Credentials::new("", "", None),
            expires: None,
        }),
    }
}

async fn web_identity(
    w: &WebIdentitySettings,
    http: &reqwest::Client,
) -> Result<Fetched, CredentialsError> {
    let token = web_identity::read_token(w)?;
    let url = format!("{}/", w.endpoint);
    let req = http
        .post(&url)
        .timeout(TIMEOUT)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/xml")
        .body(w.request_body(&token));
    let (status, body) = send(SourceKind::WebIdentity, &url, req).await?;
    web_identity::answer(&url, status, &body)
}

async fn container(
    c: &ContainerSettings,
    http: &reqwest::Client,
) -> Result<Fetched, CredentialsError> {
    let mut req = http.get(&c.url).timeout(TIMEOUT);
    if let Some(token) = c.authorization()? {
        req = req.header("authorization", token);
    }
    let (status, body) = send(SourceKind::Container, &c.url, req).await?;
    container::answer(SourceKind::Container, &c.url, status, &body)
}

async fn imds(i: &ImdsSettings, http: &reqwest::Client) -> Result<Fetched, CredentialsError> {
    const S: SourceKind = SourceKind::Imds;
    let token_url = i.url(imds::TOKEN_PATH);
    let req = http
        .put(&token_url)
        .timeout(imds::TIMEOUT)
        .header(imds::TOKEN_TTL_HEADER, imds::TOKEN_TTL_SECONDS);
    let (status, token) = send(S, &token_url, req).await?;
    if status != 200 {
        return Err(CredentialsError::Refused {
            source: S,
            url: token_url,
            status,
            detail: "no IMDSv2 session token (IMDSv1 is not used)".into(),
        });
    }
    let token = String::from_utf8_lossy(&token).trim().to_owned();

    let roles_url = i.url(imds::ROLE_PATH);
    let req = http
        .get(&roles_url)
        .timeout(imds::TIMEOUT)
        .header(imds::TOKEN_HEADER, &token);
    let (status, listing) = send(S, &roles_url, req).await?;
    if status != 200 {
        return Err(CredentialsError::Refused {
            source: S,
            url: roles_url,
            status,
            detail: "no instance profile (IAM role) attached to this instance?".into(),
        });
    }
    let listing = String::from_utf8_lossy(&listing);
    let role = imds::role_name(&listing).ok_or_else(|| CredentialsError::BadAnswer {
        source: S,
        url: roles_url.clone(),
        problem: "no role name in the listing".into(),
    })?;
    let url = format!(
        "{roles_url}{}",
        crate::sigv4::encode::encode_component(role)
    );
    let req = http
        .get(&url)
        .timeout(imds::TIMEOUT)
        .header(imds::TOKEN_HEADER, &token);
    let (status, body) = send(S, &url, req).await?;
    container::answer(S, &url, status, &body)
}
