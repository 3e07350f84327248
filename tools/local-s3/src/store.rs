//! `Store`: `s3s_fs::FileSystem` plus the S3 behaviour it lacks.
//!
//! Every operation delegates to s3s-fs; the wrapper only adds:
//! - per-key write serialization, so conditional writes (`If-Match`,
//!   `If-None-Match: *`, which s3s-fs checks *before* streaming the body)
//!   are atomic against concurrent writes of the same key;
//! - `If-Match` / `If-None-Match` / `If-(Un)Modified-Since` on GET and HEAD
//!   (s3s parses them, s3s-fs ignores them);
//! - deletes isolated from reads: s3s-fs scans directories and opens files without
//!   isolation, so a listing or GET that meets a file (or an emptied directory)
//!   being deleted fails with a 500 where S3 answers consistently (deletes take the
//!   store exclusively, everything else shares it);
//! - `encoding-type=url` in listings (s3s-fs echoes it without encoding keys,
//!   so clients that request it, like rusty-s3, would mangle `+` and `%`),
//!   ETags in listings, and the 1000-key cap of `max-keys`.

use std::hash::BuildHasher;

use hyper::HeaderMap;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};
use s3s_fs::FileSystem;
use tokio::sync::{Mutex, MutexGuard};

use crate::compat::{take_preconditions, url_encode_listing};
use crate::notify::{Notifier, ObjectEvent};

/// S3 never returns more keys than this per listing page.
const MAX_KEYS: i32 = 1000;

pub(crate) struct Store {
    fs: FileSystem,
    locks: KeyLocks,
    isolation: tokio::sync::RwLock<()>,
    notifier: Notifier,
}

impl Store {
    pub(crate) fn new(fs: FileSystem, notifier: Notifier) -> Self {
        Self {
            fs,
            locks: KeyLocks::new(),
            isolation: tokio::sync::RwLock::new(()),
            notifier,
        }
    }

    /// Emits the notification of a change to `bucket`/`key`, with the object's size and
    /// ETag as they are now (looked up for creations). Called with the key's write lock
    /// held, so one object's events are queued in the order of its changes.
    async fn notify<T>(&self, req: &S3Request<T>, name: &'static str, bucket: &str, key: &str) {
        let (size, etag) = if name.starts_with("ObjectCreated") {
            match self.head(req, bucket, key).await {
                Some(meta) => meta,
                None => return,
            }
        } else {
            (0, String::new())
        };
        self.notifier.emit(&ObjectEvent {
            name,
            bucket,
            key,
            size,
            etag: &etag,
        });
    }

    /// Size and ETag of an object, if it exists.
    async fn head<T>(&self, req: &S3Request<T>, bucket: &str, key: &str) -> Option<(u64, String)> {
        let out = self
            .fs
            .head_object(head_request(req, bucket, key.to_owned()))
            .await
            .ok()?
            .output;
        let size = out
            .content_length
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0);
        Some((
            size,
            out.e_tag.map(|e| e.value().to_owned()).unwrap_or_default(),
        ))
    }

    /// Fills the ETag of listed objects, which s3s-fs leaves out.
    async fn fill_etags<T>(&self, req: &S3Request<T>, bucket: &str, objects: &mut [Object]) {
        for object in objects.iter_mut().filter(|o| o.e_tag.is_none()) {
            let Some(key) = object.key.clone() else {
                continue;
            };
            // An object deleted since the directory scan just keeps no ETag.
            if let Ok(resp) = self.fs.head_object(head_request(req, bucket, key)).await {
                object.e_tag = resp.output.e_tag;
            }
        }
    }
}

/// A HEAD of `bucket`/`key` made on behalf of `req` (same caller, same signature
/// context), for what the store asks s3s-fs itself.
fn head_request<T>(req: &S3Request<T>, bucket: &str, key: String) -> S3Request<HeadObjectInput> {
    S3Request {
        input: HeadObjectInput {
            bucket: bucket.to_owned(),
            key,
            ..Default::default()
        },
        method: hyper::Method::HEAD,
        uri: req.uri.clone(),
        headers: HeaderMap::new(),
        extensions: hyper::http::Extensions::new(),
        credentials: req.credentials.clone(),
        region: req.region.clone(),
        service: req.service.clone(),
        trailing_headers: None,
    }
}

#[async_trait::async_trait]
impl S3 for Store {
    // --- plain delegation -------------------------------------------------

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.fs.delete_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.fs.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.fs.upload_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.fs.upload_part_copy(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.fs.list_parts(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.fs.abort_multipart_upload(req).await
    }

    // --- writes: serialized per key ---------------------------------------

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let _guard = self
            .locks
            .lock(&[(&req.input.bucket, &req.input.key)])
            .await;
        let _sharing = self.isolation.read().await;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let shell = shell(&req);
        let resp = self.fs.put_object(req).await?;
        self.notify(&shell, "ObjectCreated:Put", &bucket, &key)
            .await;
        Ok(resp)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let _guard = self
            .locks
            .lock(&[(&req.input.bucket, &req.input.key)])
            .await;
        let _sharing = self.isolation.read().await;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let shell = shell(&req);
        let resp = self.fs.complete_multipart_upload(req).await?;
        self.notify(
            &shell,
            "ObjectCreated:CompleteMultipartUpload",
            &bucket,
            &key,
        )
        .await;
        Ok(resp)
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let dst = (req.input.bucket.as_str(), req.input.key.as_str());
        let _guard = match &req.input.copy_source {
            CopySource::Bucket { bucket, key, .. } => self.locks.lock(&[dst, (bucket, key)]).await,
            _ => self.locks.lock(&[dst]).await,
        };
        let _sharing = self.isolation.read().await;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let shell = shell(&req);
        let resp = self.fs.copy_object(req).await?;
        self.notify(&shell, "ObjectCreated:Copy", &bucket, &key)
            .await;
        Ok(resp)
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let _guard = self
            .locks
            .lock(&[(&req.input.bucket, &req.input.key)])
            .await;
        let _changing = self.isolation.write().await;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let shell = shell(&req);
        let resp = self.fs.delete_object(req).await?;
        self.notify(&shell, "ObjectRemoved:Delete", &bucket, &key)
            .await;
        Ok(resp)
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let bucket = req.input.bucket.as_str();
        let keys: Vec<(&str, &str)> = req
            .input
            .delete
            .objects
            .iter()
            .map(|o| (bucket, o.key.as_str()))
            .collect();
        let _guard = self.locks.lock(&keys).await;
        let _changing = self.isolation.write().await;
        let bucket = req.input.bucket.clone();
        let shell = shell(&req);
        let resp = self.fs.delete_objects(req).await?;
        for deleted in resp.output.deleted.iter().flatten() {
            if let Some(key) = &deleted.key {
                self.notify(&shell, "ObjectRemoved:Delete", &bucket, key)
                    .await;
            }
        }
        Ok(resp)
    }

    // --- reads: conditional requests ----------------------------------------

    async fn head_object(
        &self,
        mut req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let cond = take_preconditions!(req.input);
        let resp = {
            let _reading = self.isolation.read().await;
            self.fs.head_object(req).await?
        };
        cond.check(
            resp.output.e_tag.as_ref(),
            resp.output.last_modified.as_ref(),
        )?;
        Ok(resp)
    }

    async fn get_object(
        &self,
        mut req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let cond = take_preconditions!(req.input);
        let resp = {
            let _reading = self.isolation.read().await;
            self.fs.get_object(req).await?
        };
        // On failure the opened body stream is just dropped.
        cond.check(
            resp.output.e_tag.as_ref(),
            resp.output.last_modified.as_ref(),
        )?;
        Ok(resp)
    }

    // --- listings ---------------------------------------------------------

    async fn list_objects_v2(
        &self,
        mut req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        req.input.max_keys = Some(req.input.max_keys.unwrap_or(MAX_KEYS).clamp(0, MAX_KEYS));
        let bucket = req.input.bucket.clone();
        let _reading = self.isolation.read().await;
        let mut resp = self.fs.list_objects_v2(req.clone()).await?;
        let out = &mut resp.output;
        if let Some(objects) = out.contents.as_deref_mut() {
            self.fill_etags(&req, &bucket, objects).await;
        }
        url_encode_listing(
            out.encoding_type.as_ref(),
            out.contents.as_deref_mut(),
            out.common_prefixes.as_deref_mut(),
            [&mut out.prefix, &mut out.delimiter, &mut out.start_after],
        );
        Ok(resp)
    }

    async fn list_objects(
        &self,
        mut req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        req.input.max_keys = Some(req.input.max_keys.unwrap_or(MAX_KEYS).clamp(0, MAX_KEYS));
        let bucket = req.input.bucket.clone();
        let marker = req.input.marker.clone();
        let mut resp = self.fs.list_objects(req.clone()).await?;
        let out = &mut resp.output;
        out.marker = marker;
        if let Some(objects) = out.contents.as_deref_mut() {
            self.fill_etags(&req, &bucket, objects).await;
        }
        url_encode_listing(
            out.encoding_type.as_ref(),
            out.contents.as_deref_mut(),
            out.common_prefixes.as_deref_mut(),
            [
                &mut out.prefix,
                &mut out.delimiter,
                &mut out.marker,
                &mut out.next_marker,
            ],
        );
        Ok(resp)
    }
}

/// What a later lookup needs of a request (its URI, credentials, region) without its
/// input or body, which the operation consumes.
fn shell<T>(req: &S3Request<T>) -> S3Request<()> {
    S3Request {
        input: (),
        method: req.method.clone(),
        uri: req.uri.clone(),
        headers: HeaderMap::new(),
        extensions: hyper::http::Extensions::new(),
        credentials: req.credentials.clone(),
        region: req.region.clone(),
        service: req.service.clone(),
        trailing_headers: None,
    }
}

// --- per-key locks ---------------------------------------------------------

/// Striped mutexes: a write holds the stripe of its key for its whole
/// duration (including the upload of the body), so the precondition check
/// and the commit of a conditional write cannot interleave with another
/// write of the same key. Reads never lock.
struct KeyLocks {
    stripes: Box<[Mutex<()>]>,
    hasher: std::hash::RandomState,
}

impl KeyLocks {
    const STRIPES: usize = 256;

    fn new() -> Self {
        Self {
            stripes: (0..Self::STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// Locks the stripes of all `keys`, in index order so that two writers
    /// needing several stripes cannot deadlock.
    async fn lock(&self, keys: &[(&str, &str)]) -> Vec<MutexGuard<'_, ()>> {
        let mut idx: Vec<usize> = keys
            .iter()
            .map(|k| usize::try_from(self.hasher.hash_one(k) % Self::STRIPES as u64).unwrap_or(0))
            .collect();
        idx.sort_unstable();
        idx.dedup();
        let mut guards = Vec::with_capacity(idx.len());
        for i in idx {
            guards.push(self.stripes[i].lock().await);
        }
        guards
    }
}
