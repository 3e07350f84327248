//! Source 5: EC2 instance metadata, IMDSv2 only: a session token from
//! `PUT /latest/api/token`, then the role name from
//! `GET /latest/meta-data/iam/security-credentials/` and its credentials from
//! `GET …/security-credentials/<role>`. Short timeouts: a machine without IMDS must not
//! slow anything down. `AWS_EC2_METADATA_DISABLED=true` skips it;
//! `AWS_EC2_METADATA_SERVICE_ENDPOINT` points it elsewhere.

use std::time::Duration;

use super::CredentialsError;

pub(crate) const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
pub(crate) const TOKEN_PATH: &str = "/latest/api/token";
pub(crate) const ROLE_PATH: &str = "/latest/meta-data/iam/security-credentials/";
pub(crate) const TOKEN_TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
pub(crate) const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
/// Six hours, the longest IMDS grants; a token is fetched per refresh anyway.
pub(crate) const TOKEN_TTL_SECONDS: &str = "21600";
/// Per request: IMDS answers in milliseconds when it exists.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImdsSettings {
    pub endpoint: String,
}

impl ImdsSettings {
    /// `Ok(None)` when disabled.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, CredentialsError> {
        if get("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let endpoint = match get("AWS_EC2_METADATA_SERVICE_ENDPOINT") {
            None => DEFAULT_ENDPOINT.to_owned(),
            Some(e) => {
                let e = e.trim().trim_end_matches('/').to_owned();
                if !(e.starts_with("http://") || e.starts_with("https://")) {
                    return Err(CredentialsError::Config {
                        variable: "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                        problem: format!("{e:?} is not an http:// or https:// URL"),
                    });
                }
                e
            }
        };
        Ok(Some(ImdsSettings { endpoint }))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint)
    }
}

/// The role name from the listing: its first non-empty line.
pub(crate) fn role_name(listing: &str) -> Option<&str> {
    listing.lines().map(str::trim).find(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_default_and_custom_endpoints() {
        assert!(
            ImdsSettings::from_lookup(|k| (k == "AWS_EC2_METADATA_DISABLED").then(|| "TRUE".into()))
                .unwrap()
                .is_none()
        );
        let d = ImdsSettings::from_lookup(|_| None).unwrap().unwrap();
        assert_eq!(d.url(TOKEN_PATH), "http://169.254.169.254/latest/api/token");
        let c = ImdsSettings::from_lookup(|k| {
            (k == "AWS_EC2_METADATA_SERVICE_ENDPOINT").then(|| "http://127.0.0.1:1338/".into())
        })
        .unwrap()
        .unwrap();
        assert_eq!(
            c.url(ROLE_PATH),
            "http://127.0.0.1:1338/latest/meta-data/iam/security-credentials/"
        );
        assert!(
            ImdsSettings::from_lookup(
                |k| (k == "AWS_EC2_METADATA_SERVICE_ENDPOINT").then(|| "x".into())
            )
            .is_err()
        );
    }

    #[test]
    fn role_is_the_first_line() {
        assert_eq!(role_name("\nmy-role\nother\n"), Some("my-role"));
        assert_eq!(role_name(""), None);
    }
}
