//! Source 4: the container credentials endpoint (ECS task roles, EKS Pod Identity).
//! `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` is a path on `http://169.254.170.2`;
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI` a whole URL, which over plain HTTP must name a
//! loopback address or one of the link-local agents (the AWS tools' rule: credentials
//! never cross a network in clear text). The authorization token comes from
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (re-read at each refresh) or
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN`.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::{CredentialsError, Fetched, SourceKind, parse_expiration};
use crate::sigv4::Credentials;

const ECS_HOST: &str = "http://169.254.170.2";

/// Where the authorization header comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthToken {
    None,
    Direct(String),
    File(PathBuf),
}

// By hand: the direct token is a secret.
impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthToken::None => f.write_str("None"),
            AuthToken::Direct(_) => f.write_str("Direct(<redacted>)"),
            AuthToken::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerSettings {
    pub url: String,
    pub token: AuthToken,
}

/// Whether plain HTTP to `host` is allowed for credentials.
fn http_host_allowed(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match bare.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => true,
        Ok(IpAddr::V4(v4)) => matches!(v4.octets(), [169, 254, 170, 2 | 23]),
        Ok(IpAddr::V6(v6)) => v6.segments() == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x23],
        Err(_) => false,
    }
}

impl ContainerSettings {
    /// `Ok(None)` when neither URI variable is set.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, CredentialsError> {
        let url = if let Some(rel) = get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            let rel = rel.trim();
            if !rel.starts_with('/') {
                return Err(CredentialsError::Config {
                    variable: "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                    problem: format!("{rel:?} does not start with /"),
                });
            }
            format!("{ECS_HOST}{rel}")
        } else if let Some(full) = get("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            const VAR: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
            let full = full.trim().to_owned();
            let parsed = reqwest::Url::parse(&full).map_err(|e| CredentialsError::Config {
                variable: VAR,
                problem: format!("{full:?} is not a URL: {e}"),
            })?;
            match parsed.scheme() {
                "https" => {}
                "http" if parsed.host_str().is_some_and(http_host_allowed) => {}
                "http" => {
                    return Err(CredentialsError::Config {
                        variable: VAR,
                        problem: format!(
                            "{full:?}: plain http is only allowed to a loopback address, 169.254.170.2, 169.254.170.23 or fd00:ec2::23; use https"
                        ),
                    });
                }
                other => {
                    return Err(CredentialsError::Config {
                        variable: VAR,
                        problem: format!("{full:?}: scheme {other:?} is not http or https"),
                    });
                }
            }
            full
        } else {
            return Ok(None);
        };
        let token = match (
            get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
            get("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        ) {
            // The file wins, as in the AWS tools: it is what rotates.
            (Some(f), _) => AuthToken::File(PathBuf::from(f.trim())),
            (None, Some(t)) => AuthToken::Direct(t.trim().to_owned()),
            (None, None) => AuthToken::None,
        };
        Ok(Some(ContainerSettings { url, token }))
    }

    /// The `Authorization` header value, read now (the file may have rotated).
    pub fn authorization(&self) -> Result<Option<String>, CredentialsError> {
        match &self.token {
            AuthToken::None => Ok(None),
            AuthToken::Direct(t) => Ok(Some(t.clone())),
            AuthToken::File(p) => std::fs::read_to_string(p)
                .map(|t| Some(t.trim().to_owned()))
                .map_err(|e| CredentialsError::File {
                    variable: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                    path: p.clone(),
                    reason: e.to_string(),
                }),
        }
    }
}

/// The JSON both the container endpoint and IMDS answer with.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialsJson {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    token: Option<String>,
    expiration: Option<String>,
    /// IMDS says `Success`; the container endpoint has no `Code`.
    code: Option<String>,
    message: Option<String>,
}

/// Parses `{"AccessKeyId","SecretAccessKey","Token","Expiration"}` (shared with IMDS).
pub(crate) fn parse_json(body: &[u8]) -> Result<Fetched, String> {
    let j: CredentialsJson =
        serde_json::from_slice(body).map_err(|e| format!("not the credentials JSON: {e}"))?;
    if let Some(code) = j.code.as_deref().filter(|c| *c != "Success") {
        return Err(format!(
            "Code {code:?}{}",
            j.message.map(|m| format!(": {m}")).unwrap_or_default()
        ));
    }
    let (Some(id), Some(secret)) = (
        j.access_key_id.filter(|v| !v.is_empty()),
        j.secret_access_key.filter(|v| !v.is_empty()),
    ) else {
        return Err("AccessKeyId or SecretAccessKey missing".into());
    };
    let expires = match j.expiration {
        None => None,
        Some(e) => Some(
            parse_expiration(&e)
                .ok_or_else(|| format!("Expiration {e:?} is not an RFC 3339 time"))?,
        ),
    };
    Ok(Fetched {
        credentials: Credentials::new(id, secret, j.token),
        expires,
    })
}

/// Maps an answer of the endpoint to credentials or an error.
pub(crate) fn answer(
    source: SourceKind,
    url: &str,
    status: u16,
    body: &[u8],
) -> Result<Fetched, CredentialsError> {
    if !(200..300).contains(&status) {
        // The error bodies are small JSON or text; show a bounded, secret-free start.
        let detail: String = String::from_utf8_lossy(body).chars().take(200).collect();
        return Err(CredentialsError::Refused {
            source,
            url: url.to_owned(),
            status,
            detail: if detail.trim().is_empty() {
                "empty answer".into()
            } else {
                detail
            },
        });
    }
    parse_json(body).map_err(|problem| CredentialsError::BadAnswer {
        source,
        url: url.to_owned(),
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Option<ContainerSettings>, CredentialsError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ContainerSettings::from_lookup(|k| {
            vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn relative_and_full_uris() {
        let s = from(&[(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/abc",
        )])
        .unwrap()
        .unwrap();
        assert_eq!(s.url, "http://169.254.170.2/v2/credentials/abc");
        assert_eq!(s.token, AuthToken::None);
        for ok in [
            "http://127.0.0.1:8080/creds",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
            "http://localhost/x",
            "https://creds.example.com/x",
        ] {
            assert!(
                from(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", ok)])
                    .unwrap()
                    .is_some(),
                "{ok}"
            );
        }
        for bad in ["http://10.0.0.1/creds", "ftp://127.0.0.1/", "not a url"] {
            assert!(
                from(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", bad)]).is_err(),
                "{bad}"
            );
        }
        assert!(from(&[]).unwrap().is_none());
    }

    #[test]
    fn token_file_wins_and_is_redacted() {
        let s = from(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/c"),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "s3cr3t"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.authorization().unwrap().as_deref(), Some("s3cr3t"));
        assert!(!format!("{s:?}").contains("s3cr3t"));
        let f = from(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/c"),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "s3cr3t"),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/nope"),
        ])
        .unwrap()
        .unwrap();
        assert!(
            f.authorization()
                .unwrap_err()
                .to_string()
                .contains("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/nope")
        );
    }

    #[test]
    fn parses_the_documented_json() {
        let body = br#"{"AccessKeyId":"ASIAEXAMPLE","Expiration":"2026-05-05T10:00:00Z","RoleArn":"arn:aws:iam::1:role/r","SecretAccessKey":"sec","Token":"tok"}"#;
        let f = parse_json(body).unwrap();
        assert_eq!(f.credentials.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(f.credentials.session_token(), Some("tok"));
        assert!(f.expires.is_some());
        assert!(
            parse_json(br#"{"Code":"Failed","Message":"no role"}"#)
                .unwrap_err()
                .contains("no role")
        );
        assert!(parse_json(b"{}").is_err());
        assert!(parse_json(b"<html>").is_err());
        let e = answer(SourceKind::Container, "http://x", 401, b"unauthorized").unwrap_err();
        assert_eq!(
            e.to_string(),
            "container credentials: http://x answered 401: unauthorized"
        );
    }
}
