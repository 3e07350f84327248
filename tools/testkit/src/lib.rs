//! Helpers shared by the integration tests (`tests/it/support`) and the e2e suite
//! (`e2e/`), so that both check the service the same way: an S3 client independent of
//! the project's signer, Prometheus text scraping and the timestamp form of the contract.
//!
//! Nothing here panics on what the network returns: the e2e suite reports failures as
//! checks, and the tests turn the errors into panics themselves.

mod seeder;

pub use seeder::Seeder;

/// The value of the series `name{labels}` (or `name`) in Prometheus text: the first line
/// that is exactly the series, a space and a number.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether `value` is the timestamp form of the contract, `YYYY-MM-DDTHH:MM:SSZ`: RFC 3339
/// in UTC with whole seconds, exactly what the service writes (`src/timefmt.rs`).
/// Fractional seconds and offsets are RFC 3339 too, but the service never writes them,
/// so a value with either is a change of the contract and is refused.
pub fn is_rfc3339_utc(value: &str) -> bool {
    value.len() == 20
        && value.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'Z',
            _ => b.is_ascii_digit(),
        })
}
