//! Source 2: a profile of the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`,
//! default `~/.aws/credentials`, sections `[name]`) and config file (`AWS_CONFIG_FILE`,
//! default `~/.aws/config`, sections `[profile name]` or `[default]`). Only static keys
//! and session tokens are used; every other key is ignored.

use std::path::{Path, PathBuf};

use super::CredentialsError;
use crate::sigv4::Credentials;

/// One `[section]` of an ini file, with its `key = value` lines in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Section {
    pub name: String,
    pub entries: Vec<(String, String)>,
}

impl Section {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        // The last assignment wins, as in the AWS tools' parser.
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the ini dialect of the AWS shared files. `Err((line, problem))`, 1-based.
///
/// Full-line comments start with `#` or `;`; an inline comment needs whitespace before
/// its `#`/`;` (keys and secrets never contain whitespace, so nothing else is cut).
/// Indented lines after a key continue it (nested `s3 =` settings) and are skipped.
pub(crate) fn parse_ini(text: &str) -> Result<Vec<Section>, (usize, String)> {
    let mut sections: Vec<Section> = Vec::new();
    let mut after_key = false;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if raw.starts_with([' ', '\t']) && after_key {
            continue;
        }
        let line = strip_inline_comment(trimmed);
        if let Some(rest) = line.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err((line_no, format!("section header {line:?} has no closing ]")));
            };
            let name = name.trim();
            if name.is_empty() {
                return Err((line_no, "empty section name".into()));
            }
            sections.push(Section {
                name: name.to_owned(),
                entries: Vec::new(),
            });
            after_key = false;
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err((
                line_no,
                format!(
                    "expected `key = value` or `[section]`, found {:?}",
                    shorten(line)
                ),
            ));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err((line_no, "a line starts with `=`: the key is missing".into()));
        }
        let Some(section) = sections.last_mut() else {
            return Err((line_no, format!("key {key:?} appears before any [section]")));
        };
        section
            .entries
            .push((key.to_owned(), value.trim().to_owned()));
        after_key = true;
    }
    Ok(sections)
}

/// A line quoted in an error: never more than its start, in case it holds a secret.
fn shorten(line: &str) -> String {
    line.chars()
        .take(12)
        .chain(if line.chars().count() > 12 { "…" } else { "" }.chars())
        .collect()
}

fn strip_inline_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for i in 1..bytes.len() {
        if matches!(bytes[i], b'#' | b';') && bytes[i - 1].is_ascii_whitespace() {
            return line[..i].trim_end();
        }
    }
    line
}

/// Where the files are and which profile to use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileSettings {
    pub credentials_file: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    pub profile: String,
    /// `AWS_PROFILE` was set: a missing profile is then an error, not a skip.
    pub explicit: bool,
}

impl ProfileSettings {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let home = get("HOME").map(PathBuf::from);
        let file = |var: &str, default: &str| {
            get(var)
                .map(|p| expand_home(p.trim(), home.as_deref()))
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
        };
        let profile = get("AWS_PROFILE").map(|p| p.trim().to_owned());
        ProfileSettings {
            credentials_file: file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            config_file: file("AWS_CONFIG_FILE", "config"),
            explicit: profile.is_some(),
            profile: profile.unwrap_or_else(|| "default".to_owned()),
        }
    }

    /// Reads both files. `Ok(None)`: no file has usable keys for the profile (skip).
    pub fn load(&self) -> Result<Option<Credentials>, CredentialsError> {
        let read = |p: &Option<PathBuf>| -> Result<Option<(PathBuf, String)>, CredentialsError> {
            let Some(p) = p else { return Ok(None) };
            match std::fs::read_to_string(p) {
                Ok(t) => Ok(Some((p.clone(), t))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(CredentialsError::File {
                    variable: if Some(p) == self.credentials_file.as_ref() {
                        "AWS_SHARED_CREDENTIALS_FILE"
                    } else {
                        "AWS_CONFIG_FILE"
                    },
                    path: p.clone(),
                    reason: e.to_string(),
                }),
            }
        };
        let credentials = read(&self.credentials_file)?;
        let config = read(&self.config_file)?;
        self.resolve(credentials.as_ref(), config.as_ref())
    }

    /// Sans-IO core of [`ProfileSettings::load`]: the two files' paths and contents.
    pub fn resolve(
        &self,
        credentials_file: Option<&(PathBuf, String)>,
        config_file: Option<&(PathBuf, String)>,
    ) -> Result<Option<Credentials>, CredentialsError> {
        let parse = |(path, text): &(PathBuf, String)| {
            parse_ini(text).map_err(|(line, problem)| CredentialsError::Syntax {
                path: path.clone(),
                line,
                problem,
            })
        };
        let in_credentials = match credentials_file {
            Some(f) => parse(f)?
                .into_iter()
                .filter(|s| s.name == self.profile)
                .collect(),
            None => Vec::new(),
        };
        let in_config: Vec<Section> = match config_file {
            Some(f) => parse(f)?
                .into_iter()
                .filter(|s| config_section_is(&s.name, &self.profile))
                .collect(),
            None => Vec::new(),
        };
        // The credentials file wins over the config file, key by key.
        let lookup = |key: &str| {
            in_credentials
                .iter()
                .rev()
                .chain(in_config.iter().rev())
                .find_map(|s| s.get(key))
                .filter(|v| !v.is_empty())
        };
        if in_credentials.is_empty() && in_config.is_empty() {
            if self.explicit {
                return Err(CredentialsError::Profile {
                    profile: self.profile.clone(),
                    problem: format!(
                        "not found in {} nor {}; check AWS_PROFILE",
                        show(&self.credentials_file),
                        show(&self.config_file)
                    ),
                });
            }
            return Ok(None);
        }
        match (lookup("aws_access_key_id"), lookup("aws_secret_access_key")) {
            (Some(id), Some(secret)) => Ok(Some(Credentials::new(
                id,
                secret,
                lookup("aws_session_token")
                    .or_else(|| lookup("aws_security_token"))
                    .map(str::to_owned),
            ))),
            (Some(_), None) | (None, Some(_)) => Err(CredentialsError::Profile {
                profile: self.profile.clone(),
                problem: "has only one of aws_access_key_id and aws_secret_access_key".into(),
            }),
            // A profile with only a region (or a role, which is not supported here) gives
            // no keys; the chain goes on to the next source.
            (None, None) if self.explicit => Err(CredentialsError::Profile {
                profile: self.profile.clone(),
                problem: "has no aws_access_key_id / aws_secret_access_key (role_arn, sso and credential_process profiles are not supported; use AWS_ROLE_ARN with AWS_WEB_IDENTITY_TOKEN_FILE instead)".into(),
            }),
            (None, None) => Ok(None),
        }
    }

    /// The files to watch for changes.
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.credentials_file.iter().chain(self.config_file.iter())
    }
}

fn config_section_is(section: &str, profile: &str) -> bool {
    match section.strip_prefix("profile") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim() == profile,
        _ => section == profile && profile == "default",
    }
}

fn expand_home(p: &str, home: Option<&Path>) -> PathBuf {
    match (p.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(p),
    }
}

fn show(p: &Option<PathBuf>) -> String {
    p.as_ref().map_or_else(
        || "(no file: HOME is not set)".to_owned(),
        |p| p.display().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDENTIALS: &str = "\
# a comment
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = secretdefault ; trailing comment

[ci]
aws_access_key_id=AKIDCI
aws_secret_access_key=secret/ci+==
aws_session_token = tokenci
unknown_key = ignored
";

    const CONFIG: &str = "\
[default]
region = eu-west-1
s3 =
    addressing_style = path

[profile dev]
aws_access_key_id = AKIDDEV
aws_secret_access_key = secretdev

[profile regiononly]
region = us-east-2
";

    fn files() -> ((PathBuf, String), (PathBuf, String)) {
        (
            (PathBuf::from("/h/.aws/credentials"), CREDENTIALS.into()),
            (PathBuf::from("/h/.aws/config"), CONFIG.into()),
        )
    }

    fn resolve(profile: &str, explicit: bool) -> Result<Option<Credentials>, CredentialsError> {
        let (c, f) = files();
        ProfileSettings {
            credentials_file: Some(c.0.clone()),
            config_file: Some(f.0.clone()),
            profile: profile.into(),
            explicit,
        }
        .resolve(Some(&c), Some(&f))
    }

    #[test]
    fn profiles_from_either_file() {
        let d = resolve("default", false).unwrap().unwrap();
        assert_eq!(d.access_key_id(), "AKIDDEFAULT");
        assert_eq!(d.session_token(), None);
        let ci = resolve("ci", true).unwrap().unwrap();
        assert_eq!(
            (ci.access_key_id(), ci.session_token()),
            ("AKIDCI", Some("tokenci"))
        );
        let dev = resolve("dev", true).unwrap().unwrap();
        assert_eq!(dev.access_key_id(), "AKIDDEV");
    }

    #[test]
    fn missing_profiles_skip_unless_asked_for() {
        assert!(resolve("nope", false).unwrap().is_none());
        let e = resolve("nope", true).unwrap_err().to_string();
        assert!(
            e.contains("\"nope\"") && e.contains("/h/.aws/credentials"),
            "{e}"
        );
        assert!(resolve("regiononly", false).unwrap().is_none());
        assert!(resolve("regiononly", true).is_err());
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let s = ProfileSettings {
            profile: "default".into(),
            ..Default::default()
        };
        let bad = (
            PathBuf::from("/x/credentials"),
            "[default]\naws_access_key_id AKID\n".to_owned(),
        );
        let e = s.resolve(Some(&bad), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/x/credentials:2: expected `key = value` or `[section]`, found \"aws_access_k…\""
        );
        assert_eq!(parse_ini("[a\n").unwrap_err().0, 1);
        assert_eq!(parse_ini("k = v\n").unwrap_err().0, 1);
    }

    #[test]
    fn default_paths_follow_home_and_variables() {
        let s = ProfileSettings::from_lookup(|k| match k {
            "HOME" => Some("/home/u".into()),
            "AWS_CONFIG_FILE" => Some("~/conf".into()),
            _ => None,
        });
        assert_eq!(
            s.credentials_file,
            Some(PathBuf::from("/home/u/.aws/credentials"))
        );
        assert_eq!(s.config_file, Some(PathBuf::from("/home/u/conf")));
        assert_eq!((s.profile.as_str(), s.explicit), ("default", false));
        let none = ProfileSettings::from_lookup(|_| None);
        assert_eq!(none.files().count(), 0);
    }
}
