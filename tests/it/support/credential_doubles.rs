//! Test doubles of the credential endpoints, each a small hyper server on 127.0.0.1:
//! an STS answering `AssumeRoleWithWebIdentity` with the documented XML (and registering
//! the credentials it issues with the local S3, which then verifies them), a container
//! credentials endpoint that checks the authorization token, and an IMDSv2 endpoint.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// One request, as the handlers see it.
pub(crate) struct Req {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

pub(crate) struct Resp {
    pub status: u16,
    pub body: String,
}

fn resp(status: u16, body: impl Into<String>) -> Resp {
    Resp {
        status,
        body: body.into(),
    }
}

/// A running double; stops when dropped.
pub(crate) struct Double {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Double {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Double {
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub(crate) async fn serve(handler: impl Fn(Req) -> Resp + Send + Sync + 'static) -> Double {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handler = Arc::new(handler);
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (handler, hits) = (Arc::clone(&handler), Arc::clone(&counted));
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (handler, hits) = (Arc::clone(&handler), Arc::clone(&hits));
                        async move {
                            hits.fetch_add(1, Ordering::SeqCst);
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(http_body_util::Collected::to_bytes)
                                .unwrap_or_default();
                            let r = handler(Req {
                                method: parts.method.to_string(),
                                path: parts.uri.path().to_owned(),
                                headers: parts
                                    .headers
                                    .iter()
                                    .map(|(k, v)| {
                                        (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())
                                    })
                                    .collect(),
                                body: String::from_utf8_lossy(&body).into_owned(),
                            });
                            let mut out = hyper::Response::new(Full::new(Bytes::from(r.body)));
                            *out.status_mut() =
                                hyper::StatusCode::from_u16(r.status).expect("status");
                            Ok::<_, std::convert::Infallible>(out)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Double { addr, hits, task }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// What a credentials double hands out: fresh keys each time, registered with the
/// local S3 (so it accepts them, until they expire).
pub(crate) struct Issuer {
    pub keys: local_s3::Keys,
    pub lifetime: Mutex<Duration>,
    pub issued: AtomicUsize,
    /// While set, every answer is an error.
    pub failing: AtomicBool,
    prefix: &'static str,
}

pub(crate) struct Issued {
    pub id: String,
    pub secret: String,
    pub token: String,
    pub expiration: String,
}

impl Issuer {
    pub(crate) fn new(
        keys: local_s3::Keys,
        lifetime: Duration,
        prefix: &'static str,
    ) -> Arc<Issuer> {
        Arc::new(Issuer {
            keys,
            lifetime: Mutex::new(lifetime),
            issued: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
            prefix,
        })
    }

    pub(crate) fn issue(&self) -> Issued {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let lifetime = *self.lifetime.lock().unwrap();
        let expires = SystemTime::now() + lifetime;
        let i = Issued {
            id: format!("ASIA{}{n:012}", self.prefix),
            secret: format!("tmp-secret/{n}+{}", self.prefix),
            token: format!("session-token-{}-{n}/x+y=", self.prefix),
            expiration: rfc3339(expires),
        };
        self.keys
            .add(&i.id, &i.secret, Some(i.token.clone()), Some(expires));
        i
    }

    pub(crate) fn set_failing(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }

    pub(crate) fn count(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }
}

/// The STS double. `tokens` records every web identity token it was shown.
pub(crate) struct Sts {
    pub double: Double,
    pub issuer: Arc<Issuer>,
    pub tokens: Arc<Mutex<Vec<String>>>,
}

pub(crate) const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/parparchik";

pub(crate) async fn sts(issuer: Arc<Issuer>) -> Sts {
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let (iss, seen) = (Arc::clone(&issuer), Arc::clone(&tokens));
    let double = serve(move |req| {
        let f = form(&req.body);
        if req.method != "POST"
            || f.get("Action").map(String::as_str) != Some("AssumeRoleWithWebIdentity")
            || f.get("Version").map(String::as_str) != Some("2011-06-15")
            || f.get("RoleArn").map(String::as_str) != Some(ROLE_ARN)
            || f.get("RoleSessionName").is_none_or(String::is_empty)
            // An unsigned call: a signature would mean the wrong kind of request.
            || req.headers.contains_key("authorization")
        {
            return resp(400, error_xml("InvalidParameterValue", "unexpected request"));
        }
        let Some(token) = f.get("WebIdentityToken") else {
            return resp(400, error_xml("MissingParameter", "no WebIdentityToken"));
        };
        seen.lock().unwrap().push(token.clone());
        if iss.failing.load(Ordering::SeqCst) {
            return resp(503, error_xml("ServiceUnavailable", "STS is down (test)"));
        }
        let i = iss.issue();
        resp(
            200,
            format!(
                r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:default:parparchik</SubjectFromWebIdentityToken>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/parparchik/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <SessionToken>{}</SessionToken>
      <SecretAccessKey>{}</SecretAccessKey>
      <Expiration>{}</Expiration>
      <AccessKeyId>{}</AccessKeyId>
    </Credentials>
    <Audience>sts.amazonaws.com</Audience>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#,
                i.token.replace('&', "&amp;"),
                i.secret,
                i.expiration,
                i.id
            ),
        )
    })
    .await;
    Sts {
        double,
        issuer,
        tokens,
    }
}

fn error_xml(code: &str, message: &str) -> String {
    format!(
        r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"#
    )
}

fn credentials_json(i: &Issued) -> String {
    serde_json::json!({
        "AccessKeyId": i.id,
        "SecretAccessKey": i.secret,
        "Token": i.token,
        "Expiration": i.expiration,
        "RoleArn": ROLE_ARN,
    })
    .to_string()
}

/// The container credentials double: answers `GET /creds` when `Authorization` equals
/// the current `expected` token.
pub(crate) async fn container(issuer: Arc<Issuer>, expected: Arc<Mutex<String>>) -> Double {
    serve(move |req| {
        if req.method != "GET" || req.path != "/creds" {
            return resp(404, "not found");
        }
        if req.headers.get("authorization") != Some(&*expected.lock().unwrap()) {
            return resp(401, r#"{"code":"Unauthorized","message":"bad token"}"#);
        }
        if issuer.failing.load(Ordering::SeqCst) {
            return resp(500, r#"{"code":"Down","message":"test"}"#);
        }
        resp(200, credentials_json(&issuer.issue()))
    })
    .await
}

pub(crate) const IMDS_ROLE: &str = "parparchik-role";
const IMDS_TOKEN: &str = "imds-session-token";

/// The IMDSv2 double: refuses every GET without the session token of a PUT.
pub(crate) async fn imds(issuer: Arc<Issuer>) -> Double {
    serve(move |req| match (req.method.as_str(), req.path.as_str()) {
        ("PUT", "/latest/api/token") => {
            let ttl = req
                .headers
                .get("x-aws-ec2-metadata-token-ttl-seconds")
                .and_then(|v| v.parse::<u32>().ok());
            match ttl {
                Some(1..=21600) => resp(200, IMDS_TOKEN),
                _ => resp(400, "missing or bad TTL"),
            }
        }
        ("GET", path) => {
            if req
                .headers
                .get("x-aws-ec2-metadata-token")
                .map(String::as_str)
                != Some(IMDS_TOKEN)
            {
                return resp(401, "IMDSv2 token required");
            }
            if path == "/latest/meta-data/iam/security-credentials/" {
                resp(200, IMDS_ROLE)
            } else if path == format!("/latest/meta-data/iam/security-credentials/{IMDS_ROLE}") {
                let i = issuer.issue();
                resp(
                    200,
                    serde_json::json!({
                        "Code": "Success",
                        "LastUpdated": "2026-01-01T00:00:00Z",
                        "Type": "AWS-HMAC",
                        "AccessKeyId": i.id,
                        "SecretAccessKey": i.secret,
                        "Token": i.token,
                        "Expiration": i.expiration,
                    })
                    .to_string(),
                )
            } else {
                resp(404, "not found")
            }
        }
        _ => resp(405, "method not allowed"),
    })
    .await
}
