//! The deployment files cannot be run here (no container engine), so they are read: every
//! variable they set is one the service reads (`config::variables::VARIABLES`, the table
//! the parser itself is checked against), a build-time variable is set only where a
//! build reads it (an `ARG` or `RUN` of the Containerfile), every probe path is one the
//! router answers, and the image runs as a numeric non-root user. A deliberately broken copy of each file
//! must fail the same checks. (Their schemas are checked by `deploy/check.sh` in CI.)

use std::path::{Path, PathBuf};

use parparchik::config::BucketConfig;
use parparchik::config::variables::{self, ReadBy};
use parparchik::http::router::{Route, route};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files operators deploy with.
fn deployment_files() -> Vec<PathBuf> {
    let mut files = vec![repo().join("compose.yaml"), repo().join("Containerfile")];
    for dir in ["deploy/kubernetes", "deploy/kubernetes/irsa"] {
        let mut yaml: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
            .expect("deploy folder")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        yaml.sort();
        files.extend(yaml);
    }
    files
}

/// Names that look like the service's variables: `PARPARCHIK_*`, `S3_*`, `AWS_*` and the
/// trust store's `SSL_CERT_*`, as whole words (comments included: a typo in an example
/// is a typo an operator will copy).
fn variables_named(text: &str) -> Vec<&str> {
    const PREFIXES: [&str; 4] = ["PARPARCHIK_", "S3_", "AWS_", "SSL_CERT_"];
    let word = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_';
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if word(bytes[i]) && (i == 0 || !word(bytes[i - 1])) {
            let end = (i..bytes.len())
                .find(|&j| !word(bytes[j]))
                .unwrap_or(bytes.len());
            let name = &text[i..end];
            if PREFIXES.iter().any(|p| name.starts_with(p)) {
                out.push(name);
            }
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// Probe and scrape paths: `path: /…` (Kubernetes `httpGet`) and `prometheus.io/path: /…`.
fn probe_paths(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start().trim_start_matches('#').trim_start();
            let value = line
                .strip_prefix("path:")
                .or_else(|| line.strip_prefix("prometheus.io/path:"))?;
            let value = value.trim().trim_matches('"');
            value.starts_with('/').then_some(value)
        })
        .collect()
}

/// The file's logical lines (continuations with a trailing backslash joined), comments left out.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Build-time variables set where nothing reads them: anywhere but an `ARG` or `RUN`
/// instruction of the Containerfile (comments may name them).
fn misplaced_build_variables(file: &Path, text: &str) -> Vec<String> {
    let containerfile = file.file_name().is_some_and(|n| n == "Containerfile");
    let mut out = Vec::new();
    for line in logical_lines(text) {
        let instruction = line.split_whitespace().next().unwrap_or_default();
        let read_by_build = containerfile && (instruction == "ARG" || instruction == "RUN");
        for name in variables_named(&line) {
            let build = variables::find(name).is_some_and(|v| v.read_by == ReadBy::Build);
            if build && !read_by_build {
                out.push(format!(
                    "{}: sets {name} outside a build step; it is read when building, never at run time",
                    file.display()
                ));
            }
        }
    }
    out
}

/// What is wrong with one deployment file, as lines for a test failure.
fn problems(file: &Path, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for name in variables_named(text) {
        if variables::find(name).is_none() {
            out.push(format!(
                "{}: sets {name}, which the service does not read",
                file.display()
            ));
        }
    }
    out.extend(misplaced_build_variables(file, text));
    // No bucket is configured, so any path the router answers is one of its own routes.
    let buckets: Vec<BucketConfig> = Vec::new();
    for path in probe_paths(text) {
        if route(path, &buckets) == Route::NotFound {
            out.push(format!(
                "{}: probes {path}, which the service does not answer",
                file.display()
            ));
        }
    }
    if file.file_name().is_some_and(|n| n == "Containerfile") {
        let user = text
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("USER "))
            .map(str::trim);
        let numeric_non_root = user.is_some_and(|u| {
            u.split(':')
                .all(|id| id.parse::<u32>().is_ok_and(|n| n != 0))
        });
        if !numeric_non_root {
            out.push(format!(
                "{}: the image must run as a numeric non-root user (USER uid:gid), has {user:?}",
                file.display()
            ));
        }
    }
    out
}

#[test]
fn the_deployment_files_name_only_what_the_service_knows() {
    let mut all = Vec::new();
    let mut seen_probe = false;
    for file in deployment_files() {
        let text = std::fs::read_to_string(&file).expect("readable");
        seen_probe |= !probe_paths(&text).is_empty();
        all.extend(problems(&file, &text));
    }
    assert!(seen_probe, "the Kubernetes manifests have probes to check");
    // The image is built with the commit `--version` names.
    let containerfile = std::fs::read_to_string(repo().join("Containerfile")).expect("readable");
    let build = logical_lines(&containerfile)
        .into_iter()
        .find(|l| l.contains("cargo build"))
        .expect("a build step");
    assert!(
        build.contains("PARPARCHIK_GIT_COMMIT=\"$PARPARCHIK_GIT_COMMIT\"")
            && containerfile.contains("\nARG PARPARCHIK_GIT_COMMIT"),
        "{build}"
    );
    assert!(all.is_empty(), "{all:#?}");
}

#[test]
fn a_broken_copy_of_each_file_fails() {
    let breakages: [(&str, &str, &str); 7] = [
        (
            "compose.yaml",
            "S3_EXTERNAL_ENDPOINT:",
            "S3_EXTERNAL_ENDPOINTS:",
        ),
        (
            "deploy/kubernetes/configmap.yaml",
            "PARPARCHIK_SYNC_INTERVAL",
            "PARPARCHIK_SYNC_INTERVALL",
        ),
        (
            "deploy/kubernetes/deployment.yaml",
            "path: /redines",
            "path: /readyz",
        ),
        (
            "deploy/kubernetes/irsa/irsa-example.yaml",
            "AWS_ROLE_ARN",
            "AWS_ROLE_ARM",
        ),
        ("Containerfile", "USER 65532:65532", "USER nonroot"),
        // A build-time variable set for the running image does nothing.
        (
            "Containerfile",
            "PARPARCHIK_PORT=8080",
            "PARPARCHIK_PORT=8080 PARPARCHIK_GIT_COMMIT=abc",
        ),
        (
            "compose.yaml",
            "S3_EXTERNAL_ENDPOINT:",
            "PARPARCHIK_GIT_COMMIT: abc\n      S3_EXTERNAL_ENDPOINT:",
        ),
    ];
    for (file, from, to) in breakages {
        let path = repo().join(file);
        let text = std::fs::read_to_string(&path).expect("readable");
        assert!(text.contains(from), "{file} still contains {from:?}");
        assert!(problems(&path, &text).is_empty(), "{file} is fine as it is");
        let broken = text.replacen(from, to, 1);
        assert!(
            !problems(&path, &broken).is_empty(),
            "{file} with {from:?} → {to:?} passes the check"
        );
    }
}

#[test]
fn the_scanner_reads_names_and_paths_as_written() {
    assert_eq!(
        variables_named(
            "A: ${PARPARCHIK_X:-1}\n- AWS_REGION=x # S3_ENDPOINT\nXPARPARCHIK_Y $AWS_Z"
        ),
        ["PARPARCHIK_X", "AWS_REGION", "S3_ENDPOINT", "AWS_Z"]
    );
    assert_eq!(
        probe_paths(
            "  path: /readiness\n#   path: /metrics\n  path: token\nprometheus.io/path: \"/metrics\""
        ),
        ["/readiness", "/metrics", "/metrics"]
    );
}
