//! The suite's environment variables.

use std::path::PathBuf;

pub struct Settings {
    /// `E2E_S3_ENDPOINT`; `None` starts the embedded local S3.
    pub s3_endpoint: Option<String>,
    pub public_bucket: String,
    pub private_bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
    pub region: String,
    /// `APP_URL`: a running service to test instead of starting one.
    pub app_url: Option<String>,
    /// `E2E_APP_BIN`, else `debug/parparchik` in the target dir (`CARGO_TARGET_DIR`, or
    /// `target/` in the workspace).
    pub app_bin: PathBuf,
    /// `E2E_EVENTS_TOKEN`: the service's `PARPARCHIK_EVENTS_TOKEN` (and the token the
    /// embedded S3 sends its notifications with). Unset: a fresh one when the suite
    /// starts both the S3 and the service, else none.
    pub events_token: Option<String>,
}

/// The variable's value, unless unset or empty.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn var_or(name: &str, default: &str) -> String {
    var(name).unwrap_or_else(|| default.to_owned())
}

impl Settings {
    pub fn from_env() -> Settings {
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let app_bin = match var("E2E_APP_BIN") {
            Some(p) => PathBuf::from(p),
            None => var("CARGO_TARGET_DIR")
                .map_or_else(|| workspace.join("target"), PathBuf::from)
                .join("debug/parparchik"),
        };
        Settings {
            s3_endpoint: var("E2E_S3_ENDPOINT").map(|e| e.trim_end_matches('/').to_owned()),
            public_bucket: var_or("E2E_PUBLIC_BUCKET", "public-bucket"),
            private_bucket: var_or("E2E_PRIVATE_BUCKET", "private-bucket"),
            access_key: var_or("AWS_ACCESS_KEY_ID", "minioadmin"),
            secret_key: var_or("AWS_SECRET_ACCESS_KEY", "minioadmin"),
            session_token: var("AWS_SESSION_TOKEN"),
            region: var_or("AWS_REGION", "us-east-1"),
            app_url: var("APP_URL").map(|u| u.trim_end_matches('/').to_owned()),
            app_bin,
            events_token: var("E2E_EVENTS_TOKEN"),
        }
    }
}
