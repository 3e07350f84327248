//! The S3 XML documents the service reads: `ListBucketResult` (ListObjectsV2) and `Error`.

use quick_xml::Reader;
use quick_xml::events::Event;

/// One `<Contents>` of a listing, as S3 wrote it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListedContents {
    /// The object key, XML entities resolved.
    pub key: String,
    /// `<Size>`, bytes.
    pub size: u64,
    /// ISO 8601, as S3 wrote it (`2026-05-05T10:00:00.000Z`).
    pub last_modified: String,
    /// `<ETag>` as written, quotes included.
    pub etag: String,
}

/// One `ListBucketResult` page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The `<Contents>`, in document order.
    pub contents: Vec<ListedContents>,
    /// `<CommonPrefixes><Prefix>`, when the request named a delimiter.
    pub common_prefixes: Vec<String>,
    /// `<IsTruncated>`: more pages follow.
    pub is_truncated: bool,
    /// `<NextContinuationToken>`, if present.
    pub next_continuation_token: Option<String>,
}

/// `<Error><Code>…</Code><Message>…</Message></Error>`; empty strings where absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorDocument {
    /// `<Code>`: `NoSuchKey`, `AccessDenied`, …
    pub code: String,
    /// `<Message>`: free text.
    pub message: String,
}

/// Why a listing page could not be read; S3 (or whatever answered in its place) sent
/// something that is not a ListObjectsV2 result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XmlError {
    /// Not well-formed XML (as quick-xml reports it).
    Malformed(String),
    /// Well-formed, but another document (an HTML error page, another S3 answer).
    NotAListing {
        /// The root element's name; `None` when there was no element.
        root: Option<String>,
    },
    /// An entity reference XML does not define (`&nbsp;` in an HTML page).
    UnknownEntity(String),
    /// A `<Size>` that is not a number of bytes.
    InvalidSize(String),
}

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XmlError::Malformed(e) => write!(f, "invalid XML: {e}"),
            XmlError::NotAListing { root: Some(root) } => {
                write!(f, "not a ListBucketResult (root element <{root}>)")
            }
            XmlError::NotAListing { root: None } => {
                f.write_str("not a ListBucketResult (no XML element)")
            }
            XmlError::UnknownEntity(name) => write!(f, "unknown XML entity &{name};"),
            XmlError::InvalidSize(text) => write!(f, "invalid <Size> {text:?}"),
        }
    }
}

impl std::error::Error for XmlError {}

fn read_error(e: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(e.to_string())
}

/// Parses one ListObjectsV2 page. Keys come back decoded (the request does not ask for
/// `encoding-type=url`), with XML entities resolved.
pub fn parse_list_page(xml: &[u8]) -> Result<ListPage, XmlError> {
    let mut reader = Reader::from_reader(xml);
    let mut page = ListPage::default();
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<ListedContents> = None;
    let mut text = String::new();
    let mut buf = Vec::new();
    let mut saw_root = false;
    loop {
        match reader.read_event_into(&mut buf).map_err(read_error)? {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_vec();
                // A 200 whose body is some other XML (or HTML) is not an empty listing.
                if path.is_empty() && name != b"ListBucketResult" {
                    return Err(XmlError::NotAListing {
                        root: Some(String::from_utf8_lossy(&name).into_owned()),
                    });
                }
                saw_root = true;
                if name == b"Contents" && path.len() == 1 {
                    current = Some(ListedContents::default());
                }
                path.push(name);
                text.clear();
            }
            Event::Text(t) => {
                let decoded = t.decode().map_err(read_error)?;
                text.push_str(&decoded);
            }
            Event::GeneralRef(r) => {
                // quick-xml reports entity references (`&amp;`, `&#x1;`) separately.
                let name = r.decode().map_err(read_error)?;
                let resolved = resolve_entity(&name)
                    .ok_or_else(|| XmlError::UnknownEntity(name.to_string()))?;
                text.push_str(&resolved);
            }
            Event::CData(c) => {
                text.push_str(&String::from_utf8_lossy(&c.into_inner()));
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                let depth = path.len();
                match (depth, name.as_slice()) {
                    (2, b"Prefix") if path.last().is_some_and(|p| p == b"CommonPrefixes") => {
                        page.common_prefixes.push(std::mem::take(&mut text));
                    }
                    (2, field) if current.is_some() => {
                        if let Some(c) = current.as_mut() {
                            match field {
                                b"Key" => c.key = std::mem::take(&mut text),
                                b"Size" => {
                                    c.size = text.trim().parse().map_err(|_| {
                                        XmlError::InvalidSize(text.trim().to_owned())
                                    })?;
                                }
                                b"LastModified" => c.last_modified = text.trim().to_owned(),
                                b"ETag" => c.etag = text.trim().to_owned(),
                                _ => {}
                            }
                        }
                    }
                    (1, b"Contents") => {
                        if let Some(c) = current.take() {
                            page.contents.push(c);
                        }
                    }
                    (1, b"IsTruncated") => page.is_truncated = text.trim() == "true",
                    (1, b"NextContinuationToken") => {
                        let token = text.trim();
                        if !token.is_empty() {
                            page.next_continuation_token = Some(token.to_owned());
                        }
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_root {
        return Err(XmlError::NotAListing { root: None });
    }
    Ok(page)
}

fn resolve_entity(name: &str) -> Option<String> {
    match name {
        "amp" => Some("&".into()),
        "lt" => Some("<".into()),
        "gt" => Some(">".into()),
        "quot" => Some("\"".into()),
        "apos" => Some("'".into()),
        _ => {
            let code =
                if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok()?
                } else {
                    name.strip_prefix('#')?.parse().ok()?
                };
            char::from_u32(code).map(String::from)
        }
    }
}

/// Parses an S3 `<Error>` body; an empty or unreadable body gives empty fields, since
/// the HTTP status alone still classifies the error.
pub fn parse_error(xml: &[u8]) -> ErrorDocument {
    let mut reader = Reader::from_reader(xml);
    let mut doc = ErrorDocument::default();
    let mut field: Option<Vec<u8>> = None;
    let mut buf = Vec::new();
    while let Ok(event) = reader.read_event_into(&mut buf) {
        match event {
            Event::Start(e) => field = Some(e.local_name().as_ref().to_vec()),
            Event::Text(t) => {
                let value = t.decode().map(|s| s.trim().to_owned()).unwrap_or_default();
                match field.as_deref() {
                    Some(b"Code") => doc.code.push_str(&value),
                    Some(b"Message") => doc.message.push_str(&value),
                    _ => {}
                }
            }
            Event::End(_) => field = None,
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefixes_are_read_and_not_taken_for_objects() {
        let xml = br#"<ListBucketResult><Name>b</Name><Prefix></Prefix><Delimiter>/</Delimiter>
<Contents><Key>top.txt</Key><Size>1</Size><LastModified>2026-05-05T10:00:00.000Z</LastModified></Contents>
<CommonPrefixes><Prefix>a b/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>dir&amp;1/</Prefix></CommonPrefixes>
<IsTruncated>false</IsTruncated></ListBucketResult>"#;
        let page = parse_list_page(xml).unwrap();
        assert_eq!(page.common_prefixes, vec!["a b/", "dir&1/"]);
        assert_eq!(page.contents.len(), 1);
        assert_eq!(page.contents[0].key, "top.txt");
    }

    #[test]
    fn parses_a_truncated_page_with_escaped_keys() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents><Key>a &amp; b &lt;c&gt;.txt</Key><LastModified>2026-05-05T10:00:00.000Z</LastModified>
    <ETag>&quot;abc&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>dir/ሴ+%~.bin</Key><LastModified>2026-05-06T10:00:00Z</LastModified><ETag>"d"</ETag><Size>0</Size></Contents>
</ListBucketResult>"#;
        let page = parse_list_page(xml.as_bytes()).unwrap();
        assert!(page.is_truncated);
        assert_eq!(
            page.next_continuation_token.as_deref(),
            Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        );
        assert_eq!(page.contents.len(), 2);
        assert_eq!(page.contents[0].key, "a & b <c>.txt");
        assert_eq!(page.contents[0].size, 12);
        assert_eq!(page.contents[0].etag, "\"abc\"");
        assert_eq!(page.contents[1].key, "dir/ሴ+%~.bin");
    }

    #[test]
    fn last_page_has_no_token() {
        let page = parse_list_page(
            b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
        )
        .unwrap();
        assert!(!page.is_truncated && page.next_continuation_token.is_none());
        assert!(page.contents.is_empty());
    }

    #[test]
    fn other_documents_are_not_empty_listings() {
        for body in [
            &b"<html><body>404 page not found</body></html>"[..],
            b"<Error><Code>NoSuchBucket</Code></Error>",
            b"404 page not found",
            b"",
        ] {
            assert!(parse_list_page(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn bad_size_is_an_error() {
        let xml =
            b"<ListBucketResult><Contents><Key>k</Key><Size>x</Size></Contents></ListBucketResult>";
        assert!(parse_list_page(xml).is_err());
    }

    #[test]
    fn reads_error_documents() {
        let doc = parse_error(b"<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>");
        assert_eq!(doc.code, "SlowDown");
        assert_eq!(doc.message, "Please reduce your request rate.");
        assert_eq!(parse_error(b""), ErrorDocument::default());
    }
}
