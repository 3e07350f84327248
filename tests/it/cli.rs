//! The binary's command line as an operator meets it: `--help` and `--version` answer
//! without any configuration, an unknown argument is one line and status 2.

use std::process::Command;

fn parparchik(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_parparchik"))
        .args(args)
        .env_clear()
        .output()
        .expect("the binary runs")
}

#[test]
fn help_and_version_need_no_configuration() {
    for flag in ["--help", "-h"] {
        let out = parparchik(&[flag]);
        assert!(out.status.success(), "{flag}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        for v in parparchik::config::variables::VARIABLES {
            assert!(text.contains(v.name), "{flag} lacks {}", v.name);
        }
        assert!(text.contains("healthcheck"));
    }
    for flag in ["--version", "-V"] {
        let out = parparchik(&[flag]);
        assert!(out.status.success(), "{flag}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("parparchik "), "{text}");
    }
}

#[test]
fn an_unknown_argument_is_one_line_and_status_2() {
    let out = parparchik(&["--verbose"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--verbose") && err.contains("--help"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn the_readme_shows_the_usage_of_help_as_printed() {
    let out = parparchik(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    let usage: String = help
        .lines()
        .skip_while(|l| *l != "usage:")
        .take_while(|l| !l.starts_with("environment"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(usage.contains("check-config"), "{usage}");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    assert!(
        readme.contains(&usage),
        "README's --help block differs from:\n{usage}"
    );
}

#[test]
fn check_config_is_a_command_not_an_unknown_argument() {
    // No configuration at all: invalid, status 1 (not 2, the unknown-argument status).
    let out = parparchik(&["check-config"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("configuration: INVALID: PARPARCHIK_BUCKETS"),
        "{text}"
    );
}
