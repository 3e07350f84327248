//! One function per endpoint. Each returns the response; the server logs and counts it.

use std::sync::Arc;

use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::decode;
use super::respond::{self, Body};
use super::router::{BucketRef, Route};
use crate::app::App;
use crate::registry::Entry;
use crate::s3::S3Error;
use crate::storage::{locate, persist, sync};
use crate::warn;

const GET_HEAD: &str = "GET, HEAD";
/// Longest path and query accepted; longer is 414. Keys are at most 1024 bytes, which
/// percent-encoded is at most 3 KiB.
pub const MAX_TARGET_BYTES: usize = 8 * 1024;

pub async fn handle(
    app: &Arc<App>,
    method: &Method,
    route: &Route,
    query: Option<&str>,
) -> Response<Body> {
    let read_only = method == Method::GET || method == Method::HEAD;
    match route {
        Route::Relocate if method == Method::POST => relocate(app, query).await,
        Route::Relocate => respond::method_not_allowed("POST"),
        Route::NotFound => respond::not_found(),
        _ if !read_only => respond::method_not_allowed(GET_HEAD),
        Route::Health => respond::json(
            StatusCode::OK,
            &json!({"status": "ok", "ready": app.is_ready()}),
        ),
        Route::Readiness => readiness(app),
        Route::Status => status(app),
        Route::Metrics => metrics(app),
        Route::List => list(app).await,
        Route::Update => update(app, query).await,
        Route::BadKey(reason) => respond::error(StatusCode::BAD_REQUEST, reason),
        Route::Download { bucket, key } => download(app, method, *bucket, key).await,
    }
}

fn storage_unavailable(e: &S3Error) -> Response<Body> {
    warn!("S3 could not answer: {e}");
    respond::unavailable(&json!({"error": "storage unavailable"}))
}

fn readiness(app: &App) -> Response<Body> {
    let file_count = app.registry.len();
    if app.is_ready() {
        respond::json(
            StatusCode::OK,
            &json!({"status": "ready", "ready": true, "file_count": file_count}),
        )
    } else {
        respond::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "not_ready", "ready": false, "file_count": file_count}),
        )
    }
}

fn status(app: &App) -> Response<Body> {
    let c = &app.config;
    let buckets: Vec<Value> = c
        .buckets
        .iter()
        .map(|b| json!({"name": b.name, "manifest_key": b.manifest_key, "public": b.public}))
        .collect();
    let etags: serde_json::Map<String, Value> = c
        .buckets
        .iter()
        .zip(app.manifests.etags())
        .map(|(b, e)| (b.name.clone(), e.map_or(Value::Null, Value::String)))
        .collect();
    let last_sync = app.sync.last_report().map(|r| match r.outcome {
        Ok(counts) => json!({"finished_at": r.finished_at, "outcome": "ok",
            "files": counts.files, "duplicates": counts.duplicates, "duration_ms": counts.millis}),
        Err(e) => json!({"finished_at": r.finished_at, "outcome": "failed", "error": e}),
    });
    respond::json(
        StatusCode::OK,
        &json!({
            "status": "ok",
            "buckets": buckets,
            "region": c.region,
            "ready": app.is_ready(),
            "file_count": app.registry.len(),
            "public_bucket": c.first_bucket(true),
            "private_bucket": c.first_bucket(false),
            "duplicate_count": app.registry.duplicate_count(),
            "storage_error": app.health().last_error,
            "last_sync": last_sync,
            "manifest_etags": etags,
            "conditional_writes": app.manifests.conditional_writes_supported(),
            "verify_ttl_seconds": c.verify_ttl.as_secs_f64(),
            "sync_interval_seconds": c.sync_interval.map(|d| d.as_secs_f64()),
            // Where the credentials come from and until when; never a key.
            "credentials": app.credentials.status(),
            "presign_expires_seconds": c.presign_expires,
        }),
    )
}

fn metrics(app: &App) -> Response<Body> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let figures = app.registry.figures(&app.bucket_names(), now);
    let text = crate::metrics::render(&figures, &app.metrics, app.is_ready());
    respond::text(StatusCode::OK, "text/plain; version=0.0.4", text)
}

fn sorted_entries_json(app: &App) -> Vec<u8> {
    let mut entries = app.registry.all();
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    let files: Vec<_> = entries
        .iter()
        .map(|e| e.json(&app.config.buckets))
        .collect();
    #[derive(serde::Serialize)]
    struct ListBody<'a> {
        count: usize,
        files: Vec<crate::registry::entry::EntryJson<'a>>,
    }
    serde_json::to_vec(&ListBody {
        count: files.len(),
        files,
    })
    .unwrap_or_default()
}

async fn list(app: &App) -> Response<Body> {
    if let Err(e) = sync::sync(app).await {
        warn!("/list could not re-sync: {e}");
        return respond::unavailable(&json!({"error": "storage unavailable"}));
    }
    respond::json_bytes(StatusCode::OK, sorted_entries_json(app))
}

/// Persists what a request changed before it answers; a failure is logged (and retried
/// with the next change) by `persist` itself.
async fn persist_quietly(app: &App, dirty: crate::registry::Dirty) {
    if !dirty.is_empty() {
        let _ = persist::persist(app, dirty).await;
    }
}

async fn update(app: &App, query: Option<&str>) -> Response<Body> {
    let key = match decode::filename(query) {
        Ok(k) => k,
        Err(reason) => return respond::error(StatusCode::BAD_REQUEST, reason),
    };
    match locate::locate(app, &key).await {
        Ok(found) => {
            persist_quietly(app, found.dirty).await;
            match found.entry {
                Some(e) => respond::json(
                    StatusCode::OK,
                    &json!({"message": "file located", "file": e.json(&app.config.buckets)}),
                ),
                None => respond::json(
                    StatusCode::NOT_FOUND,
                    &json!({"error": "file not found", "filename": key}),
                ),
            }
        }
        Err(e) => storage_unavailable(&e),
    }
}

async fn relocate(app: &App, query: Option<&str>) -> Response<Body> {
    let key = match decode::filename(query) {
        Ok(k) => k,
        Err(reason) => return respond::error(StatusCode::BAD_REQUEST, reason),
    };
    let r = match locate::relocate(app, &key).await {
        Ok(r) => r,
        Err(e) => {
            warn!("S3 could not answer: {e}");
            return respond::unavailable(
                &json!({"status": "fail", "error": "storage unavailable", "filename": key}),
            );
        }
    };
    let persisted = if r.dirty.is_empty() {
        Ok(())
    } else {
        persist::persist(app, r.dirty).await
    };
    let Some(entry) = r.entry else {
        return respond::json(
            StatusCode::NOT_FOUND,
            &json!({"status": "fail", "error": "file not found in any bucket", "filename": key}),
        );
    };
    if persisted.is_err() {
        return respond::json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"status": "fail", "error": "failed to persist manifests", "filename": key}),
        );
    }
    let buckets = &app.config.buckets;
    let mut body = json!({"status": "ok", "file": entry.json(buckets)});
    if let Some(from) = r.moved_from {
        body["relocated_from"] = json!(buckets[from].name);
        body["relocated_to"] = json!(buckets[entry.bucket].name);
    }
    if r.duplicate {
        body["duplicate"] = json!(true);
        body["note"] =
            json!("file exists in multiple buckets, last configured bucket takes precedence");
    }
    respond::json(StatusCode::OK, &body)
}

fn file_not_found(bucket: BucketRef, key: &str, app: &App) -> Response<Body> {
    let segment = match bucket {
        BucketRef::Named(i) => app.config.buckets[i].name.as_str(),
        BucketRef::AnyPublic => "public",
        BucketRef::AnyPrivate => "private",
    };
    respond::json(
        StatusCode::NOT_FOUND,
        &json!({"error": "file not found", "route": crate::registry::entry::route(segment, key)}),
    )
}

/// The redirect for an entry S3 has confirmed (or, S3 being down, the registry vouches for).
fn redirect_to(app: &App, method: &Method, entry: &Entry) -> Response<Body> {
    let b = &app.config.buckets[entry.bucket];
    let location = if b.public {
        entry.public_url(|| app.urls.public_url(&b.name, &entry.key))
    } else {
        // Presigned for the method the client used: a HEAD signature differs from a GET one.
        let head = method == Method::HEAD;
        let now = time::OffsetDateTime::now_utc();
        let signed = entry.presigned_url(now.unix_timestamp(), head, || {
            app.urls.presigned_url(
                if head { "HEAD" } else { "GET" },
                &b.name,
                &entry.key,
                app.config.presign_expires,
                now,
            )
        });
        match signed {
            Ok(url) => url,
            // No valid credentials to sign with: storage is unavailable, not broken.
            Err(crate::s3::urls::UrlError::Credentials(_)) => {
                return respond::unavailable(&json!({"error": "storage unavailable"}));
            }
            Err(e) => return respond::error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        }
    };
    respond::redirect(location, &app.redirect_cache_control_for(!b.public))
}

async fn download(app: &App, method: &Method, bucket: BucketRef, key: &str) -> Response<Body> {
    let buckets = &app.config.buckets;
    let known = app.registry.get(key);
    let ttl_ms = u64::try_from(app.config.verify_ttl.as_millis()).unwrap_or(u64::MAX);
    if let Some(e) = &known
        && ttl_ms > 0
        && e.verified_within(app.now_ms(), ttl_ms)
    {
        return if bucket.accepts(e.bucket, buckets) {
            redirect_to(app, method, e)
        } else {
            file_not_found(bucket, key, app)
        };
    }
    match locate::locate(app, key).await {
        Ok(found) => {
            persist_quietly(app, found.dirty).await;
            match found.entry {
                Some(e) if bucket.accepts(e.bucket, buckets) => redirect_to(app, method, &e),
                _ => file_not_found(bucket, key, app),
            }
        }
        // S3 could not answer: the registry's entry was confirmed before, so redirect from
        // it; a key the registry does not know cannot be vouched for.
        Err(err) => match known {
            Some(e) => {
                app.metrics
                    .stale_redirects
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                warn!("S3 could not confirm {key}, answering from the registry: {err}");
                if bucket.accepts(e.bucket, buckets) {
                    redirect_to(app, method, &e)
                } else {
                    file_not_found(bucket, key, app)
                }
            }
            None => storage_unavailable(&err),
        },
    }
}
