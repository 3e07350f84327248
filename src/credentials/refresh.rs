//! Keeping credentials fresh, in the background.
//!
//! Temporary credentials are fetched again before they expire: 5 minutes before, or at
//! half their remaining life when they live shorter than 10 minutes, minus a random part
//! of up to a fifth of that margin so that replicas do not all call STS at once. A failed
//! refresh is retried with backoff while the old credentials stay in use. Local sources
//! (`_FILE` variables, shared files) are re-read every poll interval and swapped in when
//! they changed.

use std::time::Duration;

use time::OffsetDateTime;

use super::chain::Source;
use super::fetch::fetch;
use super::provider::CredentialsHandle;
use super::{Fetched, format_time};
use crate::info;
use crate::s3::retry::{backoff, jitter};

/// How long before expiry a refresh starts, for credentials that live long enough.
pub(crate) const MARGIN: Duration = Duration::from_secs(300);
/// Credentials without an expiry from a remote source (rare) are fetched again hourly.
pub(crate) const NO_EXPIRY_REFRESH: Duration = Duration::from_secs(3600);

/// When to refresh credentials that have `left` to live; `random` in `[0, 1)`.
pub(crate) fn refresh_delay(left: Duration, random: f64) -> Duration {
    let margin = MARGIN.min(left / 2);
    let early = margin.mul_f64(0.2 * random.clamp(0.0, 1.0));
    left.saturating_sub(margin + early)
}

/// When to retry after `failures` failed refreshes in a row: exponential backoff from
/// half a second up to 5 s (a service without valid credentials should recover soon
/// after STS does), but a quarter of the time left at most, so that short-lived
/// credentials still get several attempts before they expire.
pub(crate) fn retry_delay(failures: u32, left: Option<Duration>, random: f64) -> Duration {
    let b = backoff(
        failures.saturating_sub(1),
        Duration::from_millis(500),
        Duration::from_secs(5),
        random,
    );
    match left {
        Some(l) if !l.is_zero() => b.min(l / 4).max(Duration::from_millis(100)),
        _ => b,
    }
}

fn same(a: &Fetched, b: &crate::sigv4::Credentials) -> bool {
    let c = &a.credentials;
    c.access_key_id() == b.access_key_id()
        && c.secret_access_key() == b.secret_access_key()
        && c.session_token() == b.session_token()
}

/// The refresh loop; returns at once for credentials that never change. Runs until the
/// task is aborted.
pub(crate) async fn run(handle: CredentialsHandle) {
    let inner = &handle.inner;
    let Some(http) = inner.http.clone() else {
        return;
    };
    match &inner.source {
        Source::None => return,
        Source::Env(e) if !e.uses_files() => return,
        _ => {}
    }
    let local = inner.source.is_local();
    let mut failures = 0u32;
    let mut delay = if local { inner.poll } else { Duration::ZERO };
    loop {
        if !delay.is_zero() {
            handle.state().next_refresh_at = OffsetDateTime::now_utc()
                .checked_add(time::Duration::try_from(delay).unwrap_or(time::Duration::ZERO));
            tokio::time::sleep(delay).await;
        }
        let result = fetch(&inner.source, &http).await;
        let now = OffsetDateTime::now_utc();
        let left = || handle.current().and_then(|s| s.remaining(now));
        delay = match result {
            Ok(f) if local => {
                let unchanged = handle
                    .current()
                    .is_some_and(|s| same(&f, s.signer().credentials()));
                if unchanged {
                    handle.state().last_error = None;
                } else {
                    info!("credentials: files changed, new keys in use");
                    handle.accept(f);
                }
                inner.poll
            }
            Ok(f) => {
                failures = 0;
                let d = match f.expires {
                    Some(e) => refresh_delay(
                        Duration::try_from(e - now).unwrap_or(Duration::ZERO),
                        jitter(),
                    ),
                    None => NO_EXPIRY_REFRESH,
                };
                handle.accept(f);
                d.max(Duration::from_millis(100))
            }
            Err(e) if local => {
                // Logged and counted once per distinct problem, not at every poll.
                if handle.state().last_error.as_ref() != Some(&e) {
                    handle.reject(e);
                }
                inner.poll
            }
            Err(e) => {
                failures += 1;
                handle.reject(e);
                let d = retry_delay(failures, left(), jitter());
                if let Some(s) = handle.current()
                    && let Some(exp) = s.expires
                {
                    info!(
                        "credentials: keeping those valid until {} and retrying in {:.1} s",
                        format_time(exp),
                        d.as_secs_f64()
                    );
                }
                d
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lived_credentials_refresh_five_minutes_early_with_jitter() {
        let hour = Duration::from_secs(3600);
        assert_eq!(refresh_delay(hour, 0.0), Duration::from_secs(3300));
        assert_eq!(refresh_delay(hour, 0.999_999).as_secs(), 3240);
    }

    #[test]
    fn short_lived_credentials_refresh_at_half_life() {
        let d = refresh_delay(Duration::from_secs(6), 0.0);
        assert_eq!(d, Duration::from_secs(3));
        let j = refresh_delay(Duration::from_secs(6), 0.5);
        assert!(j < d && j >= Duration::from_millis(2400), "{j:?}");
        assert_eq!(refresh_delay(Duration::ZERO, 0.5), Duration::ZERO);
    }

    #[test]
    fn retries_back_off_but_fit_in_the_time_left() {
        assert!(retry_delay(1, None, 0.0) >= Duration::from_millis(250));
        assert_eq!(
            retry_delay(20, None, 0.999),
            Duration::from_secs(5).mul_f64(0.9995)
        );
        assert_eq!(
            retry_delay(20, Some(Duration::from_secs(40)), 0.5),
            Duration::from_secs(5).mul_f64(0.75)
        );
        assert_eq!(
            retry_delay(20, Some(Duration::from_secs(4)), 0.5),
            Duration::from_secs(1)
        );
        assert_eq!(
            retry_delay(20, Some(Duration::from_millis(100)), 0.5),
            Duration::from_millis(100)
        );
    }
}
