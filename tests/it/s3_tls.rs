//! S3 over HTTPS with a certificate from a throwaway CA made here: refused without the
//! CA (with a log line and `/status` naming the endpoint and the reason), trusted with
//! `PARPARCHIK_S3_CA_FILE` or `SSL_CERT_FILE`, refused for a host name the certificate
//! does not carry. Verification cannot be switched off, so there is no such case.

use std::time::{Duration, Instant};

use crate::support::common::{ACCESS_KEY, PRIVATE, PUBLIC, SECRET_KEY, Service, two_bucket_env};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

struct Pki {
    ca_pem: String,
    leaf_pem: String,
    leaf_key_pem: String,
}

/// A CA and a leaf certificate for `localhost` (only: not `127.0.0.1`).
fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "parparchik throwaway test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf certificate");
    Pki {
        ca_pem: ca_cert.pem(),
        leaf_pem: leaf.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
    }
}

struct Https {
    server: local_s3::LocalS3,
    dir: tempfile::TempDir,
    ca_file: String,
    /// A client that trusts the CA, for seeding and following redirects.
    http: reqwest::Client,
}

impl Https {
    async fn start() -> Https {
        let pki = pki();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = local_s3::Config::new(dir.path().join("data"), ACCESS_KEY, SECRET_KEY);
        cfg.buckets = vec![PUBLIC.into(), PRIVATE.into()];
        cfg.public_buckets = vec![PUBLIC.into()];
        cfg.tls = Some(local_s3::TlsIdentity {
            cert_chain_pem: pki.leaf_pem.into_bytes(),
            key_pem: pki.leaf_key_pem.into_bytes(),
        });
        let server = local_s3::LocalS3::start(cfg).await.expect("HTTPS local S3");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &pki.ca_pem).expect("write CA");
        let http = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).expect("CA"),
            )
            .build()
            .expect("client");
        let s = Https {
            server,
            ca_file: ca_file.to_str().expect("utf-8").to_owned(),
            dir,
            http,
        };
        s.put(PRIVATE, "report.pdf", b"over tls").await;
        s
    }

    fn endpoint(&self, host: &str) -> String {
        format!("https://{host}:{}", self.server.addr().port())
    }

    async fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        let b = rusty_s3::Bucket::new(
            self.endpoint("localhost").parse().expect("url"),
            rusty_s3::UrlStyle::Path,
            bucket.to_owned(),
            "us-east-1",
        )
        .expect("bucket");
        let creds = rusty_s3::Credentials::new(ACCESS_KEY, SECRET_KEY);
        use rusty_s3::S3Action;
        let url = b
            .put_object(Some(&creds), key)
            .sign(Duration::from_secs(60));
        let r = self
            .http
            .put(url)
            .body(body.to_vec())
            .send()
            .await
            .expect("PUT");
        assert!(
            r.status().is_success(),
            "seeding over HTTPS: {}",
            r.status()
        );
    }
}

/// Waits until `/status` shows a storage error and returns it.
async fn storage_error(svc: &Service) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, st) = svc.get_json("/status").await;
        if let Some(e) = st["storage_error"].as_str() {
            return e.to_owned();
        }
        assert!(Instant::now() < deadline, "no storage error in {st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn env(endpoint: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut e = two_bucket_env(endpoint);
    e.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    e
}

#[tokio::test]
async fn an_internal_ca_is_needed_and_enough() {
    let s3 = Https::start().await;
    let endpoint = s3.endpoint("localhost");

    // Without the CA: storage unavailable, the reason names the endpoint and the fix.
    let svc = Service::start(env(&endpoint, &[])).await;
    let e = storage_error(&svc).await;
    assert!(
        e.contains(&format!("TLS certificate of {endpoint} rejected"))
            && e.contains("UnknownIssuer"),
        "{e}"
    );
    assert!(e.contains("PARPARCHIK_S3_CA_FILE"), "{e}");
    assert_eq!(svc.get("/readiness").await.status(), 503);
    assert_eq!(svc.get("/healthcheck").await.status(), 200);
    svc.stop().await;

    // With PARPARCHIK_S3_CA_FILE: ready, and the redirect downloads over HTTPS.
    let svc = Service::start(env(&endpoint, &[("PARPARCHIK_S3_CA_FILE", &s3.ca_file)])).await;
    svc.wait_ready(Duration::from_secs(20)).await;
    let r = svc.get(&format!("/{PRIVATE}/report.pdf")).await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{endpoint}/{PRIVATE}/report.pdf?")),
        "{location}"
    );
    let body = s3
        .http
        .get(&location)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&body[..], b"over tls");
    svc.stop().await;
}

#[tokio::test]
async fn a_host_name_the_certificate_does_not_carry_is_refused() {
    let s3 = Https::start().await;
    let endpoint = s3.endpoint("127.0.0.1");
    let svc = Service::start(env(&endpoint, &[("PARPARCHIK_S3_CA_FILE", &s3.ca_file)])).await;
    let e = storage_error(&svc).await;
    assert!(
        e.contains(&format!("TLS certificate of {endpoint} rejected")),
        "{e}"
    );
    assert!(
        e.contains("not valid for name") && e.contains("does not name this host"),
        "{e}"
    );
    assert_eq!(svc.get("/readiness").await.status(), 503);
    svc.stop().await;
}

/// The binary, with a clean environment: `SSL_CERT_FILE` is read by the system-store
/// loader from the process environment, so it is tested on a real process.
struct Process {
    child: std::process::Child,
    base: String,
    log: std::path::PathBuf,
}

impl Process {
    fn start(dir: &std::path::Path, name: &str, vars: &[(&str, &str)]) -> Process {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_parparchik"))
            .env_clear()
            .env("PARPARCHIK_PORT", port.to_string())
            .env("PARPARCHIK_HOST", "127.0.0.1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(two_bucket_env("unused"))
            .envs(vars.iter().copied())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("parparchik starts");
        Process {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    async fn wait_for(&self, what: &str, mut ok: impl FnMut(u16, &str) -> bool) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = match client.get(format!("{}/readiness", self.base)).send().await {
                Ok(r) => r.status().as_u16(),
                Err(_) => 0,
            };
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if ok(status, &log) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}; readiness {status}; log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn ssl_cert_file_is_trusted_and_a_rejected_certificate_is_logged() {
    let s3 = Https::start().await;
    let endpoint = s3.endpoint("localhost");
    let dir = s3.dir.path();

    let without = Process::start(dir, "without", &[("S3_ENDPOINT", &endpoint)]);
    let expected = format!("TLS certificate of {endpoint} rejected");
    without
        .wait_for("no log line about the certificate", |status, log| {
            status == 503 && log.contains(&expected) && log.contains("UnknownIssuer")
        })
        .await;
    drop(without);

    let with = Process::start(
        dir,
        "with",
        &[("S3_ENDPOINT", &endpoint), ("SSL_CERT_FILE", &s3.ca_file)],
    );
    with.wait_for("not ready with SSL_CERT_FILE", |status, _| status == 200)
        .await;
}
