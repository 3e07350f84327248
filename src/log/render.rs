//! How one log line looks, sans-IO: `text` (the historical one-line form) or `json` (one
//! object per line, for Loki, Elasticsearch, CloudWatch). Callers never pass secrets,
//! signatures or `Location` values: request lines carry the client's own path and query.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

/// Severity; a line is written when its level is at most the configured one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed and was not recovered here.
    Error,
    /// Something failed and the service carries on (S3 down, a write retried).
    Warn,
    /// Start-up, phases, recoveries: the default.
    Info,
    /// Detail for diagnosis.
    Debug,
}

impl Level {
    pub(crate) const ALL: [Level; 4] = [Level::Error, Level::Warn, Level::Info, Level::Debug];

    /// `error`, `warn`, `info`, `debug` (case-insensitive; `warning` too).
    pub fn parse(value: &str) -> Option<Level> {
        let v = value.trim();
        Level::ALL
            .into_iter()
            .find(|l| v.eq_ignore_ascii_case(l.name()))
            .or_else(|| v.eq_ignore_ascii_case("warning").then_some(Level::Warn))
    }

    /// The name in JSON lines and the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    /// The word in text lines.
    fn text(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }
}

/// How lines are written (`PARPARCHIK_LOG_FORMAT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `<timestamp> <LEVEL> <text>`, one line each: the default.
    Text,
    /// One JSON object per line.
    Json,
}

impl Format {
    /// `text` or `json`, as configured.
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
        }
    }

    /// `text` or `json`, case-insensitive; `None` for anything else.
    pub fn parse(value: &str) -> Option<Format> {
        let v = value.trim();
        if v.eq_ignore_ascii_case("text") {
            Some(Format::Text)
        } else if v.eq_ignore_ascii_case("json") {
            Some(Format::Json)
        } else {
            None
        }
    }
}

/// A request, as its access line tells it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Access<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) status: u16,
    pub(crate) duration_us: u64,
    /// `None` when the client left before the answer (status 499).
    pub(crate) s3_calls: Option<u32>,
    pub(crate) client: IpAddr,
    pub(crate) request_id: &'a str,
}

/// What one line says.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Record<'a> {
    Message {
        level: Level,
        text: fmt::Arguments<'a>,
    },
    Access(&'a Access<'a>),
}

/// The time of a line: `second` is `YYYY-MM-DDTHH:MM:SS` (cached per second by the
/// caller, since most lines share their second), `millis` the milliseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamp<'a> {
    pub second: &'a str,
    pub millis: u16,
}

/// Longest path and query written: the client's own words, kept to a line.
const MAX_PATH: usize = 512;
const MAX_QUERY: usize = 256;

/// Appends one line, `\n` included.
pub(crate) fn write(out: &mut String, format: Format, stamp: Stamp<'_>, record: &Record<'_>) {
    match format {
        Format::Text => text(out, stamp, record),
        Format::Json => json(out, stamp, record),
    }
    out.push('\n');
}

fn text(out: &mut String, stamp: Stamp<'_>, record: &Record<'_>) {
    out.push_str(stamp.second);
    out.push('Z');
    match record {
        Record::Message { level, text } => {
            let _ = write!(out, " {} {text}", level.text());
        }
        Record::Access(a) => {
            let _ = write!(
                out,
                " INFO {} {}{}{} {} {}us s3_calls=",
                a.method,
                prefix(a.path, MAX_PATH),
                if a.query.is_some() { "?" } else { "" },
                a.query.map_or("", |q| prefix(q, MAX_QUERY)),
                a.status,
                a.duration_us,
            );
            match a.s3_calls {
                Some(n) => {
                    let _ = write!(out, "{n}");
                }
                None => out.push('?'),
            }
            let _ = write!(out, " client={} request_id={}", a.client, a.request_id);
        }
    }
}

fn json(out: &mut String, stamp: Stamp<'_>, record: &Record<'_>) {
    let _ = write!(out, "{{\"ts\":\"{}.{:03}Z\"", stamp.second, stamp.millis);
    match record {
        Record::Message { level, text } => {
            let _ = write!(out, ",\"level\":\"{}\",\"msg\":", level.name());
            push_json_args(out, *text);
        }
        Record::Access(a) => {
            let path = prefix(a.path, MAX_PATH);
            out.push_str(",\"level\":\"info\",\"msg\":");
            push_json_args(out, format_args!("{} {path} {}", a.method, a.status));
            out.push_str(",\"method\":");
            push_json_str(out, a.method);
            out.push_str(",\"path\":");
            push_json_str(out, path);
            out.push_str(",\"query\":");
            match a.query {
                Some(q) => push_json_str(out, prefix(q, MAX_QUERY)),
                None => out.push_str("null"),
            }
            let _ = write!(
                out,
                ",\"status\":{},\"duration_us\":{},\"s3_calls\":",
                a.status, a.duration_us
            );
            match a.s3_calls {
                Some(n) => {
                    let _ = write!(out, "{n}");
                }
                None => out.push_str("null"),
            }
            let _ = write!(out, ",\"client\":\"{}\",\"request_id\":", a.client);
            push_json_str(out, a.request_id);
        }
    }
    out.push('}');
}

/// Escapes what is written through it as the inside of a JSON string, exactly as
/// `serde_json` does (tested against it): `"`, `\` and control characters.
struct JsonEscaped<'a>(&'a mut String);

impl fmt::Write for JsonEscaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let out = &mut *self.0;
        let mut plain = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape: &str = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0..=0x1f => "",
                _ => continue,
            };
            // Everything before this byte is plain; multi-byte UTF-8 never contains
            // bytes below 0x80, so the cut is at a character boundary.
            out.push_str(&s[plain..i]);
            if escape.is_empty() {
                out.push_str("\\u00");
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 0xf)] as char);
            } else {
                out.push_str(escape);
            }
            plain = i + 1;
        }
        out.push_str(&s[plain..]);
        Ok(())
    }
}

/// Appends `s` as a JSON string, quotes included.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let _ = JsonEscaped(out).write_str(s);
    out.push('"');
}

/// Appends formatted text as a JSON string without building it first.
fn push_json_args(out: &mut String, args: fmt::Arguments<'_>) {
    out.push('"');
    let _ = JsonEscaped(out).write_fmt(args);
    out.push('"');
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub(crate) fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STAMP: Stamp<'static> = Stamp {
        second: "2026-05-05T10:00:07",
        millis: 42,
    };

    fn access<'a>(path: &'a str, query: Option<&'a str>, id: &'a str) -> Access<'a> {
        Access {
            method: "GET",
            path,
            query,
            status: 302,
            duration_us: 1234,
            s3_calls: Some(1),
            client: "192.0.2.7".parse().unwrap(),
            request_id: id,
        }
    }

    fn line(format: Format, record: &Record<'_>) -> String {
        let mut out = String::new();
        write(&mut out, format, STAMP, record);
        out
    }

    #[test]
    fn text_lines_keep_the_historical_form() {
        let msg = line(
            Format::Text,
            &Record::Message {
                level: Level::Warn,
                text: format_args!("S3 {} down", "is"),
            },
        );
        assert_eq!(msg, "2026-05-05T10:00:07Z WARN S3 is down\n");
        let a = access("/public-bucket/a.txt", Some("x=1"), "abc-1");
        assert_eq!(
            line(Format::Text, &Record::Access(&a)),
            "2026-05-05T10:00:07Z INFO GET /public-bucket/a.txt?x=1 302 1234us s3_calls=1 client=192.0.2.7 request_id=abc-1\n"
        );
        let gone = Access {
            s3_calls: None,
            status: 499,
            query: None,
            ..a
        };
        assert!(line(Format::Text, &Record::Access(&gone)).contains(" 499 1234us s3_calls=? "));
    }

    #[test]
    fn json_request_lines_have_every_field() {
        let a = access("/b/\"quoted\"\\path", None, "req.1:2-3_4");
        let out = line(Format::Json, &Record::Access(&a));
        assert!(out.ends_with("}\n") && out.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "ts": "2026-05-05T10:00:07.042Z",
                "level": "info",
                "msg": "GET /b/\"quoted\"\\path 302",
                "method": "GET",
                "path": "/b/\"quoted\"\\path",
                "query": null,
                "status": 302,
                "duration_us": 1234,
                "s3_calls": 1,
                "client": "192.0.2.7",
                "request_id": "req.1:2-3_4",
            })
        );
        let gone = Access {
            s3_calls: None,
            query: Some("q=\u{7}"),
            client: "2001:db8::1".parse().unwrap(),
            ..a
        };
        let v: serde_json::Value =
            serde_json::from_str(&line(Format::Json, &Record::Access(&gone))).unwrap();
        assert_eq!(v["s3_calls"], serde_json::Value::Null);
        assert_eq!(v["query"], "q=\u{7}");
        assert_eq!(v["client"], "2001:db8::1");
    }

    #[test]
    fn json_messages_escape_what_they_are_given() {
        for level in Level::ALL {
            let out = line(
                Format::Json,
                &Record::Message {
                    level,
                    text: format_args!("line one\nline \"two\" {}", "\u{1}\u{1f}ü"),
                },
            );
            assert_eq!(out.lines().count(), 1, "one line: {out}");
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["level"], level.name());
            assert_eq!(v["msg"], "line one\nline \"two\" \u{1}\u{1f}ü");
            assert_eq!(v["ts"], "2026-05-05T10:00:07.042Z");
        }
    }

    #[test]
    fn long_paths_are_cut_at_a_character_boundary() {
        let path = format!("/{}", "é".repeat(400));
        let a = access(&path, None, "x");
        let v: serde_json::Value =
            serde_json::from_str(&line(Format::Json, &Record::Access(&a))).unwrap();
        let logged = v["path"].as_str().unwrap();
        assert!(logged.len() <= MAX_PATH && path.starts_with(logged));
    }

    #[test]
    fn escaping_equals_serde_json_for_every_small_character() {
        for c in (0u32..0x800).filter_map(char::from_u32) {
            let s = format!("a{c}b{c}");
            let mut ours = String::new();
            push_json_str(&mut ours, &s);
            assert_eq!(ours, serde_json::to_string(&s).unwrap(), "{c:?}");
        }
    }

    proptest! {
        #[test]
        fn escaping_equals_serde_json(s in any::<String>()) {
            let mut ours = String::new();
            push_json_str(&mut ours, &s);
            prop_assert_eq!(ours, serde_json::to_string(&s).unwrap());
        }
    }

    #[test]
    fn levels_and_formats_parse() {
        assert_eq!(Level::parse(" WARN "), Some(Level::Warn));
        assert_eq!(Level::parse("warning"), Some(Level::Warn));
        assert_eq!(Level::parse("trace"), None);
        assert!(Level::Error < Level::Debug);
        assert_eq!(Format::parse("JSON"), Some(Format::Json));
        assert_eq!(Format::parse("logfmt"), None);
    }
}
