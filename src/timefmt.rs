//! Timestamps: whatever S3 (or an old manifest) wrote, normalised to RFC 3339 UTC
//! without fractions (`2026-05-05T10:00:00Z`), the form of every entry the service writes.

use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Parses RFC 3339 / ISO 8601 (listings: `2026-05-05T10:00:00.000Z`) and HTTP dates
/// (`HEAD`: `Tue, 05 May 2026 10:00:00 GMT`, which the Lua edition stored as is).
pub fn parse(value: &str) -> Option<OffsetDateTime> {
    let value = value.trim();
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Some(t);
    }
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc2822) {
        return Some(t);
    }
    // RFC 2822 parsers accept "GMT"/"UT" only in obsolete-zone mode on some inputs; the
    // IMF-fixdate of HTTP always ends in " GMT", so parse that form explicitly too.
    let fixdate = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(value, &fixdate)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// RFC 3339 UTC with whole seconds.
pub fn format(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Normalises any accepted form; `None` when the value is not a timestamp.
pub fn normalize(value: &str) -> Option<String> {
    parse(value).map(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_normalises_to_rfc3339_utc() {
        for input in [
            "2026-05-05T10:00:00Z",
            "2026-05-05T10:00:00.000Z",
            "2026-05-05T12:00:00+02:00",
            "Tue, 05 May 2026 10:00:00 GMT",
        ] {
            assert_eq!(
                normalize(input).as_deref(),
                Some("2026-05-05T10:00:00Z"),
                "{input}"
            );
        }
        assert_eq!(normalize("yesterday"), None);
        assert_eq!(normalize(""), None);
    }
}
