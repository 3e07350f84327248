//! `bench-list --endpoint URL --bucket NAME [--bucket NAME]...`: the time merely to list.
//!
//! Lists every bucket completely (ListObjectsV2, 1000 keys a page, one bucket after the
//! other, as the service's start-up does) with the service's own S3 client, and prints
//! one line per bucket and a last line `bench-list: objects=N ms=T`. `--timeout` bounds one
//! page (default 600 s: local-s3 rescans the whole bucket for every page).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use parparchik_bench::{Args, s3_client};

const USAGE: &str =
    "usage: bench-list --endpoint URL --bucket NAME [--bucket NAME]... [--timeout SECONDS]";

async fn run(args: &Args) -> Result<(), String> {
    args.only(&["endpoint", "bucket", "timeout"])?;
    let timeout = Duration::from_secs(args.parsed("timeout", 600u64)?);
    let s3 = s3_client(args.required("endpoint")?, timeout)?;
    let buckets = args.all("bucket");
    if buckets.is_empty() {
        return Err("at least one --bucket is required".into());
    }
    let started = Instant::now();
    let mut total = 0;
    for bucket in buckets {
        let t = Instant::now();
        let objects = s3
            .list_objects(bucket, |_| {})
            .await
            .map_err(|e| format!("listing {bucket}: {e}"))?;
        total += objects.len();
        println!(
            "bench-list: {bucket}: {} objects in {} ms",
            objects.len(),
            t.elapsed().as_millis()
        );
    }
    println!(
        "bench-list: objects={total} ms={}",
        started.elapsed().as_millis()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1), &[]) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench-list: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-list: {e}");
            ExitCode::FAILURE
        }
    }
}
