//! Access policy: signed requests may do anything; anonymous ones may only
//! read objects of public buckets (like MinIO's `mc anonymous set download`,
//! minus anonymous listing).

use std::collections::HashSet;

use s3s::S3Result;
use s3s::access::{S3Access, S3AccessContext};
use s3s::s3_error;

use crate::stats::Stats;

pub(crate) struct PublicReadAccess {
    pub(crate) public_buckets: HashSet<String>,
    pub(crate) stats: Stats,
}

#[async_trait::async_trait]
impl S3Access for PublicReadAccess {
    // s3s calls this once per request, after the signature was verified (so
    // `credentials()` is `None` only for unsigned requests) and before the
    // operation runs: the one place that sees every routed request.
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let op = cx.s3_op().name();
        self.stats.record_op(op);

        if cx.credentials().is_some() {
            return Ok(());
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
