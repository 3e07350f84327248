//! Why an endpoint could not give the answer it was asked for, and the one place where
//! each reason becomes an HTTP status and body.
//!
//! The statuses are the contract's: S3 that cannot answer is 503 with `Retry-After`
//! (ask again shortly), never a 404 (nothing is forgotten on an answer that proves
//! nothing); a change the registry took but could not save in its manifest is 500 on
//! `/relocate` (the caller asked for exactly that write); a request the service cannot
//! read is 400.

use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use super::respond::{self, Body};
use crate::app::App;
use crate::coordinator::sync::SyncError;
use crate::s3::S3Error;
use crate::s3::urls::UrlError;

/// A reason an endpoint gives no regular answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The request cannot be read (a missing or repeated `filename`, a bad escape).
    BadRequest(&'static str),
    /// S3 could not answer for the files asked about (down, slow, refusing, shedding,
    /// or an answer that proves nothing), or there are no credentials to sign with.
    StorageUnavailable,
    /// The registry changed but its manifest could not be written (retried in the
    /// background).
    NotPersisted,
    /// A bug: something the service builds itself could not be built.
    Internal(String),
}

impl Failure {
    /// A failed S3 call, noted for `/status` and the failure-episode warning.
    pub(crate) fn from_s3(app: &App, error: &S3Error) -> Failure {
        app.note_storage_failure(error);
        Failure::StorageUnavailable
    }

    /// A failed sync (`/list`): a failed listing is noted like any S3 failure; a
    /// refused removal is S3 answering what one listing cannot prove. A manifest that
    /// could not be written is storage unavailable here too, unlike `/relocate`'s 500
    /// (the Lua edition's answer, kept): `/list` asks for a sync against S3 as a
    /// whole, and S3 did not complete it; the writer retries in the background.
    pub(crate) fn from_sync(app: &App, error: &SyncError) -> Failure {
        match error {
            SyncError::List { error, .. } => {
                app.note_storage_failure(error);
                Failure::StorageUnavailable
            }
            SyncError::RemovalRefused { .. } | SyncError::Persist(_) => Failure::StorageUnavailable,
        }
    }

    /// A redirect URL that could not be signed.
    pub(crate) fn from_url(error: UrlError) -> Failure {
        match error {
            // No valid credentials: storage is unavailable, not broken.
            UrlError::Credentials(_) => Failure::StorageUnavailable,
            other => Failure::Internal(other.to_string()),
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Failure::BadRequest(_) => StatusCode::BAD_REQUEST,
            Failure::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Failure::NotPersisted | Failure::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> &str {
        match self {
            Failure::BadRequest(reason) => reason,
            Failure::StorageUnavailable => "storage unavailable",
            Failure::NotPersisted => "failed to persist manifests",
            Failure::Internal(what) => what,
        }
    }

    /// `{"error": …}`, the form of every endpoint but `/relocate`.
    pub(crate) fn response(&self) -> Response<Body> {
        self.with_body(json!({"error": self.message()}))
    }

    /// `{"status":"fail","error":…,"filename":…}`, `/relocate`'s form.
    pub(crate) fn response_for_file(&self, key: &str) -> Response<Body> {
        self.with_body(json!({"status": "fail", "error": self.message(), "filename": key}))
    }

    fn with_body(&self, body: Value) -> Response<Body> {
        match self {
            Failure::StorageUnavailable => respond::unavailable(&body),
            _ => respond::json(self.status(), &body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_its_status_and_storage_says_when_to_retry() {
        let cases = [
            (Failure::BadRequest("filename is missing"), 400, false),
            (Failure::StorageUnavailable, 503, true),
            (Failure::NotPersisted, 500, false),
            (Failure::Internal("x".into()), 500, false),
        ];
        for (failure, status, retry_after) in cases {
            let r = failure.response();
            assert_eq!(r.status().as_u16(), status, "{failure:?}");
            assert_eq!(
                r.headers().contains_key(hyper::header::RETRY_AFTER),
                retry_after,
                "{failure:?}"
            );
            assert_eq!(failure.response_for_file("k").status().as_u16(), status);
        }
    }
}
