//! The [`super::Config`] durations whose variables hold a number of seconds: one table
//! row each (name, default, what a small value does, the field it sets).

use std::time::Duration;

use super::{ConfigError, err, parse_seconds};

/// The seconds-valued durations of a [`super::Config`], as read.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Timings {
    pub s3_connect_timeout: Duration,
    pub s3_timeout: Duration,
    pub verify_ttl: Duration,
    /// Zero: the periodic re-sync is off.
    pub sync_interval: Duration,
    pub drain_timeout: Duration,
    pub header_timeout: Duration,
    pub write_timeout: Duration,
    pub shutdown_delay: Duration,
    pub credentials_poll_interval: Duration,
}

/// What a value at the bottom of the range does.
#[derive(Clone, Copy, Debug)]
enum Least {
    /// Zero is a meaningful value (no wait, no cache, off).
    Zero,
    /// Zero is refused: "must be more than 0".
    AboveZero,
    /// Smaller values are raised to this one.
    RaisedTo(Duration),
}

/// One seconds-valued variable (fractions allowed, below 1e9).
struct Seconds {
    name: &'static str,
    default: Duration,
    least: Least,
    set: fn(&mut Timings, Duration),
}

const fn secs(
    name: &'static str,
    default: u64,
    least: Least,
    set: fn(&mut Timings, Duration),
) -> Seconds {
    Seconds {
        name,
        default: Duration::from_secs(default),
        least,
        set,
    }
}

/// In the order they are checked: the first bad one is the error.
const SECONDS: [Seconds; 9] = [
    secs("PARPARCHIK_SYNC_INTERVAL", 300, Least::Zero, |t, d| {
        t.sync_interval = d;
    }),
    secs("PARPARCHIK_S3_CONNECT_TIMEOUT", 2, Least::Zero, |t, d| {
        t.s3_connect_timeout = d;
    }),
    secs("PARPARCHIK_S3_TIMEOUT", 5, Least::Zero, |t, d| {
        t.s3_timeout = d;
    }),
    // 0: confirm with S3 on every download (the contract's behaviour).
    secs("PARPARCHIK_VERIFY_TTL", 0, Least::Zero, |t, d| {
        t.verify_ttl = d;
    }),
    secs("PARPARCHIK_DRAIN_TIMEOUT", 10, Least::Zero, |t, d| {
        t.drain_timeout = d;
    }),
    secs("PARPARCHIK_HEADER_TIMEOUT", 10, Least::Zero, |t, d| {
        t.header_timeout = d;
    }),
    // A zero write timeout would close every connection at its first write.
    secs("PARPARCHIK_WRITE_TIMEOUT", 30, Least::AboveZero, |t, d| {
        t.write_timeout = d;
    }),
    secs("PARPARCHIK_SHUTDOWN_DELAY", 5, Least::Zero, |t, d| {
        t.shutdown_delay = d;
    }),
    // Polling files more often than this only burns CPU.
    secs(
        "PARPARCHIK_CREDENTIALS_POLL_INTERVAL",
        10,
        Least::RaisedTo(Duration::from_millis(100)),
        |t, d| t.credentials_poll_interval = d,
    ),
];

impl Seconds {
    fn read(&self, get: &dyn Fn(&str) -> Option<String>) -> Result<Duration, ConfigError> {
        let d = parse_seconds(self.name, get(self.name), self.default)?;
        match self.least {
            Least::Zero => Ok(d),
            Least::AboveZero if d.is_zero() => Err(err(self.name, "must be more than 0")),
            Least::AboveZero => Ok(d),
            Least::RaisedTo(least) => Ok(d.max(least)),
        }
    }
}

impl Timings {
    pub(super) fn from_lookup(
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Timings, ConfigError> {
        let mut timings = Timings::default();
        for s in &SECONDS {
            (s.set)(&mut timings, s.read(get)?);
        }
        Ok(timings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::variables;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<Timings, ConfigError> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        Timings::from_lookup(&|k| map.get(k).map(|v| (*v).to_owned()))
    }

    /// Each row's field, named independently of the table.
    fn field(t: &Timings, name: &str) -> Duration {
        match name {
            "PARPARCHIK_SYNC_INTERVAL" => t.sync_interval,
            "PARPARCHIK_S3_CONNECT_TIMEOUT" => t.s3_connect_timeout,
            "PARPARCHIK_S3_TIMEOUT" => t.s3_timeout,
            "PARPARCHIK_VERIFY_TTL" => t.verify_ttl,
            "PARPARCHIK_DRAIN_TIMEOUT" => t.drain_timeout,
            "PARPARCHIK_HEADER_TIMEOUT" => t.header_timeout,
            "PARPARCHIK_WRITE_TIMEOUT" => t.write_timeout,
            "PARPARCHIK_SHUTDOWN_DELAY" => t.shutdown_delay,
            "PARPARCHIK_CREDENTIALS_POLL_INTERVAL" => t.credentials_poll_interval,
            other => panic!("{other} has no field here"),
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let t = read(&[]).unwrap();
        for s in &SECONDS {
            let documented = variables::find(s.name).map(|v| v.default);
            assert_eq!(documented, Some(s.default.as_secs().to_string().as_str()));
            assert_eq!(field(&t, s.name), s.default, "{}", s.name);
        }
    }

    #[test]
    fn each_row_sets_its_own_field() {
        for s in &SECONDS {
            let t = read(&[(s.name, " 2.5 ")]).unwrap();
            assert_eq!(field(&t, s.name), Duration::from_millis(2500), "{}", s.name);
            // No other field moved.
            for other in SECONDS.iter().filter(|o| o.name != s.name) {
                assert_eq!(field(&t, other.name), other.default, "{} moved", other.name);
            }
        }
    }

    #[test]
    fn each_row_accepts_its_default_and_refuses_garbage() {
        for s in &SECONDS {
            let default = s.default.as_secs().to_string();
            let t = read(&[(s.name, &default)]).unwrap();
            assert_eq!(field(&t, s.name), s.default, "{}", s.name);
            for bad in ["soon", "-1", "1e9", "NaN", "inf"] {
                let e = read(&[(s.name, bad)]).unwrap_err();
                assert_eq!(
                    e,
                    err(s.name, format!("{bad:?} is not a number of seconds")),
                    "{bad}"
                );
            }
        }
    }

    #[test]
    fn small_values() {
        let t = read(&[
            ("PARPARCHIK_SYNC_INTERVAL", "0"),
            ("PARPARCHIK_VERIFY_TTL", "0"),
            ("PARPARCHIK_CREDENTIALS_POLL_INTERVAL", "0.01"),
        ])
        .unwrap();
        assert_eq!(t.sync_interval, Duration::ZERO);
        assert_eq!(t.verify_ttl, Duration::ZERO);
        assert_eq!(t.credentials_poll_interval, Duration::from_millis(100));
        for zero in ["0", "0.0", "1e-10"] {
            assert_eq!(
                read(&[("PARPARCHIK_WRITE_TIMEOUT", zero)]).unwrap_err(),
                err("PARPARCHIK_WRITE_TIMEOUT", "must be more than 0")
            );
        }
    }
}
