//! `cargo run -p parparchik-demo`: the whole stack on one machine, nothing to install.
//!
//! Starts the embedded S3 server (`local-s3`, SigV4 on, data in `.devdata/s3`) with the
//! demo buckets `public-bucket` (anonymous reads, like MinIO's `mc anonymous set
//! download`) and `private-bucket`, seeds two demo files, starts parparchik in front of
//! it, prints URLs to try and serves until Ctrl-C. `--s3-only` starts just the S3 server
//! (for the e2e suite or a service started by hand).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use parparchik::app::App;
use parparchik::config::Config;
use parparchik::s3::PutCondition;

const PUBLIC: &str = "public-bucket";
const PRIVATE: &str = "private-bucket";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() -> ExitCode {
    let s3_only = std::env::args().any(|a| a == "--s3-only");
    let access = env_or("AWS_ACCESS_KEY_ID", "minioadmin");
    let secret = env_or("AWS_SECRET_ACCESS_KEY", "minioadmin");
    let s3_addr: SocketAddr = match env_or("DEMO_S3_ADDR", "127.0.0.1:9000").parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("DEMO_S3_ADDR: {e}");
            return ExitCode::from(2);
        }
    };
    let data = env_or("DEMO_DATA_DIR", ".devdata/s3");

    let mut cfg = local_s3::Config::new(&data, &access, &secret);
    cfg.addr = s3_addr;
    cfg.buckets = vec![PUBLIC.into(), PRIVATE.into()];
    cfg.public_buckets = vec![PUBLIC.into()];
    let s3 = match local_s3::LocalS3::start(cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "cannot start the local S3 server on {s3_addr}: {e} (set DEMO_S3_ADDR to use another address)"
            );
            return ExitCode::FAILURE;
        }
    };
    println!(
        "local S3 at {} (data in {data}, credentials {access}/<secret>)",
        s3.endpoint()
    );
    if s3_only {
        println!("serving S3 only; Ctrl-C to stop");
        let _ = tokio::signal::ctrl_c().await;
        s3.stop().await;
        return ExitCode::SUCCESS;
    }

    let port = env_or("PARPARCHIK_PORT", "8080");
    let vars: HashMap<&str, String> = HashMap::from([
        ("PARPARCHIK_PUBLIC_BUCKET", PUBLIC.to_owned()),
        ("PARPARCHIK_PRIVATE_BUCKET", PRIVATE.to_owned()),
        ("PARPARCHIK_HOST", "127.0.0.1".to_owned()),
        ("PARPARCHIK_PORT", port.clone()),
        // No load balancer to drain in front of the demo: Ctrl-C stops it at once.
        ("PARPARCHIK_SHUTDOWN_DELAY", "0".to_owned()),
        ("S3_ENDPOINT", s3.endpoint()),
        ("AWS_ACCESS_KEY_ID", access),
        ("AWS_SECRET_ACCESS_KEY", secret),
    ]);
    let config =
        match Config::from_lookup(|k| vars.get(k).cloned().or_else(|| std::env::var(k).ok())) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("bad configuration: {e}");
                return ExitCode::from(2);
            }
        };
    let app = match App::new(config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // Demo files, written with the service's own client before it starts.
    for (bucket, key, body) in [
        (PUBLIC, "hello.txt", "Hello from the public bucket!\n"),
        (
            PRIVATE,
            "docs/secret report.txt",
            "Only reachable through a presigned URL.\n",
        ),
    ] {
        if let Err(e) = app
            .s3
            .put_object(
                bucket,
                key,
                bytes::Bytes::from(body),
                "text/plain",
                &PutCondition::None,
            )
            .await
        {
            eprintln!("cannot seed {bucket}/{key}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let addr = format!("127.0.0.1:{port}");
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e} (set PARPARCHIK_PORT to use another port)");
            return ExitCode::FAILURE;
        }
    };
    let base = format!("http://{addr}");
    println!(
        "\nparparchik at {base}. Try:\n  curl -i {base}/readiness\n  curl -L {base}/{PUBLIC}/hello.txt\n  curl -L '{base}/{PRIVATE}/docs/secret%20report.txt'\n  curl '{base}/update?filename=hello.txt'\n  curl {base}/list\n  curl {base}/metrics\nUpload more with any S3 client at {} ({PUBLIC}, {PRIVATE}). Ctrl-C to stop.\n",
        s3.endpoint()
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    parparchik::run(Arc::clone(&app), listener, shutdown).await;
    s3.stop().await;
    ExitCode::SUCCESS
}
