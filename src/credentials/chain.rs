//! The order of the sources, and which one is used.
//!
//! The first *configured* source wins: environment keys, then a profile of the shared
//! files that has keys, then web identity, container credentials and, last, IMDS unless
//! disabled. Once chosen, a source stays chosen: if it fails, the service says so
//! (log, `/status`, readiness) rather than silently switching identity.

use super::container::ContainerSettings;
use super::env::EnvSettings;
use super::imds::ImdsSettings;
use super::profile::ProfileSettings;
use super::web_identity::WebIdentitySettings;
use super::{CredentialsError, Fetched, SourceKind};

/// Every source's settings, from the AWS tools' variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSettings {
    pub env: EnvSettings,
    pub profile: ProfileSettings,
    pub web_identity: Option<WebIdentitySettings>,
    pub container: Option<ContainerSettings>,
    pub imds: Option<ImdsSettings>,
}

impl ChainSettings {
    /// `get` returns `None` for unset or empty variables; `session_suffix` makes the
    /// default web identity session name unique (the start time, in practice).
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        region: &str,
        session_suffix: u64,
    ) -> Result<Self, CredentialsError> {
        Ok(ChainSettings {
            env: EnvSettings::from_lookup(&get)?,
            profile: ProfileSettings::from_lookup(&get),
            web_identity: WebIdentitySettings::from_lookup(&get, region, session_suffix)?,
            container: ContainerSettings::from_lookup(&get)?,
            imds: ImdsSettings::from_lookup(&get)?,
        })
    }

    /// Only static keys: what tests and tools that build a client by hand use.
    pub fn fixed_none() -> Self {
        ChainSettings {
            env: EnvSettings::default(),
            profile: ProfileSettings::default(),
            web_identity: None,
            container: None,
            imds: None,
        }
    }
}

/// The chosen source.
#[derive(Clone, Debug)]
pub enum Source {
    Env(EnvSettings),
    Profile(ProfileSettings),
    WebIdentity(WebIdentitySettings),
    Container(ContainerSettings),
    Imds(ImdsSettings),
    None,
}

impl Source {
    pub fn kind(&self) -> SourceKind {
        match self {
            Source::Env(_) => SourceKind::Environment,
            Source::Profile(_) => SourceKind::Profile,
            Source::WebIdentity(_) => SourceKind::WebIdentity,
            Source::Container(_) => SourceKind::Container,
            Source::Imds(_) => SourceKind::Imds,
            Source::None => SourceKind::None,
        }
    }

    /// What `/status` and the log show: the kind and, where it helps, which one.
    pub fn describe(&self) -> String {
        match self {
            Source::Env(e) if e.uses_files() => "environment (files)".into(),
            Source::Profile(p) => format!("profile {}", p.profile),
            Source::WebIdentity(w) => format!("web-identity {} via {}", w.role_arn, w.endpoint),
            Source::Container(c) => format!("container {}", c.url),
            Source::Imds(i) => format!("imds {}", i.endpoint),
            other => other.kind().label().to_owned(),
        }
    }

    /// Sources read from local files, re-read when those change.
    pub fn is_local(&self) -> bool {
        matches!(self, Source::Env(_) | Source::Profile(_))
    }
}

/// Picks the source, and for local sources reads their credentials now (so a service
/// with static keys never waits for anything). The profile is only chosen if it yields
/// keys or is broken (a syntax error is worth stopping at, not skipping past).
pub(crate) fn select(s: &ChainSettings) -> (Source, Option<Result<Fetched, CredentialsError>>) {
    let fetched = |c| Fetched {
        credentials: c,
        expires: None,
    };
    if s.env.is_configured() {
        return (Source::Env(s.env.clone()), Some(s.env.load().map(fetched)));
    }
    match s.profile.load() {
        Ok(Some(c)) => return (Source::Profile(s.profile.clone()), Some(Ok(fetched(c)))),
        Ok(None) => {}
        Err(e) => return (Source::Profile(s.profile.clone()), Some(Err(e))),
    }
    if let Some(w) = &s.web_identity {
        return (Source::WebIdentity(w.clone()), None);
    }
    if let Some(c) = &s.container {
        return (Source::Container(c.clone()), None);
    }
    if let Some(i) = &s.imds {
        return (Source::Imds(i.clone()), None);
    }
    (Source::None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(vars: &[(&str, &str)]) -> ChainSettings {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ChainSettings::from_lookup(
            |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            "us-east-1",
            7,
        )
        .unwrap()
    }

    const ALL: &[(&str, &str)] = &[
        ("AWS_ACCESS_KEY_ID", "AKID"),
        ("AWS_SECRET_ACCESS_KEY", "sec"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
        ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/c"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:2"),
    ];

    fn without(names: &[&str]) -> Vec<(&'static str, &'static str)> {
        ALL.iter()
            .copied()
            .filter(|(k, _)| !names.contains(k))
            .collect()
    }

    #[test]
    fn order_env_web_identity_container_imds_none() {
        let kinds: Vec<SourceKind> = [
            without(&[]),
            without(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]),
            without(&[
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_ROLE_ARN",
            ]),
            vec![("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:2")],
            vec![("AWS_EC2_METADATA_DISABLED", "true")],
        ]
        .iter()
        .map(|vars| select(&chain(vars)).0.kind())
        .collect();
        assert_eq!(
            kinds,
            [
                SourceKind::Environment,
                SourceKind::WebIdentity,
                SourceKind::Container,
                SourceKind::Imds,
                SourceKind::None
            ]
        );
    }

    #[test]
    fn a_profile_with_keys_comes_after_env_and_before_web_identity() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        std::fs::write(
            &creds,
            "[default]\naws_access_key_id=PROFILEKEY\naws_secret_access_key=s\n",
        )
        .unwrap();
        let path = creds.to_str().unwrap();
        let mut vars = without(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
        vars.push(("AWS_SHARED_CREDENTIALS_FILE", path));
        let (source, loaded) = select(&chain(&vars));
        assert_eq!(source.kind(), SourceKind::Profile);
        assert_eq!(
            loaded.unwrap().unwrap().credentials.access_key_id(),
            "PROFILEKEY"
        );
        let mut vars = without(&[]);
        vars.push(("AWS_SHARED_CREDENTIALS_FILE", path));
        assert_eq!(select(&chain(&vars)).0.kind(), SourceKind::Environment);
        // A profile file without keys (only a region) is skipped.
        std::fs::write(&creds, "[default]\nregion=eu-west-1\n").unwrap();
        let mut vars = without(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
        vars.push(("AWS_SHARED_CREDENTIALS_FILE", path));
        assert_eq!(select(&chain(&vars)).0.kind(), SourceKind::WebIdentity);
    }
}
