//! `PARPARCHIK_EVENTS_*`: the bucket notification endpoint (`POST /events`).

use std::fmt;
use std::time::Duration;

use super::{ConfigError, err, parse_count, parse_seconds};

/// The shared secret senders put in `Authorization`; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct EventsToken(pub String);

impl fmt::Debug for EventsToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventsToken(<redacted>)")
    }
}

/// A host pattern for SNS URLs: labels compared case-insensitively, `*` matching exactly
/// one label (`sns.*.amazonaws.com`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern(Vec<String>);

impl HostPattern {
    /// `None` unless every label is `*` or letters, digits and `-`, and there are at least
    /// two; a trailing dot is dropped.
    pub fn parse(s: &str) -> Option<HostPattern> {
        let labels: Vec<String> = s
            .trim()
            .trim_end_matches('.')
            .split('.')
            .map(str::to_ascii_lowercase)
            .collect();
        let ok = labels.len() >= 2
            && labels.iter().all(|l| {
                l == "*"
                    || (!l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            });
        ok.then_some(HostPattern(labels))
    }

    /// Whether `host` has as many labels as the pattern and each matches (a trailing dot
    /// on `host` ignored).
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        let labels: Vec<&str> = host.split('.').collect();
        labels.len() == self.0.len()
            && self
                .0
                .iter()
                .zip(labels)
                .all(|(p, l)| !l.is_empty() && (p == "*" || p.eq_ignore_ascii_case(l)))
    }
}

/// `PARPARCHIK_EVENTS_*`: whether `POST /events` is served, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventsSettings {
    /// `None`: the endpoint is off (`/events` is 404).
    pub token: Option<EventsToken>,
    /// How long a route confirmed by an event or a sync is redirected without asking
    /// S3, while the bucket's events are trusted.
    pub verify_ttl: Duration,
    /// Larger bodies are refused with 413.
    pub max_body_bytes: usize,
    /// Hosts SNS URLs (`SubscribeURL`, `SigningCertURL`) may name; empty: SNS
    /// subscriptions are not confirmed and signatures not checked.
    pub sns_hosts: Vec<HostPattern>,
}

impl Default for EventsSettings {
    fn default() -> Self {
        EventsSettings {
            token: None,
            verify_ttl: Duration::from_secs(300),
            max_body_bytes: 1024 * 1024,
            sns_hosts: Vec::new(),
        }
    }
}

impl EventsSettings {
    pub(crate) fn enabled(&self) -> bool {
        self.token.is_some()
    }

    /// Whether SNS mode is on: subscriptions confirmed, signatures verified.
    pub fn sns(&self) -> bool {
        !self.sns_hosts.is_empty()
    }

    /// Whether `host` matches one of [`EventsSettings::sns_hosts`] (what the parsed
    /// patterns mean, for their tests; requests are checked by `events::sns`).
    #[cfg(test)]
    fn sns_host_allowed(&self, host: &str) -> bool {
        self.sns_hosts.iter().any(|p| p.matches(host))
    }

    pub(super) fn from_lookup(
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<EventsSettings, ConfigError> {
        let d = EventsSettings::default();
        let token = match get("PARPARCHIK_EVENTS_TOKEN") {
            None => None,
            Some(t) if t.trim().len() < 16 => {
                return Err(err(
                    "PARPARCHIK_EVENTS_TOKEN",
                    "is shorter than 16 characters; use a long random secret (e.g. openssl rand -hex 32)",
                ));
            }
            Some(t) => Some(EventsToken(t.trim().to_owned())),
        };
        let sns_hosts = match get("PARPARCHIK_EVENTS_SNS_HOSTS") {
            None => Vec::new(),
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    HostPattern::parse(p).ok_or_else(|| {
                        err(
                            "PARPARCHIK_EVENTS_SNS_HOSTS",
                            format!("{p:?} is not a host pattern like sns.*.amazonaws.com"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(EventsSettings {
            token,
            verify_ttl: parse_seconds(
                "PARPARCHIK_EVENTS_VERIFY_TTL",
                get("PARPARCHIK_EVENTS_VERIFY_TTL"),
                d.verify_ttl,
            )?,
            max_body_bytes: parse_count(
                "PARPARCHIK_EVENTS_MAX_BYTES",
                get("PARPARCHIK_EVENTS_MAX_BYTES"),
                d.max_body_bytes as u64,
                1024..=(64 << 20),
            )? as usize,
            sns_hosts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<EventsSettings, ConfigError> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        EventsSettings::from_lookup(&|k| map.get(k).map(|v| (*v).to_owned()))
    }

    #[test]
    fn off_by_default() {
        let s = load(&[]).unwrap();
        assert!(!s.enabled() && !s.sns());
        assert_eq!(s.verify_ttl, Duration::from_secs(300));
        assert_eq!(s.max_body_bytes, 1 << 20);
    }

    #[test]
    fn token_ttl_limit_and_hosts() {
        let s = load(&[
            ("PARPARCHIK_EVENTS_TOKEN", " s3cr3t-events-token-value "),
            ("PARPARCHIK_EVENTS_VERIFY_TTL", "60"),
            ("PARPARCHIK_EVENTS_MAX_BYTES", "4096"),
            (
                "PARPARCHIK_EVENTS_SNS_HOSTS",
                "sns.*.amazonaws.com, sns.cn-north-1.amazonaws.com.cn",
            ),
        ])
        .unwrap();
        assert_eq!(
            s.token,
            Some(EventsToken("s3cr3t-events-token-value".into()))
        );
        assert!(!format!("{s:?}").contains("s3cr3t"));
        assert_eq!(s.verify_ttl, Duration::from_secs(60));
        assert_eq!(s.max_body_bytes, 4096);
        assert!(s.sns_host_allowed("sns.us-east-1.amazonaws.com"));
        assert!(s.sns_host_allowed("SNS.eu-west-3.AmazonAWS.com."));
        assert!(s.sns_host_allowed("sns.cn-north-1.amazonaws.com.cn"));
        for bad in [
            "sns.us-east-1.amazonaws.com.evil.example",
            "evil.example",
            "sns.a.b.amazonaws.com",
            "sns..amazonaws.com",
            "xsns.us-east-1.amazonaws.com",
        ] {
            assert!(!s.sns_host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("PARPARCHIK_EVENTS_TOKEN", "short"),
            ("PARPARCHIK_EVENTS_VERIFY_TTL", "-1"),
            ("PARPARCHIK_EVENTS_MAX_BYTES", "10"),
            (
                "PARPARCHIK_EVENTS_SNS_HOSTS",
                "sns.*.amazonaws.com, bad host",
            ),
            ("PARPARCHIK_EVENTS_SNS_HOSTS", "*"),
        ] {
            assert_eq!(load(&[(var, value)]).unwrap_err().variable, var, "{value}");
        }
    }
}
