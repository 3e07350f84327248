//! Seeds and inspects the buckets with an S3 client that is not the project's own
//! signer (rusty-s3 presigned URLs sent with reqwest), so a signing bug in the service
//! cannot hide itself.

use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

/// Lifetime of the URLs this client signs for itself.
const SIGN_FOR: Duration = Duration::from_secs(600);

pub struct Seeder {
    endpoint: url::Url,
    region: String,
    creds: Credentials,
    http: reqwest::Client,
}

impl Seeder {
    pub fn new(
        endpoint: &str,
        region: &str,
        access_key: &str,
        secret_key: &str,
        session_token: Option<&str>,
    ) -> Result<Seeder, String> {
        let endpoint = endpoint
            .parse()
            .map_err(|e| format!("E2E_S3_ENDPOINT {endpoint:?} is not a URL: {e}"))?;
        let creds = match session_token {
            Some(t) => Credentials::new_with_token(access_key, secret_key, t),
            None => Credentials::new(access_key, secret_key),
        };
        Ok(Seeder {
            endpoint,
            region: region.to_owned(),
            creds,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| format!("HTTP client: {e}"))?,
        })
    }

    fn bucket(&self, name: &str) -> Result<Bucket, String> {
        Bucket::new(
            self.endpoint.clone(),
            UrlStyle::Path,
            name.to_owned(),
            self.region.clone(),
        )
        .map_err(|e| format!("bucket {name:?}: {e}"))
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

    /// `bucket`'s manifest at `manifest_key`, parsed, or `None` if there is none.
    pub async fn manifest(
        &self,
        bucket: &str,
        manifest_key: &str,
    ) -> Result<Option<serde_json::Value>, String> {
        match self.get(bucket, manifest_key).await? {
            None => Ok(None),
            Some(body) => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| format!("manifest {bucket}/{manifest_key} is not JSON: {e}")),
        }
    }
}

/// The keys of a manifest's entries (`files` array, or a bare array).
pub fn manifest_keys(manifest: Option<&serde_json::Value>) -> Vec<String> {
    let Some(m) = manifest else {
        return Vec::new();
    };
    let files = if m.is_array() { m } else { &m["files"] };
    files
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["key"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Percent-encodes everything outside the unreserved set `A-Z a-z 0-9 - . _ ~`,
/// keeping `/` when `keep_slash` (an object key in a path).
pub fn percent_encode(input: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len() * 3 / 2);
    for b in input.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/');
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A key as a path: each segment percent-encoded.
pub fn path_encode(key: &str) -> String {
    percent_encode(key, true)
}

/// `application/x-www-form-urlencoded` (a space is `+`), for query values.
pub fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(path_encode("a b/c+d%25~é"), "a%20b/c%2Bd%2525~%C3%A9");
        assert_eq!(percent_encode("a/b", false), "a%2Fb");
        assert_eq!(form_encode("a b+c/%"), "a+b%2Bc%2F%25");
    }
}
