//! `bench-load`: the load clients of `benches/scale.sh` and `benches/soak.sh`.
//!
//! ```text
//! bench-load update --target URL --s3 URL --bucket B [--clients 16] [--seconds 10]
//!                   [--size 1024] [--timeout 300]
//! bench-load soak --target URL --s3 URL --layout SPEC [--overlap PCT] [--clients 1000]
//!                 [--seconds 600] [--phase-seconds 20] [--missing-pct 5] [--timeout 10]
//!                 [--modes healthy,hang,bare404,s503] [--pid PID]
//! ```
//!
//! Each client is one keep-alive HTTP/1.1 connection (hyper's low-level client on
//! tokio), reopened after an error or a timeout.
//!
//! `update`: each client, until `--seconds` have passed, creates a new object in bucket
//! B of the synthetic S3 (`POST /_bench/put`, not timed) and then announces it to the
//! service with `GET /update?filename=KEY` (timed). Prints one line of `key=value`.
//!
//! `soak`: the clients request routes of generated objects (`--layout`/`--overlap` as
//! given to `bench-s3`, each key under the first bucket holding it) and, `--missing-pct`
//! of the time, keys that exist nowhere, while the synthetic S3 is switched every
//! `--phase-seconds` through `--modes`. A request counts in the phase it started in.
//! With `--pid`, the service's RSS and open fds are sampled every second. Prints a
//! Markdown table (one row per phase, with the service's `file_count` from `/status` at
//! the phase's end) and `key=value` totals. The mode is set back to
//! `healthy` at the end.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper::header::HOST;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use parparchik_bench::Args;
use parparchik_bench::synth::{Layout, key_of, s3_url_encode};

const USAGE: &str = "usage: bench-load update --target URL --s3 URL --bucket B [--clients 16] \
[--seconds 10] [--size 1024] [--timeout 300]\n       bench-load soak --target URL --s3 URL \
--layout SPEC [--overlap PCT] [--clients 1000] [--seconds 600] [--phase-seconds 20] \
[--missing-pct 5] [--timeout 10] [--modes healthy,hang,bare404,s503] [--pid PID]";

/// `http://127.0.0.1:PORT` → its socket address (the benchmarks stay on 127.0.0.1).
fn addr_of(url: &str) -> Result<SocketAddr, String> {
    url.strip_prefix("http://")
        .map(|a| a.trim_end_matches('/'))
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("{url:?} is not http://IP:PORT"))
}

/// How long a connect may take before it counts as an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a control call to the synthetic S3 may take (they never wait on anything).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// One keep-alive connection.
struct Conn {
    tx: http1::SendRequest<Empty<Bytes>>,
    host: String,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Result<Conn, String> {
        // Bounded: a full accept backlog can hold a connect for minutes.
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connect: no connection within {CONNECT_TIMEOUT:?}"))?
            .map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (tx, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        // The connection task ends when `tx` is dropped or the peer closes.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            tx,
            host: addr.to_string(),
        })
    }

    /// One request; the status and the whole body.
    async fn call(&mut self, method: Method, path: &str) -> Result<(u16, Bytes), String> {
        self.tx
            .ready()
            .await
            .map_err(|e| format!("connection: {e}"))?;
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.host)
            .body(Empty::new())
            .map_err(|e| format!("request {path:?}: {e}"))?;
        let resp = self
            .tx
            .send_request(req)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
}

/// One request on a fresh connection (control calls to the synthetic S3).
async fn once(addr: SocketAddr, method: Method, path: &str) -> Result<(u16, Bytes), String> {
    let mut c = Conn::open(addr).await?;
    tokio::time::timeout(CONTROL_TIMEOUT, c.call(method, path))
        .await
        .map_err(|_| format!("{path}: no answer within {CONTROL_TIMEOUT:?}"))?
}

/// A number field of a flat JSON object (the stats endpoint's `s3_requests`, ...).
fn json_u64(body: &[u8], field: &str) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let at = text.find(&format!("\"{field}\":"))? + field.len() + 3;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

async fn s3_stat(s3: SocketAddr, field: &str) -> Result<u64, String> {
    let (status, body) = once(s3, Method::GET, "/_bench/stats").await?;
    if status != 200 {
        return Err(format!("/_bench/stats answered {status}"));
    }
    json_u64(&body, field).ok_or_else(|| format!("/_bench/stats has no {field}"))
}

/// The `p` quantile (0..=1) of sorted microseconds, in milliseconds.
fn quantile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn statuses_text(s: &BTreeMap<u16, u64>) -> String {
    let parts: Vec<String> = s.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

// ---------------------------------------------------------------------------------
// update

#[derive(Default)]
struct UpdateResult {
    statuses: BTreeMap<u16, u64>,
    lat_us: Vec<u32>,
    errors: u64,
    timeouts: u64,
    first_error: Option<String>,
}

struct UpdatePlan {
    target: SocketAddr,
    s3: SocketAddr,
    bucket: String,
    /// Unique per run, so a second run against the same server names new keys again.
    tag: String,
    size: u64,
    deadline: Instant,
    timeout: Duration,
}

async fn update_client(w: usize, plan: Arc<UpdatePlan>) -> UpdateResult {
    let UpdatePlan {
        target,
        s3,
        ref bucket,
        ref tag,
        size,
        deadline,
        timeout,
    } = *plan;
    let mut r = UpdateResult::default();
    let mut svc: Option<Conn> = None;
    let mut s3c: Option<Conn> = None;
    let mut n = 0u64;
    let fail = |r: &mut UpdateResult, e: String| {
        r.errors += 1;
        r.first_error.get_or_insert(e);
    };
    while Instant::now() < deadline {
        n += 1;
        let key = format!("new/{tag}/c{w:02}/{n:07}.bin");
        if s3c.is_none() {
            s3c = Conn::open(s3).await.ok();
        }
        let put = format!(
            "/_bench/put?bucket={}&key={}&size={size}",
            s3_url_encode(bucket),
            s3_url_encode(&key)
        );
        let Some(c) = s3c.as_mut() else {
            fail(&mut r, "cannot connect to the synthetic S3".into());
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        match tokio::time::timeout(CONTROL_TIMEOUT, c.call(Method::POST, &put)).await {
            Ok(Ok((200, _))) => {}
            Ok(Ok((s, _))) => {
                fail(&mut r, format!("/_bench/put answered {s}"));
                continue;
            }
            Ok(Err(e)) => {
                s3c = None;
                fail(&mut r, e);
                continue;
            }
            Err(_) => {
                s3c = None;
                fail(&mut r, "/_bench/put did not answer".into());
                continue;
            }
        }
        if svc.is_none() {
            match Conn::open(target).await {
                Ok(c) => svc = Some(c),
                Err(e) => {
                    fail(&mut r, e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let c = svc.as_mut().expect("opened above");
        let path = format!("/update?filename={}", s3_url_encode(&key));
        let t = Instant::now();
        match tokio::time::timeout(timeout, c.call(Method::GET, &path)).await {
            Ok(Ok((status, _))) => {
                r.lat_us.push(micros(t.elapsed()));
                *r.statuses.entry(status).or_default() += 1;
            }
            Ok(Err(e)) => {
                svc = None;
                fail(&mut r, e);
            }
            Err(_) => {
                svc = None;
                r.timeouts += 1;
            }
        }
    }
    r
}

async fn update(args: &Args) -> Result<(), String> {
    args.only(&[
        "target", "s3", "bucket", "clients", "seconds", "size", "timeout",
    ])?;
    let target = addr_of(args.required("target")?)?;
    let s3 = addr_of(args.required("s3")?)?;
    let bucket = args.required("bucket")?.to_owned();
    let clients: usize = args.parsed("clients", 16)?;
    let seconds: u64 = args.parsed("seconds", 10)?;
    let size: u64 = args.parsed("size", 1024)?;
    let timeout = Duration::from_secs(args.parsed("timeout", 300u64)?);
    let started = Instant::now();
    let plan = Arc::new(UpdatePlan {
        target,
        s3,
        bucket,
        tag: format!(
            "{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        ),
        size,
        deadline: started + Duration::from_secs(seconds),
        timeout,
    });
    let tasks: Vec<_> = (0..clients)
        .map(|w| tokio::spawn(update_client(w, plan.clone())))
        .collect();
    let mut all = UpdateResult::default();
    for t in tasks {
        let r = t.await.map_err(|e| format!("client task: {e}"))?;
        for (s, n) in r.statuses {
            *all.statuses.entry(s).or_default() += n;
        }
        all.lat_us.extend(r.lat_us);
        all.errors += r.errors;
        all.timeouts += r.timeouts;
        if all.first_error.is_none() {
            all.first_error = r.first_error;
        }
    }
    let wall = started.elapsed();
    all.lat_us.sort_unstable();
    let ok = all.statuses.get(&200).copied().unwrap_or(0);
    println!(
        "bench-load update: clients={clients} seconds={seconds} answered={} ok={ok} errors={} timeouts={} \
         wall_ms={} rate={:.2} p50_ms={:.1} p99_ms={:.1} max_ms={:.1} statuses={}{}",
        all.lat_us.len(),
        all.errors,
        all.timeouts,
        wall.as_millis(),
        ok as f64 / wall.as_secs_f64(),
        quantile_ms(&all.lat_us, 0.5),
        quantile_ms(&all.lat_us, 0.99),
        quantile_ms(&all.lat_us, 1.0),
        statuses_text(&all.statuses).replace(' ', ","),
        all.first_error
            .map(|e| format!(" first_error={e:?}"))
            .unwrap_or_default()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------
// soak

#[derive(Default, Clone)]
struct PhaseStats {
    statuses: BTreeMap<u16, u64>,
    lat_us: Vec<u32>,
    errors: u64,
    timeouts: u64,
}

impl PhaseStats {
    fn merge(&mut self, o: PhaseStats) {
        for (s, n) in o.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
        self.lat_us.extend(o.lat_us);
        self.errors += o.errors;
        self.timeouts += o.timeouts;
    }
}

/// A small xorshift generator: enough to spread requests, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

struct SoakPlan {
    target: SocketAddr,
    layout: Layout,
    missing_pct: u64,
    phases: usize,
    phase_len: Duration,
    started: Instant,
    deadline: Instant,
    timeout: Duration,
}

impl SoakPlan {
    fn phase_at(&self, t: Instant) -> usize {
        let i = (t.duration_since(self.started).as_millis() / self.phase_len.as_millis().max(1))
            as usize;
        i.min(self.phases - 1)
    }

    fn path(&self, rng: &mut Rng) -> String {
        let distinct = self.layout.distinct().max(1);
        let first = &self.layout.buckets[0].0;
        if rng.next() % 100 < self.missing_pct {
            return format!("/{first}/missing/{:016x}.bin", rng.next());
        }
        let i = rng.next() % distinct;
        let bucket = self.layout.home_of(i).unwrap_or(first);
        format!("/{bucket}/{}", key_of(i))
    }
}

async fn soak_client(w: u64, plan: Arc<SoakPlan>) -> Vec<PhaseStats> {
    let mut out = vec![PhaseStats::default(); plan.phases];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (w.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1));
    let mut conn: Option<Conn> = None;
    while Instant::now() < plan.deadline {
        let t = Instant::now();
        let p = plan.phase_at(t);
        if conn.is_none() {
            match Conn::open(plan.target).await {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    out[p].errors += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("opened above");
        let path = plan.path(&mut rng);
        match tokio::time::timeout(plan.timeout, c.call(Method::GET, &path)).await {
            Ok(Ok((status, _))) => {
                out[p].lat_us.push(micros(t.elapsed()));
                *out[p].statuses.entry(status).or_default() += 1;
            }
            Ok(Err(_)) => {
                conn = None;
                out[p].errors += 1;
            }
            Err(_) => {
                conn = None;
                out[p].timeouts += 1;
            }
        }
    }
    out
}

/// VmRSS and VmHWM (kB) and the number of open fds of `pid`.
fn sample(pid: u32) -> Option<(u64, u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((field("VmRSS:")?, field("VmHWM:")?, fds))
}

/// The service's `file_count` from `/status`; `None` if it did not answer in time.
async fn file_count(target: SocketAddr) -> Option<u64> {
    match once(target, Method::GET, "/status").await {
        Ok((200, body)) => json_u64(&body, "file_count"),
        _ => None,
    }
}

async fn set_mode(s3: SocketAddr, m: &str) -> Result<(), String> {
    match once(s3, Method::POST, &format!("/_bench/mode?m={m}")).await {
        Ok((200, _)) => Ok(()),
        Ok((s, _)) => Err(format!("setting mode {m} answered {s}")),
        Err(e) => Err(format!("setting mode {m}: {e}")),
    }
}

async fn soak(args: &Args) -> Result<(), String> {
    args.only(&[
        "target",
        "s3",
        "layout",
        "overlap",
        "clients",
        "seconds",
        "phase-seconds",
        "missing-pct",
        "timeout",
        "modes",
        "pid",
    ])?;
    let target = addr_of(args.required("target")?)?;
    let s3 = addr_of(args.required("s3")?)?;
    let layout = Layout::parse(args.required("layout")?, args.parsed("overlap", 0u64)?)?;
    let clients: u64 = args.parsed("clients", 1000)?;
    let seconds: u64 = args.parsed("seconds", 600)?;
    let phase_secs: u64 = args.parsed("phase-seconds", 20)?;
    let missing_pct: u64 = args.parsed("missing-pct", 5)?;
    let timeout = Duration::from_secs(args.parsed("timeout", 10u64)?);
    let modes: Vec<String> = args
        .get("modes")
        .unwrap_or("healthy,hang,bare404,s503")
        .split(',')
        .map(str::to_owned)
        .collect();
    let pid: Option<u32> = args
        .get("pid")
        .map(str::parse)
        .transpose()
        .map_err(|e| format!("bad --pid: {e}"))?;
    if phase_secs == 0 || seconds == 0 || modes.is_empty() {
        return Err("--seconds, --phase-seconds and --modes must not be zero or empty".into());
    }
    let phases = usize::try_from(seconds.div_ceil(phase_secs)).map_err(|e| e.to_string())?;

    set_mode(s3, &modes[0]).await?;
    let s3_before = s3_stat(s3, "s3_requests").await?;
    let started = Instant::now();
    let plan = Arc::new(SoakPlan {
        target,
        layout,
        missing_pct,
        phases,
        phase_len: Duration::from_secs(phase_secs),
        started,
        deadline: started + Duration::from_secs(seconds),
        timeout,
    });

    // Mode switches at each phase boundary, with the S3 request counter read there.
    let sched_plan = plan.clone();
    let sched_modes = modes.clone();
    let scheduler = tokio::spawn(async move {
        let target = sched_plan.target;
        // One counter reading per phase start; `None` where it could not be read.
        let mut s3_at = vec![Some(s3_before)];
        // The service's file_count at the end of each phase but the last.
        let mut files_at = Vec::new();
        let mut problems = Vec::new();
        for p in 1..sched_plan.phases {
            tokio::time::sleep_until((sched_plan.started + sched_plan.phase_len * p as u32).into())
                .await;
            match s3_stat(s3, "s3_requests").await {
                Ok(n) => s3_at.push(Some(n)),
                Err(e) => {
                    s3_at.push(None);
                    problems.push(e);
                }
            }
            files_at.push(file_count(target).await);
            if let Err(e) = set_mode(s3, &sched_modes[p % sched_modes.len()]).await {
                problems.push(e);
            }
        }
        (s3_at, files_at, problems)
    });

    // Memory and fds of the service, every second, per phase.
    let running = Arc::new(AtomicBool::new(true));
    let max_fds_phase: Arc<Vec<AtomicU64>> =
        Arc::new((0..phases).map(|_| AtomicU64::new(0)).collect());
    let sampler = {
        let running = running.clone();
        let per_phase = max_fds_phase.clone();
        let plan = plan.clone();
        tokio::spawn(async move {
            let (mut max_rss, mut max_hwm, mut max_fds) = (0, 0, 0);
            while running.load(Ordering::Relaxed) {
                if let Some((rss, hwm, fds)) = pid.and_then(sample) {
                    max_rss = max_rss.max(rss);
                    max_hwm = max_hwm.max(hwm);
                    max_fds = max_fds.max(fds);
                    per_phase[plan.phase_at(Instant::now())].fetch_max(fds, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            (max_rss, max_hwm, max_fds)
        })
    };

    let tasks: Vec<_> = (0..clients)
        .map(|w| tokio::spawn(soak_client(w, plan.clone())))
        .collect();
    let mut per_phase = vec![PhaseStats::default(); phases];
    for t in tasks {
        let r = t.await.map_err(|e| format!("client task: {e}"))?;
        for (acc, p) in per_phase.iter_mut().zip(r) {
            acc.merge(p);
        }
    }
    let wall = started.elapsed();
    running.store(false, Ordering::Relaxed);
    let (s3_at, mut files_at, problems) = scheduler.await.map_err(|e| format!("scheduler: {e}"))?;
    // The last phase's file_count, before S3 is healthy again.
    files_at.push(file_count(target).await);
    let restored = set_mode(s3, "healthy").await;
    let s3_after = s3_stat(s3, "s3_requests").await?;
    let (max_rss, max_hwm, max_fds) = sampler.await.map_err(|e| format!("sampler: {e}"))?;

    println!(
        "| phase | S3 mode | start s | answered | statuses | conn. errors | timeouts ({}s) | p50 ms | p99 ms | S3 calls | max fds | file_count at end |",
        timeout.as_secs()
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut total = PhaseStats::default();
    for (i, p) in per_phase.into_iter().enumerate() {
        let mut lat = p.lat_us.clone();
        lat.sort_unstable();
        let end = if i + 1 == phases {
            Some(s3_after)
        } else {
            s3_at.get(i + 1).copied().flatten()
        };
        let s3_calls = match (s3_at.get(i).copied().flatten(), end) {
            (Some(a), Some(b)) => b.saturating_sub(a).to_string(),
            _ => "?".into(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {} | {} | {} |",
            i + 1,
            modes[i % modes.len()],
            i as u64 * phase_secs,
            lat.len(),
            statuses_text(&p.statuses),
            p.errors,
            p.timeouts,
            quantile_ms(&lat, 0.5),
            quantile_ms(&lat, 0.99),
            s3_calls,
            if pid.is_some() {
                max_fds_phase[i].load(Ordering::Relaxed).to_string()
            } else {
                "-".into()
            },
            files_at
                .get(i)
                .copied()
                .flatten()
                .map_or_else(|| "?".into(), |n| n.to_string())
        );
        total.merge(p);
    }
    total.lat_us.sort_unstable();
    let answered = total.lat_us.len() as u64;
    let s3_calls = s3_after - s3_before;
    println!();
    println!(
        "bench-load soak: clients={clients} seconds={seconds} wall_ms={} answered={answered} errors={} timeouts={} \
         p50_ms={:.1} p99_ms={:.1} statuses={} s3_calls={s3_calls} s3_calls_per_request={:.3} \
         max_rss_kb={max_rss} vm_hwm_kb={max_hwm} max_fds={max_fds}",
        wall.as_millis(),
        total.errors,
        total.timeouts,
        quantile_ms(&total.lat_us, 0.5),
        quantile_ms(&total.lat_us, 0.99),
        statuses_text(&total.statuses).replace(' ', ","),
        s3_calls as f64 / (answered + total.timeouts).max(1) as f64,
    );
    for p in problems {
        eprintln!("bench-load soak: {p}");
    }
    restored
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let cmd = argv.next().unwrap_or_default();
    let args = match Args::parse(argv, &[]) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench-load: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match cmd.as_str() {
        "update" => update(&args).await,
        "soak" => soak(&args).await,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-load: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_and_quantiles() {
        let body = br#"{"mode":"healthy","s3_requests":42,"put_bytes":7}"#;
        assert_eq!(json_u64(body, "s3_requests"), Some(42));
        assert_eq!(json_u64(body, "put_bytes"), Some(7));
        assert_eq!(json_u64(body, "nope"), None);
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(quantile_ms(&v, 0.5), 50.0);
        assert_eq!(quantile_ms(&v, 0.99), 99.0);
        assert_eq!(quantile_ms(&v, 1.0), 100.0);
        assert_eq!(quantile_ms(&[], 0.99), 0.0);
        assert!(addr_of("http://127.0.0.1:80/").is_ok());
        assert!(addr_of("https://127.0.0.1:80").is_err());
    }
}
