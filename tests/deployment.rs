//! The deployment files cannot be run here (no container engine), so they are read: every
//! variable they set is one the service reads (`config::variables::VARIABLES`, the table
//! the parser itself is checked against), every probe path is one the router answers,
//! and the image runs as a numeric non-root user. A deliberately broken copy of each file
//! must fail the same checks. (Their schemas are checked by `deploy/check.sh` in CI.)

use std::path::{Path, PathBuf};

use parparchik::config::BucketConfig;
use parparchik::config::variables;
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
    assert!(all.is_empty(), "{all:#?}");
}

#[test]
fn a_broken_copy_of_each_file_fails() {
    let breakages: [(&str, &str, &str); 5] = [
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
