//! Where the S3 credentials come from, and how they are kept fresh.
//!
//! The chain ([`chain`]) picks the first configured source, in the order the AWS tools
//! use: environment ([`env`]), shared files ([`profile`]), web identity
//! ([`web_identity`]), container credentials ([`container`]), EC2 instance metadata
//! ([`imds`]). [`provider`] holds the current credentials for the S3 client and the
//! presigner, and refreshes them in the background before they expire.
//!
//! Parsing (ini files, STS XML, JSON answers) is sans-IO and unit-tested; only
//! [`fetch`] and [`provider`] touch files and the network.

pub(crate) mod chain;
pub(crate) mod container;
pub(crate) mod env;
pub(crate) mod fetch;
pub(crate) mod imds;
pub(crate) mod profile;
pub(crate) mod provider;
pub(crate) mod refresh;
pub(crate) mod web_identity;

use std::fmt;
use std::path::PathBuf;

use time::OffsetDateTime;

use crate::sigv4::Credentials;

pub(crate) use chain::ChainSettings;
pub(crate) use provider::CredentialsHandle;

/// Which kind of source gave the current credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and their `_FILE` variants).
    Environment,
    /// A profile of the shared credentials / config files.
    Profile,
    /// STS `AssumeRoleWithWebIdentity` with a projected token (EKS IRSA, MinIO STS).
    WebIdentity,
    /// The container credentials endpoint (ECS, EKS Pod Identity).
    Container,
    /// EC2 instance metadata (IMDSv2).
    Imds,
    /// Nothing configured: requests are signed with empty keys and S3 will refuse them.
    None,
}

impl SourceKind {
    pub fn label(self) -> &'static str {
        match self {
            SourceKind::Environment => "environment",
            SourceKind::Profile => "profile",
            SourceKind::WebIdentity => "web-identity",
            SourceKind::Container => "container",
            SourceKind::Imds => "imds",
            SourceKind::None => "none",
        }
    }
}

/// Credentials as a source returned them: `expires` is `None` for long-lived keys.
#[derive(Clone, Debug)]
pub(crate) struct Fetched {
    pub credentials: Credentials,
    pub expires: Option<OffsetDateTime>,
}

/// What went wrong while getting credentials, and (in `Display`) what to do about it.
/// Never holds a secret: file contents, tokens and keys stay out of every variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialsError {
    /// A variable is set wrongly (both `X` and `X_FILE`, a key id without a secret, …).
    Config {
        variable: &'static str,
        problem: String,
    },
    /// A file named by a variable cannot be read.
    File {
        variable: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// A shared credentials or config file is not valid ini.
    Syntax {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    /// `AWS_PROFILE` names a profile that neither shared file has, or one without keys.
    Profile { profile: String, problem: String },
    /// A credentials endpoint could not be reached or did not answer in time.
    Unreachable {
        source: SourceKind,
        url: String,
        reason: String,
    },
    /// A credentials endpoint answered with an error.
    Refused {
        source: SourceKind,
        url: String,
        status: u16,
        detail: String,
    },
    /// A credentials endpoint answered something that is not credentials.
    BadAnswer {
        source: SourceKind,
        url: String,
        problem: String,
    },
    /// The last credentials expired and no refresh has succeeded since.
    Expired {
        source: SourceKind,
        at: String,
        last_error: Option<String>,
    },
    /// The first credentials have not arrived yet.
    Pending { source: SourceKind },
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsError::Config { variable, problem } => write!(f, "{variable}: {problem}"),
            CredentialsError::File {
                variable,
                path,
                reason,
            } => write!(
                f,
                "cannot read {variable}={}: {reason}; check that the file is mounted and readable",
                path.display()
            ),
            CredentialsError::Syntax {
                path,
                line,
                problem,
            } => write!(f, "{}:{line}: {problem}", path.display()),
            CredentialsError::Profile { profile, problem } => {
                write!(f, "profile {profile:?}: {problem}")
            }
            CredentialsError::Unreachable {
                source,
                url,
                reason,
            } => write!(
                f,
                "{} credentials: cannot reach {url}: {reason}",
                source.label()
            ),
            CredentialsError::Refused {
                source,
                url,
                status,
                detail,
            } => write!(
                f,
                "{} credentials: {url} answered {status}: {detail}",
                source.label()
            ),
            CredentialsError::BadAnswer {
                source,
                url,
                problem,
            } => write!(
                f,
                "{} credentials: unexpected answer from {url}: {problem}",
                source.label()
            ),
            CredentialsError::Expired {
                source,
                at,
                last_error,
            } => {
                write!(
                    f,
                    "{} credentials expired at {at} and could not be refreshed",
                    source.label()
                )?;
                match last_error {
                    Some(e) => write!(f, ": {e}"),
                    None => Ok(()),
                }
            }
            CredentialsError::Pending { source } => {
                write!(f, "{} credentials not fetched yet", source.label())
            }
        }
    }
}

impl std::error::Error for CredentialsError {}

/// An RFC 3339 timestamp of an answer (`2026-05-05T10:00:00Z`, fractions allowed).
pub(crate) fn parse_expiration(value: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value.trim(), &time::format_description::well_known::Rfc3339).ok()
}

/// `2026-05-05T10:00:00Z`, for `/status` and log lines.
pub(crate) fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expirations_parse_with_and_without_fractions() {
        let a = parse_expiration("2026-05-05T10:00:00Z").unwrap();
        let b = parse_expiration(" 2026-05-05T10:00:00.250Z ").unwrap();
        assert_eq!((b - a).whole_milliseconds(), 250);
        assert!(parse_expiration("tomorrow").is_none());
        assert_eq!(format_time(b), "2026-05-05T10:00:00Z");
    }

    #[test]
    fn errors_never_show_more_than_names() {
        let e = CredentialsError::Expired {
            source: SourceKind::WebIdentity,
            at: "2026-05-05T10:00:00Z".into(),
            last_error: Some("web-identity credentials: cannot reach http://x: refused".into()),
        };
        assert_eq!(
            e.to_string(),
            "web-identity credentials expired at 2026-05-05T10:00:00Z and could not be refreshed: web-identity credentials: cannot reach http://x: refused"
        );
    }
}
