//! One-line logs to stderr, with a UTC timestamp. Callers never pass credentials or
//! presigned URLs here.

use std::io::Write;

pub fn line(level: &str, message: std::fmt::Arguments<'_>) {
    let now = crate::timefmt::format(time::OffsetDateTime::now_utc());
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{now} {level} {message}");
}

#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::line("INFO", format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::line("WARN", format_args!($($arg)*)) };
}
