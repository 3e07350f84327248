//! One-line logs to stderr, with a UTC timestamp. Callers never pass credentials or
//! presigned URLs here.
//!
//! Callers only append to a bounded buffer; a background thread writes it out. Request
//! lines ([`access`]) wait for the next tick (every 100 ms, or sooner when a batch is
//! large): one `write` per batch instead of one per request, which the benchmark showed
//! to cost a quarter of redirect throughput. Every other line ([`line`]) wakes the
//! writer at once. A stalled stderr (a pipe nobody reads) therefore blocks the writer
//! thread only: once the buffer is full, lines are dropped and counted
//! (`parparchik_log_lines_dropped_total`), and a line saying how many follows as soon as
//! stderr takes data again. [`flush`] runs at shutdown and waits a bounded time.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

/// A batch this large is written without waiting for the tick.
const FLUSH_AT: usize = 64 * 1024;
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Text buffered at most while stderr does not take it; beyond, lines are dropped.
const MAX_BUFFERED: usize = 1024 * 1024;
/// How long [`flush`] waits for a stalled stderr before giving up.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

struct State {
    text: String,
    /// Lines dropped since the last notice.
    dropped: u64,
    /// A line waits that should go out now.
    urgent: bool,
    /// The writer holds a batch it is writing.
    writing: bool,
    /// The timestamp text of the second it was last formatted for: at tens of thousands
    /// of lines a second, most share their second.
    second: i64,
    stamp: String,
}

/// The buffer and its writer. One global instance; tests make their own.
pub struct Logger {
    state: Mutex<State>,
    /// Wakes the writer.
    wake: Condvar,
    /// Tells [`Logger::flush`] that a batch went out.
    written: Condvar,
    capacity: usize,
    dropped_total: AtomicU64,
    /// Set once a writer thread runs; until then lines are written by their caller.
    running: AtomicBool,
}

impl Logger {
    pub const fn new(capacity: usize) -> Logger {
        Logger {
            state: Mutex::new(State {
                text: String::new(),
                dropped: 0,
                urgent: false,
                writing: false,
                second: i64::MIN,
                stamp: String::new(),
            }),
            wake: Condvar::new(),
            written: Condvar::new(),
            capacity,
            dropped_total: AtomicU64::new(0),
            running: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one line, or drops it when the buffer is full. Never waits for output.
    pub fn push(&self, level: &str, message: std::fmt::Arguments<'_>, urgent: bool) {
        let now = time::OffsetDateTime::now_utc();
        let mut st = self.lock();
        if st.text.len() >= self.capacity {
            st.dropped += 1;
            self.dropped_total.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if st.second != now.unix_timestamp() {
            st.second = now.unix_timestamp();
            st.stamp = crate::timefmt::format(now);
        }
        let State { text, stamp, .. } = &mut *st;
        let _ = write!(text, "{stamp} {level} {message}");
        text.push('\n');
        if !self.running.load(Ordering::Acquire) {
            // No writer thread: the caller writes, as before there was one.
            let _ = std::io::stderr().write_all(st.text.as_bytes());
            st.text.clear();
            return;
        }
        let wake = urgent || st.text.len() >= FLUSH_AT;
        st.urgent |= wake;
        drop(st);
        if wake {
            self.wake.notify_one();
        }
    }

    /// The writer loop: takes the buffer, writes it with the lock released, repeats.
    pub fn run(&self, mut out: impl Write) {
        self.running.store(true, Ordering::Release);
        let mut batch = String::new();
        loop {
            let mut st = self.lock();
            if !st.urgent {
                st = self
                    .wake
                    .wait_timeout(st, FLUSH_EVERY)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            st.urgent = false;
            std::mem::swap(&mut batch, &mut st.text);
            if st.dropped > 0 {
                // Placed where the lines went missing: after everything kept before them.
                let _ = writeln!(
                    batch,
                    "{} WARN log: {} lines dropped while stderr did not take them",
                    st.stamp, st.dropped
                );
                st.dropped = 0;
            }
            st.writing = !batch.is_empty();
            drop(st);
            if !batch.is_empty() {
                let _ = out.write_all(batch.as_bytes());
                let _ = out.flush();
                batch.clear();
                if batch.capacity() > 4 * FLUSH_AT {
                    batch.shrink_to(FLUSH_AT);
                }
            }
            self.lock().writing = false;
            self.written.notify_all();
        }
    }

    /// Waits until what was buffered is written, at most `limit`.
    pub fn flush(&self, limit: Duration) {
        if !self.running.load(Ordering::Acquire) {
            return;
        }
        let deadline = Instant::now() + limit;
        let mut st = self.lock();
        st.urgent = true;
        self.wake.notify_one();
        while !st.text.is_empty() || st.writing || st.dropped > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            st = self
                .written
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }
}

static LOGGER: Logger = Logger::new(MAX_BUFFERED);
static WRITER: Once = Once::new();

fn global() -> &'static Logger {
    WRITER.call_once(|| {
        let started = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(|| LOGGER.run(std::io::stderr()));
        if started.is_ok() {
            // Set here as well as in `run`, so no line races the thread's start.
            LOGGER.running.store(true, Ordering::Release);
        }
    });
    &LOGGER
}

/// A line written promptly (start-up phases, warnings, errors).
pub fn line(level: &str, message: std::fmt::Arguments<'_>) {
    global().push(level, message, true);
}

/// A request line, written with the next batch.
pub fn access(message: std::fmt::Arguments<'_>) {
    global().push("INFO", message, false);
}

/// Writes whatever is buffered; gives up after a few seconds if stderr is stalled.
pub fn flush() {
    global().flush(FLUSH_WAIT);
}

/// Lines dropped since start because stderr did not take them.
pub fn dropped_lines() -> u64 {
    LOGGER.dropped()
}

#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::line("INFO", format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::line("WARN", format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Output that blocks every write until the test opens it (a pipe nobody reads).
    struct Gated {
        open: Arc<AtomicBool>,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            while !self.open.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            self.out.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_output_drops_and_counts_instead_of_blocking() {
        let logger: &'static Logger = Box::leak(Box::new(Logger::new(4096)));
        let open = Arc::new(AtomicBool::new(false));
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Gated {
            open: Arc::clone(&open),
            out: Arc::clone(&out),
        };
        std::thread::spawn(move || logger.run(sink));
        while !logger.running.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        logger.push("WARN", format_args!("first"), true);
        // The writer takes "first" and blocks on it.
        while !logger.lock().writing {
            std::thread::yield_now();
        }

        let started = Instant::now();
        for i in 0..10_000 {
            logger.push("INFO", format_args!("request {i}"), i % 100 == 0);
        }
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "callers waited: {took:?}");
        let dropped = logger.dropped();
        assert!(dropped > 9_000, "dropped {dropped}");
        assert!(
            logger.lock().text.len() < 4096 + 100,
            "the buffer stays bounded"
        );

        // stderr takes data again: everything kept, then the notice.
        open.store(true, Ordering::Release);
        logger.flush(Duration::from_secs(5));
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with("WARN first"), "{:?}", lines[0]);
        assert!(lines[1].ends_with("INFO request 0"), "{:?}", lines[1]);
        let notice = format!("WARN log: {dropped} lines dropped while stderr did not take them");
        assert!(
            lines.last().unwrap().ends_with(&notice),
            "{:?}",
            lines.last()
        );
        assert_eq!(lines.len() as u64, 10_000 + 2 - dropped);

        // Later lines flow again, with no new notice.
        logger.push("INFO", format_args!("after"), true);
        logger.flush(Duration::from_secs(5));
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert!(text.ends_with("INFO after\n"));
        assert_eq!(logger.dropped(), dropped);
    }
}
