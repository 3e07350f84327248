//! Seeds and inspects buckets with an S3 client that is not the project's own signer
//! (rusty-s3 presigned URLs sent with reqwest), so a signing bug in the service cannot
//! hide itself.

use std::time::Duration;

use rusty_s3::actions::ListObjectsV2;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

/// Lifetime of the URLs this client signs for itself.
const SIGN_FOR: Duration = Duration::from_secs(600);

/// Path-style S3 requests at one endpoint with one set of credentials.
#[derive(Clone)]
pub struct Seeder {
    endpoint: url::Url,
    region: String,
    creds: Credentials,
    http: reqwest::Client,
}

impl Seeder {
    /// The caller brings the HTTP client: the e2e suite wants a timeout on a real
    /// network, the tests none (a fault proxy may stall a request on purpose).
    pub fn new(
        endpoint: &str,
        region: &str,
        creds: Credentials,
        http: reqwest::Client,
    ) -> Result<Seeder, String> {
        let endpoint = endpoint
            .parse()
            .map_err(|e| format!("S3 endpoint {endpoint:?} is not a URL: {e}"))?;
        Ok(Seeder {
            endpoint,
            region: region.to_owned(),
            creds,
            http,
        })
    }

    /// The bucket at this endpoint, for rusty-s3 actions.
    pub fn bucket(&self, name: &str) -> Result<Bucket, String> {
        Bucket::new(
            self.endpoint.clone(),
            UrlStyle::Path,
            name.to_owned(),
            self.region.clone(),
        )
        .map_err(|e| format!("bucket {name:?}: {e}"))
    }

    /// This client's credentials, for rusty-s3 actions.
    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    /// The HTTP client the signed URLs are sent with.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub async fn put(&self, bucket: &str, key: &str, body: &[u8]) -> Result<(), String> {
        self.put_typed(bucket, key, body, None).await
    }

    /// PUT with a `Content-Type` (what a browser is then served, e.g. `text/plain` to
    /// show a file rather than download it).
    pub async fn put_typed(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        content_type: Option<&str>,
    ) -> Result<(), String> {
        let url = self
            .bucket(bucket)?
            .put_object(Some(&self.creds), key)
            .sign(SIGN_FOR);
        let mut req = self.http.put(url).body(body.to_vec());
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        let r = req
            .send()
            .await
            .map_err(|e| format!("PUT {bucket}/{key}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("PUT {bucket}/{key}: {}", r.status()));
        }
        Ok(())
    }

    /// The object's bytes, or `None` if it does not exist.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        let url = self
            .bucket(bucket)?
            .get_object(Some(&self.creds), key)
            .sign(SIGN_FOR);
        let r = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {bucket}/{key}: {e}"))?;
        if r.status() == 404 {
            return Ok(None);
        }
        if !r.status().is_success() {
            return Err(format!("GET {bucket}/{key}: {}", r.status()));
        }
        let body = r
            .bytes()
            .await
            .map_err(|e| format!("GET {bucket}/{key} body: {e}"))?;
        Ok(Some(body.to_vec()))
    }

    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), String> {
        let url = self
            .bucket(bucket)?
            .delete_object(Some(&self.creds), key)
            .sign(SIGN_FOR);
        let r = self
            .http
            .delete(url)
            .send()
            .await
            .map_err(|e| format!("DELETE {bucket}/{key}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("DELETE {bucket}/{key}: {}", r.status()));
        }
        Ok(())
    }

    /// Moves an object behind the service's back: get, put, delete.
    pub async fn mv(&self, from: &str, to: &str, key: &str) -> Result<(), String> {
        let body = self
            .get(from, key)
            .await?
            .ok_or_else(|| format!("move {from}/{key}: no such object"))?;
        self.put(to, key, &body).await?;
        self.delete(from, key).await
    }

    /// An object parsed as JSON (a manifest, say), or `None` if there is none.
    pub async fn get_json(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, String> {
        match self.get(bucket, key).await? {
            None => Ok(None),
            Some(body) => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| format!("{bucket}/{key} is not JSON: {e}")),
        }
    }

    /// Every key in `bucket` that starts with `prefix`, all pages of the listing.
    pub async fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, String> {
        let b = self.bucket(bucket)?;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = b.list_objects_v2(Some(&self.creds));
            action.with_prefix(prefix);
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let url = action.sign(SIGN_FOR);
            let r = self
                .http
                .get(url)
                .send()
                .await
                .map_err(|e| format!("LIST {bucket}: {e}"))?;
            if !r.status().is_success() {
                return Err(format!("LIST {bucket}: {}", r.status()));
            }
            let text = r
                .text()
                .await
                .map_err(|e| format!("LIST {bucket} body: {e}"))?;
            let page = ListObjectsV2::parse_response(&text)
                .map_err(|e| format!("LIST {bucket}: the listing does not parse: {e}"))?;
            out.extend(page.contents.into_iter().map(|c| c.key));
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }
}
