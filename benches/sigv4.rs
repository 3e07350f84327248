//! SigV4 micro-benchmarks: `cargo bench --bench sigv4`.
//!
//! Plain `std::time::Instant` loops, no framework: each case is warmed up (which also
//! fills the signer's signing-key cache and calibrates the loop), then timed over several
//! rounds; the median round is reported in ns/op, with the fastest and slowest rounds.
//! On Linux the thread's on-CPU time of each round (`/proc/thread-self/schedstat`) is
//! reported too: on a shared machine, wall time also counts the time the thread waits
//! for a core, on-CPU time does not.
//!
//! - `presign_get`: one presigned GET URL, as `s3::urls::DownloadUrls::presigned_url` makes
//!   it, with the day's signing key already cached (the steady state of the service);
//! - `sign_get_header`: one header-signed GET, as the S3 client signs its requests;
//! - `derive_signing_key`: the four HMACs the cache saves, for scale;
//! - `presign_get.*`: the steps of `presign_get` measured alone on the texts it produces
//!   (build the canonical request, render it, hash it, HMAC the string to sign), to show
//!   where the time goes.
//!
//! Run without `--bench` (as `cargo test --benches` does) it only checks that each case
//! runs, with a few iterations.

use std::hint::black_box;
use std::time::{Duration, Instant};

use parparchik::sigv4::canonical_request::{PathMode, canonical_request};
use parparchik::sigv4::signing_key::{derive_signing_key, signature};
use parparchik::sigv4::{
    Credentials, EMPTY_SHA256, Mode, PayloadHash, Request, Signer, sha256_hex,
};
use time::OffsetDateTime;
use time::macros::datetime;

struct Settings {
    warm_up: Duration,
    round: Duration,
    rounds: usize,
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
    /// Median on-CPU ns/op, where the platform tells.
    cpu_median: Option<f64>,
    iters_per_round: u64,
}

/// The calling thread's on-CPU time in ns (Linux), the first field of its schedstat.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn measure(settings: &Settings, mut op: impl FnMut()) -> Stats {
    // Warm-up, and an estimate of the cost of one call to size the rounds.
    let start = Instant::now();
    let mut calls: u64 = 0;
    while calls < 10 || start.elapsed() < settings.warm_up {
        op();
        calls += 1;
    }
    let per_call = start.elapsed().as_secs_f64() / calls as f64;
    let iters_per_round = ((settings.round.as_secs_f64() / per_call) as u64).max(1);

    let mut wall = Vec::with_capacity(settings.rounds);
    let mut cpu = Vec::with_capacity(settings.rounds);
    for _ in 0..settings.rounds {
        let cpu_start = thread_cpu_ns();
        let t = Instant::now();
        for _ in 0..iters_per_round {
            op();
        }
        wall.push(t.elapsed().as_nanos() as f64 / iters_per_round as f64);
        if let (Some(a), Some(b)) = (cpu_start, thread_cpu_ns()) {
            cpu.push(b.saturating_sub(a) as f64 / iters_per_round as f64);
        }
    }
    let cpu_median = (cpu.len() == wall.len()).then(|| median(&mut cpu));
    let median = median(&mut wall);
    Stats {
        median,
        min: wall[0],
        max: wall[wall.len() - 1],
        cpu_median,
        iters_per_round,
    }
}

fn report(name: &str, s: &Stats) {
    let cpu = s
        .cpu_median
        .map_or_else(|| "-".to_owned(), |c| format!("{c:.0}"));
    println!(
        "{name:<24} {:>7.0} {:>7}   (wall min {:.0}, max {:.0}; {} iters/round)",
        s.median, cpu, s.min, s.max, s.iters_per_round
    );
}

fn signer() -> Signer {
    Signer::new(
        Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
        ),
        "us-east-1",
        "s3",
        Mode::S3,
    )
}

const NOW: OffsetDateTime = datetime!(2013-05-24 00:00:00 UTC);

fn main() {
    // `cargo bench` passes `--bench`; anything else (`cargo test --benches`) is a smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let settings = if full {
        Settings {
            warm_up: Duration::from_millis(500),
            round: Duration::from_millis(200),
            rounds: 15,
        }
    } else {
        Settings {
            warm_up: Duration::ZERO,
            round: Duration::ZERO,
            rounds: 1,
        }
    };

    let presigner = signer();
    let presign_req = Request {
        method: "GET",
        host: "localhost:9000",
        path: "/private-bucket/reports/2024/annual report.pdf",
        query: &[],
        headers: &[],
    };
    let presign = measure(&settings, || {
        let p = presigner
            .presign(
                black_box(&presign_req),
                black_box(PayloadHash::Unsigned),
                black_box(3600),
                black_box(NOW),
            )
            .expect("3600 s is a valid expiry");
        black_box(p);
    });

    let header_signer = signer();
    let sign_req = Request {
        method: "GET",
        host: "localhost:9000",
        path: "/private-bucket/reports/2024/annual report.pdf",
        query: &[],
        headers: &[("range", "bytes=0-1023")],
    };
    let sign = measure(&settings, || {
        let s = header_signer.sign(
            black_box(&sign_req),
            black_box(PayloadHash::Sha256(EMPTY_SHA256)),
            black_box(NOW),
        );
        black_box(s);
    });

    let derive = measure(&settings, || {
        black_box(derive_signing_key(
            black_box("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            black_box("20130524"),
            black_box("us-east-1"),
            black_box("s3"),
        ));
    });

    // The steps of presign_get, each on the exact inputs the presign above used.
    let sample = presigner
        .presign(&presign_req, PayloadHash::Unsigned, 3600, NOW)
        .expect("3600 s is a valid expiry");
    let creq = &sample.canonical_request;
    let params: Vec<(String, String)> = creq
        .query
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            // The X-Amz-* values only hold `%2F` and `%3B` escapes.
            let decode = |s: &str| s.replace("%2F", "/").replace("%3B", ";");
            (decode(k), decode(v))
        })
        .collect();
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let build = measure(&settings, || {
        black_box(canonical_request(
            black_box("GET"),
            black_box(presign_req.path),
            black_box(&params),
            black_box(&[("host", "localhost:9000")]),
            black_box(PayloadHash::Unsigned),
            PathMode::S3,
        ));
    });
    assert_eq!(
        &canonical_request(
            "GET",
            presign_req.path,
            &params,
            &[("host", "localhost:9000")],
            PayloadHash::Unsigned,
            PathMode::S3
        ),
        creq,
        "the breakdown rebuilds the same canonical request"
    );
    let render = measure(&settings, || {
        black_box(black_box(creq).to_string());
    });
    let creq_text = creq.to_string();
    let hash = measure(&settings, || {
        black_box(sha256_hex(black_box(creq_text.as_bytes())));
    });
    let key = derive_signing_key(
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "20130524",
        "us-east-1",
        "s3",
    );
    let hmac = measure(&settings, || {
        black_box(signature(
            black_box(&key),
            black_box(&sample.string_to_sign),
        ));
    });

    if !full {
        println!("sigv4 bench smoke run ok (run `cargo bench --bench sigv4` to measure)");
        return;
    }
    println!(
        "sigv4: median of {} rounds of ~{} ms each, after {} ms warm-up",
        settings.rounds,
        settings.round.as_millis(),
        settings.warm_up.as_millis()
    );
    println!("{:<24} {:>7} {:>7}", "ns/op", "wall", "on-CPU");
    report("presign_get", &presign);
    report("sign_get_header", &sign);
    report("derive_signing_key", &derive);
    println!("presign_get steps, each alone:");
    report("  canonical_request", &build);
    report("  render (to_string)", &render);
    report("  sha256_hex(creq)", &hash);
    report("  signature (HMAC)", &hmac);
    println!(
        "  (canonical request {} bytes, string to sign {} bytes)",
        creq_text.len(),
        sample.string_to_sign.len()
    );
    // On-CPU time where known: on a shared machine it is the cost of the code itself.
    let presign_ns = presign.cpu_median.unwrap_or(presign.median);
    let verdict = if presign_ns < 2000.0 {
        "met"
    } else {
        "NOT met"
    };
    println!("presign target < 2000 ns/op: {verdict} ({presign_ns:.0} ns/op)");
}
