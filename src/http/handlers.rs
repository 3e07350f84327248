//! One function per endpoint. Each returns the response; the server logs and counts it.

use std::sync::Arc;

use bytes::Bytes;
use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::decode;
use super::failure::Failure;
use super::respond::{self, Body};
use super::router::{BucketRef, Route};
use crate::app::App;
use crate::coordinator::{locate, persist, sync};
use crate::registry::Entry;
use crate::s3::S3Error;
use crate::s3::request_scope::{self, past_the_breaker};
use crate::warn;

const GET_HEAD: &str = "GET, HEAD";

/// The redirect URLs last built for one file (in [`App::redirect_urls`]).
#[derive(Default)]
pub struct UrlSlot {
    public: Option<Bytes>,
    /// `(unix second, signed for HEAD, URL)`.
    presigned: Option<(i64, bool, Bytes)>,
}

pub(crate) async fn handle(
    app: &Arc<App>,
    method: &Method,
    route: &Route,
    query: Option<&str>,
) -> Response<Body> {
    let read_only = method == Method::GET || method == Method::HEAD;
    match route {
        Route::Relocate if method == Method::POST => past_the_breaker(relocate(app, query)).await,
        Route::Relocate => respond::method_not_allowed("POST"),
        // Served by `http::events` with the request body; reached here only without one.
        Route::Events => respond::not_found(),
        Route::NotFound => respond::not_found(),
        _ if !read_only => respond::method_not_allowed(GET_HEAD),
        Route::Health => respond::json(
            StatusCode::OK,
            &json!({"status": "ok", "ready": app.is_ready()}),
        ),
        Route::Readiness => readiness(app),
        Route::Status => status(app),
        Route::Metrics => metrics(app),
        Route::Browse { folder } if app.config.browse => browse(app, folder, query),
        Route::Browse { .. } => respond::not_found(),
        Route::List => past_the_breaker(list(app)).await,
        Route::Update => past_the_breaker(update(app, query)).await,
        Route::BadKey(reason) => Failure::BadRequest(reason).response(),
        Route::Download { bucket, key } => download(app, method, *bucket, key).await,
    }
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
        Err(e) => {
            json!({"finished_at": r.finished_at, "outcome": "failed", "error": e.to_string()})
        }
    });
    let events = crate::coordinator::events::status(app);
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
            "s3_circuit_open": app.s3.breaker_open(),
            "s3_calls_in_flight": app.s3.calls_in_flight(),
            "verify_ttl_seconds": c.verify_ttl.as_secs_f64(),
            "sync_interval_seconds": c.sync_interval.map(|d| d.as_secs_f64()),
            // Where the credentials come from and until when; never a key.
            "credentials": app.credentials.status(),
            "presign_expires_seconds": c.presign_expires,
            "events_trusted": events["trusted"] == json!(true),
            "last_event_age_s": events["last_event_age_s"].clone(),
            "events": events,
        }),
    )
}

fn metrics(app: &App) -> Response<Body> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let figures = app.registry.figures(&app.bucket_names(), now);
    let mut text = crate::metrics::render(&figures, &app.metrics, app.is_ready());
    crate::coordinator::events::render_metrics(app, &mut text);
    respond::text(StatusCode::OK, "text/plain; version=0.0.4", text)
}

/// One page of a folder of the registry, from the registry as it is (no S3 call).
fn browse(app: &App, folder: &str, query: Option<&str>) -> Response<Body> {
    use crate::browse::{self, listing, render};
    let q = match browse::Query::parse(query) {
        Ok(q) => q,
        Err(reason) => return Failure::BadRequest(reason).response(),
    };
    let prefix = browse::folder(folder);
    let lowered = q.filter.as_deref().map(str::to_lowercase);
    let request = listing::Request {
        prefix: &prefix,
        filter: lowered.as_deref(),
        after: q.after.as_deref(),
    };
    let page = app
        .registry
        .visit(|entries| listing::page(entries, &request));
    let nonce = browse::nonce();
    let html = render::render(&render::View {
        page: &page,
        prefix: &prefix,
        filter: q.filter.as_deref(),
        buckets: &app.config.buckets,
        nonce: &nonce,
        ready: app.is_ready(),
    });
    respond::html(html, &render::csp(&nonce))
}

/// A snapshot of the registry (`Arc`s, not copies), streamed as the client reads.
fn sorted_entries_json(app: &App) -> super::list_body::ListBody {
    super::list_body::ListBody::new(app.registry.all(), &app.config.buckets)
}

async fn list(app: &App) -> Response<Body> {
    if let Err(e) = sync::resync(app).await {
        warn!("/list could not re-sync: {e}");
        return Failure::from_sync(app, &e).response();
    }
    app.note_storage_ok();
    respond::json_stream(StatusCode::OK, sorted_entries_json(app))
}

/// Persists what a request changed before it answers; a failure is logged (and retried
/// in the background) by the bucket's manifest writer itself.
async fn persist_quietly(app: &App, dirty: crate::registry::Dirty) {
    if !dirty.is_empty() {
        let _ = persist::save(app, dirty).await;
    }
}

/// What an explicit API answer about `entry` must wait for: the buckets it changed, and,
/// when another request or a bucket notification made the same change a moment before
/// and its write is still under way, the entry's bucket (an unchanged manifest is not
/// written again, so this only waits for the write in flight).
fn answer_depends_on(
    app: &App,
    dirty: crate::registry::Dirty,
    entry: Option<&Entry>,
) -> crate::registry::Dirty {
    match entry {
        Some(e) if dirty.is_empty() && !app.manifests.settled() => dirty.with(e.bucket),
        _ => dirty,
    }
}

async fn update(app: &App, query: Option<&str>) -> Response<Body> {
    let key = match decode::filename(query) {
        Ok(k) => k,
        Err(reason) => return Failure::BadRequest(reason).response(),
    };
    let not_found = || {
        respond::json(
            StatusCode::NOT_FOUND,
            &json!({"error": "file not found", "filename": key}),
        )
    };
    match locate::confirm_or_find(app, &key).await {
        Ok(found) => {
            app.note_storage_ok();
            let dirty = answer_depends_on(app, found.dirty, found.entry.as_deref());
            persist_quietly(app, dirty).await;
            match found.entry {
                Some(e) => respond::json(
                    StatusCode::OK,
                    &json!({"message": "file located", "file": e.json(&app.config.buckets)}),
                ),
                None => not_found(),
            }
        }
        // S3 refused this one key: that is the key's answer, not an outage.
        Err(S3Error::KeyRejected { .. }) => not_found(),
        Err(e) => Failure::from_s3(app, &e).response(),
    }
}

async fn relocate(app: &App, query: Option<&str>) -> Response<Body> {
    let key = match decode::filename(query) {
        Ok(k) => k,
        Err(reason) => return Failure::BadRequest(reason).response(),
    };
    relocated(app, &key)
        .await
        .unwrap_or_else(|failure| failure.response_for_file(&key))
}

async fn relocated(app: &App, key: &str) -> Result<Response<Body>, Failure> {
    let not_found = || {
        respond::json(
            StatusCode::NOT_FOUND,
            &json!({"status": "fail", "error": "file not found in any bucket", "filename": key}),
        )
    };
    let r = match locate::relocate(app, key).await {
        Ok(r) => r,
        Err(S3Error::KeyRejected { .. }) => return Ok(not_found()),
        Err(e) => return Err(Failure::from_s3(app, &e)),
    };
    app.note_storage_ok();
    let dirty = answer_depends_on(app, r.dirty, r.entry.as_deref());
    let persisted = if dirty.is_empty() {
        Ok(())
    } else {
        persist::save(app, dirty).await
    };
    let Some(entry) = r.entry else {
        return Ok(not_found());
    };
    persisted.map_err(|_| Failure::NotPersisted)?;
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
    Ok(respond::json(StatusCode::OK, &body))
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
    // A public URL never changes; a presigned URL is byte-identical for the whole second
    // of its `X-Amz-Date`, so one signature serves every request of that second.
    let location = if b.public {
        app.redirect_urls
            .with(entry.bucket, &entry.key, UrlSlot::default, |slot| {
                slot.public
                    .get_or_insert_with(|| Bytes::from(app.urls.public_url(&b.name, &entry.key)))
                    .clone()
            })
    } else {
        // Presigned for the method the client used: a HEAD signature differs from a GET one.
        let head = method == Method::HEAD;
        let now = time::OffsetDateTime::now_utc();
        let second = now.unix_timestamp();
        let signed = app
            .redirect_urls
            .with(entry.bucket, &entry.key, UrlSlot::default, |slot| {
                if let Some((s, h, url)) = &slot.presigned
                    && *s == second
                    && *h == head
                {
                    return Ok(url.clone());
                }
                let url = Bytes::from(app.urls.presigned_url(
                    if head { "HEAD" } else { "GET" },
                    &b.name,
                    &entry.key,
                    app.config.presign_expires,
                    now,
                )?);
                slot.presigned = Some((second, head, url.clone()));
                Ok::<_, crate::s3::urls::UrlError>(url)
            });
        match signed {
            Ok(url) => url,
            Err(e) => return Failure::from_url(e).response(),
        }
    };
    respond::redirect(location, &app.redirect_cache_control_for(!b.public))
}

/// The answer for `bucket`/`key` given where the key is registered (if anywhere).
fn answer(
    app: &App,
    method: &Method,
    bucket: BucketRef,
    key: &str,
    entry: Option<&Entry>,
) -> Response<Body> {
    match entry {
        Some(e) if bucket.accepts(e.bucket, &app.config.buckets) => redirect_to(app, method, e),
        _ => file_not_found(bucket, key, app),
    }
}

async fn download(app: &Arc<App>, method: &Method, bucket: BucketRef, key: &str) -> Response<Body> {
    let ttl_ms = u64::try_from(app.config.verify_ttl.as_millis()).unwrap_or(u64::MAX);
    let Some(known) = app.registry.get(key) else {
        return download_unknown(app, method, bucket, key).await;
    };
    if (ttl_ms > 0 && locate::confirmed_within(app, &known, ttl_ms))
        || crate::coordinator::events::vouched(app, &known)
    {
        return answer(app, method, bucket, key, Some(&known));
    }
    // The check runs on its own task: when S3 is slow the route is answered from the
    // registry at the deadline while the check goes on and updates the registry (and
    // the manifests) when S3 answers; a client that hangs up cancels nothing.
    // The task counts its own S3 calls (a task-local does not cross `spawn`), added to
    // the request's when it answers in time.
    let check = tokio::spawn(request_scope::counting_calls(confirm(
        Arc::clone(app),
        key.to_owned(),
    )));
    let checked = tokio::time::timeout(app.config.storage.verify_deadline, check).await;
    if let Ok(Ok((_, calls))) = &checked {
        request_scope::add_calls(*calls);
    }
    match checked {
        Ok(Ok((Ok(entry), _))) => answer(app, method, bucket, key, entry.as_deref()),
        // S3 failed, refused the key, did not answer by the deadline, or the check
        // panicked: the failure itself was noted by `confirm`.
        Ok(Ok((Err(_), _)) | Err(_)) | Err(_) => stale(app, method, bucket, key, &known),
    }
}

/// Confirms a known key (or finds where it went) and persists what changed.
async fn confirm(app: Arc<App>, key: String) -> Result<Option<Arc<Entry>>, S3Error> {
    match locate::confirm_or_find(&app, &key).await {
        Ok(found) => {
            app.note_storage_ok();
            persist_quietly(&app, found.dirty).await;
            Ok(found.entry)
        }
        Err(e) => {
            app.note_storage_failure(&e);
            Err(e)
        }
    }
}

/// S3 could not confirm a known entry: it was confirmed before, so the registry vouches
/// for it (nothing is forgotten on an answer that proves nothing).
fn stale(
    app: &App,
    method: &Method,
    bucket: BucketRef,
    key: &str,
    known: &Entry,
) -> Response<Body> {
    app.metrics
        .stale_redirects
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    answer(app, method, bucket, key, Some(known))
}

/// A key the registry does not know: only S3 can say, and a failure cannot be vouched for.
async fn download_unknown(
    app: &App,
    method: &Method,
    bucket: BucketRef,
    key: &str,
) -> Response<Body> {
    let located = match bucket {
        BucketRef::Named(b) => locate::find_for_download(app, b, key).await,
        BucketRef::AnyPublic | BucketRef::AnyPrivate => locate::confirm_or_find(app, key).await,
    };
    match located {
        Ok(found) => {
            app.note_storage_ok();
            persist_quietly(app, found.dirty).await;
            answer(app, method, bucket, key, found.entry.as_deref())
        }
        Err(S3Error::KeyRejected { .. }) => file_not_found(bucket, key, app),
        Err(err) => Failure::from_s3(app, &err).response(),
    }
}
