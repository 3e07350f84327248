//! One-line logs to stderr, with a UTC timestamp. Callers never pass credentials or
//! presigned URLs here.
//!
//! Each line is formatted into a buffer and written with one `write` call: stderr is
//! unbuffered, so formatting straight into it would cost a system call per piece, and
//! lines from concurrent requests could interleave.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;

thread_local! {
    /// The line buffer, and the timestamp text of the second it was last formatted for:
    /// at tens of thousands of lines a second, most share their second.
    static LINE: RefCell<(String, i64, String)> = RefCell::new((String::with_capacity(256), i64::MIN, String::new()));
}

pub fn line(level: &str, message: std::fmt::Arguments<'_>) {
    let now = time::OffsetDateTime::now_utc();
    LINE.with(|cell| {
        let Ok(mut guard) = cell.try_borrow_mut() else {
            // Re-entered from inside a Display impl: fall back to a plain write.
            let _ = writeln!(std::io::stderr(), "{level} {message}");
            return;
        };
        let (buf, second, stamp) = &mut *guard;
        if *second != now.unix_timestamp() {
            *second = now.unix_timestamp();
            *stamp = crate::timefmt::format(now);
        }
        buf.clear();
        let _ = write!(buf, "{stamp} {level} {message}");
        buf.push('\n');
        let _ = std::io::stderr().write_all(buf.as_bytes());
        if buf.capacity() > 64 * 1024 {
            *buf = String::with_capacity(256);
        }
    });
}

#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::line("INFO", format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::line("WARN", format_args!($($arg)*)) };
}
