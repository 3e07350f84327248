//! Test harness: an in-process S3 server (`local-s3`, which verifies every signature),
//! an independent S3 client to seed and inspect buckets (`rusty-s3`, so a bug in the
//! project's signer cannot hide itself), and the service itself on a free port.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parparchik::app::App;
use parparchik::config::Config;
use rusty_s3::Bucket;

pub(crate) const ACCESS_KEY: &str = "test-access-key";
pub(crate) const SECRET_KEY: &str = "test-secret-key-0123456789";
pub(crate) const PUBLIC: &str = "public-bucket";
pub(crate) const PRIVATE: &str = "private-bucket";
pub(crate) const MANIFEST: &str = ".parparchik/files.json";

/// A service's registry as key → bucket name.
pub(crate) fn registry_map(svc: &Service) -> BTreeMap<String, String> {
    let buckets = &svc.app.config.buckets;
    svc.app
        .registry
        .all()
        .iter()
        .map(|e| (e.key.clone(), buckets[e.bucket].name.clone()))
        .collect()
}

/// The keys a service registers in bucket `index`, sorted.
pub(crate) fn registered_keys(svc: &Service, index: usize) -> Vec<String> {
    let mut keys: Vec<String> = svc
        .app
        .registry
        .entries_in(parparchik::config::BucketId::new(index))
        .iter()
        .map(|e| e.key.clone())
        .collect();
    keys.sort();
    keys
}

/// The in-process S3 server and its data directory.
pub(crate) struct S3 {
    pub server: Option<local_s3::LocalS3>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub buckets: Vec<String>,
    pub public: Vec<String>,
}

impl S3 {
    pub(crate) async fn start(buckets: &[&str], public: &[&str]) -> S3 {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s3 = S3 {
            server: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
            buckets: buckets.iter().map(ToString::to_string).collect(),
            public: public.iter().map(ToString::to_string).collect(),
        };
        s3.restart().await;
        s3
    }

    /// The demo layout: a public and a private bucket.
    pub(crate) async fn two_buckets() -> S3 {
        S3::start(&[PUBLIC, PRIVATE], &[PUBLIC]).await
    }

    /// Starts (again) on the same address and data directory.
    pub(crate) async fn restart(&mut self) {
        let mut cfg = local_s3::Config::new(self.dir.path(), ACCESS_KEY, SECRET_KEY);
        cfg.addr = self.addr;
        cfg.buckets = self.buckets.clone();
        cfg.public_buckets = self.public.clone();
        let server = local_s3::LocalS3::start(cfg)
            .await
            .expect("local S3 starts");
        self.addr = server.addr();
        self.server = Some(server);
    }

    /// Stops the server: S3 "goes down".
    pub(crate) async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn stats(&self) -> &local_s3::Stats {
        self.server.as_ref().expect("S3 running").stats()
    }

    pub(crate) fn client(&self) -> Seeder {
        Seeder::new(&self.endpoint())
    }
}

/// An S3 client independent of the project's signer (the shared one, with the harness's
/// credentials), which panics on any failure as a test should.
#[derive(Clone)]
pub(crate) struct Seeder(testkit::Seeder);

impl Seeder {
    pub(crate) fn new(endpoint: &str) -> Seeder {
        let creds = rusty_s3::Credentials::new(ACCESS_KEY, SECRET_KEY);
        Seeder(
            testkit::Seeder::new(endpoint, "us-east-1", creds, reqwest::Client::new())
                .expect("endpoint URL"),
        )
    }

    /// The bucket, path-style at this endpoint, for rusty-s3 actions.
    pub(crate) fn bucket(&self, name: &str) -> Bucket {
        self.0.bucket(name).expect("bucket")
    }

    pub(crate) async fn put(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        let body: Vec<u8> = body.into();
        self.0
            .put(bucket, key, &body)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    pub(crate) async fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.0
            .get(bucket, key)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub(crate) async fn delete(&self, bucket: &str, key: &str) {
        self.0
            .delete(bucket, key)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// This client's credentials, for rusty-s3 actions.
    pub(crate) fn credentials(&self) -> &rusty_s3::Credentials {
        self.0.credentials()
    }

    /// The HTTP client the signed URLs are sent with.
    pub(crate) fn http(&self) -> &reqwest::Client {
        self.0.http()
    }

    /// Puts `keys` (body = key) into `bucket` with at most `workers` requests in flight.
    pub(crate) async fn put_many(&self, bucket: &str, keys: Vec<String>, workers: usize) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let keys = Arc::new(keys);
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let (seed, keys, next, bucket) = (
                self.clone(),
                Arc::clone(&keys),
                Arc::clone(&next),
                bucket.to_owned(),
            );
            tasks.spawn(async move {
                while let Some(key) = keys.get(next.fetch_add(1, Ordering::Relaxed)) {
                    seed.put(&bucket, key, key.as_bytes().to_vec()).await;
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("seeding task");
        }
    }

    /// Moves an object behind the service's back.
    pub(crate) async fn mv(&self, from: &str, to: &str, key: &str) {
        let body = self.get(from, key).await.expect("object to move exists");
        self.put(to, key, body).await;
        self.delete(from, key).await;
    }

    /// The manifest object of `bucket` as it is, parsed, or `None` if absent.
    pub(crate) async fn manifest_object(&self, bucket: &str) -> Option<serde_json::Value> {
        self.0
            .get_json(bucket, MANIFEST)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// What the service saved for `bucket`: its manifest with the journal records after
    /// it applied (each record's entries as `{key, bucket, size, last_modified}`), or
    /// `None` if there is neither. Without a journal, the manifest object as it is.
    pub(crate) async fn manifest(&self, bucket: &str) -> Option<serde_json::Value> {
        use parparchik::registry::journal::{self, Change};
        let mut m = self.manifest_object(bucket).await;
        let after = m
            .as_ref()
            .and_then(|m| m["journal_seq"].as_u64())
            .unwrap_or(0);
        let mut records = Vec::new();
        for key in self
            .list_keys(bucket, &format!("{MANIFEST}{}", journal::SUFFIX))
            .await
        {
            if journal::seq_of(MANIFEST, &key).is_some_and(|n| n > after)
                && let Some(body) = self.get(bucket, &key).await
            {
                records.push(journal::parse(&body).expect("journal record parses"));
            }
        }
        if records.is_empty() {
            return m;
        }
        records.sort_by_key(|r| r.seq);
        let m = m.get_or_insert_with(
            || serde_json::json!({"version": 1, "bucket": bucket, "files": []}),
        );
        let files = m["files"].as_array_mut().expect("files is a list");
        for record in &records {
            for change in &record.changes {
                files.retain(|f| f["key"] != change.key());
                if let Change::Present {
                    key,
                    size,
                    last_modified,
                } = change
                {
                    files.push(serde_json::json!({
                        "key": key, "bucket": bucket, "size": size,
                        "last_modified": last_modified,
                    }));
                }
            }
        }
        Some(m.clone())
    }

    /// Every key in `bucket` that starts with `prefix`.
    pub(crate) async fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.0
            .list_keys(bucket, prefix)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Keys listed in `bucket`'s manifest, sorted.
    pub(crate) async fn manifest_keys(&self, bucket: &str) -> Vec<String> {
        let Some(m) = self.manifest(bucket).await else {
            return Vec::new();
        };
        let mut keys: Vec<String> = m["files"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["key"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        keys.sort();
        keys
    }
}

/// The service, in process, on a free port.
pub(crate) struct Service {
    pub app: Arc<App>,
    pub base: String,
    /// Does not follow redirects.
    pub http: reqwest::Client,
    /// Follows redirects, as a user's client would.
    pub follow: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub(crate) fn two_bucket_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("PARPARCHIK_PUBLIC_BUCKET", PUBLIC),
        ("PARPARCHIK_PRIVATE_BUCKET", PRIVATE),
        ("S3_ENDPOINT", endpoint),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("PARPARCHIK_S3_TIMEOUT", "2"),
        ("PARPARCHIK_S3_CONNECT_TIMEOUT", "0.5"),
        ("PARPARCHIK_SYNC_INTERVAL", "0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl Service {
    /// Starts with `env` (later pairs override earlier ones); does not wait for readiness.
    pub(crate) async fn start(env: Vec<(String, String)>) -> Service {
        let mut map: HashMap<String, String> = env.into_iter().collect();
        // Tests stop services all the time; only the tests of the delay want one.
        map.entry("PARPARCHIK_SHUTDOWN_DELAY".into())
            .or_insert_with(|| "0".into());
        // Most suites check the manifest object itself right after a change: without a
        // journal it is written whole every time. The journal has its own suite
        // (tests/it/journal.rs) and replica cases, which ask for it.
        map.entry("PARPARCHIK_MANIFEST_COMPACT_INTERVAL".into())
            .or_insert_with(|| "0".into());
        let config =
            Config::from_lookup(|k| map.get(k).cloned()).expect("valid test configuration");
        let app = App::new(config).expect("app");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(parparchik::run(Arc::clone(&app), listener, async {
            let _ = stopped.await;
        }));
        Service {
            app,
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            follow: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The two-bucket service against `s3`, ready.
    pub(crate) async fn ready(s3: &S3) -> Service {
        Service::ready_with(s3, &[]).await
    }

    pub(crate) async fn ready_with(s3: &S3, extra: &[(&str, &str)]) -> Service {
        let mut env = two_bucket_env(&s3.endpoint());
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let s = Service::start(env).await;
        s.wait_ready(Duration::from_secs(20)).await;
        s
    }

    pub(crate) async fn wait_ready(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        self.wait_only_ready(limit).await;
        // Readiness does not wait for start-up's manifest rewrites; tests that compare
        // manifests before and after a fault do.
        while !self.app.manifests.settled() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Ready, without waiting for start-up's manifest writes.
    pub(crate) async fn wait_only_ready(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.app.is_ready() {
            assert!(
                Instant::now() < deadline,
                "service not ready within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every manifest write asked for so far done and none failed, within `limit`
    /// (`what` says what that means to the test).
    pub(crate) async fn settle(&self, limit: Duration, what: &str) {
        let deadline = Instant::now() + limit;
        while !self.app.manifests.settled() {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub(crate) async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        let body = r.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    pub(crate) async fn post_json(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(self.url(path))
            .send()
            .await
            .expect("request sent");
        let status = r.status().as_u16();
        let body = r.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    pub(crate) async fn metrics(&self) -> String {
        self.get("/metrics")
            .await
            .text()
            .await
            .expect("metrics text")
    }

    pub(crate) async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// Sends `request` as raw bytes (nothing normalised, as a hostile client would) and
/// returns the status code and body of the answer, or `None` if the connection closed
/// without one.
pub(crate) async fn raw(base: &str, request: &[u8]) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(request).await.ok()?;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// Asserts the entry timestamp form of the contract: `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn assert_rfc3339_utc(value: &str) {
    assert!(
        testkit::is_rfc3339_utc(value),
        "not YYYY-MM-DDTHH:MM:SSZ: {value:?}"
    );
}
