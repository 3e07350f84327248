//! The pure parts of `bench-s3`, the synthetic S3 server of the scale benchmarks:
//! the generated key space, a bucket (generated range + overlay of changes), ListObjectsV2
//! pagination, S3's URL encoding of listings, XML escaping and conditional PUTs.
//!
//! Generated objects cost no memory: object `i` is `dir<i/1000>/file<i>.bin` with fixed
//! widths, so keys sort exactly as their indexes do and a bucket's generated objects are
//! just a range of indexes. Only objects changed after start (PUT, DELETE) are stored.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::ops::{Bound, Range};

use bytes::Bytes;

/// Generated indexes stay below this, so that the fixed-width keys keep sorting by index.
pub const MAX_OBJECTS: u64 = 10_000_000;

/// `LastModified` of every generated object (listing form and HTTP-date form).
pub const GENERATED_MODIFIED: i64 = 1_777_975_200; // 2026-05-05T10:00:00Z

/// The key of generated object `i` (23 bytes).
pub fn key_of(i: u64) -> String {
    format!("dir{:04}/file{:07}.bin", i / 1000, i)
}

/// The index of a generated key, if `key` is exactly one.
pub fn index_of(key: &str) -> Option<u64> {
    let rest = key.strip_prefix("dir")?;
    let (dir, rest) = rest.split_at_checked(4)?;
    let rest = rest.strip_prefix("/file")?;
    let (file, rest) = rest.split_at_checked(7)?;
    if rest != ".bin" || !dir.bytes().chain(file.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let i: u64 = file.parse().ok()?;
    let d: u64 = dir.parse().ok()?;
    (d == i / 1000).then_some(i)
}

/// A cheap deterministic mix (splitmix64) for sizes and ETags of generated objects.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// What HEAD, GET and listings tell about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub size: u64,
    /// Quoted, as S3 sends it.
    pub etag: String,
    /// Unix seconds.
    pub modified: i64,
}

/// Metadata of generated object `i`.
pub fn generated_meta(i: u64) -> Meta {
    Meta {
        size: 512 + mix(i) % 4096,
        etag: format!("\"{:016x}{:016x}\"", mix(i), mix(i ^ 0x5555)),
        modified: GENERATED_MODIFIED,
    }
}

/// An object written after start; `body` is `None` when it was too large to keep (its
/// GET then answers filler bytes of the right size).
#[derive(Clone, Debug)]
pub struct Stored {
    pub meta: Meta,
    pub body: Option<Bytes>,
}

/// Which generated objects each bucket holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub buckets: Vec<(String, Range<u64>)>,
}

impl Layout {
    /// `spec` is `name:count,name:count,...`; each bucket after the first starts
    /// `overlap_pct` % of its own count before the previous bucket's end, so that many
    /// keys exist in both (duplicates), and the rest are new.
    pub fn parse(spec: &str, overlap_pct: u64) -> Result<Layout, String> {
        if overlap_pct > 100 {
            return Err(format!("overlap {overlap_pct}% is over 100%"));
        }
        let mut buckets: Vec<(String, Range<u64>)> = Vec::new();
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            let (name, count) = part
                .split_once(':')
                .ok_or_else(|| format!("bucket {part:?} is not NAME:COUNT"))?;
            if name.is_empty() || name.contains('/') || name.starts_with('_') {
                return Err(format!("bad bucket name {name:?}"));
            }
            if buckets.iter().any(|(n, _)| n == name) {
                return Err(format!("bucket {name:?} named twice"));
            }
            let count: u64 = count
                .parse()
                .map_err(|e| format!("bad count in {part:?}: {e}"))?;
            let start = match buckets.last() {
                None => 0,
                Some((_, prev)) => {
                    let overlap = (count * overlap_pct / 100).min(prev.end - prev.start);
                    prev.end - overlap
                }
            };
            let end = start + count;
            if end > MAX_OBJECTS {
                return Err(format!(
                    "layout needs index {end}, over the {MAX_OBJECTS} keys this key shape can sort"
                ));
            }
            buckets.push((name.to_owned(), start..end));
        }
        if buckets.is_empty() {
            return Err("no bucket in the layout".into());
        }
        Ok(Layout { buckets })
    }

    /// Distinct generated keys over all buckets (the ranges are contiguous).
    pub fn distinct(&self) -> u64 {
        self.buckets.iter().map(|(_, r)| r.end).max().unwrap_or(0)
    }

    /// Keys held by more than one bucket.
    pub fn duplicates(&self) -> u64 {
        let total: u64 = self.buckets.iter().map(|(_, r)| r.end - r.start).sum();
        total - self.distinct()
    }

    /// The first bucket holding generated index `i` (where the service registers it).
    pub fn home_of(&self, i: u64) -> Option<&str> {
        self.buckets
            .iter()
            .find(|(_, r)| r.contains(&i))
            .map(|(n, _)| n.as_str())
    }
}

/// One bucket: its generated range and the changes made to it since start
/// (`Some` = written, `None` = a generated object deleted).
#[derive(Debug, Default)]
pub struct Bucket {
    generated: Range<u64>,
    overlay: BTreeMap<String, Option<Stored>>,
}

/// The listing request, decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub prefix: String,
    pub start_after: Option<String>,
    /// Decoded continuation token: the last key of the previous page.
    pub after_token: Option<String>,
    pub max_keys: usize,
}

/// One page of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPage {
    pub entries: Vec<(String, Meta)>,
    /// Common prefixes, in a listing with a delimiter.
    pub prefixes: Vec<String>,
    pub truncated: bool,
    /// The encoded token of the next page, when truncated.
    pub next_token: Option<String>,
}

/// The outcome of a conditional PUT's preconditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutCheck {
    Proceed,
    /// 412 PreconditionFailed.
    Failed,
    /// 404 NoSuchKey: `If-Match` on a key that does not exist (what AWS answers).
    NoSuchKey,
}

/// `If-Match` / `If-None-Match` of a PUT against the current ETag (`None` = no object).
pub fn check_put(
    current: Option<&str>,
    if_match: Option<&str>,
    if_none_match: Option<&str>,
) -> PutCheck {
    if let Some(cond) = if_match {
        let Some(etag) = current else {
            return PutCheck::NoSuchKey;
        };
        if !etag_list_matches(cond, etag) {
            return PutCheck::Failed;
        }
    }
    if let Some(cond) = if_none_match
        && let Some(etag) = current
        && etag_list_matches(cond, etag)
    {
        return PutCheck::Failed;
    }
    PutCheck::Proceed
}

/// Whether a header's ETag list (`*`, or comma-separated, quoted or not, weak or not)
/// names `etag`.
fn etag_list_matches(list: &str, etag: &str) -> bool {
    let bare = |s: &str| {
        let s = s.trim();
        let s = s.strip_prefix("W/").unwrap_or(s);
        s.trim_matches('"').to_owned()
    };
    let want = bare(etag);
    list.split(',').any(|c| c.trim() == "*" || bare(c) == want)
}

impl Bucket {
    pub fn new(generated: Range<u64>) -> Bucket {
        Bucket {
            generated,
            overlay: BTreeMap::new(),
        }
    }

    fn generated_index(&self, key: &str) -> Option<u64> {
        index_of(key).filter(|i| self.generated.contains(i))
    }

    /// The object at `key`, with its stored body if it has one.
    pub fn get(&self, key: &str) -> Option<(Meta, Option<Bytes>)> {
        match self.overlay.get(key) {
            Some(Some(s)) => Some((s.meta.clone(), s.body.clone())),
            Some(None) => None,
            None => self.generated_index(key).map(|i| (generated_meta(i), None)),
        }
    }

    pub fn put(&mut self, key: &str, stored: Stored) {
        self.overlay.insert(key.to_owned(), Some(stored));
    }

    /// Deletes `key`; true if it existed.
    pub fn delete(&mut self, key: &str) -> bool {
        let existed = self.get(key).is_some();
        if self.generated_index(key).is_some() {
            self.overlay.insert(key.to_owned(), None);
        } else {
            self.overlay.remove(key);
        }
        existed
    }

    /// One ListObjectsV2 page: keys after `max(start-after, token)`, starting with `prefix`.
    pub fn list(&self, q: &ListQuery) -> ListPage {
        // The later of start-after and the token: S3 ignores start-after once a token is
        // given, and a token always lies after start-after anyway.
        let after: Option<&str> = q.after_token.as_deref().or(q.start_after.as_deref());
        let prefix = q.prefix.as_str();
        if q.max_keys == 0 {
            // Nothing fits: an empty, complete page, so that no client loops on it.
            return ListPage {
                entries: Vec::new(),
                prefixes: Vec::new(),
                truncated: false,
                next_token: None,
            };
        }
        // Lower bound: strictly after `after`, at or after `prefix`.
        let lower: Bound<&str> = match after {
            Some(a) if a >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        let below = |k: &str| match lower {
            Bound::Excluded(a) => k <= a,
            Bound::Included(p) => k < p,
            Bound::Unbounded => false,
        };
        let g = &self.generated;
        let first = g.start + partition_point(g.end - g.start, |n| below(&key_of(g.start + n)));
        let mut gen_iter = (first..g.end)
            .map(|i| (key_of(i), i))
            .take_while(|(k, _)| k.starts_with(prefix))
            .peekable();
        let mut over_iter = self
            .overlay
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .peekable();
        let mut entries = Vec::new();
        let mut truncated = false;
        loop {
            // The next key of the merge; the overlay wins over a generated key it shadows.
            let next = match (gen_iter.peek(), over_iter.peek()) {
                (None, None) => break,
                (Some((gk, _)), Some((ok, _))) if gk.as_str() < ok.as_str() => {
                    let (k, i) = gen_iter.next().expect("peeked");
                    Some((k, generated_meta(i)))
                }
                (Some(_), None) => {
                    let (k, i) = gen_iter.next().expect("peeked");
                    Some((k, generated_meta(i)))
                }
                (gen_next, Some((ok, _))) => {
                    if gen_next.is_some_and(|(gk, _)| gk.as_str() == ok.as_str()) {
                        gen_iter.next();
                    }
                    let (k, v) = over_iter.next().expect("peeked");
                    v.as_ref().map(|s| (k.clone(), s.meta.clone()))
                }
            };
            let Some(entry) = next else { continue };
            if entries.len() == q.max_keys {
                truncated = true;
                break;
            }
            entries.push(entry);
        }
        let next_token = if truncated {
            entries.last().map(|(k, _)| encode_token(k))
        } else {
            None
        };
        ListPage {
            entries,
            prefixes: Vec::new(),
            truncated,
            next_token,
        }
    }

    /// One ListObjectsV2 page with a delimiter: keys holding `delimiter` after `prefix`
    /// are grouped into their common prefix (one entry of the page each), the others
    /// listed. Found by seeking, one key lookup per item, so a page of folders over
    /// millions of keys costs a thousand lookups.
    pub fn list_delimited(&self, q: &ListQuery, delimiter: &str) -> ListPage {
        let mut bound: Option<String> = q.after_token.clone().or(q.start_after.clone());
        let mut page = ListPage {
            entries: Vec::new(),
            prefixes: Vec::new(),
            truncated: false,
            next_token: None,
        };
        let next_after = |bound: &Option<String>| {
            self.list(&ListQuery {
                prefix: q.prefix.clone(),
                start_after: bound.clone(),
                after_token: None,
                max_keys: 1,
            })
            .entries
            .into_iter()
            .next()
        };
        while let Some((key, meta)) = next_after(&bound) {
            if page.entries.len() + page.prefixes.len() == q.max_keys {
                page.truncated = true;
                page.next_token = bound.as_deref().map(encode_token);
                break;
            }
            match key[q.prefix.len()..].find(delimiter) {
                Some(at) => {
                    let common = key[..q.prefix.len() + at + delimiter.len()].to_owned();
                    // Past every key under this prefix.
                    bound = Some(format!("{common}\u{10FFFF}"));
                    page.prefixes.push(common);
                }
                None => {
                    bound = Some(key.clone());
                    page.entries.push((key, meta));
                }
            }
        }
        page
    }
}

/// The first `n` in `0..len` for which `below(n)` is false (`below` is monotone).
fn partition_point(len: u64, below: impl Fn(u64) -> bool) -> u64 {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if below(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// A continuation token: the last key of the page, hex-encoded behind a version tag, so
/// that it is opaque to clients and survives any URL or XML encoding unchanged.
pub fn encode_token(last_key: &str) -> String {
    let mut t = String::with_capacity(3 + last_key.len() * 2);
    t.push_str("b1-");
    for b in last_key.bytes() {
        t.push_str(&format!("{b:02x}"));
    }
    t
}

/// The last key a token names, or `None` for a token this server did not make.
pub fn decode_token(token: &str) -> Option<String> {
    let hex = token.strip_prefix("b1-")?;
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// S3's `encoding-type=url`: like a query-string escape (space as `+`, `%XX` in upper
/// case) except that `/` and `*` stay as they are and `~` is escaped.
pub fn s3_url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'*' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-decoding of a path segment (`+` stays `+`) or, with `plus_is_space`, of a
/// query component. `None` on a bad escape or invalid UTF-8.
pub fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Query parameters, decoded, in order; `None` if any is badly encoded.
pub fn parse_query(query: &str) -> Option<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

/// Text escaped for XML; control characters as character references, as S3 writes them.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_xml_escaped(&mut out, s);
    out
}

/// [`xml_escape`] appended to `out` (listings write a thousand keys a page).
pub fn push_xml_escaped(out: &mut String, s: &str) {
    // Runs of plain bytes are copied whole; every byte replaced is ASCII, so the slice
    // bounds are always character boundaries.
    let mut plain_from = 0;
    for (i, b) in s.bytes().enumerate() {
        let replacement = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&apos;",
            0..0x20 => "",
            _ => continue,
        };
        out.push_str(&s[plain_from..i]);
        if replacement.is_empty() {
            let _ = write!(out, "&#x{b:X};");
        } else {
            out.push_str(replacement);
        }
        plain_from = i + 1;
    }
    out.push_str(&s[plain_from..]);
}

/// Civil date of a Unix day (Howard Hinnant's days-from-civil inverse).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `2026-05-05T10:00:00.000Z`, the listing form.
pub fn iso_time(secs: i64) -> String {
    let mut out = String::with_capacity(24);
    push_iso_time(&mut out, secs);
    out
}

fn push_iso_time(out: &mut String, secs: i64) {
    if secs == GENERATED_MODIFIED {
        // Every generated object: no need to format it a million times.
        out.push_str("2026-05-05T10:00:00.000Z");
        return;
    }
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    );
}

/// `Tue, 05 May 2026 10:00:00 GMT`, the HTTP-date form of `Last-Modified`.
pub fn http_time(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let (y, m, d) = civil(days);
    let t = secs.rem_euclid(86_400);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// The ListObjectsV2 XML of a page.
pub fn list_xml(
    bucket: &str,
    q: &ListQuery,
    page: &ListPage,
    url_encoded: bool,
    token: Option<&str>,
) -> String {
    let enc = |s: &str| {
        if url_encoded {
            xml_escape(&s3_url_encode(s))
        } else {
            xml_escape(s)
        }
    };
    let mut x = String::with_capacity(256 + page.entries.len() * 220);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    x.push_str(&format!("<Name>{}</Name>", xml_escape(bucket)));
    x.push_str(&format!("<Prefix>{}</Prefix>", enc(&q.prefix)));
    if let Some(sa) = &q.start_after {
        x.push_str(&format!("<StartAfter>{}</StartAfter>", enc(sa)));
    }
    if let Some(t) = token {
        x.push_str(&format!(
            "<ContinuationToken>{}</ContinuationToken>",
            xml_escape(t)
        ));
    }
    x.push_str(&format!(
        "<KeyCount>{}</KeyCount><MaxKeys>{}</MaxKeys>",
        page.entries.len(),
        q.max_keys
    ));
    if url_encoded {
        x.push_str("<EncodingType>url</EncodingType>");
    }
    x.push_str(&format!("<IsTruncated>{}</IsTruncated>", page.truncated));
    if let Some(t) = &page.next_token {
        x.push_str(&format!(
            "<NextContinuationToken>{}</NextContinuationToken>",
            xml_escape(t)
        ));
    }
    for (key, meta) in &page.entries {
        // Written in place: this loop is most of the server's cost per listing page.
        x.push_str("<Contents><Key>");
        if url_encoded {
            push_xml_escaped(&mut x, &s3_url_encode(key));
        } else {
            push_xml_escaped(&mut x, key);
        }
        x.push_str("</Key><LastModified>");
        push_iso_time(&mut x, meta.modified);
        x.push_str("</LastModified><ETag>");
        push_xml_escaped(&mut x, &meta.etag);
        let _ = write!(
            x,
            "</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            meta.size
        );
    }
    for p in &page.prefixes {
        x.push_str("<CommonPrefixes><Prefix>");
        push_xml_escaped(
            &mut x,
            &if url_encoded {
                s3_url_encode(p)
            } else {
                p.clone()
            },
        );
        x.push_str("</Prefix></CommonPrefixes>");
    }
    x.push_str("</ListBucketResult>");
    x
}

/// An S3 `<Error>` document.
pub fn error_xml(code: &str, message: &str, resource: &str, request_id: u64) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource><RequestId>{request_id:016X}</RequestId></Error>",
        xml_escape(code),
        xml_escape(message),
        xml_escape(resource)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(size: u64, etag: &str) -> Stored {
        Stored {
            meta: Meta {
                size,
                etag: etag.into(),
                modified: GENERATED_MODIFIED + 1,
            },
            body: None,
        }
    }

    fn q(prefix: &str, start_after: Option<&str>, token: Option<&str>, max: usize) -> ListQuery {
        ListQuery {
            prefix: prefix.into(),
            start_after: start_after.map(Into::into),
            after_token: token.map(Into::into),
            max_keys: max,
        }
    }

    fn keys(p: &ListPage) -> Vec<&str> {
        p.entries.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// Every key of a bucket, page by page through the tokens.
    fn walk(b: &Bucket, prefix: &str, start_after: Option<&str>, max: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..100_000 {
            let after = token.as_deref().map(|t| decode_token(t).unwrap());
            let page = b.list(&q(prefix, start_after, after.as_deref(), max));
            assert!(page.entries.len() <= max);
            out.extend(page.entries.iter().map(|(k, _)| k.clone()));
            match page.next_token {
                Some(t) => token = Some(t),
                None => return out,
            }
        }
        panic!("listing did not end");
    }

    #[test]
    fn keys_sort_like_indexes_and_parse_back() {
        let idx = [0u64, 1, 999, 1000, 1001, 9_999, 123_456, 9_999_999];
        for w in idx.windows(2) {
            assert!(key_of(w[0]) < key_of(w[1]), "{} vs {}", w[0], w[1]);
        }
        for i in idx {
            assert_eq!(index_of(&key_of(i)), Some(i));
        }
        assert_eq!(key_of(1234), "dir0001/file0001234.bin");
        assert_eq!(index_of("dir0002/file0001234.bin"), None);
        assert_eq!(index_of("dir0001/file0001234.bin.x"), None);
        assert_eq!(index_of("dir000+/file0001234.bin"), None);
        assert_eq!(index_of("dir0001/file00012ሴ.bin"), None);
        assert_eq!(index_of(""), None);
    }

    #[test]
    fn layout_overlaps_the_second_bucket() {
        let l = Layout::parse("a:950,b:50", 20).unwrap();
        assert_eq!(l.buckets[0].1, 0..950);
        assert_eq!(l.buckets[1].1, 940..990);
        assert_eq!(l.distinct(), 990);
        assert_eq!(l.duplicates(), 10);
        assert_eq!(l.home_of(945), Some("a"));
        assert_eq!(l.home_of(955), Some("b"));
        assert_eq!(l.home_of(990), None);
        assert!(Layout::parse("a:1,a:2", 0).is_err());
        assert!(Layout::parse("a", 0).is_err());
        assert!(Layout::parse("", 0).is_err());
        assert!(Layout::parse("a:10000001", 0).is_err());
        assert!(Layout::parse("a:5,b:10", 200).is_err());
        // The overlap never reaches before the previous bucket's start.
        let l = Layout::parse("a:5,b:100", 50).unwrap();
        assert_eq!(l.buckets[1].1, 0..100);
    }

    #[test]
    fn pages_meet_exactly_at_the_seams() {
        let b = Bucket::new(0..2_500);
        let all = walk(&b, "", None, 1000);
        assert_eq!(all.len(), 2_500);
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        for max in [1, 7, 999, 1000, 1001, 2_500, 5_000] {
            assert_eq!(walk(&b, "", None, max), all, "max-keys {max}");
        }
        // Exactly full last page: truncated only while something follows.
        let p = b.list(&q("", Some(&key_of(1_499)), None, 1000));
        assert_eq!(p.entries.len(), 1000);
        assert!(!p.truncated && p.next_token.is_none());
        let p = b.list(&q("", Some(&key_of(1_498)), None, 1000));
        assert!(p.truncated);
        assert_eq!(
            decode_token(p.next_token.as_deref().unwrap()).unwrap(),
            key_of(2_498)
        );
    }

    #[test]
    fn start_after_is_exclusive_and_may_name_no_key() {
        let b = Bucket::new(10..20);
        let p = b.list(&q("", Some(&key_of(12)), None, 3));
        assert_eq!(keys(&p), [key_of(13), key_of(14), key_of(15)]);
        // Between two keys, before all, after all.
        let between = format!("{}!", key_of(12));
        assert_eq!(
            b.list(&q("", Some(&between), None, 1)).entries[0].0,
            key_of(13)
        );
        assert_eq!(b.list(&q("", Some("a"), None, 1)).entries[0].0, key_of(10));
        assert!(b.list(&q("", Some("z"), None, 1)).entries.is_empty());
        // A token wins over start-after.
        let p = b.list(&q("", Some(&key_of(12)), Some(&key_of(17)), 10));
        assert_eq!(keys(&p), [key_of(18), key_of(19)]);
    }

    #[test]
    fn prefixes_bound_the_listing() {
        let b = Bucket::new(0..3_000);
        let d1 = walk(&b, "dir0001/", None, 300);
        assert_eq!(d1.len(), 1000);
        assert_eq!(d1[0], key_of(1000));
        assert_eq!(d1[999], key_of(1999));
        assert_eq!(walk(&b, "dir0001/file00015", None, 33).len(), 100);
        assert!(walk(&b, "dir9", None, 10).is_empty());
        assert!(walk(&b, "e", None, 10).is_empty());
        // start-after before the prefix, inside it, after it.
        assert_eq!(walk(&b, "dir0001/", Some("dir0000/zzz"), 1000).len(), 1000);
        assert_eq!(walk(&b, "dir0001/", Some(&key_of(1500)), 1000).len(), 499);
        assert!(walk(&b, "dir0001/", Some("dir0002"), 1000).is_empty());
    }

    #[test]
    fn overlay_merges_writes_and_deletes() {
        let mut b = Bucket::new(0..5);
        b.put("a.txt", stored(3, "\"x\""));
        b.put(&key_of(2), stored(9, "\"y\""));
        b.put("zz", stored(1, "\"z\""));
        assert!(b.delete(&key_of(3)));
        assert!(!b.delete(&key_of(3)));
        assert!(!b.delete("nothing"));
        b.put("gone", stored(1, "\"g\""));
        assert!(b.delete("gone"));
        let all = walk(&b, "", None, 2);
        assert_eq!(
            all,
            [
                "a.txt",
                &key_of(0),
                &key_of(1),
                &key_of(2),
                &key_of(4),
                "zz"
            ]
        );
        let p = b.list(&q("", None, None, 1000));
        assert_eq!(p.entries[3].1.size, 9);
        assert_eq!(b.get(&key_of(2)).unwrap().0.etag, "\"y\"");
        assert!(b.get(&key_of(3)).is_none());
        assert!(b.get(&key_of(5)).is_none());
        assert_eq!(b.get(&key_of(4)).unwrap().0, generated_meta(4));
        // A page that ends on a deleted key's neighbour continues correctly.
        let p = b.list(&q("", Some(&key_of(2)), None, 1));
        assert_eq!(keys(&p), [key_of(4)]);
        assert!(p.truncated);
        // Re-creating a deleted generated key shows it again.
        b.put(&key_of(3), stored(2, "\"w\""));
        assert_eq!(walk(&b, "dir", None, 1000).len(), 5);
    }

    #[test]
    fn a_delimiter_groups_keys_into_folders_page_by_page() {
        let b = Bucket::new(0..3500);
        let first = b.list_delimited(&q("", None, None, 2), "/");
        assert_eq!(first.prefixes, vec!["dir0000/", "dir0001/"]);
        assert!(first.entries.is_empty() && first.truncated);
        let after = decode_token(first.next_token.as_deref().unwrap()).unwrap();
        let rest = b.list_delimited(&q("", None, Some(&after), 10), "/");
        assert_eq!(rest.prefixes, vec!["dir0002/", "dir0003/"]);
        assert!(!rest.truncated);
    }

    #[test]
    fn max_keys_zero_gives_an_empty_complete_page() {
        let b = Bucket::new(0..3);
        let p = b.list(&q("", None, None, 0));
        assert!(p.entries.is_empty());
        assert!(!p.truncated);
        assert_eq!(p.next_token, None);
    }

    #[test]
    fn tokens_round_trip_and_refuse_strangers() {
        for k in ["", "a", "dir/ሴ +%&<>.bin", "\u{1}"] {
            assert_eq!(decode_token(&encode_token(k)).as_deref(), Some(k));
        }
        assert_eq!(decode_token("abc"), None);
        assert_eq!(decode_token("b1-6"), None);
        assert_eq!(decode_token("b1-zz"), None);
        assert_eq!(decode_token("b1-ff"), None); // not UTF-8
    }

    #[test]
    fn url_encoding_matches_s3() {
        assert_eq!(s3_url_encode("a b/c*d~e+f&g=h"), "a+b/c*d%7Ee%2Bf%26g%3Dh");
        assert_eq!(s3_url_encode("ሴ"), "%E1%88%B4");
        assert_eq!(s3_url_encode("\u{1}%"), "%01%25");
        assert_eq!(percent_decode("a+b%2Bc%E1%88%B4", true).unwrap(), "a b+cሴ");
        assert_eq!(percent_decode("a+b", false).unwrap(), "a+b");
        assert_eq!(percent_decode("%zz", true), None);
        assert_eq!(percent_decode("%4", true), None);
        assert_eq!(percent_decode("%ff", true), None);
        for k in ["a b+c/ሴ~*.txt", "100%", "&<>"] {
            assert_eq!(percent_decode(&s3_url_encode(k), true).unwrap(), k);
        }
        let qs = parse_query("list-type=2&prefix=a%2Fb+c&start-after=&x").unwrap();
        assert_eq!(qs[1], ("prefix".into(), "a/b c".into()));
        assert_eq!(qs[2], ("start-after".into(), String::new()));
        assert_eq!(qs[3], ("x".into(), String::new()));
        assert!(parse_query("a=%G0").is_none());
    }

    #[test]
    fn listing_xml_escapes_or_url_encodes() {
        let mut b = Bucket::new(0..0);
        b.put("a&b <c>.txt", stored(5, "\"e\""));
        b.put("sp ace/\u{1}", stored(1, "\"f\""));
        let query = q("", Some("a"), None, 1);
        let page = b.list(&query);
        let x = list_xml("bk", &query, &page, false, None);
        assert!(x.contains("<Key>a&amp;b &lt;c&gt;.txt</Key>"), "{x}");
        assert!(x.contains("<ETag>&quot;e&quot;</ETag>"));
        assert!(x.contains("<KeyCount>1</KeyCount><MaxKeys>1</MaxKeys>"));
        assert!(x.contains("<IsTruncated>true</IsTruncated>"));
        assert!(x.contains("<LastModified>2026-05-05T10:00:01.000Z</LastModified>"));
        assert!(x.contains("<StartAfter>a</StartAfter>"));
        let query = q("sp ace/", None, None, 10);
        let page = b.list(&query);
        let x = list_xml("bk", &query, &page, true, Some("tok"));
        assert!(x.contains("<Key>sp+ace/%01</Key>"), "{x}");
        assert!(x.contains("<Prefix>sp+ace/</Prefix>"));
        assert!(x.contains("<EncodingType>url</EncodingType>"));
        assert!(x.contains("<ContinuationToken>tok</ContinuationToken>"));
        assert!(!x.contains("NextContinuationToken"));
        assert_eq!(xml_escape("\u{1}'"), "&#x1;&apos;");
    }

    #[test]
    fn the_service_reads_our_listing() {
        let b = Bucket::new(0..3);
        let query = q("", None, None, 2);
        let page = b.list(&query);
        let x = list_xml("bk", &query, &page, false, None);
        let parsed = parparchik::s3::xml::parse_list_page(x.as_bytes()).unwrap();
        assert!(parsed.is_truncated);
        assert_eq!(parsed.contents.len(), 2);
        assert_eq!(parsed.contents[1].key, key_of(1));
        assert_eq!(parsed.contents[1].etag, generated_meta(1).etag);
        assert_eq!(
            parsed
                .next_continuation_token
                .as_deref()
                .and_then(decode_token),
            Some(key_of(1))
        );
        let doc =
            parparchik::s3::xml::parse_error(error_xml("NoSuchKey", "m", "/b/k", 7).as_bytes());
        assert_eq!(doc.code, "NoSuchKey");
    }

    #[test]
    fn conditional_puts_follow_aws() {
        use PutCheck::*;
        assert_eq!(check_put(None, None, None), Proceed);
        assert_eq!(check_put(Some("\"a\""), None, None), Proceed);
        assert_eq!(check_put(None, Some("\"a\""), None), NoSuchKey);
        assert_eq!(check_put(Some("\"a\""), Some("\"a\""), None), Proceed);
        assert_eq!(check_put(Some("\"a\""), Some("a"), None), Proceed);
        assert_eq!(check_put(Some("\"a\""), Some("\"b\""), None), Failed);
        assert_eq!(
            check_put(Some("\"a\""), Some("\"b\", \"a\""), None),
            Proceed
        );
        assert_eq!(check_put(Some("\"a\""), Some("*"), None), Proceed);
        assert_eq!(check_put(None, None, Some("*")), Proceed);
        assert_eq!(check_put(Some("\"a\""), None, Some("*")), Failed);
        assert_eq!(check_put(Some("\"a\""), None, Some("\"b\"")), Proceed);
    }

    #[test]
    fn dates_in_both_forms() {
        assert_eq!(iso_time(GENERATED_MODIFIED), "2026-05-05T10:00:00.000Z");
        assert_eq!(
            http_time(GENERATED_MODIFIED),
            "Tue, 05 May 2026 10:00:00 GMT"
        );
        assert_eq!(http_time(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(iso_time(951_782_400), "2000-02-29T00:00:00.000Z");
        let t = time::OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
        assert_eq!(
            parparchik::timefmt::parse(&http_time(1_900_000_000)),
            Some(t)
        );
    }
}
