//! Access keys besides the main one: temporary credentials with a session token and an
//! expiry, as an STS would issue them. Tests add keys while the server runs (an STS
//! double hands out a new set at each refresh), so the table is shared and mutable.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use s3s::S3Result;
use s3s::auth::{S3Auth, SecretKey};
use s3s::s3_error;

#[derive(Clone)]
struct Entry {
    secret: String,
    session_token: Option<String>,
    expires: Option<SystemTime>,
}

/// The table of extra keys; clones share it.
#[derive(Clone, Default)]
pub struct Keys(Arc<RwLock<HashMap<String, Entry>>>);

// Hand-written: only the key ids may be shown.
impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let map = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f.debug_set().entries(map.keys()).finish()
    }
}

impl Keys {
    /// Accepts `access_key`/`secret` from now on. With a `session_token`, every request
    /// must carry it (`x-amz-security-token` or `X-Amz-Security-Token`); with `expires`,
    /// requests after that instant are refused with `ExpiredToken`.
    pub fn add(
        &self,
        access_key: impl Into<String>,
        secret: impl Into<String>,
        session_token: Option<String>,
        expires: Option<SystemTime>,
    ) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                access_key.into(),
                Entry {
                    secret: secret.into(),
                    session_token,
                    expires,
                },
            );
    }

    pub fn remove(&self, access_key: &str) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(access_key);
    }

    fn get(&self, access_key: &str) -> Option<Entry> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(access_key)
            .cloned()
    }

    /// Checks the session token and expiry of a verified request's key.
    pub(crate) fn check(&self, access_key: &str, token: Option<&str>) -> S3Result<()> {
        let Some(e) = self.get(access_key) else {
            return Ok(()); // the main key
        };
        if e.expires.is_some_and(|t| SystemTime::now() >= t) {
            return Err(s3_error!(ExpiredToken, "The provided token has expired."));
        }
        match (&e.session_token, token) {
            (None, _) => Ok(()),
            (Some(want), Some(got)) if want == got => Ok(()),
            _ => Err(s3_error!(
                InvalidToken,
                "The provided token is malformed or otherwise invalid."
            )),
        }
    }
}

/// The main key plus [`Keys`].
pub(crate) struct KeyAuth {
    pub(crate) access_key: String,
    pub(crate) secret_key: String,
    pub(crate) keys: Keys,
}

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.access_key {
            return Ok(SecretKey::from(self.secret_key.clone()));
        }
        match self.keys.get(access_key) {
            Some(e) => Ok(SecretKey::from(e.secret)),
            None => Err(s3_error!(InvalidAccessKeyId)),
        }
    }
}
