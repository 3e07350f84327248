//! Source 1: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, each also
//! as `<NAME>_FILE` (a Docker or Kubernetes secret mounted as a file). The files are
//! re-read by the refresh loop, so a rotated secret is picked up without a restart.

use std::path::PathBuf;

use super::CredentialsError;
use crate::sigv4::Credentials;

/// One value: given directly, or as a file to read.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    Direct(String),
    File(PathBuf),
}

// By hand: a direct value is a secret.
impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Direct(_) => f.write_str("Direct(<redacted>)"),
            Value::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

/// The three variables; `None` in `access_key_id` means the source is not configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvSettings {
    pub access_key_id: Option<Value>,
    pub secret_access_key: Option<Value>,
    pub session_token: Option<Value>,
}

const ID: (&str, &str) = ("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID_FILE");
const SECRET: (&str, &str) = ("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY_FILE");
const TOKEN: (&str, &str) = ("AWS_SESSION_TOKEN", "AWS_SESSION_TOKEN_FILE");

fn value(
    get: &impl Fn(&str) -> Option<String>,
    (direct, file): (&'static str, &'static str),
) -> Result<Option<Value>, CredentialsError> {
    match (get(direct), get(file)) {
        (Some(_), Some(_)) => Err(CredentialsError::Config {
            variable: file,
            problem: format!("is set and so is {direct}; set only one of them"),
        }),
        (Some(v), None) => Ok(Some(Value::Direct(v))),
        (None, Some(p)) => Ok(Some(Value::File(PathBuf::from(p.trim())))),
        (None, None) => Ok(None),
    }
}

impl EnvSettings {
    /// `get` returns `None` for unset or empty variables.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, CredentialsError> {
        let s = EnvSettings {
            access_key_id: value(&get, ID)?,
            secret_access_key: value(&get, SECRET)?,
            session_token: value(&get, TOKEN)?,
        };
        match (&s.access_key_id, &s.secret_access_key) {
            (Some(_), None) => Err(CredentialsError::Config {
                variable: SECRET.0,
                problem: format!(
                    "is not set but {} is; set both (or the _FILE variants)",
                    ID.0
                ),
            }),
            (None, Some(_)) => Err(CredentialsError::Config {
                variable: ID.0,
                problem: format!(
                    "is not set but {} is; set both (or the _FILE variants)",
                    SECRET.0
                ),
            }),
            _ => Ok(s),
        }
    }

    pub fn is_configured(&self) -> bool {
        self.access_key_id.is_some()
    }

    /// Whether a value comes from a file, so the refresh loop has something to watch.
    pub fn uses_files(&self) -> bool {
        [
            &self.access_key_id,
            &self.secret_access_key,
            &self.session_token,
        ]
        .into_iter()
        .any(|v| matches!(v, Some(Value::File(_))))
    }

    /// Reads the files (if any) and builds the credentials.
    pub fn load(&self) -> Result<Credentials, CredentialsError> {
        self.build(|variable, path| {
            std::fs::read_to_string(path).map_err(|e| CredentialsError::File {
                variable,
                path: path.clone(),
                reason: e.to_string(),
            })
        })
    }

    /// Sans-IO core of [`EnvSettings::load`]: `read` gives a file's contents.
    pub fn build(
        &self,
        read: impl Fn(&'static str, &PathBuf) -> Result<String, CredentialsError>,
    ) -> Result<Credentials, CredentialsError> {
        let resolve = |v: &Option<Value>,
                       file_var: &'static str|
         -> Result<Option<String>, CredentialsError> {
            match v {
                None => Ok(None),
                Some(Value::Direct(s)) => Ok(Some(s.trim().to_owned())),
                // Secret files usually end with a newline; keys and tokens never hold spaces.
                Some(Value::File(p)) => Ok(Some(read(file_var, p)?.trim().to_owned())),
            }
        };
        let id = resolve(&self.access_key_id, ID.1)?.unwrap_or_default();
        let secret = resolve(&self.secret_access_key, SECRET.1)?.unwrap_or_default();
        let token = resolve(&self.session_token, TOKEN.1)?;
        for (name, v) in [(ID.1, &id), (SECRET.1, &secret)] {
            if v.is_empty() {
                return Err(CredentialsError::Config {
                    variable: name,
                    problem: "names an empty file".into(),
                });
            }
        }
        Ok(Credentials::new(id, secret, token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<EnvSettings, CredentialsError> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        EnvSettings::from_lookup(|k| map.get(k).map(ToString::to_string))
    }

    #[test]
    fn direct_values() {
        let s = settings(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "sec"),
            ("AWS_SESSION_TOKEN", "tok"),
        ])
        .unwrap();
        assert!(s.is_configured() && !s.uses_files());
        let c = s.load().unwrap();
        assert_eq!(
            (c.access_key_id(), c.session_token()),
            ("AKID", Some("tok"))
        );
    }

    #[test]
    fn files_are_read_and_trimmed() {
        let s = settings(&[
            ("AWS_ACCESS_KEY_ID_FILE", "/run/secrets/id"),
            ("AWS_SECRET_ACCESS_KEY", "sec"),
            ("AWS_SESSION_TOKEN_FILE", "/run/secrets/tok"),
        ])
        .unwrap();
        assert!(s.uses_files());
        let c = s
            .build(|_, p| Ok(format!("{}\n", p.file_name().unwrap().to_str().unwrap())))
            .unwrap();
        assert_eq!((c.access_key_id(), c.session_token()), ("id", Some("tok")));
    }

    #[test]
    fn unreadable_files_name_the_variable_and_path() {
        let s = settings(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY_FILE", "/nope/secret"),
        ])
        .unwrap();
        let e = s.load().unwrap_err().to_string();
        assert!(
            e.starts_with("cannot read AWS_SECRET_ACCESS_KEY_FILE=/nope/secret: "),
            "{e}"
        );
    }

    #[test]
    fn half_configurations_are_refused() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("AWS_ACCESS_KEY_ID", "a")], "AWS_SECRET_ACCESS_KEY"),
            (&[("AWS_SECRET_ACCESS_KEY_FILE", "/s")], "AWS_ACCESS_KEY_ID"),
            (
                &[
                    ("AWS_ACCESS_KEY_ID", "a"),
                    ("AWS_ACCESS_KEY_ID_FILE", "/a"),
                    ("AWS_SECRET_ACCESS_KEY", "s"),
                ],
                "AWS_ACCESS_KEY_ID_FILE",
            ),
        ];
        for (vars, variable) in cases {
            match settings(vars) {
                Err(CredentialsError::Config { variable: v, .. }) => assert_eq!(&v, variable),
                other => panic!("{vars:?}: {other:?}"),
            }
        }
        assert!(!settings(&[]).unwrap().is_configured());
    }

    #[test]
    fn debug_hides_direct_values() {
        let s = settings(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
        ])
        .unwrap();
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }
}
