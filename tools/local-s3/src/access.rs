//! Access policy: signed requests may do anything; anonymous ones may only
//! read objects of public buckets (like MinIO's `mc anonymous set download`,
//! minus anonymous listing).

use std::collections::HashSet;

use s3s::S3Result;
use s3s::access::{S3Access, S3AccessContext};
use s3s::s3_error;

use crate::keys::Keys;
use crate::stats::Stats;

pub(crate) struct PublicReadAccess {
    pub(crate) public_buckets: HashSet<String>,
    pub(crate) stats: Stats,
    /// Temporary keys, whose session token and expiry are checked here.
    pub(crate) keys: Keys,
}

/// The session token of a request: header, or query parameter of a presigned URL.
fn session_token(cx: &S3AccessContext<'_>) -> Option<String> {
    if let Some(v) = cx.headers().get("x-amz-security-token") {
        return v.to_str().ok().map(str::to_owned);
    }
    cx.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "X-Amz-Security-Token").then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[async_trait::async_trait]
impl S3Access for PublicReadAccess {
    // s3s calls this once per request, after the signature was verified (so
    // `credentials()` is `None` only for unsigned requests) and before the
    // operation runs: the one place that sees every routed request.
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let op = cx.s3_op().name();
        self.stats.record_op(op);

        if let Some(c) = cx.credentials() {
            let access_key = c.access_key.clone();
            return self.keys.check(&access_key, session_token(cx).as_deref());
        }
        let public = cx
            .s3_path()
            .get_bucket_name()
            .is_some_and(|bucket| self.public_buckets.contains(bucket));
        if public && matches!(op, "GetObject" | "HeadObject") {
            Ok(())
        } else {
            Err(s3_error!(AccessDenied, "Access Denied."))
        }
    }
}
