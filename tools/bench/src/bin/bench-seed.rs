//! `bench-seed`: the benchmark's objects, and the list of their routes.
//!
//! ```text
//! bench-seed --objects N (--endpoint URL | --direct DATA_DIR) [--concurrency 32]
//!            [--routes FILE] [--public NAME] [--private NAME] [--first I]
//! ```
//!
//! Object `i` (`--first` ≤ i < `--first` + N) is `bench/<i>.bin` with a 30-byte body, in
//! the public bucket for even `i` and the private bucket for odd `i`.
//!
//! - `--endpoint`: PutObject through the service's own S3 client, `--concurrency`
//!   requests in flight (credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
//!   default `minioadmin`).
//! - `--direct`: writes plain files `DATA_DIR/<bucket>/bench/<i>.bin`, the layout the
//!   s3s-fs backend of local-s3 serves (objects are plain files under
//!   `<root>/<bucket>/<key>`; the JSON side files it writes on PUT are optional: without
//!   them HEAD computes the MD5 ETag from the file). For seeding 100 000 objects fast;
//!   the server may run or not.
//!
//! `--routes FILE` writes one route per line (`/<bucket>/bench/<i>.bin`), which
//! `benches/spread.lua` reads. Progress goes to stderr; the last stdout line is
//! `bench-seed: mode=put|direct objects=N ms=T rate=R`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parparchik::s3::PutCondition;
use parparchik_bench::{Args, Buckets, body_of, key_of, s3_client};

const USAGE: &str = "usage: bench-seed --objects N (--endpoint URL | --direct DATA_DIR) \
[--concurrency 32] [--routes FILE] [--public NAME] [--private NAME] [--first I]";

struct Plan {
    first: usize,
    count: usize,
    buckets: Buckets,
}

impl Plan {
    fn indexes(&self) -> std::ops::Range<usize> {
        self.first..self.first + self.count
    }
}

/// Prints progress every tenth of the way.
struct Progress {
    total: usize,
    started: Instant,
    next: AtomicUsize,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress {
            total,
            started: Instant::now(),
            next: AtomicUsize::new(total.div_ceil(10).max(1)),
        }
    }

    fn done(&self, n: usize) {
        let next = self.next.load(Ordering::Relaxed);
        if n >= next
            && self
                .next
                .compare_exchange(
                    next,
                    next + self.total.div_ceil(10).max(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            let secs = self.started.elapsed().as_secs_f64();
            eprintln!(
                "bench-seed: {n}/{} objects ({:.0}/s)",
                self.total,
                n as f64 / secs.max(1e-9)
            );
        }
    }
}

fn write_routes(path: &Path, plan: &Plan) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for i in plan.indexes() {
        writeln!(out, "/{}/{}", plan.buckets.of(i), key_of(i))?;
    }
    out.flush()
}

fn seed_direct(root: &Path, plan: &Plan) -> Result<(), String> {
    let progress = Progress::new(plan.count);
    for bucket in [&plan.buckets.public, &plan.buckets.private] {
        let dir = root.join(bucket).join("bench");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    for (n, i) in plan.indexes().enumerate() {
        let path = root.join(plan.buckets.of(i)).join(key_of(i));
        std::fs::write(&path, body_of(i)).map_err(|e| format!("{}: {e}", path.display()))?;
        progress.done(n + 1);
    }
    Ok(())
}

async fn seed_put(endpoint: &str, plan: Arc<Plan>, concurrency: usize) -> Result<(), String> {
    let s3 = s3_client(endpoint, Duration::from_secs(30))?;
    let next = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(Progress::new(plan.count));
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let (s3, plan, next, progress) = (
            s3.clone(),
            Arc::clone(&plan),
            Arc::clone(&next),
            Arc::clone(&progress),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= plan.count {
                    return Ok::<(), String>(());
                }
                let i = plan.first + n;
                let (bucket, key) = (plan.buckets.of(i), key_of(i));
                s3.put_object(
                    bucket,
                    &key,
                    Bytes::from(body_of(i)),
                    "application/octet-stream",
                    &PutCondition::None,
                )
                .await
                .map_err(|e| format!("PUT {bucket}/{key}: {e}"))?;
                progress.done(n + 1);
            }
        }));
    }
    for w in workers {
        w.await.map_err(|e| format!("seeding task failed: {e}"))??;
    }
    Ok(())
}

fn run(args: &Args) -> Result<(), String> {
    args.only(&[
        "objects",
        "endpoint",
        "direct",
        "concurrency",
        "routes",
        "public",
        "private",
        "first",
    ])?;
    let plan = Arc::new(Plan {
        first: args.parsed("first", 0usize)?,
        count: args.parsed::<usize>("objects", 0)?,
        buckets: Buckets::from_args(args),
    });
    if plan.count == 0 {
        return Err("--objects N (N > 0) is required".into());
    }
    if let Some(path) = args.get("routes") {
        write_routes(Path::new(path), &plan).map_err(|e| format!("--routes {path}: {e}"))?;
    }
    let started = Instant::now();
    let mode = match (args.get("endpoint"), args.get("direct")) {
        (Some(endpoint), None) => {
            let concurrency = args.parsed("concurrency", 32usize)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the runtime: {e}"))?;
            runtime.block_on(seed_put(endpoint, Arc::clone(&plan), concurrency))?;
            "put"
        }
        (None, Some(dir)) => {
            seed_direct(Path::new(dir), &plan)?;
            "direct"
        }
        _ => return Err("exactly one of --endpoint and --direct is required".into()),
    };
    let secs = started.elapsed().as_secs_f64();
    println!(
        "bench-seed: mode={mode} objects={} ms={:.0} rate={:.0}",
        plan.count,
        secs * 1e3,
        plan.count as f64 / secs.max(1e-9)
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1), &[]) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench-seed: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-seed: {e}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}
