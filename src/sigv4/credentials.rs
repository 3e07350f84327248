//! Credentials, kept out of logs.

use std::fmt;

/// An access key pair, and the session token of temporary credentials.
///
/// `Debug` shows only the access key id: the secret and the token never reach a log line.
#[derive(Clone)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl Credentials {
    /// An empty session token means "no token", as in the environment variables.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: session_token.filter(|t| !t.is_empty()),
        }
    }

    /// The public half, safe to log.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub(crate) fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// `None` for long-term keys (an empty token counts as none).
    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secret_and_token() {
        let c = Credentials::new("AKID", "very-secret", Some("tok-en".into()));
        let shown = format!("{c:?}");
        assert!(shown.contains("AKID"));
        assert!(!shown.contains("very-secret"));
        assert!(!shown.contains("tok-en"));
    }

    #[test]
    fn empty_token_means_none() {
        let c = Credentials::new("a", "b", Some(String::new()));
        assert_eq!(c.session_token(), None);
    }
}
