//! The current credentials, shared by the S3 client and the presigner.
//!
//! Readers take an `Arc<Session>` (a read lock held for one clone), so a refresh never
//! blocks a request; the refresh loop ([`super::refresh`]) swaps in a new session.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use time::OffsetDateTime;

use super::chain::{self, ChainSettings, Source};
use super::{CredentialsError, Fetched, SourceKind, format_time};
use crate::metrics::Metrics;
use crate::sigv4::{Credentials, Mode, Signer};
use crate::{info, warn};

/// Credentials within this much of their expiry are no longer used to sign: a request
/// signed just before expiry could reach S3 just after.
pub(crate) const EXPIRY_SKEW: Duration = Duration::from_secs(1);

/// One set of credentials and the S3 signer built on it.
#[derive(Debug)]
pub struct Session {
    signer: Signer,
    pub expires: Option<OffsetDateTime>,
    pub source: SourceKind,
}

impl Session {
    fn new(fetched: Fetched, region: &str, source: SourceKind) -> Session {
        Session {
            signer: Signer::new(fetched.credentials, region, "s3", Mode::S3),
            expires: fetched.expires,
            source,
        }
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Time left at `now`, `None` for credentials that do not expire.
    pub fn remaining(&self, now: OffsetDateTime) -> Option<Duration> {
        self.expires
            .map(|e| Duration::try_from(e - now).unwrap_or(Duration::ZERO))
    }

    pub fn usable_at(&self, now: OffsetDateTime) -> bool {
        self.remaining(now).is_none_or(|left| left > EXPIRY_SKEW)
    }
}

/// What `/status` shows: where the credentials come from and until when. Never a key.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CredentialsStatus {
    pub source: String,
    pub expires_at: Option<String>,
    pub refreshed_at: Option<String>,
    pub next_refresh_at: Option<String>,
    /// The last failure to get credentials, cleared by the next success.
    pub error: Option<String>,
}

pub(super) struct State {
    pub(super) refreshed_at: Option<OffsetDateTime>,
    pub(super) next_refresh_at: Option<OffsetDateTime>,
    pub(super) last_error: Option<CredentialsError>,
}

pub(super) struct Shared {
    pub(super) region: String,
    pub(super) source: Source,
    current: RwLock<Option<Arc<Session>>>,
    arrived: tokio::sync::Notify,
    pub(super) state: Mutex<State>,
    pub(super) metrics: Option<Arc<Metrics>>,
    pub(super) http: Option<reqwest::Client>,
    /// How often local files (`_FILE` variables, shared files) are checked for changes.
    pub(super) poll: Duration,
}

/// Cheap to clone; all clones see the same credentials.
#[derive(Clone)]
pub struct CredentialsHandle {
    pub(super) inner: Arc<Shared>,
}

impl std::fmt::Debug for CredentialsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsHandle")
            .field("source", &self.inner.source.describe())
            .finish_non_exhaustive()
    }
}

impl CredentialsHandle {
    /// Fixed keys that never change (tests, tools, and clients built by hand).
    pub fn fixed(credentials: Credentials, region: &str) -> CredentialsHandle {
        let h = CredentialsHandle::empty(
            Source::Env(super::env::EnvSettings::default()),
            region,
            None,
            None,
            Duration::MAX,
        );
        h.install(Session::new(
            Fetched {
                credentials,
                expires: None,
            },
            region,
            SourceKind::Environment,
        ));
        h
    }

    /// Fixed temporary credentials valid until `expires` (tests, and tools handed a
    /// session): never refreshed, refused once expired.
    pub fn fixed_until(
        credentials: Credentials,
        expires: OffsetDateTime,
        region: &str,
    ) -> CredentialsHandle {
        let h = CredentialsHandle::fixed(Credentials::new("", "", None), region);
        h.install(Session::new(
            Fetched {
                credentials,
                expires: Some(expires),
            },
            region,
            SourceKind::Environment,
        ));
        h
    }

    fn empty(
        source: Source,
        region: &str,
        http: Option<reqwest::Client>,
        metrics: Option<Arc<Metrics>>,
        poll: Duration,
    ) -> CredentialsHandle {
        CredentialsHandle {
            inner: Arc::new(Shared {
                region: region.to_owned(),
                source,
                current: RwLock::new(None),
                arrived: tokio::sync::Notify::new(),
                state: Mutex::new(State {
                    refreshed_at: None,
                    next_refresh_at: None,
                    last_error: None,
                }),
                metrics,
                http,
                poll,
            }),
        }
    }

    /// Chooses the source (see [`chain::select`]) and loads local credentials at once;
    /// remote ones arrive with the first run of [`super::refresh::run`].
    pub fn from_chain(
        settings: &ChainSettings,
        region: &str,
        http: reqwest::Client,
        metrics: Arc<Metrics>,
        poll: Duration,
    ) -> CredentialsHandle {
        let (source, loaded) = chain::select(settings);
        let h = CredentialsHandle::empty(source, region, Some(http), Some(metrics), poll);
        info!("credentials: source {}", h.inner.source.describe());
        if matches!(h.inner.source, Source::None) {
            warn!(
                "credentials: none found (no AWS_ACCESS_KEY_ID, shared-file profile, web identity or container credentials; IMDS disabled); S3 calls are signed with empty keys and private buckets will refuse them"
            );
            h.accept(Fetched {
                credentials: Credentials::new("", "", None),
                expires: None,
            });
        }
        match loaded {
            Some(Ok(f)) => h.accept(f),
            Some(Err(e)) => h.reject(e),
            None => {}
        }
        h
    }

    pub(super) fn install(&self, session: Session) {
        let mut slot = self
            .inner
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Some(Arc::new(session));
        drop(slot);
        self.inner.arrived.notify_waiters();
    }

    /// A successful fetch: new session, error cleared, counted.
    pub(super) fn accept(&self, fetched: Fetched) {
        let now = OffsetDateTime::now_utc();
        if let Some(e) = fetched.expires {
            info!(
                "credentials: {} valid until {}",
                self.inner.source.describe(),
                format_time(e)
            );
        }
        self.install(Session::new(
            fetched,
            &self.inner.region,
            self.inner.source.kind(),
        ));
        let mut st = self.state();
        st.refreshed_at = Some(now);
        st.last_error = None;
        drop(st);
        if let Some(m) = &self.inner.metrics {
            m.credential_refreshes_ok.fetch_add(1, Relaxed);
        }
    }

    /// A failed fetch: the old session (if any) stays in use until it expires.
    pub(super) fn reject(&self, error: CredentialsError) {
        warn!("credentials: {error}");
        self.state().last_error = Some(error);
        if let Some(m) = &self.inner.metrics {
            m.credential_refreshes_failed.fetch_add(1, Relaxed);
        }
    }

    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The session in use, if any (expired or not).
    pub fn current(&self) -> Option<Arc<Session>> {
        self.inner
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Credentials to sign with now, or why there are none.
    pub fn session(&self) -> Result<Arc<Session>, CredentialsError> {
        let now = OffsetDateTime::now_utc();
        match self.current() {
            Some(s) if s.usable_at(now) => Ok(s),
            Some(s) => Err(CredentialsError::Expired {
                source: s.source,
                at: s.expires.map(format_time).unwrap_or_default(),
                last_error: self.state().last_error.as_ref().map(ToString::to_string),
            }),
            None => Err(self
                .state()
                .last_error
                .clone()
                .unwrap_or(CredentialsError::Pending {
                    source: self.inner.source.kind(),
                })),
        }
    }

    /// Like [`CredentialsHandle::session`], but waits up to `limit` for the first
    /// credentials of a remote source (start-up only: afterwards there always are some).
    pub async fn session_wait(&self, limit: Duration) -> Result<Arc<Session>, CredentialsError> {
        // The common case first, without registering as a waiter.
        match self.session() {
            Err(CredentialsError::Pending { .. }) => {}
            other => return other,
        }
        let arrived = self.inner.arrived.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        // Checked again once registered, so an arrival in between is not missed.
        match self.session() {
            Err(CredentialsError::Pending { .. }) => {
                let _ = tokio::time::timeout(limit, arrived).await;
                self.session()
            }
            other => other,
        }
    }

    /// Whether S3 calls can be signed now (readiness).
    pub fn usable(&self) -> bool {
        self.session().is_ok()
    }

    pub fn source(&self) -> &Source {
        &self.inner.source
    }

    pub fn status(&self) -> CredentialsStatus {
        // Before taking the state lock: `session` takes it too.
        let session = self.session();
        let st = self.state();
        CredentialsStatus {
            source: self.inner.source.describe(),
            expires_at: self.current().and_then(|s| s.expires).map(format_time),
            refreshed_at: st.refreshed_at.map(format_time),
            next_refresh_at: st.next_refresh_at.map(format_time),
            error: match session {
                // Expired: say so (the message carries the last failure too).
                Err(e @ CredentialsError::Expired { .. }) => Some(e.to_string()),
                _ => st.last_error.as_ref().map(ToString::to_string),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_credentials_never_expire() {
        let h = CredentialsHandle::fixed(Credentials::new("AKID", "s", None), "us-east-1");
        let s = h.session().unwrap();
        assert_eq!(s.signer().credentials().access_key_id(), "AKID");
        assert!(s.remaining(OffsetDateTime::now_utc()).is_none());
        assert!(h.usable());
    }

    #[test]
    fn expired_credentials_are_refused_with_the_reason() {
        let h = CredentialsHandle::fixed(Credentials::new("AKID", "s", None), "us-east-1");
        h.install(Session::new(
            Fetched {
                credentials: Credentials::new("TMP", "s", Some("t".into())),
                expires: Some(OffsetDateTime::now_utc() + time::Duration::milliseconds(500)),
            },
            "us-east-1",
            SourceKind::WebIdentity,
        ));
        h.state().last_error = Some(CredentialsError::Pending {
            source: SourceKind::WebIdentity,
        });
        let e = h.session().unwrap_err().to_string();
        assert!(e.starts_with("web-identity credentials expired at "), "{e}");
        assert!(!h.usable());
        assert!(h.status().error.unwrap().contains("expired"));
    }

    #[test]
    fn status_and_debug_hold_no_keys() {
        let h = CredentialsHandle::fixed(
            Credentials::new("AKIDXX", "s3cr3t", Some("t0k".into())),
            "r",
        );
        let shown = format!("{h:?} {:?} {:?}", h.status(), h.session().unwrap());
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("t0k"),
            "{shown}"
        );
    }
}
