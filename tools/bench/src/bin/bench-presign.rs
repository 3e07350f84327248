//! `bench-presign`: a presigned URL for one object, made by the service's own presigner.
//!
//! ```text
//! bench-presign --endpoint URL --bucket NAME --key KEY [--method HEAD] [--expires 3600]
//! bench-presign --endpoint URL --bucket NAME --key KEY --time
//! ```
//!
//! The first form prints the URL (for wrk to HEAD the S3 server directly: its own
//! request rate, signature verified on every request). `--time` instead measures
//! `DownloadUrls::presigned_url` and `public_url` as the redirect path calls them
//! (address, canonical request, signature, URL; signing key cached after the first
//! call) and prints `presign_url_ns=<wall median> cpu_ns=<on-CPU median> min=<..> max=<..>
//! public_url_ns=<..> public_cpu_ns=<..>` (ns per call over 15 rounds; on-CPU time from
//! `/proc/thread-self/schedstat`, which a busy machine inflates less than the wall clock).

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use parparchik::s3::Endpoint;
use parparchik::s3::urls::DownloadUrls;
use parparchik_bench::{Args, REGION, credentials};
use time::OffsetDateTime;

const USAGE: &str = "usage: bench-presign --endpoint URL --bucket NAME --key KEY \
[--method GET|HEAD] [--expires SECONDS] [--time]";

/// Nanoseconds this thread has been on a CPU (`/proc/thread-self/schedstat`), so that a
/// round can be timed both by the wall clock and by the CPU it really got: on a shared
/// machine the wall clock also counts the time other processes held the core.
fn on_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Per call, in ns, after warm-up, over 15 rounds of ~100 ms.
struct Timing {
    wall_median: f64,
    wall_min: f64,
    wall_max: f64,
    /// Median on-CPU time, when the kernel reports it.
    cpu_median: Option<f64>,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn measure(mut op: impl FnMut()) -> Timing {
    let start = Instant::now();
    let mut calls = 0u64;
    while calls < 10 || start.elapsed() < Duration::from_millis(300) {
        op();
        calls += 1;
    }
    let per_call = start.elapsed().as_secs_f64() / calls as f64;
    let iters = ((0.1 / per_call) as u64).max(1);
    let mut wall = Vec::with_capacity(15);
    let mut cpu = Vec::with_capacity(15);
    for _ in 0..15 {
        let cpu0 = on_cpu_ns();
        let t = Instant::now();
        for _ in 0..iters {
            op();
        }
        wall.push(t.elapsed().as_nanos() as f64 / iters as f64);
        if let (Some(a), Some(b)) = (cpu0, on_cpu_ns()) {
            cpu.push(b.saturating_sub(a) as f64 / iters as f64);
        }
    }
    let wall_median = median(&mut wall);
    Timing {
        wall_median,
        wall_min: wall[0],
        wall_max: wall[wall.len() - 1],
        cpu_median: (cpu.len() == wall.len()).then(|| median(&mut cpu)),
    }
}

fn run(args: &Args) -> Result<(), String> {
    args.only(&["endpoint", "bucket", "key", "method", "expires"])?;
    let endpoint = Endpoint::parse(args.required("endpoint")?)?;
    let bucket = args.required("bucket")?;
    let key = args.required("key")?;
    let method = args.get("method").unwrap_or("GET");
    let expires = args.parsed("expires", 3600u64)?;
    let urls = DownloadUrls::new(endpoint, REGION, credentials());
    if args.switch("time") {
        let now = OffsetDateTime::now_utc();
        let presign = measure(|| {
            let url = urls.presigned_url(
                black_box(method),
                black_box(bucket),
                black_box(key),
                black_box(expires),
                black_box(now),
            );
            black_box(url.ok());
        });
        let public = measure(|| {
            black_box(urls.public_url(black_box(bucket), black_box(key)));
        });
        let cpu = |t: &Timing| t.cpu_median.map_or("n/a".to_owned(), |c| format!("{c:.0}"));
        println!(
            "presign_url_ns={:.0} cpu_ns={} min={:.0} max={:.0} public_url_ns={:.0} public_cpu_ns={}",
            presign.wall_median,
            cpu(&presign),
            presign.wall_min,
            presign.wall_max,
            public.wall_median,
            cpu(&public)
        );
        return Ok(());
    }
    let url = urls
        .presigned_url(method, bucket, key, expires, OffsetDateTime::now_utc())
        .map_err(|e| e.to_string())?;
    println!("{url}");
    Ok(())
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1), &["time"]) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench-presign: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-presign: {e}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}
