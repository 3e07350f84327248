//! The credential chain against doubles of STS, the container endpoint and IMDSv2, with
//! the local S3 verifying every signature and session token: each source, the chain's
//! order, refresh under traffic, token-file rotation, fallback while a refresh fails,
//! and presigned URLs that never outlive their credentials.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::common::{
    ACCESS_KEY, PRIVATE, PUBLIC, SECRET_KEY, Seeder, Service, two_bucket_env,
};
use crate::support::credential_doubles::{self, Issuer, ROLE_ARN};
use testkit::metric;

/// The local S3 with a table of extra keys the doubles fill.
struct S3 {
    server: local_s3::LocalS3,
    keys: local_s3::Keys,
    _dir: tempfile::TempDir,
}

impl S3 {
    async fn start() -> S3 {
        let dir = tempfile::tempdir().expect("temp dir");
        let keys = local_s3::Keys::default();
        let mut cfg = local_s3::Config::new(dir.path(), ACCESS_KEY, SECRET_KEY);
        cfg.buckets = vec![PUBLIC.into(), PRIVATE.into()];
        cfg.public_buckets = vec![PUBLIC.into()];
        cfg.keys = keys.clone();
        let server = local_s3::LocalS3::start(cfg)
            .await
            .expect("local S3 starts");
        let s3 = S3 {
            server,
            keys,
            _dir: dir,
        };
        s3.seeder()
            .put(PRIVATE, "report.pdf", b"secret report".to_vec())
            .await;
        s3
    }

    fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    fn seeder(&self) -> Seeder {
        Seeder::new(&self.endpoint())
    }
}

/// The service's variables without static keys (and never IMDS unless asked for).
fn env(s3: &S3, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut e: Vec<(String, String)> = two_bucket_env(&s3.endpoint())
        .into_iter()
        .filter(|(k, _)| k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY")
        .collect();
    e.push(("AWS_EC2_METADATA_DISABLED".into(), "true".into()));
    e.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    e
}

async fn ready(env: Vec<(String, String)>) -> Service {
    let s = Service::start(env).await;
    s.wait_ready(Duration::from_secs(20)).await;
    s
}

/// GET a private route, follow the presigned URL with a plain client; the body and the
/// redirect's URL.
async fn download(svc: &Service, plain: &reqwest::Client) -> Result<(Vec<u8>, String), String> {
    let r = svc.get(&format!("/{PRIVATE}/report.pdf")).await;
    if r.status() != 302 {
        return Err(format!("redirect answered {}", r.status()));
    }
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let got = plain
        .get(&location)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if got.status() != 200 {
        return Err(format!(
            "presigned URL answered {}: {}",
            got.status(),
            got.text().await.unwrap_or_default()
        ));
    }
    Ok((
        got.bytes().await.map_err(|e| e.to_string())?.to_vec(),
        location,
    ))
}

fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    url.split_once('?')?
        .1
        .split('&')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
}

fn token_file(dir: &tempfile::TempDir, token: &str) -> String {
    let p = dir.path().join("token");
    std::fs::write(&p, token).expect("write token");
    p.to_str().expect("utf-8 path").to_owned()
}

#[tokio::test]
async fn web_identity_credentials_sign_calls_and_redirects() {
    let s3 = S3::start().await;
    let sts = credential_doubles::sts(Issuer::new(
        s3.keys.clone(),
        Duration::from_secs(3600),
        "WI",
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(&dir, "eyJhbGciOi.first-token\n");
    let svc = ready(env(
        &s3,
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", &token),
            ("AWS_ROLE_ARN", ROLE_ARN),
            ("AWS_ENDPOINT_URL_STS", &sts.double.url()),
        ],
    ))
    .await;
    let (body, url) = download(&svc, &reqwest::Client::new())
        .await
        .expect("download");
    assert_eq!(body, b"secret report");
    assert!(
        query_param(&url, "X-Amz-Credential")
            .unwrap()
            .starts_with("ASIAWI"),
        "{url}"
    );
    assert!(query_param(&url, "X-Amz-Security-Token").is_some());
    assert_eq!(
        sts.tokens.lock().unwrap().as_slice(),
        ["eyJhbGciOi.first-token"]
    );

    let (status, st) = svc.get_json("/status").await;
    assert_eq!(status, 200);
    let c = &st["credentials"];
    assert!(
        c["source"]
            .as_str()
            .unwrap()
            .starts_with("web-identity arn:aws:iam::123456789012:role/parparchik"),
        "{c}"
    );
    assert!(
        c["expires_at"].as_str().is_some_and(|e| e.ends_with('Z')),
        "{c}"
    );
    assert!(c["error"].is_null());
    let text = st.to_string();
    assert!(
        !text.contains("tmp-secret") && !text.contains("session-token-"),
        "{text}"
    );
    assert_eq!(
        metric(
            &svc.metrics().await,
            "parparchik_credential_refreshes_total{outcome=\"ok\"}"
        ),
        Some(1.0)
    );
    svc.stop().await;
}

#[tokio::test]
async fn container_credentials_send_the_token_from_its_file() {
    let s3 = S3::start().await;
    let issuer = Issuer::new(s3.keys.clone(), Duration::from_secs(3600), "CT");
    let expected = Arc::new(Mutex::new("Bearer abc".to_owned()));
    let double = credential_doubles::container(Arc::clone(&issuer), Arc::clone(&expected)).await;
    let dir = tempfile::tempdir().unwrap();
    let auth = token_file(&dir, "Bearer abc\n");
    let svc = ready(env(
        &s3,
        &[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                &format!("{}/creds", double.url()),
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &auth),
            // The file wins over the variable.
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer wrong"),
        ],
    ))
    .await;
    let (_, url) = download(&svc, &reqwest::Client::new())
        .await
        .expect("download");
    assert!(
        query_param(&url, "X-Amz-Credential")
            .unwrap()
            .starts_with("ASIACT")
    );
    let (_, st) = svc.get_json("/status").await;
    assert!(
        st["credentials"]["source"]
            .as_str()
            .unwrap()
            .starts_with("container http://127.0.0.1:")
    );
    svc.stop().await;

    // A wrong token: refused by the endpoint, never ready, and /status says why.
    let wrong = token_file(&dir, "Bearer nope");
    let svc = Service::start(env(
        &s3,
        &[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                &format!("{}/creds", double.url()),
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &wrong),
        ],
    ))
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, st) = svc.get_json("/status").await;
        if let Some(e) = st["credentials"]["error"].as_str() {
            assert!(e.contains("answered 401"), "{e}");
            break;
        }
        assert!(Instant::now() < deadline, "no credentials error in {st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(svc.get("/readiness").await.status(), 503);
    svc.stop().await;
}

#[tokio::test]
async fn imds_v2_credentials() {
    let s3 = S3::start().await;
    let issuer = Issuer::new(s3.keys.clone(), Duration::from_secs(3600), "IM");
    let imds = credential_doubles::imds(Arc::clone(&issuer)).await;
    let mut e = env(&s3, &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url())]);
    e.retain(|(k, _)| k != "AWS_EC2_METADATA_DISABLED");
    let svc = ready(e).await;
    let (_, url) = download(&svc, &reqwest::Client::new())
        .await
        .expect("download");
    assert!(
        query_param(&url, "X-Amz-Credential")
            .unwrap()
            .starts_with("ASIAIM")
    );
    // Token PUT, role listing, role credentials: three calls, nothing else.
    assert_eq!(imds.hits.load(Ordering::SeqCst), 3);
    svc.stop().await;
}

#[tokio::test]
async fn the_first_configured_source_wins() {
    let s3 = S3::start().await;
    let issuer = Issuer::new(s3.keys.clone(), Duration::from_secs(3600), "XX");
    let sts = credential_doubles::sts(Arc::clone(&issuer)).await;
    let expected = Arc::new(Mutex::new("t".to_owned()));
    let container = credential_doubles::container(Arc::clone(&issuer), expected).await;
    let imds = credential_doubles::imds(Arc::clone(&issuer)).await;
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(&dir, "tok");
    let creds_file = dir.path().join("credentials");
    std::fs::write(
        &creds_file,
        format!("[default]\nregion = x\n\n[ci]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"),
    )
    .unwrap();
    let creds_file = creds_file.to_str().unwrap().to_owned();
    let container_uri = format!("{}/creds", container.url());
    let (sts_url, imds_url) = (sts.double.url(), imds.url());
    let all: Vec<(&str, &str)> = vec![
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_SHARED_CREDENTIALS_FILE", &creds_file),
        ("AWS_PROFILE", "ci"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", &token),
        ("AWS_ROLE_ARN", ROLE_ARN),
        ("AWS_ENDPOINT_URL_STS", &sts_url),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &container_uri),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "t"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds_url),
    ];
    // Drop sources from the front, one at a time: the next one must take over.
    let expected = [
        ("environment", 0..2),
        ("profile ci", 2..4),
        ("web-identity", 4..7),
        ("container", 7..9),
        ("imds", 9..10),
    ];
    for (i, (source, _)) in expected.iter().enumerate() {
        let from = expected[i].1.start;
        let mut e = env(&s3, &all[from..]);
        e.retain(|(k, _)| k != "AWS_EC2_METADATA_DISABLED");
        let svc = ready(e).await;
        let (_, st) = svc.get_json("/status").await;
        let got = st["credentials"]["source"].as_str().unwrap().to_owned();
        assert!(got.starts_with(source), "with {:?}: {got}", &all[from..]);
        download(&svc, &reqwest::Client::new())
            .await
            .expect("download");
        svc.stop().await;
    }
    // Env and the profile never called out; each remote source was called only when it won.
    assert_eq!(sts.double.hits.load(Ordering::SeqCst), 1);
    assert_eq!(container.hits.load(Ordering::SeqCst), 1);
    assert_eq!(imds.hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn short_lived_credentials_are_refreshed_under_traffic_without_a_failed_request() {
    let s3 = S3::start().await;
    let sts =
        credential_doubles::sts(Issuer::new(s3.keys.clone(), Duration::from_secs(6), "SL")).await;
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(&dir, "token-1");
    let svc = Arc::new(
        ready(env(
            &s3,
            &[
                ("AWS_WEB_IDENTITY_TOKEN_FILE", &token),
                ("AWS_ROLE_ARN", ROLE_ARN),
                ("AWS_ENDPOINT_URL_STS", &sts.double.url()),
                ("AWS_ROLE_SESSION_NAME", "traffic"),
            ],
        ))
        .await,
    );
    // Traffic for 10 s (almost two lifetimes, four refreshes): every request must work,
    // on the service's S3 calls (each download is checked with a HEAD) and on the
    // redirects, followed at once as a browser would.
    let stop_at = Instant::now() + Duration::from_secs(10);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let svc = Arc::clone(&svc);
        workers.spawn(async move {
            let plain = reqwest::Client::new();
            let mut ok = 0u32;
            let mut keys = std::collections::BTreeSet::new();
            while Instant::now() < stop_at {
                match download(&svc, &plain).await {
                    Ok((_, url)) => {
                        ok += 1;
                        keys.insert(
                            query_param(&url, "X-Amz-Credential")
                                .unwrap_or("")
                                .to_owned(),
                        );
                    }
                    Err(e) => panic!("request failed during refresh: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (ok, keys)
        });
    }
    // Rotate the projected token in the middle, as the kubelet does.
    tokio::time::sleep(Duration::from_secs(5)).await;
    std::fs::write(dir.path().join("token"), "token-2").unwrap();
    let mut total = 0;
    let mut keys = std::collections::BTreeSet::new();
    while let Some(r) = workers.join_next().await {
        let (ok, k) = r.expect("worker");
        total += ok;
        keys.extend(k);
    }
    assert!(total > 50, "only {total} requests");
    let issued = sts.issuer.count();
    assert!(
        issued >= 4,
        "only {issued} credentials issued in 10 s of 6-s credentials"
    );
    assert!(keys.len() >= 3, "redirects used only {} keys", keys.len());
    let seen = sts.tokens.lock().unwrap().clone();
    assert_eq!(seen.first().map(String::as_str), Some("token-1"));
    assert_eq!(
        seen.last().map(String::as_str),
        Some("token-2"),
        "token file not re-read: {seen:?}"
    );
    let m = svc.metrics().await;
    assert_eq!(
        metric(
            &m,
            "parparchik_credential_refreshes_total{outcome=\"failed\"}"
        ),
        Some(0.0)
    );
    // Every S3 call of the service was accepted: none refused, none without credentials.
    for outcome in ["unavailable", "denied", "rejected"] {
        let series = format!(
            "parparchik_s3_requests_total{{operation=\"HeadObject\",outcome=\"{outcome}\"}}"
        );
        assert_eq!(metric(&m, &series), Some(0.0), "{series}");
    }
    let ok = metric(
        &m,
        "parparchik_s3_requests_total{operation=\"HeadObject\",outcome=\"ok\"}",
    );
    // Concurrent checks of one object share a HEAD, so fewer HEADs than downloads.
    assert!(
        ok.unwrap_or(0.0) >= 50.0,
        "{ok:?} HEADs for {total} downloads"
    );
}

#[tokio::test]
async fn a_failing_refresh_keeps_the_old_credentials_until_they_expire() {
    let s3 = S3::start().await;
    let sts =
        credential_doubles::sts(Issuer::new(s3.keys.clone(), Duration::from_secs(6), "FB")).await;
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(&dir, "tok");
    let svc = ready(env(
        &s3,
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", &token),
            ("AWS_ROLE_ARN", ROLE_ARN),
            ("AWS_ENDPOINT_URL_STS", &sts.double.url()),
        ],
    ))
    .await;
    sts.issuer.set_failing(true);
    let plain = reqwest::Client::new();
    // Whatever happened before (a slow start may already have seen one refresh), the
    // credentials in use keep working until shortly before they expire, although every
    // refresh fails from now on.
    let (_, st) = svc.get_json("/status").await;
    let expires = time::OffsetDateTime::parse(
        st["credentials"]["expires_at"]
            .as_str()
            .expect("expires_at"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    let mut used = 0;
    while expires - time::OffsetDateTime::now_utc() > time::Duration::milliseconds(2500)
        || used == 0
    {
        download(&svc, &plain)
            .await
            .expect("old credentials still in use");
        used += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Then they expire: not ready, /status says why, downloads are "unavailable".
    let deadline = Instant::now() + Duration::from_secs(10);
    while svc.get("/readiness").await.status() != 503 {
        assert!(
            Instant::now() < deadline,
            "still ready after the credentials expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, st) = svc.get_json("/status").await;
    let e = st["credentials"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        e.contains("expired") && e.contains("ServiceUnavailable"),
        "{st}"
    );
    // Past the expiry itself (and the one-second URL cache of an entry): nothing to
    // sign a redirect with.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        svc.get(&format!("/{PRIVATE}/report.pdf")).await.status(),
        503
    );
    let failed = metric(
        &svc.metrics().await,
        "parparchik_credential_refreshes_total{outcome=\"failed\"}",
    )
    .unwrap();
    assert!(failed >= 1.0);

    // STS comes back: the retry loop picks it up, and everything works again.
    sts.issuer.set_failing(false);
    let deadline = Instant::now() + Duration::from_secs(40);
    while svc.get("/readiness").await.status() != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready again after STS recovered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    download(&svc, &plain).await.expect("works again");
    svc.stop().await;
}

#[tokio::test]
async fn presigned_urls_never_outlive_their_credentials() {
    let s3 = S3::start().await;
    let sts =
        credential_doubles::sts(Issuer::new(s3.keys.clone(), Duration::from_secs(120), "PL")).await;
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(&dir, "tok");
    let sts_url = sts.double.url();
    let base = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.as_str()),
        ("AWS_ROLE_ARN", ROLE_ARN),
        ("AWS_ENDPOINT_URL_STS", &sts_url),
        ("PARPARCHIK_REDIRECT_CACHE_CONTROL", "private, max-age=600"),
    ];
    let svc = ready(env(&s3, &base)).await;
    let r = svc.get(&format!("/{PRIVATE}/report.pdf")).await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let expires: u64 = query_param(&location, "X-Amz-Expires")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (100..=120).contains(&expires),
        "X-Amz-Expires={expires} with 120-s credentials"
    );
    let cc = r.headers()["cache-control"].to_str().unwrap().to_owned();
    assert_eq!(cc, format!("private, max-age={expires}"));
    // A public redirect keeps the configured Cache-Control.
    s3.seeder().put(PUBLIC, "a.txt", b"a".to_vec()).await;
    let p = svc.get(&format!("/{PUBLIC}/a.txt")).await;
    assert_eq!(p.headers()["cache-control"], "private, max-age=600");
    svc.stop().await;

    // A shorter configured lifetime is kept as it is.
    let mut e = env(&s3, &base);
    e.push(("PARPARCHIK_PRESIGN_EXPIRES".into(), "30".into()));
    let svc = ready(e).await;
    let r = svc.get(&format!("/{PRIVATE}/report.pdf")).await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(query_param(&location, "X-Amz-Expires"), Some("30"));
    let (_, st) = svc.get_json("/status").await;
    assert_eq!(st["presign_expires_seconds"], 30);
    svc.stop().await;

    // Static keys: the configured lifetime, whole.
    let mut e = two_bucket_env(&s3.endpoint());
    e.push(("PARPARCHIK_PRESIGN_EXPIRES".into(), "604800".into()));
    let svc = ready(e).await;
    let r = svc.get(&format!("/{PRIVATE}/report.pdf")).await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(query_param(&location, "X-Amz-Expires"), Some("604800"));
    svc.stop().await;
}

#[tokio::test]
async fn key_files_and_profiles_are_reread_when_they_change() {
    let s3 = S3::start().await;
    s3.keys.add("FILEKEY1", "file-secret-1", None, None);
    let dir = tempfile::tempdir().unwrap();
    let id = dir.path().join("id");
    let secret = dir.path().join("secret");
    std::fs::write(&id, "FILEKEY1\n").unwrap();
    std::fs::write(&secret, "file-secret-1\n").unwrap();
    let svc = ready(env(
        &s3,
        &[
            ("AWS_ACCESS_KEY_ID_FILE", id.to_str().unwrap()),
            ("AWS_SECRET_ACCESS_KEY_FILE", secret.to_str().unwrap()),
            ("PARPARCHIK_CREDENTIALS_POLL_INTERVAL", "0.1"),
        ],
    ))
    .await;
    let plain = reqwest::Client::new();
    let (_, url) = download(&svc, &plain).await.unwrap();
    assert!(
        query_param(&url, "X-Amz-Credential")
            .unwrap()
            .starts_with("FILEKEY1")
    );
    // Rotate: new key accepted, old one revoked; the service follows the files.
    s3.keys.add("FILEKEY2", "file-secret-2", None, None);
    std::fs::write(&secret, "file-secret-2").unwrap();
    std::fs::write(&id, "FILEKEY2").unwrap();
    s3.keys.remove("FILEKEY1");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok((_, url)) = download(&svc, &plain).await
            && query_param(&url, "X-Amz-Credential")
                .unwrap()
                .starts_with("FILEKEY2")
        {
            break;
        }
        assert!(Instant::now() < deadline, "rotated key files not picked up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, st) = svc.get_json("/status").await;
    assert_eq!(st["credentials"]["source"], "environment (files)");
    svc.stop().await;

    // A profile of a mounted credentials file, with a session token.
    s3.keys
        .add("PROFKEY", "prof-secret", Some("prof-token".into()), None);
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        "# mounted\n[default]\naws_access_key_id = nope\naws_secret_access_key = nope\n\n[app]\naws_access_key_id = PROFKEY\naws_secret_access_key = prof-secret\naws_session_token = prof-token\n",
    )
    .unwrap();
    let svc = ready(env(
        &s3,
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
            (
                "AWS_CONFIG_FILE",
                dir.path().join("absent").to_str().unwrap(),
            ),
            ("AWS_PROFILE", "app"),
        ],
    ))
    .await;
    let (_, url) = download(&svc, &plain).await.unwrap();
    assert!(
        query_param(&url, "X-Amz-Credential")
            .unwrap()
            .starts_with("PROFKEY")
    );
    assert_eq!(
        query_param(&url, "X-Amz-Security-Token"),
        Some("prof-token")
    );
    svc.stop().await;
}
