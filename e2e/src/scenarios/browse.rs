//! `/browse/` in a real browser (headless Chromium): the listing as a person sees it,
//! its links followed through the redirect to the file's bytes (public and private
//! bucket), hostile keys shown as text without creating an element or running a script,
//! and a 1280×800 screenshot kept for a person to look at.

use std::path::PathBuf;

use reqwest::Method;

use super::{Ctx, Outcome};
use crate::chromium::{self, Chromium};
use crate::report::Report;
use crate::s3::path_encode;

/// Keys whose names are markup; if any of it became markup the page would say so:
/// `data-pwned` on the document, or an element the page never writes.
const HOSTILE: [&str; 4] = [
    "<img src=x onerror=alert(1)>.txt",
    "\"><script>alert(1)</script>",
    "<img src=x onerror=document.documentElement.setAttribute('data-pwned','img')>.txt",
    "'><svg onload=document.documentElement.setAttribute('data-pwned','svg')>",
];

/// Where the screenshot goes: `E2E_SCREENSHOT_DIR`, else `<target dir>/e2e`.
fn screenshot_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("E2E_SCREENSHOT_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("e2e")
}

/// The document element's start tag (`<html …>`), where a script that ran would have
/// left `data-pwned` (the names contain that word as text, so the body cannot tell).
fn html_tag(dom: &str) -> &str {
    let start = dom.find("<html").unwrap_or(0);
    let end = dom[start..].find('>').map_or(dom.len(), |e| start + e + 1);
    &dom[start..end]
}

/// The `href` of the link whose text (as serialised) is `text`.
fn href_of<'a>(dom: &'a str, text: &str) -> Option<&'a str> {
    let end = dom.find(&format!("\">{text}</a>"))?;
    let start = dom[..end].rfind("href=\"")? + 6;
    Some(&dom[start..end])
}

pub async fn in_a_browser(ctx: &Ctx, r: &mut Report) -> Outcome {
    let Some(bin) = chromium::find() else {
        if chromium::required() {
            r.check(
                "browser: headless Chromium is installed (required in CI)",
                false,
                "no chromium on PATH and E2E_CHROMIUM unset; install the Debian package `chromium`",
            );
        } else {
            r.skip_note(
                "no chromium on PATH (E2E_CHROMIUM unset): the browser scenario did not run; \
                 it is required when CI or E2E_REQUIRE_BROWSER is set",
            );
        }
        return Ok(());
    };
    let profile = std::env::temp_dir().join(format!(
        "parparchik-e2e-chromium-{}-{}",
        std::process::id(),
        ctx.prefix
    ));
    let browser = Chromium::new(bin, profile.clone());
    let result = scenario(ctx, r, &browser).await;
    let _ = std::fs::remove_dir_all(&profile);
    result
}

async fn scenario(ctx: &Ctx, r: &mut Report, browser: &Chromium) -> Outcome {
    let folder = ctx.key("browse/");
    let public_body = format!("hello from the public bucket, run {}", ctx.prefix);
    let private_body = format!("private bytes, run {}", ctx.prefix);
    let text = Some("text/plain; charset=utf-8");
    ctx.put_typed(
        &ctx.public,
        &format!("{folder}hello.txt"),
        public_body.as_bytes(),
        text,
    )
    .await?;
    ctx.put_typed(
        &ctx.private,
        &format!("{folder}private note.txt"),
        private_body.as_bytes(),
        text,
    )
    .await?;
    for key in HOSTILE {
        ctx.put_typed(&ctx.public, &format!("{folder}{key}"), b"hostile", text)
            .await?;
    }
    // The page shows the registry: a re-sync puts the new keys in it.
    let list = ctx.get("/list").await?;
    r.check(
        "browser: /list re-syncs before the page is read",
        list.status == 200,
        list.status,
    );

    let page_url = format!("{}/browse/{}", ctx.base, path_encode(&folder));
    let dom = browser.dump_dom(&page_url).await?;
    r.check(
        "browser: the page's own script ran (nonce accepted by its CSP)",
        html_tag(&dom).contains("data-js=\"on\""),
        &dom,
    );
    r.check(
        "browser: the listing shows the public and the private file",
        dom.contains(">hello.txt</a>") && dom.contains(">private note.txt</a>"),
        &dom,
    );
    r.check(
        "browser: hostile keys are shown as text",
        dom.contains("&lt;img src=x onerror=alert(1)&gt;.txt")
            && dom.contains("\"&gt;&lt;script&gt;alert(1)&lt;/")
            && dom.contains("&lt;svg onload="),
        &dom,
    );
    r.check(
        "browser: hostile keys created no element and ran no script",
        !html_tag(&dom).contains("data-pwned")
            && !dom.contains("<img")
            && !dom.contains("<svg")
            && dom.matches("<script").count() == 1,
        &dom,
    );

    // A folder named by a hostile key, followed by its (encoded) link.
    match href_of(&dom, "\"&gt;&lt;script&gt;alert(1)&lt;/") {
        Some(href) => {
            let inner = browser.dump_dom(&format!("{}{href}", ctx.base)).await?;
            r.check(
                "browser: the hostile folder's link opens it, its file listed as text",
                inner.contains(">script&gt;</a>") && !html_tag(&inner).contains("data-pwned"),
                &inner,
            );
        }
        None => {
            r.check("browser: the hostile folder has a link", false, &dom);
        }
    }

    // The filter without JavaScript: `?q=` is answered by the server.
    let filtered = browser.dump_dom(&format!("{page_url}?q=HELLO")).await?;
    r.check(
        "browser: ?q=HELLO lists hello.txt and not the private note",
        filtered.contains(">hello.txt</a>") && !filtered.contains("private note.txt"),
        &filtered,
    );

    for (label, bucket, name, body) in [
        ("public", &ctx.public, "hello.txt", &public_body),
        ("private", &ctx.private, "private note.txt", &private_body),
    ] {
        let Some(href) = href_of(&dom, name) else {
            r.check(&format!("browser: {label} file has a link"), false, &dom);
            continue;
        };
        let want = format!("/{bucket}/{}", path_encode(&format!("{folder}{name}")));
        r.eq(
            &format!("browser: {label} link is the stable route"),
            href,
            want.as_str(),
        );
        if label == "public" && !ctx.anonymous_reads {
            r.skip_note(
                "anonymous reads are off at this endpoint: the public link is not opened in the browser",
            );
        } else {
            let opened = browser.dump_dom(&format!("{}{href}", ctx.base)).await?;
            r.check(
                &format!("browser: opening the {label} link shows the file (302 followed)"),
                opened.contains(body.as_str()),
                &opened,
            );
        }
        if label == "public" && !ctx.anonymous_reads {
            continue;
        }
        let got = ctx.fetch(Method::GET, href).await?;
        r.check(
            &format!("browser: the {label} link's bytes equal the upload"),
            got.status == 200 && got.body == body.as_bytes(),
            got.brief(),
        );
    }

    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let shot = dir.join("browse-1280x800.png");
    let _ = std::fs::remove_file(&shot);
    browser.screenshot(&page_url, &shot, (1280, 800)).await?;
    let size = std::fs::read(&shot)
        .ok()
        .and_then(|b| chromium::png_size(&b));
    if r.eq(
        "browser: a 1280×800 screenshot of the page is saved",
        size,
        Some((1280, 800)),
    ) {
        println!("browser: screenshot at {}", shot.display());
    }
    Ok(())
}
