//! One-line logs to stderr, with a UTC timestamp. Callers never pass credentials or
//! presigned URLs here.
//!
//! Request lines ([`access`]) go through a shared buffer that a background thread
//! flushes every 100 ms (or sooner when it fills): one `write` per batch instead of one
//! per request, which the benchmark showed to cost a quarter of redirect throughput.
//! Every other line ([`line`]) flushes the buffer and itself at once, so the order of
//! lines is kept and warnings are never delayed. [`flush`] runs at shutdown.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

/// Batches of request lines; flushed when over this size even between ticks.
const FLUSH_AT: usize = 64 * 1024;
const FLUSH_EVERY: Duration = Duration::from_millis(100);

struct Buffer {
    text: String,
    /// The timestamp text of the second it was last formatted for: at tens of thousands
    /// of lines a second, most share their second.
    second: i64,
    stamp: String,
}

static BUFFER: Mutex<Buffer> = Mutex::new(Buffer {
    text: String::new(),
    second: i64::MIN,
    stamp: String::new(),
});
static FLUSHER: Once = Once::new();
/// Set once the flusher thread runs; until then (or if it cannot start) lines go out at once.
static FLUSHING: AtomicBool = AtomicBool::new(false);

fn append(level: &str, message: std::fmt::Arguments<'_>) -> std::sync::MutexGuard<'static, Buffer> {
    let now = time::OffsetDateTime::now_utc();
    let mut b = BUFFER.lock().unwrap_or_else(|p| p.into_inner());
    if b.second != now.unix_timestamp() {
        b.second = now.unix_timestamp();
        b.stamp = crate::timefmt::format(now);
    }
    let Buffer { text, stamp, .. } = &mut *b;
    let _ = write!(text, "{stamp} {level} {message}");
    text.push('\n');
    b
}

fn write_out(b: &mut Buffer) {
    if !b.text.is_empty() {
        let _ = std::io::stderr().write_all(b.text.as_bytes());
        b.text.clear();
        if b.text.capacity() > 4 * FLUSH_AT {
            b.text.shrink_to(FLUSH_AT);
        }
    }
}

/// A line written at once (start-up phases, warnings, errors).
pub fn line(level: &str, message: std::fmt::Arguments<'_>) {
    let mut b = append(level, message);
    write_out(&mut b);
}

/// A request line, written with the next batch.
pub fn access(message: std::fmt::Arguments<'_>) {
    FLUSHER.call_once(|| {
        let started = std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    flush();
                }
            });
        if started.is_ok() {
            FLUSHING.store(true, Ordering::Release);
        } else {
            // No thread: every line is written at once instead.
            line(
                "WARN",
                format_args!("cannot start the log flusher; logging unbuffered"),
            );
        }
    });
    let mut b = append("INFO", message);
    if b.text.len() >= FLUSH_AT || !FLUSHING.load(Ordering::Acquire) {
        write_out(&mut b);
    }
}

/// Writes whatever is buffered.
pub fn flush() {
    let mut b = BUFFER.lock().unwrap_or_else(|p| p.into_inner());
    write_out(&mut b);
}

#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::line("INFO", format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::line("WARN", format_args!($($arg)*)) };
}
