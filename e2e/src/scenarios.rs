//! The scenarios. Each talks to the service as a user's client would (one client that
//! does not follow redirects, to look at them, and one that does, to download), seeds and
//! moves objects with the independent S3 client, and records one line per assertion.
//!
//! Every key lives under this run's unique prefix, so the suite can run again and again
//! against a persistent server; only this run's keys are compared.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::report::Report;
use crate::s3::{form_encode, manifest_keys, path_encode};
use testkit::{Seeder, is_rfc3339_utc, metric};

mod browse;

/// Where the service keeps its manifests unless configured otherwise.
const DEFAULT_MANIFEST_KEY: &str = ".parparchik/files.json";
const DUPLICATE_NOTE: &str =
    "file exists in multiple buckets, last configured bucket takes precedence";

/// A scenario stops early (and says why) when the environment fails under it: an
/// upload refused, a connection lost. Assertions themselves never stop it.
type Outcome = Result<(), String>;

/// An answer of the service, read in full.
pub struct Resp {
    pub status: u16,
    headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, `Null` if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Status and body, for failure details.
    fn brief(&self) -> String {
        let mut text = self.text();
        if text.len() > 300 {
            let mut cut = 300;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        format!("{} {text}", self.status)
    }
}

pub struct Ctx {
    /// The service, e.g. `http://127.0.0.1:41234`.
    pub base: String,
    /// Does not follow redirects.
    http: reqwest::Client,
    /// Follows redirects, as a user's client would.
    follow: reqwest::Client,
    pub seed: Seeder,
    /// The S3 endpoint, which is also where the service's redirects must point.
    pub endpoint: String,
    pub public: String,
    pub private: String,
    pub region: String,
    /// `e2e-<unix nanos>`: every key of this run starts with it.
    pub prefix: String,
    /// Whether anonymous clients may read the public bucket at this endpoint.
    anonymous_reads: bool,
    /// Keys this run uploaded, for the cleanup.
    created: Mutex<BTreeSet<String>>,
}

fn client(follow: bool) -> Result<reqwest::Client, String> {
    let policy = if follow {
        reqwest::redirect::Policy::limited(5)
    } else {
        reqwest::redirect::Policy::none()
    };
    reqwest::Client::builder()
        .redirect(policy)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

impl Ctx {
    pub fn new(
        base: &str,
        seed: Seeder,
        endpoint: &str,
        public: &str,
        private: &str,
        region: &str,
        prefix: &str,
    ) -> Result<Ctx, String> {
        Ok(Ctx {
            base: base.to_owned(),
            http: client(false)?,
            follow: client(true)?,
            seed,
            endpoint: endpoint.to_owned(),
            public: public.to_owned(),
            private: private.to_owned(),
            region: region.to_owned(),
            prefix: prefix.to_owned(),
            anonymous_reads: false,
            created: Mutex::new(BTreeSet::new()),
        })
    }

    /// This run's key for `name`.
    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// `/<bucket>/<key>` as a request path.
    fn route(&self, bucket: &str, key: &str) -> String {
        format!("/{bucket}/{}", path_encode(key))
    }

    /// The object's plain (unsigned) URL at the endpoint.
    fn plain_url(&self, bucket: &str, key: &str) -> String {
        format!("{}/{bucket}/{}", self.endpoint, path_encode(key))
    }

    async fn send(
        &self,
        client: &reqwest::Client,
        method: Method,
        url: &str,
    ) -> Result<Resp, String> {
        let r = client
            .request(method.clone(), url)
            .send()
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r
            .bytes()
            .await
            .map_err(|e| format!("{method} {url}: reading the body: {e}"))?;
        Ok(Resp {
            status,
            headers,
            body: body.to_vec(),
        })
    }

    /// A request to the service; redirects are not followed.
    async fn call(&self, method: Method, path: &str) -> Result<Resp, String> {
        self.send(&self.http, method, &format!("{}{path}", self.base))
            .await
    }

    async fn get(&self, path: &str) -> Result<Resp, String> {
        self.call(Method::GET, path).await
    }

    /// A request to the service, following redirects.
    async fn fetch(&self, method: Method, path: &str) -> Result<Resp, String> {
        self.send(&self.follow, method, &format!("{}{path}", self.base))
            .await
    }

    async fn update(&self, key: &str) -> Result<Resp, String> {
        self.get(&format!("/update?filename={}", form_encode(key)))
            .await
    }

    async fn put(&self, bucket: &str, key: &str, body: &[u8]) -> Outcome {
        self.put_typed(bucket, key, body, None).await
    }

    async fn put_typed(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        content_type: Option<&str>,
    ) -> Outcome {
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_owned());
        self.seed.put_typed(bucket, key, body, content_type).await
    }

    /// The keys under `prefix` in `bucket`'s manifest (a persistent bucket may hold
    /// others, and other scenarios of this run have their own).
    async fn manifest_keys(
        &self,
        bucket: &str,
        manifest_key: &str,
        prefix: &str,
    ) -> Result<Vec<String>, String> {
        let m = self.seed.get_json(bucket, manifest_key).await?;
        let mut keys: Vec<String> = manifest_keys(m.as_ref())
            .into_iter()
            .filter(|k| k.starts_with(prefix))
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// As [`Ctx::manifest_keys`], polled until they are `expected` or
    /// `E2E_MANIFEST_WAIT` seconds (default 10) have passed: an edition with a journal
    /// saves each change as a small record at once and compacts it into the manifest
    /// within its compaction interval (the service this suite starts uses 1 s).
    async fn manifest_keys_within(
        &self,
        bucket: &str,
        manifest_key: &str,
        prefix: &str,
        expected: &[String],
    ) -> Result<Vec<String>, String> {
        let wait = std::env::var("E2E_MANIFEST_WAIT")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(10.0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(wait);
        loop {
            let keys = self.manifest_keys(bucket, manifest_key, prefix).await?;
            if keys == expected || std::time::Instant::now() >= deadline {
                return Ok(keys);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// Checks that `Location` is `bucket`/`key`'s plain URL at the endpoint: same
    /// origin, the key encoded so that decoding it once gives it back, no query.
    fn is_plain_url(&self, location: &str, bucket: &str, key: &str) -> Result<(), String> {
        let loc = url::Url::parse(location).map_err(|e| format!("not a URL: {e}"))?;
        let ep = url::Url::parse(&self.endpoint).map_err(|e| format!("endpoint: {e}"))?;
        if loc.origin() != ep.origin() {
            return Err(format!(
                "origin {} is not the endpoint's {}",
                loc.origin().ascii_serialization(),
                ep.origin().ascii_serialization()
            ));
        }
        if loc.query().is_some() {
            return Err("it has a query (a signature?)".into());
        }
        let want = format!("{}/{bucket}/{key}", ep.path().trim_end_matches('/'));
        match percent_decode(loc.path()) {
            Some(path) if path == want => Ok(()),
            Some(path) => Err(format!("its path decodes to {path:?}, want {want:?}")),
            None => Err("its path does not decode to UTF-8".into()),
        }
    }

    /// The route redirects to the object and, following it, downloads `want`. For a
    /// public bucket without anonymous reads, the redirect target is checked instead
    /// (plain URL of the object, which holds `want` when read with credentials).
    async fn check_download(
        &self,
        r: &mut Report,
        label: &str,
        bucket: &str,
        key: &str,
        want: &[u8],
    ) -> Outcome {
        let public = bucket == self.public;
        let route = self.route(bucket, key);
        let resp = self.get(&route).await?;
        if !r.check(
            &format!("{label}: GET {route} is 302"),
            resp.status == 302,
            resp.brief(),
        ) {
            return Ok(());
        }
        let loc = resp.header("location");
        if public {
            let plain = self.is_plain_url(&loc, bucket, key);
            r.check(
                &format!(
                    "{label}: Location is the plain URL {}",
                    self.plain_url(bucket, key)
                ),
                plain.is_ok(),
                format_args!("Location {loc:?}: {}", plain.err().unwrap_or_default()),
            );
        } else {
            r.check(
                &format!("{label}: Location is presigned (X-Amz-Signature, X-Amz-Expires=3600)"),
                loc.contains("X-Amz-Signature=") && loc.contains("X-Amz-Expires=3600"),
                format_args!("Location {loc:?}"),
            );
        }
        if public && !self.anonymous_reads {
            let held = self.seed.get(bucket, key).await?;
            r.check(
                &format!(
                    "{label}: the redirect target holds the uploaded bytes (read with credentials)"
                ),
                held.as_deref() == Some(want),
                format_args!(
                    "{:?}",
                    held.map(|b| String::from_utf8_lossy(&b).into_owned())
                ),
            );
            return Ok(());
        }
        let got = self.fetch(Method::GET, &route).await?;
        if r.check(
            &format!("{label}: following the redirect downloads 200"),
            got.status == 200,
            got.brief(),
        ) {
            r.check(
                &format!("{label}: downloaded bytes match the upload"),
                got.body == want,
                format_args!("got {:?}", got.text()),
            );
        }
        Ok(())
    }
}

/// Decodes `%XX` escapes once; `None` if the result is not UTF-8 or an escape is bad.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Runs every scenario; a scenario cut short is one failure.
pub async fn run_all(ctx: &mut Ctx, r: &mut Report) {
    let res = probes(ctx, r).await;
    finished(r, "probes", res);
    match detect_anonymous_reads(ctx, r).await {
        Ok(yes) => ctx.anonymous_reads = yes,
        Err(e) => finished(r, "anonymous read probe", Err(e)),
    }
    let ctx = &*ctx;
    let res = lua_flow(ctx, r).await;
    finished(r, "lua flow", res);
    let res = manifest_scenario(ctx, r).await;
    finished(r, "manifest", res);
    let res = special_keys(ctx, r).await;
    finished(r, "special keys", res);
    let res = bad_input(ctx, r).await;
    finished(r, "bad input", res);
    let res = relocate(ctx, r).await;
    finished(r, "relocate", res);
    let res = browse::in_a_browser(ctx, r).await;
    finished(r, "browse page in a browser", res);
    let res = events(ctx, r).await;
    finished(r, "events", res);
}

fn finished(r: &mut Report, scenario: &str, res: Outcome) {
    if let Err(e) = res {
        r.check(&format!("{scenario}: scenario ran to its end"), false, e);
    }
}

/// The four probe paths and `/status`.
async fn probes(ctx: &Ctx, r: &mut Report) -> Outcome {
    for path in ["/healthcheck", "/helthcheck"] {
        let resp = ctx.get(path).await?;
        r.eq(
            &format!("probes: GET {path}"),
            (resp.status, resp.json()),
            (200, json!({"status": "ok", "ready": true})),
        );
    }
    for path in ["/readiness", "/redines"] {
        let resp = ctx.get(path).await?;
        let v = resp.json();
        r.check(
            &format!("probes: GET {path} is 200 {{status: ready, ready: true, file_count}}"),
            resp.status == 200
                && v["status"] == "ready"
                && v["ready"] == true
                && v["file_count"].is_u64(),
            resp.brief(),
        );
    }
    let resp = ctx.get("/status").await?;
    let v = resp.json();
    r.check(
        "probes: GET /status is 200 JSON",
        resp.status == 200 && resp.header("content-type").starts_with("application/json"),
        resp.brief(),
    );
    r.eq("probes: /status status", &v["status"], &json!("ok"));
    r.eq("probes: /status region", &v["region"], &json!(ctx.region));
    r.eq("probes: /status ready", &v["ready"], &json!(true));
    r.check(
        "probes: /status file_count is a number",
        v["file_count"].is_u64(),
        &v["file_count"],
    );
    r.eq(
        "probes: /status public_bucket",
        &v["public_bucket"],
        &json!(ctx.public),
    );
    r.eq(
        "probes: /status private_bucket",
        &v["private_bucket"],
        &json!(ctx.private),
    );
    let buckets = v["buckets"].as_array().cloned().unwrap_or_default();
    for (name, public) in [(&ctx.public, true), (&ctx.private, false)] {
        let b = buckets.iter().find(|b| b["name"] == **name);
        r.check(
            &format!("probes: /status buckets lists {name} (public: {public}, manifest_key)"),
            b.is_some_and(|b| b["public"] == public && b["manifest_key"].is_string()),
            &v["buckets"],
        );
    }
    Ok(())
}

/// Uploads an object to the public bucket and reads it anonymously by its plain URL.
async fn detect_anonymous_reads(ctx: &Ctx, r: &mut Report) -> Result<bool, String> {
    let key = ctx.key("anonymous-probe.txt");
    let body = b"may anyone read this?";
    ctx.put(&ctx.public, &key, body).await?;
    let url = ctx.plain_url(&ctx.public, &key);
    let resp = ctx.send(&ctx.http, Method::GET, &url).await?;
    match resp.status {
        200 => {
            r.check(
                "anonymous GET of a public-bucket object returns its bytes",
                resp.body == body,
                resp.brief(),
            );
            Ok(true)
        }
        401 | 403 => {
            r.skip_note(format_args!(
                "anonymous reads are not enabled on {} at this endpoint; checking the redirect target instead of downloading",
                ctx.public
            ));
            Ok(false)
        }
        _ => {
            r.check(
                "anonymous GET of a public-bucket object is 200 (or refused with 403)",
                false,
                resp.brief(),
            );
            Ok(false)
        }
    }
}

/// The Lua edition's end-to-end flow.
async fn lua_flow(ctx: &Ctx, r: &mut Report) -> Outcome {
    let (public, private) = (ctx.public.as_str(), ctx.private.as_str());
    let key = ctx.key("lua-flow/report.txt");
    let body = format!("hello from {key}").into_bytes();
    ctx.put(public, &key, &body).await?;

    let resp = ctx.update(&key).await?;
    let v = resp.json();
    r.check(
        "lua: /update finds the public upload (200, file located)",
        resp.status == 200 && v["message"] == "file located",
        resp.brief(),
    );
    let f = &v["file"];
    r.eq("lua: /update entry key", &f["key"], &json!(key));
    r.eq("lua: /update entry bucket", &f["bucket"], &json!(public));
    r.eq(
        "lua: /update entry bucket_type",
        &f["bucket_type"],
        &json!("public"),
    );
    r.eq(
        "lua: /update entry route",
        &f["route"],
        &json!(format!("/{public}/{key}")),
    );
    r.eq("lua: /update entry size", &f["size"], &json!(body.len()));
    r.check(
        "lua: /update entry last_modified is RFC 3339 UTC",
        f["last_modified"].as_str().is_some_and(is_rfc3339_utc),
        &f["last_modified"],
    );

    ctx.check_download(r, "lua public", public, &key, &body)
        .await?;

    // Behind the service's back.
    ctx.seed.mv(public, private, &key).await?;

    let resp = ctx.get("/list").await?;
    let v = resp.json();
    let files = v["files"].as_array().cloned().unwrap_or_default();
    r.check(
        "lua: /list is 200 with count = number of files",
        resp.status == 200 && v["count"] == files.len(),
        resp.brief(),
    );
    let keys: Vec<&str> = files.iter().filter_map(|e| e["key"].as_str()).collect();
    r.check(
        "lua: /list is sorted by key",
        keys.windows(2).all(|w| w[0] <= w[1]),
        "out of order",
    );
    let mine: Vec<&Value> = files.iter().filter(|e| e["key"] == key).collect();
    r.check(
        "lua: /list shows the moved file once, private, with its new route",
        mine.len() == 1
            && mine[0]["bucket"] == private
            && mine[0]["bucket_type"] == "private"
            && mine[0]["route"] == format!("/{private}/{key}"),
        format_args!("{mine:?}"),
    );

    let old = ctx.route(public, &key);
    let resp = ctx.get(&old).await?;
    r.eq(
        "lua: the old route is 404 {error: file not found, route}",
        (resp.status, resp.json()),
        (
            404,
            json!({"error": "file not found", "route": format!("/{public}/{key}")}),
        ),
    );

    let resp = ctx.update(&key).await?;
    let v = resp.json();
    r.check(
        "lua: /update shows it private",
        resp.status == 200
            && v["file"]["bucket"] == private
            && v["file"]["bucket_type"] == "private",
        resp.brief(),
    );

    ctx.check_download(r, "lua private", private, &key, &body)
        .await?;
    let head = ctx.fetch(Method::HEAD, &ctx.route(private, &key)).await?;
    r.check(
        "lua: HEAD on the new route, following the redirect, is 200 with the size",
        head.status == 200 && head.header("content-length") == body.len().to_string(),
        format_args!(
            "{} content-length {:?}",
            head.status,
            head.header("content-length")
        ),
    );

    let resp = ctx.get("/metrics").await?;
    r.check(
        "lua: /metrics is 200 text/plain; version=0.0.4",
        resp.status == 200 && resp.header("content-type") == "text/plain; version=0.0.4",
        format_args!("{} {:?}", resp.status, resp.header("content-type")),
    );
    let m = resp.text();
    let vol = |b: &str| format!("parparchik_volume_files{{volume=\"{b}\"}}");
    r.check(
        &format!("lua: metric {}", vol(public)),
        metric(&m, &vol(public)).is_some(),
        "missing",
    );
    r.check(
        &format!("lua: metric {} >= 1", vol(private)),
        metric(&m, &vol(private)).is_some_and(|n| n >= 1.0),
        format_args!("{:?}", metric(&m, &vol(private))),
    );
    r.check(
        "lua: metric parparchik_duplicate_files",
        metric(&m, "parparchik_duplicate_files").is_some(),
        "missing",
    );
    for series in [
        "parparchik_uploads_per_week",
        "parparchik_uploads_per_month",
    ] {
        let n = metric(&m, series);
        r.check(
            &format!("lua: metric {series} >= 1"),
            n.is_some_and(|n| n >= 1.0),
            format_args!("{n:?}"),
        );
    }
    for series in [
        "parparchik_volume_files",
        "parparchik_duplicate_files",
        "parparchik_uploads_per_week",
        "parparchik_uploads_per_month",
    ] {
        r.check(
            &format!("lua: metric {series} is a gauge"),
            m.contains(&format!("# TYPE {series} gauge\n")),
            "no TYPE gauge line",
        );
    }
    Ok(())
}

/// The manifest key of each bucket, as `/status` reports it.
async fn manifest_key_of(ctx: &Ctx, bucket: &str) -> Result<String, String> {
    let v = ctx.get("/status").await?.json();
    Ok(v["buckets"]
        .as_array()
        .and_then(|bs| bs.iter().find(|b| b["name"] == bucket))
        .and_then(|b| b["manifest_key"].as_str())
        .filter(|k| !k.is_empty())
        .unwrap_or(DEFAULT_MANIFEST_KEY)
        .to_owned())
}

/// The C++ edition's manifest scenario.
async fn manifest_scenario(ctx: &Ctx, r: &mut Report) -> Outcome {
    let (public, private) = (ctx.public.as_str(), ctx.private.as_str());
    let (pub_m, priv_m) = (
        manifest_key_of(ctx, public).await?,
        manifest_key_of(ctx, private).await?,
    );
    let dir = ctx.key("manifest/");
    let key = format!("{dir}doc.pdf");
    let body = b"%PDF-1.7 not really".to_vec();
    ctx.put(private, &key, &body).await?;

    let resp = ctx.update(&key).await?;
    r.check(
        "manifest: /update finds the private upload",
        resp.status == 200 && resp.json()["file"]["bucket"] == private,
        resp.brief(),
    );
    let m = ctx.seed.get_json(private, &priv_m).await?;
    r.check(
        &format!("manifest: {private}/{priv_m} is version 1 of bucket {private}"),
        m.as_ref()
            .is_some_and(|m| m["version"] == 1 && m["bucket"] == private),
        format_args!("{:?}", m.as_ref().map(|m| (&m["version"], &m["bucket"]))),
    );
    r.eq(
        &format!("manifest: {private}'s manifest lists it"),
        ctx.manifest_keys_within(private, &priv_m, &dir, std::slice::from_ref(&key))
            .await?,
        vec![key.clone()],
    );
    r.eq(
        &format!("manifest: {public}'s manifest does not"),
        ctx.manifest_keys_within(public, &pub_m, &dir, &[]).await?,
        vec![],
    );

    ctx.seed.mv(private, public, &key).await?;
    let resp = ctx.get(&format!("/private/{}", path_encode(&key))).await?;
    r.eq(
        "manifest: GET /private/<key> after the move is 404",
        resp.status,
        404,
    );
    let resp = ctx.update(&key).await?;
    let v = resp.json();
    r.check(
        "manifest: /update shows it public",
        resp.status == 200 && v["file"]["bucket"] == public && v["file"]["bucket_type"] == "public",
        resp.brief(),
    );
    r.eq(
        &format!("manifest: {public}'s manifest now lists it"),
        ctx.manifest_keys_within(public, &pub_m, &dir, std::slice::from_ref(&key))
            .await?,
        vec![key.clone()],
    );
    r.eq(
        &format!("manifest: {private}'s manifest no longer does"),
        ctx.manifest_keys_within(private, &priv_m, &dir, &[])
            .await?,
        vec![],
    );
    let resp = ctx.get(&format!("/public/{}", path_encode(&key))).await?;
    r.eq("manifest: GET /public/<key> is 302", resp.status, 302);
    Ok(())
}

/// Keys with characters that need encoding, half public, half private.
async fn special_keys(ctx: &Ctx, r: &mut Report) -> Outcome {
    let names = [
        "with space.txt",
        "plus+sign.txt",
        "percent%25.txt",
        "tilde~(paren)!.txt",
        "ünïcødé/日本語.txt",
        "deep/a/b/c/d/e.txt",
    ];
    for (i, name) in names.iter().enumerate() {
        let bucket = if i % 2 == 0 {
            &ctx.public
        } else {
            &ctx.private
        };
        let key = ctx.key(&format!("special/{name}"));
        let body = format!("body of {name}").into_bytes();
        ctx.put(bucket, &key, &body).await?;
        ctx.check_download(r, &format!("special {name:?}"), bucket, &key, &body)
            .await?;
        let resp = ctx.update(&key).await?;
        let f = &resp.json()["file"];
        r.check(
            &format!(
                "special {name:?}: /update?filename=<form-encoded> is 200 with the key unchanged"
            ),
            resp.status == 200
                && f["key"] == key
                && f["bucket"] == **bucket
                && f["route"] == format!("/{bucket}/{key}"),
            resp.brief(),
        );
    }
    Ok(())
}

/// Invalid keys, unknown paths and wrong methods.
async fn bad_input(ctx: &Ctx, r: &mut Report) -> Outcome {
    let (public, private) = (ctx.public.as_str(), ctx.private.as_str());
    for path in [
        format!("/{public}/..%2F{private}%2Fx"),
        format!("/{public}/a%2F..%2F..%2Fx"),
        format!("/{public}/a%00b"),
        format!("/{private}/x%01y"),
        format!("/{public}/"),
        "/update?filename=..%2Fx".to_owned(),
        "/update?filename=a%00".to_owned(),
    ] {
        let resp = ctx.get(&path).await?;
        r.check(
            &format!("bad input: GET {path} is 400 {{error}}"),
            resp.status == 400 && resp.json()["error"].is_string(),
            resp.brief(),
        );
    }
    for path in ["/update", "/update?filename="] {
        let resp = ctx.get(path).await?;
        r.eq(
            &format!("bad input: GET {path} is 400 missing filename"),
            (resp.status, resp.json()),
            (400, json!({"error": "missing 'filename' query parameter"})),
        );
    }
    let missing = ctx.key("no such file.txt");
    let resp = ctx.update(&missing).await?;
    r.eq(
        "bad input: /update of a missing file is 404 {error, filename}",
        (resp.status, resp.json()),
        (404, json!({"error": "file not found", "filename": missing})),
    );
    for path in ["/", "/e2e-no-such-path", "/no-such-bucket-e2e/x.txt"] {
        let resp = ctx.get(path).await?;
        r.eq(
            &format!("bad input: GET {path} is 404 {{error: not found}}"),
            (resp.status, resp.json()),
            (404, json!({"error": "not found"})),
        );
    }
    let resp = ctx.call(Method::POST, "/status").await?;
    r.check(
        "bad input: POST /status is 405 with Allow",
        resp.status == 405 && !resp.header("allow").is_empty(),
        resp.brief(),
    );
    let resp = ctx.get("/relocate").await?;
    r.eq(
        "bad input: GET /relocate is 405 Allow: POST",
        (resp.status, resp.header("allow")),
        (405, "POST".to_owned()),
    );
    let resp = ctx
        .call(Method::DELETE, &ctx.route(public, &ctx.key("x.txt")))
        .await?;
    r.check(
        "bad input: DELETE on a route is 405 with Allow",
        resp.status == 405 && !resp.header("allow").is_empty(),
        resp.brief(),
    );
    Ok(())
}

/// `/relocate` of a key held by both buckets: the last configured bucket wins.
async fn relocate(ctx: &Ctx, r: &mut Report) -> Outcome {
    let (public, private) = (ctx.public.as_str(), ctx.private.as_str());
    let key = ctx.key("relocate/both.txt");
    ctx.put(public, &key, b"the public copy").await?;
    ctx.put(private, &key, b"the private copy").await?;

    // Registered first where priority puts it: the public bucket.
    let resp = ctx.update(&key).await?;
    r.check(
        "relocate: /update registers it in the first bucket",
        resp.status == 200 && resp.json()["file"]["bucket"] == public,
        resp.brief(),
    );

    let resp = ctx
        .call(
            Method::POST,
            &format!("/relocate?filename={}", form_encode(&key)),
        )
        .await?;
    let v = resp.json();
    r.check(
        "relocate: POST /relocate is 200 status ok",
        resp.status == 200 && v["status"] == "ok",
        resp.brief(),
    );
    r.eq(
        "relocate: file.bucket",
        &v["file"]["bucket"],
        &json!(private),
    );
    r.eq(
        "relocate: file.bucket_type",
        &v["file"]["bucket_type"],
        &json!("private"),
    );
    r.eq("relocate: file.key", &v["file"]["key"], &json!(key));
    r.eq(
        "relocate: relocated_from",
        &v["relocated_from"],
        &json!(public),
    );
    r.eq(
        "relocate: relocated_to",
        &v["relocated_to"],
        &json!(private),
    );
    r.eq("relocate: duplicate", &v["duplicate"], &json!(true));
    r.eq("relocate: note", &v["note"], &json!(DUPLICATE_NOTE));
    ctx.check_download(r, "relocate", private, &key, b"the private copy")
        .await?;

    let missing = ctx.key("relocate/nowhere.txt");
    let resp = ctx
        .call(
            Method::POST,
            &format!("/relocate?filename={}", form_encode(&missing)),
        )
        .await?;
    r.eq(
        "relocate: a key in no bucket is 404",
        (resp.status, resp.json()),
        (
            404,
            json!({"status": "fail", "error": "file not found in any bucket", "filename": missing}),
        ),
    );
    Ok(())
}

/// Deletes what this run uploaded, from both buckets, then lets the service re-sync
/// its manifests (`/list`). Best effort: problems are reported, not counted.
/// The events' counter `parparchik_events_total{type=…,outcome="applied"}`.
async fn applied_events(ctx: &Ctx, kind: &str) -> Result<f64, String> {
    let text = ctx.get("/metrics").await?.text();
    Ok(metric(
        &text,
        &format!("parparchik_events_total{{type=\"{kind}\",outcome=\"applied\"}}"),
    )
    .unwrap_or(0.0))
}

/// The service's `parparchik_volume_files{volume=bucket}`: files registered there.
async fn volume_files(ctx: &Ctx, bucket: &str) -> Result<f64, String> {
    let text = ctx.get("/metrics").await?.text();
    Ok(metric(
        &text,
        &format!("parparchik_volume_files{{volume=\"{bucket}\"}}"),
    )
    .unwrap_or(0.0))
}

/// Polls `probe` every 50 ms for at most `limit`; whether it turned true.
async fn within<F, Fut>(limit: Duration, mut probe: F) -> Result<bool, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, String>>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        if probe().await? {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Instant routes (issue #15): an upload is registered (and in the manifest) and a
/// delete forgotten through the S3's notifications, without any request naming the
/// file. Skipped, with the reason, when the service has no events endpoint or the S3
/// under test sends it no events.
async fn events(ctx: &Ctx, r: &mut Report) -> Outcome {
    let status = ctx.get("/status").await?.json();
    if status["events"]["enabled"] != json!(true) {
        r.skip_note(
            "events: the service under test has no PARPARCHIK_EVENTS_TOKEN (set E2E_EVENTS_TOKEN, and configure the S3 to send notifications to /events)",
        );
        return Ok(());
    }
    let manifest = manifest_key_of(ctx, &ctx.public).await?;
    let key = ctx.key("events/instant route.txt");
    let before = applied_events(ctx, "created").await?;
    let files_before = volume_files(ctx, &ctx.public).await?;
    ctx.put(&ctx.public, &key, b"instant").await?;
    // Generous: the first event of a fresh MinIO target can take a moment.
    if !within(Duration::from_secs(5), || async {
        Ok(applied_events(ctx, "created").await? > before)
    })
    .await?
    {
        r.skip_note(format!(
            "events: the S3 at {} sent no event for an upload within 5 s; configure its notifications (README, Instant routes) to test them",
            ctx.endpoint
        ));
        return Ok(());
    }
    let prefix = ctx.key("events/");
    let registered = within(Duration::from_secs(1), || async {
        Ok(volume_files(ctx, &ctx.public).await? > files_before)
    })
    .await?;
    r.check(
        "events: an upload is registered within 1 s, without any request naming it",
        registered,
        "parparchik_volume_files did not grow",
    );
    r.eq(
        "events: ... and saved in the manifest (compacted within the journal's interval)",
        ctx.manifest_keys_within(&ctx.public, &manifest, &prefix, std::slice::from_ref(&key))
            .await?,
        vec![key.clone()],
    );
    let route = ctx.route(&ctx.public, &key);
    let resp = ctx.get(&route).await?;
    r.eq(
        "events: the uploaded file's route redirects",
        resp.status,
        302,
    );

    let removed_before = applied_events(ctx, "removed").await?;
    let files_before = volume_files(ctx, &ctx.public).await?;
    ctx.seed.delete(&ctx.public, &key).await?;
    let forgotten = within(Duration::from_secs(1), || async {
        Ok(applied_events(ctx, "removed").await? > removed_before
            && volume_files(ctx, &ctx.public).await? < files_before)
    })
    .await?;
    r.check(
        "events: a delete is forgotten within 1 s, without any request naming it",
        forgotten,
        "still registered",
    );
    r.eq(
        "events: ... and leaves the manifest",
        ctx.manifest_keys_within(&ctx.public, &manifest, &prefix, &[])
            .await?,
        Vec::<String>::new(),
    );
    let resp = ctx.get(&route).await?;
    r.eq("events: the deleted file's route is 404", resp.status, 404);
    let status = ctx.get("/status").await?.json();
    r.check(
        "events: /status tells the age of the last event",
        status["last_event_age_s"]
            .as_f64()
            .is_some_and(|a| a < 60.0),
        &status["events"],
    );
    Ok(())
}

pub async fn cleanup(ctx: &Ctx) {
    let keys: Vec<String> = ctx
        .created
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    let mut problems = Vec::new();
    for key in &keys {
        for bucket in [&ctx.public, &ctx.private] {
            match ctx.seed.get(bucket, key).await {
                Ok(None) => {}
                Ok(Some(_)) => {
                    if let Err(e) = ctx.seed.delete(bucket, key).await {
                        problems.push(e);
                    }
                }
                Err(e) => problems.push(e),
            }
        }
    }
    match ctx.get("/list").await {
        Ok(resp) if resp.status == 200 => {}
        Ok(resp) => problems.push(format!("/list after the cleanup: {}", resp.brief())),
        Err(e) => problems.push(e),
    }
    if problems.is_empty() {
        println!(
            "cleanup: removed the {} keys under {}/",
            keys.len(),
            ctx.prefix
        );
    } else {
        println!(
            "cleanup: incomplete under {}/: {}",
            ctx.prefix,
            problems.join("; ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(
            percent_decode("/a%20b/%E6%97%A5%2525").as_deref(),
            Some("/a b/日%25")
        );
        assert_eq!(percent_decode("%zz"), None);
        let m = "# TYPE x gauge\nx{v=\"a\"} 3\ny 1.5\n";
        assert_eq!(metric(m, "x{v=\"a\"}"), Some(3.0));
        assert_eq!(metric(m, "y"), Some(1.5));
        assert_eq!(metric(m, "x"), None);
        assert!(is_rfc3339_utc("2026-05-05T10:00:00Z"));
        assert!(!is_rfc3339_utc("Tue, 05 May 2026 10:00:00 GMT"));
    }
}
