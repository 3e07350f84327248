//! The command line, sans-IO: which command the arguments ask for, and the texts of
//! `--help` (generated from the table of variables the configuration parser itself is
//! checked against, so it cannot drift) and `--version`.

use crate::config::variables::{ReadBy, VARIABLES};

/// What the process was asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// No argument: serve, configured by the environment.
    Serve,
    /// `healthcheck`: exit 0 when the local service answers `/healthcheck` with 200.
    Healthcheck,
    /// `check-config`: validate the environment, show it (secrets masked), try S3.
    CheckConfig,
    /// `--help`, `-h` or `help`: print [`help_text`].
    Help,
    /// `--version` or `-V`: print [`version_text`].
    Version,
}

/// Parses the arguments after the program name; an error is one line for stderr.
pub fn parse(args: &[String]) -> Result<Command, String> {
    match args {
        [] => Ok(Command::Serve),
        [one] => match one.as_str() {
            "healthcheck" => Ok(Command::Healthcheck),
            "check-config" => Ok(Command::CheckConfig),
            "--help" | "-h" | "help" => Ok(Command::Help),
            "--version" | "-V" => Ok(Command::Version),
            other => Err(format!(
                "unknown argument {other:?}; try `parparchik --help`"
            )),
        },
        [first, ..] => Err(format!(
            "unexpected arguments after {first:?}; try `parparchik --help`"
        )),
    }
}

/// `parparchik <version> (commit <hash>)`; the commit when the build was given one in
/// `PARPARCHIK_GIT_COMMIT` (the Containerfile's build argument of that name).
pub fn version_text() -> String {
    // An `ARG` given no value reaches the build as an empty variable.
    let commit = option_env!("PARPARCHIK_GIT_COMMIT")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or("unknown");
    format!(
        "parparchik {} (commit {commit})\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// The `--help` text: usage, then every environment variable with its default and
/// meaning, from [`VARIABLES`].
pub fn help_text() -> String {
    let mut out = String::from(
        "parparchik: stable download routes for files in S3 / MinIO buckets.\n\
         GET /<bucket>/<key> answers 302 to the object (a plain URL for a public bucket,\n\
         a SigV4 presigned URL for a private one); the registry of every file is kept in\n\
         memory and persisted as JSON manifests in the buckets.\n\n\
         usage:\n\
         \x20 parparchik               serve, configured by the environment variables below\n\
         \x20 parparchik healthcheck   exit 0 if the local service answers /healthcheck (for images without curl)\n\
         \x20 parparchik check-config  validate the environment, print the settings (secrets masked), try each\n\
         \x20                          bucket on S3; exit 0 when all is well, 1 otherwise\n\
         \x20 parparchik --help        this text (-h)\n\
         \x20 parparchik --version     name, version and commit (-V)\n\n\
         environment (default in brackets):\n",
    );
    let width = VARIABLES.iter().map(|v| v.name.len()).max().unwrap_or(0);
    for v in VARIABLES {
        let note = match v.read_by {
            ReadBy::Parser => "",
            ReadBy::Library => " (read by the system trust store loader)",
            ReadBy::Build => " (read when building, not at run time)",
        };
        out.push_str(&format!(
            "  {:width$}  [{}] {}{note}\n",
            v.name, v.default, v.meaning
        ));
    }
    out.push_str(
        "\nBad configuration exits with status 2 and one line naming the variable.\n\
         API, contract and failure behaviour: docs/CONTRACT.md in the source repository.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn commands_and_refusals() {
        assert_eq!(parse(&args(&[])), Ok(Command::Serve));
        assert_eq!(parse(&args(&["healthcheck"])), Ok(Command::Healthcheck));
        assert_eq!(parse(&args(&["check-config"])), Ok(Command::CheckConfig));
        for h in ["--help", "-h", "help"] {
            assert_eq!(parse(&args(&[h])), Ok(Command::Help));
        }
        for v in ["--version", "-V"] {
            assert_eq!(parse(&args(&[v])), Ok(Command::Version));
        }
        for bad in [
            &["--bogus"][..],
            &["serve"],
            &["healthcheck", "x"],
            &["-h", "-V"],
        ] {
            let e = parse(&args(bad)).expect_err("refused");
            assert!(!e.contains('\n'), "one line: {e}");
            assert!(e.contains("--help"), "{e}");
        }
    }

    #[test]
    fn help_lists_every_variable_with_its_default() {
        let help = help_text();
        for v in VARIABLES {
            let line = help
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{} ", v.name)))
                .unwrap_or_else(|| panic!("{} missing from --help", v.name));
            assert!(line.contains(&format!("[{}]", v.default)), "{line}");
        }
    }

    #[test]
    fn version_names_the_package() {
        assert!(version_text().starts_with(&format!(
            "parparchik {} (commit ",
            env!("CARGO_PKG_VERSION")
        )));
    }
}
