//! One-line logs to stderr, with a UTC timestamp, as text or JSON (`log::render`). Callers
//! never pass credentials or presigned URLs here.
//!
//! What is written is set once at start ([`configure`]): the format, the least severe
//! level, and whether request lines are written at all. Filtered lines cost one atomic
//! load and never take the lock.
//!
//! Callers only append to a bounded buffer; a background thread writes it out. Request
//! lines (`access`) wait for the next tick (every 100 ms, or sooner when a batch is
//! large): one `write` per batch instead of one per request, which the benchmark showed
//! to cost a quarter of redirect throughput. Every other line ([`line()`]) wakes the
//! writer at once. A stalled stderr (a pipe nobody reads) therefore blocks the writer
//! thread only: once the buffer is full, lines are dropped and counted
//! (`parparchik_log_lines_dropped_total`), and a line saying how many follows as soon as
//! stderr takes data again. [`flush`] runs at shutdown and waits a bounded time.

pub(crate) mod render;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

pub(crate) use render::{Access, Record};
pub use render::{Format, Level};

/// What is written: `PARPARCHIK_LOG_FORMAT`, `PARPARCHIK_LOG_LEVEL`,
/// `PARPARCHIK_ACCESS_LOG`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Text or JSON lines.
    pub format: Format,
    /// The least severe level written.
    pub level: Level,
    /// Request lines, whatever the level (as an access log is separate from an error log).
    pub access: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            format: Format::Text,
            level: Level::Info,
            access: true,
        }
    }
}

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
    /// The timestamp text (`YYYY-MM-DDTHH:MM:SS`) of the second it was last formatted
    /// for: at tens of thousands of lines a second, most share their second.
    second: i64,
    stamp: String,
    /// Milliseconds of the last line, for the notice of dropped lines.
    millis: u16,
}

/// The buffer and its writer. One global instance; tests make their own.
pub(crate) struct Logger {
    state: Mutex<State>,
    /// Wakes the writer.
    wake: Condvar,
    /// Tells [`Logger::flush`] that a batch went out.
    written: Condvar,
    capacity: usize,
    dropped_total: AtomicU64,
    /// Set once a writer thread runs; until then lines are written by their caller.
    running: AtomicBool,
    /// [`Settings`], as atomics: read on every line without the lock.
    json: AtomicBool,
    level: AtomicU8,
    access: AtomicBool,
}

impl Logger {
    pub(crate) const fn new(capacity: usize) -> Logger {
        Logger {
            state: Mutex::new(State {
                text: String::new(),
                dropped: 0,
                urgent: false,
                writing: false,
                second: i64::MIN,
                stamp: String::new(),
                millis: 0,
            }),
            wake: Condvar::new(),
            written: Condvar::new(),
            capacity,
            dropped_total: AtomicU64::new(0),
            running: AtomicBool::new(false),
            json: AtomicBool::new(false),
            level: AtomicU8::new(Level::Info as u8),
            access: AtomicBool::new(true),
        }
    }

    pub(crate) fn configure(&self, settings: Settings) {
        self.json
            .store(settings.format == Format::Json, Ordering::Relaxed);
        self.level.store(settings.level as u8, Ordering::Relaxed);
        self.access.store(settings.access, Ordering::Relaxed);
    }

    fn format(&self) -> Format {
        if self.json.load(Ordering::Relaxed) {
            Format::Json
        } else {
            Format::Text
        }
    }

    /// Whether a line of this record's kind is written at all.
    pub(crate) fn enabled(&self, record: &Record<'_>) -> bool {
        match record {
            Record::Message { level, .. } => *level as u8 <= self.level.load(Ordering::Relaxed),
            Record::Access(_) => self.access.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends one line (unless its level or kind is off), or drops it when the buffer is
    /// full. Never waits for output.
    pub(crate) fn push(&self, record: &Record<'_>, urgent: bool) {
        if !self.enabled(record) {
            return;
        }
        let format = self.format();
        let now = time::OffsetDateTime::now_utc();
        let mut st = self.lock();
        if st.text.len() >= self.capacity {
            st.dropped += 1;
            self.dropped_total.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if st.second != now.unix_timestamp() {
            st.second = now.unix_timestamp();
            let mut stamp = crate::timefmt::format(now);
            // `…Z` without its zone letter: the renderer adds milliseconds or not.
            stamp.pop();
            st.stamp = stamp;
        }
        st.millis = now.millisecond();
        let State {
            text,
            stamp,
            millis,
            ..
        } = &mut *st;
        let stamp = render::Stamp {
            second: stamp,
            millis: *millis,
        };
        render::write(text, format, stamp, record);
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
    pub(crate) fn run(&self, mut out: impl Write) {
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
                let stamp = render::Stamp {
                    second: &st.stamp,
                    millis: st.millis,
                };
                render::write(
                    &mut batch,
                    self.format(),
                    stamp,
                    &Record::Message {
                        level: Level::Warn,
                        text: format_args!(
                            "log: {} lines dropped while stderr did not take them",
                            st.dropped
                        ),
                    },
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
    pub(crate) fn flush(&self, limit: Duration) {
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

    pub(crate) fn dropped(&self) -> u64 {
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

/// Sets what is written (once, at start; tests of the binary set it by environment).
pub fn configure(settings: Settings) {
    LOGGER.configure(settings);
}

/// A line written promptly (start-up phases, warnings, errors).
pub fn line(level: Level, text: std::fmt::Arguments<'_>) {
    global().push(&Record::Message { level, text }, true);
}

/// A request line, written with the next batch.
pub(crate) fn access(request: &Access<'_>) {
    global().push(&Record::Access(request), false);
}

/// Writes whatever is buffered; gives up after a few seconds if stderr is stalled.
pub fn flush() {
    global().flush(FLUSH_WAIT);
}

/// Lines dropped since start because stderr did not take them.
pub fn dropped_lines() -> u64 {
    LOGGER.dropped()
}

/// Logs a line at [`Level::Error`], formatted as by `format!`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::line($crate::log::Level::Error, format_args!($($arg)*)) };
}

/// Logs a line at [`Level::Warn`], formatted as by `format!`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::line($crate::log::Level::Warn, format_args!($($arg)*)) };
}

/// Logs a line at [`Level::Info`], formatted as by `format!`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::line($crate::log::Level::Info, format_args!($($arg)*)) };
}

/// Logs a line at [`Level::Debug`], formatted as by `format!`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::line($crate::log::Level::Debug, format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn msg<'a>(level: Level, text: std::fmt::Arguments<'a>) -> Record<'a> {
        Record::Message { level, text }
    }

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
        logger.push(&msg(Level::Warn, format_args!("first")), true);
        // The writer takes "first" and blocks on it.
        while !logger.lock().writing {
            std::thread::yield_now();
        }

        let started = Instant::now();
        for i in 0..10_000 {
            logger.push(&msg(Level::Info, format_args!("request {i}")), i % 100 == 0);
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
        logger.push(&msg(Level::Info, format_args!("after")), true);
        logger.flush(Duration::from_secs(5));
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert!(text.ends_with("INFO after\n"));
        assert_eq!(logger.dropped(), dropped);
    }

    #[test]
    fn settings_choose_format_level_and_request_lines() {
        let logger: &'static Logger = Box::leak(Box::new(Logger::new(1 << 20)));
        let open = Arc::new(AtomicBool::new(true));
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Gated {
            open,
            out: Arc::clone(&out),
        };
        std::thread::spawn(move || logger.run(sink));
        while !logger.running.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        let request = Access {
            method: "GET",
            path: "/b/k",
            query: None,
            status: 200,
            duration_us: 5,
            s3_calls: Some(0),
            client: "127.0.0.1".parse().unwrap(),
            request_id: "r-1",
        };
        logger.configure(Settings {
            format: Format::Json,
            level: Level::Warn,
            access: false,
        });
        logger.push(&msg(Level::Info, format_args!("hidden info")), true);
        logger.push(&msg(Level::Debug, format_args!("hidden debug")), true);
        logger.push(&Record::Access(&request), false);
        logger.push(&msg(Level::Warn, format_args!("shown warn")), true);
        logger.push(&msg(Level::Error, format_args!("shown error")), true);
        logger.configure(Settings {
            format: Format::Json,
            level: Level::Debug,
            access: true,
        });
        logger.push(&msg(Level::Debug, format_args!("shown debug")), true);
        logger.push(&Record::Access(&request), false);
        logger.flush(Duration::from_secs(5));
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is JSON"))
            .collect();
        let said: Vec<(&str, &str)> = lines
            .iter()
            .map(|v| (v["level"].as_str().unwrap(), v["msg"].as_str().unwrap()))
            .collect();
        assert_eq!(
            said,
            [
                ("warn", "shown warn"),
                ("error", "shown error"),
                ("debug", "shown debug"),
                ("info", "GET /b/k 200"),
            ]
        );
        assert_eq!(lines[3]["request_id"], "r-1");
    }
}
