//! What `check-config` prints, sans-IO: the effective settings with secrets masked, and
//! per bucket what S3 answered. The probes themselves are in [`super`].

use std::fmt::Write as _;

use crate::config::variables::{ReadBy, VARIABLES};

/// The answer to one question about a bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Pass(String),
    /// Worth knowing, not a problem (a manifest not written yet).
    Info(String),
    Fail(String),
    /// Not asked, because an earlier answer made it pointless.
    Skip(String),
}

impl Outcome {
    fn word(&self) -> &'static str {
        match self {
            Outcome::Pass(_) => "yes",
            Outcome::Info(_) => "note",
            Outcome::Fail(_) => "NO",
            Outcome::Skip(_) => "not checked",
        }
    }

    fn detail(&self) -> &str {
        match self {
            Outcome::Pass(d) | Outcome::Info(d) | Outcome::Fail(d) | Outcome::Skip(d) => d,
        }
    }
}

/// What was found for one bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BucketReport {
    pub name: String,
    pub public: bool,
    pub reachable: Outcome,
    pub listable: Outcome,
    pub manifest: Outcome,
    /// Public buckets only: whether the plain URLs clients are sent to can be read.
    pub anonymous_read: Option<Outcome>,
}

impl BucketReport {
    fn outcomes(&self) -> impl Iterator<Item = (&'static str, &Outcome)> {
        [
            ("reachable", Some(&self.reachable)),
            ("listable", Some(&self.listable)),
            ("manifest present", Some(&self.manifest)),
            ("anonymous read", self.anonymous_read.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, o)| o.map(|o| (name, o)))
    }

    pub(crate) fn failures(&self) -> usize {
        self.outcomes()
            .filter(|(_, o)| matches!(o, Outcome::Fail(_)))
            .count()
    }
}

/// How a set value is shown: secrets never, an access key id by its first four
/// characters when it is long enough for that to leave most of it hidden (enough to
/// tell which key it is), everything else as written.
fn shown(name: &str, secret: bool, value: &str) -> String {
    const MASKED: &str = "<set, masked>";
    if secret {
        return MASKED.to_owned();
    }
    if name == "AWS_ACCESS_KEY_ID" {
        if value.chars().count() < 12 {
            return MASKED.to_owned();
        }
        let head: String = value.chars().take(4).collect();
        return format!("{head}… (masked)");
    }
    value.escape_debug().to_string()
}

/// Every variable the service reads at run time: its value when set (masked when a
/// secret), else its default.
pub(crate) fn settings(get: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::from("settings (environment; unset ones at their default):\n");
    let vars = VARIABLES.iter().filter(|v| v.read_by != ReadBy::Build);
    let width = VARIABLES.iter().map(|v| v.name.len()).max().unwrap_or(0);
    for v in vars {
        let value = get(v.name).filter(|x| !x.trim().is_empty());
        let text = match value {
            Some(x) => shown(v.name, v.secret, x.trim()),
            None => format!("(default: {})", v.default),
        };
        let _ = writeln!(out, "  {:width$}  {text}", v.name);
    }
    out
}

/// The per-bucket answers and the verdict line.
pub(crate) fn buckets(reports: &[BucketReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let _ = writeln!(
            out,
            "  {} ({})",
            r.name,
            if r.public { "public" } else { "private" }
        );
        for (name, o) in r.outcomes() {
            let detail = o.detail();
            let _ = write!(out, "    {name:<17} {}", o.word());
            if detail.is_empty() {
                out.push('\n');
            } else {
                let _ = writeln!(out, ": {detail}");
            }
        }
    }
    let failures: usize = reports.iter().map(BucketReport::failures).sum();
    if failures == 0 {
        out.push_str("result: ok\n");
    } else {
        let _ = writeln!(
            out,
            "result: {failures} problem{} found",
            if failures == 1 { "" } else { "s" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn secrets_are_masked_and_defaults_shown() {
        let env: HashMap<&str, &str> = [
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY123"),
            ("AWS_SECRET_ACCESS_KEY", "wJalr-secret-value"),
            ("AWS_SESSION_TOKEN", "session-token-value"),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-token-value"),
            ("PARPARCHIK_API_KEYS", "api-key-one,api-key-two"),
            ("PARPARCHIK_PUBLIC_BUCKET", "pub"),
        ]
        .into_iter()
        .collect();
        let text = settings(&|n| env.get(n).map(|v| (*v).to_owned()));
        for secret in [
            "wJalr",
            "session-token",
            "container-token",
            "api-key",
            "EXAMPLEKEY",
        ] {
            assert!(!text.contains(secret), "{secret} shown:\n{text}");
        }
        let line = |name: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} missing"))
                .to_owned()
        };
        assert!(line("AWS_SECRET_ACCESS_KEY").ends_with("<set, masked>"));
        assert!(line("AWS_ACCESS_KEY_ID").ends_with("AKIA… (masked)"));
        assert!(line("PARPARCHIK_PUBLIC_BUCKET").ends_with(" pub"));
        assert!(line("PARPARCHIK_PORT").ends_with("(default: 8080)"));
        assert!(!text.contains("PARPARCHIK_GIT_COMMIT"), "a build variable");
        let short = settings(&|n| (n == "AWS_ACCESS_KEY_ID").then(|| "k1".to_owned()));
        assert!(!short.contains("k1"), "a short key id is not shown in part");
    }

    fn report(listable: Outcome) -> BucketReport {
        BucketReport {
            name: "b".into(),
            public: true,
            reachable: Outcome::Pass(String::new()),
            listable,
            manifest: Outcome::Info("absent".into()),
            anonymous_read: Some(Outcome::Skip("bucket is empty".into())),
        }
    }

    #[test]
    fn the_verdict_counts_failures_only() {
        let ok = buckets(&[report(Outcome::Pass("2 objects".into()))]);
        assert!(ok.ends_with("result: ok\n"), "{ok}");
        assert!(
            ok.contains("    listable          yes: 2 objects\n"),
            "{ok}"
        );
        assert!(ok.contains("    manifest present  note: absent\n"), "{ok}");
        assert!(ok.contains("    anonymous read    not checked: bucket is empty\n"));
        let bad = buckets(&[
            report(Outcome::Fail("access denied".into())),
            report(Outcome::Fail("x".into())),
        ]);
        assert!(
            bad.contains("    listable          NO: access denied\n"),
            "{bad}"
        );
        assert!(bad.ends_with("result: 2 problems found\n"), "{bad}");
    }
}
