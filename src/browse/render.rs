//! The `/browse/` page as HTML, sans-IO. Every key and name is escaped for HTML, and for
//! URLs segment by segment; the only script and style are inline and carry the
//! response's nonce, which the `Content-Security-Policy` ([`csp`]) requires: no external
//! asset, no inline handler, nothing a key could smuggle in can run.

use std::fmt::Write as _;

use super::listing::{Page, Row};
use crate::config::BucketConfig;
use crate::sigv4::encode::{encode_component_into, push_encoded_path};

/// What one page shows.
pub(crate) struct View<'a> {
    pub page: &'a Page,
    /// `""` or a folder path ending in `/`.
    pub prefix: &'a str,
    /// As the person typed it (shown back in the box).
    pub filter: Option<&'a str>,
    pub buckets: &'a [BucketConfig],
    /// Base64 or hex characters only (it is written into attributes and a header).
    pub nonce: &'a str,
    /// False while the registry is still being built: the page says it may be incomplete.
    pub ready: bool,
}

/// The policy that goes with a page rendered with `nonce`.
pub(crate) fn csp(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         img-src 'none'; connect-src 'none'; form-action 'self'; base-uri 'none'; \
         frame-ancestors 'none'"
    )
}

/// `&`, `<`, `>`, `"`, `'` as entities: safe in text and in double-quoted attributes.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// `/browse/<folder>` with every segment percent-encoded (`/` kept between them).
pub(crate) fn browse_href(folder: &str) -> String {
    let mut out = String::from("/browse/");
    push_encoded_path(&mut out, folder);
    out
}

/// The file's stable route, `/<bucket>/<key>`, each key segment percent-encoded.
pub(crate) fn file_href(bucket: &str, key: &str) -> String {
    let mut out = String::with_capacity(bucket.len() + key.len() + 2);
    out.push('/');
    push_encoded_path(&mut out, bucket);
    out.push('/');
    push_encoded_path(&mut out, key);
    out
}

/// A page link: the folder, the filter and the cursor.
fn page_href(prefix: &str, filter: Option<&str>, after: Option<&str>) -> String {
    let mut out = browse_href(prefix);
    let mut sep = '?';
    if let Some(f) = filter {
        out.push_str("?q=");
        encode_component_into(&mut out, f);
        sep = '&';
    }
    if let Some(a) = after {
        out.push(sep);
        out.push_str("after=");
        encode_component_into(&mut out, a);
    }
    out
}

/// `1.5 MiB`; exact bytes go in the cell's title.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem auto;max-width:72rem;padding:0 1rem;color:#1d232a;background:#fff}\
h1{font-size:1.3rem;margin:0 0 .4rem}\
nav.crumbs{margin-bottom:.8rem;word-break:break-all}\
a{color:#0b5cad;text-decoration:none}a:hover{text-decoration:underline}\
form{display:flex;gap:.4rem;margin:.6rem 0}\
input[type=search]{flex:1;max-width:28rem;padding:.35rem .5rem;font:inherit}\
button{font:inherit;padding:.3rem .7rem;cursor:pointer}\
table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e3e6ea;vertical-align:top}\
th{font-weight:600;background:#f5f7f9}\
td.name{word-break:break-all}td.size,td.time{white-space:nowrap}\
tr.dir td.name a{font-weight:600}\
.meta{color:#57606a}.warn{background:#fff4d6;padding:.4rem .6rem}\
nav.pages{margin:1rem 0;display:flex;gap:1rem}\
button.copy{font-size:12px;padding:.15rem .5rem}";

/// Filters the rows as the person types (the `?q=` form does the same on the server,
/// over every page) and copies a file's absolute link.
const SCRIPT: &str = r##"(function () {
  document.documentElement.setAttribute("data-js", "on");
  var box = document.getElementById("q");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#listing tbody tr"));
  box.addEventListener("input", function () {
    var t = box.value.toLowerCase();
    rows.forEach(function (r) {
      r.hidden = t !== "" && r.getAttribute("data-name").toLowerCase().indexOf(t) < 0;
    });
  });
  document.getElementById("listing").addEventListener("click", function (ev) {
    var b = ev.target.closest("button.copy");
    if (!b) return;
    var url = b.closest("tr").querySelector("a.file").href;
    function done() {
      b.textContent = "Copied";
      setTimeout(function () { b.textContent = "Copy link"; }, 1500);
    }
    function fallback() {
      var t = document.createElement("textarea");
      t.value = url;
      document.body.appendChild(t);
      t.select();
      try { document.execCommand("copy"); done(); } catch (e) { window.prompt("Copy this link:", url); }
      t.remove();
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(url).then(done, fallback);
    } else {
      fallback();
    }
  });
})();"##;

fn breadcrumbs(out: &mut String, prefix: &str) {
    out.push_str("<nav class=\"crumbs\" aria-label=\"folders\">");
    let segments: Vec<&str> = match prefix.strip_suffix('/') {
        Some(p) => p.split('/').collect(),
        None => Vec::new(),
    };
    if segments.is_empty() {
        out.push_str("<strong>all files</strong> /");
    } else {
        out.push_str("<a href=\"/browse/\">all files</a> /");
    }
    let mut path = String::new();
    for (i, seg) in segments.iter().enumerate() {
        path.push_str(seg);
        path.push('/');
        let shown = if seg.is_empty() { "(empty)" } else { seg };
        out.push(' ');
        if i + 1 == segments.len() {
            let _ = write!(out, "<strong>{}</strong>", escaped(shown));
        } else {
            let _ = write!(
                out,
                "<a href=\"{}\">{}</a>",
                escaped(&browse_href(&path)),
                escaped(shown)
            );
        }
        out.push_str(" /");
    }
    out.push_str("</nav>\n");
}

fn row(out: &mut String, view: &View<'_>, r: &Row) {
    match r {
        Row::Folder { name } => {
            let href = browse_href(&format!("{}{name}", view.prefix));
            let bare = name.strip_suffix('/').unwrap_or(name);
            let _ = writeln!(
                out,
                "<tr class=\"dir\" data-name=\"{n}\"><td class=\"name\"><a href=\"{h}\">{t}</a></td>\
                 <td class=\"size\"></td><td class=\"time\"></td><td></td><td></td></tr>",
                n = escaped(bare),
                h = escaped(&href),
                t = escaped(name),
            );
        }
        Row::File {
            name,
            key,
            bucket,
            size,
            modified,
        } => {
            let b = view.buckets.get(bucket.index());
            let bucket_name = b.map_or("", |b| b.name.as_str());
            let href = file_href(bucket_name, key);
            let when = modified
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                .map(|t| {
                    let iso = crate::timefmt::format(t);
                    let shown = format!("{} {}", &iso[..10], &iso[11..16]);
                    format!("<time datetime=\"{iso}\">{shown}</time>")
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "<tr class=\"file\" data-name=\"{n}\"><td class=\"name\"><a class=\"file\" href=\"{h}\">{n}</a></td>\
                 <td class=\"size\" title=\"{size} bytes\">{hs}</td><td class=\"time\">{when}</td>\
                 <td>{bn} <span class=\"meta\">({bt})</span></td>\
                 <td><button type=\"button\" class=\"copy\">Copy link</button></td></tr>",
                n = escaped(name),
                h = escaped(&href),
                hs = human_size(*size),
                bn = escaped(bucket_name),
                bt = b.map_or("", BucketConfig::bucket_type),
            );
        }
    }
}

pub(crate) fn render(view: &View<'_>) -> String {
    let page = view.page;
    let mut out = String::with_capacity(4096 + page.rows.len() * 420);
    let folder = if view.prefix.is_empty() {
        "/".to_owned()
    } else {
        format!("/{}", view.prefix)
    };
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{} · parparchik</title>\n<style nonce=\"{nonce}\">{STYLE}</style></head>\n<body>\n\
         <h1>Files</h1>\n",
        escaped(&folder),
        nonce = view.nonce,
    );
    breadcrumbs(&mut out, view.prefix);
    let action = escaped(&browse_href(view.prefix));
    let _ = write!(
        out,
        "<form method=\"get\" action=\"{action}\" role=\"search\">\
         <input type=\"search\" id=\"q\" name=\"q\" value=\"{}\" placeholder=\"Filter names in this folder\" \
         autocomplete=\"off\" aria-label=\"Filter names\"><button type=\"submit\">Filter</button>",
        escaped(view.filter.unwrap_or("")),
    );
    if view.filter.is_some() {
        let _ = write!(out, " <a href=\"{action}\">clear</a>");
    }
    out.push_str("</form>\n");
    if !view.ready {
        out.push_str(
            "<p class=\"warn\">The registry is still being built: this list may be incomplete.</p>\n",
        );
    }
    let _ = write!(
        out,
        "<p class=\"meta\" id=\"count\">{} {}{}",
        page.total,
        if page.total == 1 { "entry" } else { "entries" },
        match view.filter {
            Some(f) => format!(" matching “{}”", escaped(f)),
            None => String::new(),
        },
    );
    if !page.rows.is_empty() {
        let _ = write!(
            out,
            "; showing {}–{}",
            page.before + 1,
            page.before + page.rows.len()
        );
    }
    out.push_str(".</p>\n");
    out.push_str(
        "<table id=\"listing\"><thead><tr><th>Name</th><th>Size</th><th>Last modified (UTC)</th>\
         <th>Bucket</th><th></th></tr></thead>\n<tbody>\n",
    );
    for r in &page.rows {
        row(&mut out, view, r);
    }
    out.push_str("</tbody></table>\n");
    if page.rows.is_empty() {
        out.push_str("<p class=\"meta\">Nothing here.</p>\n");
    }
    // Pages follow a cursor (every page costs the same); the browser's Back goes back.
    if page.before > 0 || page.next.is_some() {
        out.push_str("<nav class=\"pages\" aria-label=\"pages\">");
        if page.before > 0 {
            let first = page_href(view.prefix, view.filter, None);
            let _ = write!(
                out,
                "<a rel=\"first\" href=\"{}\">« first page</a>",
                escaped(&first)
            );
        }
        if let Some(after) = &page.next {
            let next = page_href(view.prefix, view.filter, Some(after));
            let _ = write!(
                out,
                "<a rel=\"next\" href=\"{}\">next page »</a>",
                escaped(&next)
            );
        }
        out.push_str("</nav>\n");
    }
    let _ = write!(
        out,
        "<script nonce=\"{}\">\n{SCRIPT}\n</script>\n</body></html>\n",
        view.nonce
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browse::listing::{self, Request};
    use crate::config::BucketId;
    use crate::registry::Entry;

    const NONCE: &str = "0123456789abcdef0123456789abcdef";

    fn buckets() -> Vec<BucketConfig> {
        crate::config::test_buckets()
    }

    fn html_for(keys: &[&str], prefix: &str, filter: Option<&str>, after: Option<&str>) -> String {
        let entries: Vec<Entry> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Entry::new(*k, BucketId::new(i % 2), 1536, "2026-05-05T10:00:00Z"))
            .collect();
        let lowered = filter.map(str::to_lowercase);
        let p = listing::page(
            &mut entries.iter(),
            &Request {
                prefix,
                filter: lowered.as_deref(),
                after,
            },
        );
        render(&View {
            page: &p,
            prefix,
            filter,
            buckets: &buckets(),
            nonce: NONCE,
            ready: true,
        })
    }

    /// Every `<tag` that opens an element in `html` (what a parser would create).
    fn tags(html: &str) -> Vec<String> {
        html.match_indices('<')
            .filter_map(|(i, _)| {
                let rest = &html[i + 1..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
                    .collect();
                (!name.is_empty()).then(|| name.to_ascii_lowercase())
            })
            .collect()
    }

    #[test]
    fn hostile_keys_are_text_and_links_never_markup() {
        let hostile = [
            "<img src=x onerror=alert(1)>.txt",
            "\"><script>alert(1)</script>",
            "'><svg onload=alert(1)>",
            "a&b \"quoted\" 'single'.txt",
        ];
        let html = html_for(&hostile, "", None, None);
        let opened = tags(&html);
        assert!(
            !opened.iter().any(|t| t == "img" || t == "svg"),
            "{opened:?}"
        );
        assert_eq!(opened.iter().filter(|t| *t == "script").count(), 1);
        assert_eq!(
            html.matches("<script").count(),
            1,
            "only the page's own script"
        );
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;.txt"),
            "{html}"
        );
        assert!(
            html.contains("&#39;&gt;&lt;svg onload=alert(1)&gt;"),
            "{html}"
        );
        assert!(html.contains("a&amp;b &quot;quoted&quot; &#39;single&#39;.txt"));
        // `"><script>alert(1)<` is a folder (the key has a `/`), linked encoded.
        assert!(
            html.contains(
                "href=\"/browse/%22%3E%3Cscript%3Ealert%281%29%3C/\">&quot;&gt;&lt;script&gt;alert(1)&lt;/</a>"
            ),
            "{html}"
        );
        assert!(html.contains(
            "<a class=\"file\" href=\"/pub/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.txt\">"
        ));
        // No attribute is left unquoted or closed early: every `"` in the markup is ours.
        for line in html.lines().filter(|l| l.starts_with("<tr")) {
            assert_eq!(line.matches('"').count() % 2, 0, "{line}");
        }
    }

    #[test]
    fn links_encode_each_segment_and_keep_slashes() {
        assert_eq!(
            file_href("priv", "a b/ü+?#%.txt"),
            "/priv/a%20b/%C3%BC%2B%3F%23%25.txt"
        );
        assert_eq!(browse_href("a b/c/"), "/browse/a%20b/c/");
        assert_eq!(
            page_href("d/", Some("a&b c"), Some("x/")),
            "/browse/d/?q=a%26b%20c&after=x%2F"
        );
        assert_eq!(page_href("", None, None), "/browse/");
        assert_eq!(page_href("", None, Some("<\"")), "/browse/?after=%3C%22");
        let html = html_for(&["dir/sub/x.txt", "dir/y z.txt"], "dir/", None, None);
        assert!(
            html.contains("<a href=\"/browse/dir/sub/\">sub/</a>"),
            "{html}"
        );
        assert!(
            html.contains("<a class=\"file\" href=\"/priv/dir/y%20z.txt\">y z.txt</a>"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"/browse/\">all files</a> / <strong>dir</strong> /"),
            "{html}"
        );
        assert!(html.contains("title=\"1536 bytes\">1.5 KiB</td>"), "{html}");
        assert!(html.contains("<time datetime=\"2026-05-05T10:00:00Z\">2026-05-05 10:00</time>"));
    }

    #[test]
    fn the_nonce_is_on_the_only_script_and_style_and_in_the_policy() {
        let html = html_for(&["a.txt"], "", None, None);
        assert!(html.contains(&format!("<script nonce=\"{NONCE}\">")));
        assert!(html.contains(&format!("<style nonce=\"{NONCE}\">")));
        assert!(!html.contains(" onclick") && !html.contains(" style=\""));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no external asset"
        );
        let policy = csp(NONCE);
        assert!(policy.starts_with("default-src 'none'; "));
        assert!(policy.contains(&format!("script-src 'nonce-{NONCE}'")));
        assert!(!policy.contains("unsafe-inline"));
    }

    #[test]
    fn the_filter_is_shown_back_escaped_and_kept_in_page_links() {
        let keys: Vec<String> = (0..1200).map(|i| format!("match-{i:04}.txt")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let html = html_for(&refs, "", Some("MATCH\"<"), None);
        assert!(
            html.contains("value=\"MATCH&quot;&lt;\""),
            "escaped in the box"
        );
        assert!(
            html.contains("0 entries matching “MATCH&quot;&lt;”.</p>"),
            "{html}"
        );
        assert!(html.contains("Nothing here."));
        let html = html_for(&refs, "", Some("Match"), Some("match-0499.txt"));
        assert!(
            html.contains("1200 entries matching “Match”; showing 501–1000."),
            "{html}"
        );
        assert!(
            html.contains("<a rel=\"first\" href=\"/browse/?q=Match\">"),
            "{html}"
        );
        assert!(
            html.contains("<a rel=\"next\" href=\"/browse/?q=Match&amp;after=match-0999.txt\">"),
            "{html}"
        );
        assert_eq!(html.matches("<tr class=\"file\"").count(), 500);
        let first = html_for(&refs, "", None, None);
        assert!(
            !first.contains("rel=\"first\""),
            "the first page links no first page"
        );
    }

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
