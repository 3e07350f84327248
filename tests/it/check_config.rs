//! `parparchik check-config` against the in-process S3: exit 0 with every bucket
//! reachable, listable, its manifest present and the public one readable anonymously;
//! exit 1 naming the problem with wrong credentials or a missing bucket; never a secret
//! in the output.

use crate::support::common::{self, ACCESS_KEY, PRIVATE, PUBLIC, S3, SECRET_KEY, two_bucket_env};

/// Runs `parparchik check-config` with exactly `env` (nothing inherited).
async fn check_config(env: Vec<(String, String)>) -> (Option<i32>, String, String) {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_parparchik"))
            .arg("check-config")
            .env_clear()
            .envs(env)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("the binary runs")
    })
    .await
    .expect("joined");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn with(mut env: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    env.retain(|(k, _)| k != name);
    env.push((name.to_owned(), value.to_owned()));
    env
}

/// The lines of the bucket `name`'s block.
fn block<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    out.lines()
        .skip_while(|l| !l.starts_with(&format!("  {name} (")))
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .collect()
}

fn assert_no_secret(out: &str) {
    assert!(!out.contains(SECRET_KEY), "the secret key is shown:\n{out}");
    assert!(
        !out.contains(ACCESS_KEY),
        "the whole access key is shown:\n{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_working_setup_passes_every_check() {
    let s3 = S3::two_buckets().await;
    let seed = s3.client();
    seed.put(PUBLIC, "docs/a.txt", "hello").await;
    seed.put(PRIVATE, "b.txt", "secret file").await;
    for bucket in [PUBLIC, PRIVATE] {
        let manifest = format!(r#"{{"version":1,"bucket":"{bucket}","files":[]}}"#);
        seed.put(bucket, common::MANIFEST, manifest).await;
    }
    let env = with(
        two_bucket_env(&s3.endpoint()),
        "PARPARCHIK_API_KEYS",
        "api-key-never-shown",
    );
    let (code, out, err) = check_config(env).await;
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("configuration: valid"), "{out}");
    assert!(out.ends_with("result: ok\n"), "{out}");
    let public = block(&out, PUBLIC);
    for (check, want) in [
        ("reachable", "yes"),
        ("listable", "yes"),
        ("manifest present", "yes"),
        ("anonymous read", "yes"),
    ] {
        assert!(
            public
                .iter()
                .any(|l| l.trim_start().starts_with(check) && l.contains(&format!(" {want}"))),
            "{PUBLIC}: {check} is not {want}:\n{out}"
        );
    }
    let private = block(&out, PRIVATE);
    assert!(
        private
            .iter()
            .any(|l| l.contains("manifest present") && l.contains("yes")),
        "{out}"
    );
    assert!(
        !private.iter().any(|l| l.contains("anonymous read")),
        "only public buckets are read anonymously:\n{out}"
    );
    assert!(out.contains("PARPARCHIK_API_KEYS"), "{out}");
    assert!(!out.contains("api-key-never-shown"), "{out}");
    assert_no_secret(&out);
    assert_no_secret(&err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_with_status_1() {
    let s3 = S3::two_buckets().await;
    let env = with(
        two_bucket_env(&s3.endpoint()),
        "AWS_SECRET_ACCESS_KEY",
        "not-the-secret-key",
    );
    let (code, out, err) = check_config(env).await;
    assert_eq!(code, Some(1), "stdout:\n{out}\nstderr:\n{err}");
    for bucket in [PUBLIC, PRIVATE] {
        let lines = block(&out, bucket);
        assert!(
            lines
                .iter()
                .any(|l| l.contains("listable") && l.contains("NO: access denied")),
            "{bucket}:\n{out}"
        );
    }
    assert!(out.ends_with("result: 2 problems found\n"), "{out}");
    assert!(!out.contains("not-the-secret-key") && !err.contains("not-the-secret-key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_and_an_unreachable_s3_fail() {
    let mut s3 = S3::two_buckets().await;
    let env = with(
        two_bucket_env(&s3.endpoint()),
        "PARPARCHIK_BUCKETS",
        &format!("{PUBLIC}::public,no-such-bucket"),
    );
    let (code, out, _) = check_config(env.clone()).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        block(&out, PUBLIC)
            .iter()
            .any(|l| l.contains("listable") && l.contains("yes")),
        "{out}"
    );
    assert!(
        block(&out, "no-such-bucket")
            .iter()
            .any(|l| l.contains("listable") && l.contains("NO")),
        "{out}"
    );
    // An empty public bucket has nothing to read: not a failure by itself.
    assert!(
        out.contains("not checked: the bucket holds no object to read"),
        "{out}"
    );

    s3.stop().await;
    let (code, out, _) = check_config(env).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        block(&out, PUBLIC)
            .iter()
            .any(|l| l.contains("reachable") && l.contains("NO: S3 unavailable")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_configuration_fails_before_any_call() {
    let (code, out, _) = check_config(vec![
        ("PARPARCHIK_BUCKETS".into(), "a".into()),
        ("PARPARCHIK_LOG_FORMAT".into(), "xml".into()),
    ])
    .await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("configuration: INVALID: PARPARCHIK_LOG_FORMAT"),
        "{out}"
    );
    assert!(!out.contains("reachable"), "{out}");
}
