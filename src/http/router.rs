//! Which endpoint a path names. Pure: a function of the path and the configured buckets.

use super::decode::{Reason, percent_decode, validate_key};
use crate::config::BucketConfig;
use crate::config::BucketId;
use crate::metrics::EndpointKind;

/// The bucket a download route names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketRef {
    /// A configured bucket, by index.
    Named(BucketId),
    /// `/public/<key>`: whichever public bucket holds the key.
    AnyPublic,
    /// `/private/<key>`: whichever private bucket holds the key.
    AnyPrivate,
}

impl BucketRef {
    /// Whether a file registered in `bucket` is what this route names.
    pub fn accepts(self, bucket: BucketId, buckets: &[BucketConfig]) -> bool {
        match self {
            BucketRef::Named(b) => b == bucket,
            BucketRef::AnyPublic => buckets[bucket].public,
            BucketRef::AnyPrivate => !buckets[bucket].public,
        }
    }
}

/// What a request path names, before the method or the API key is looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/status`.
    Status,
    /// `/readiness` (and the contract's spelling `/redines`).
    Readiness,
    /// `/healthcheck` (and the contract's spelling `/helthcheck`).
    Health,
    /// `/list`.
    List,
    /// `/update?filename=<key>`: confirm or find one file in S3 and register it.
    Update,
    /// `POST /relocate?filename=<key>`: look for a file in every bucket again.
    Relocate,
    /// `/metrics`.
    Metrics,
    /// `/browse/<folder>`: the folder as decoded (not yet ending in `/`, perhaps).
    Browse {
        /// Percent-decoded, without the leading `/`.
        folder: String,
    },
    /// `POST /events`: bucket notifications (404 unless enabled).
    Events,
    /// `/<bucket>/<key>`, or `/public/<key>` and `/private/<key>`.
    Download {
        /// The bucket, or the kind of bucket, the first segment names.
        bucket: BucketRef,
        /// Percent-decoded and valid by the contract's key rules.
        key: String,
    },
    /// A download route with a key the contract refuses.
    BadKey(Reason),
    /// Anything else: 404.
    NotFound,
}

impl Route {
    /// The endpoint this route is counted under in metrics.
    pub fn kind(&self) -> EndpointKind {
        match self {
            Route::Status => EndpointKind::Status,
            Route::Readiness | Route::Health => EndpointKind::Probe,
            Route::List => EndpointKind::List,
            Route::Update => EndpointKind::Update,
            Route::Relocate => EndpointKind::Relocate,
            Route::Metrics => EndpointKind::Metrics,
            Route::Browse { .. } => EndpointKind::Browse,
            Route::Events => EndpointKind::Events,
            Route::Download { .. } | Route::BadKey(_) => EndpointKind::Download,
            Route::NotFound => EndpointKind::Other,
        }
    }
}

/// The route for `path` (no query string): fixed endpoints first, then `/browse/…`
/// unless a bucket is named `browse`, then downloads, where a configured bucket's name
/// wins over `public` and `private`.
pub fn route(path: &str, buckets: &[BucketConfig]) -> Route {
    match path {
        "/status" => return Route::Status,
        "/redines" | "/readiness" => return Route::Readiness,
        "/helthcheck" | "/healthcheck" => return Route::Health,
        "/list" => return Route::List,
        "/update" => return Route::Update,
        "/relocate" => return Route::Relocate,
        "/metrics" => return Route::Metrics,
        "/events" => return Route::Events,
        _ => {}
    }
    // A bucket literally named `browse` keeps its download routes (they are the
    // contract; the page is an addition).
    let browse = path
        .strip_prefix("/browse")
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .filter(|_| !buckets.iter().any(|b| b.name == "browse"));
    if let Some(rest) = browse {
        return match percent_decode(rest.strip_prefix('/').unwrap_or(rest), false) {
            Ok(folder) => Route::Browse {
                folder: folder.into_owned(),
            },
            Err(reason) => Route::BadKey(reason),
        };
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Route::NotFound;
    };
    let Some((segment, raw_key)) = rest.split_once('/') else {
        return Route::NotFound;
    };
    let Ok(segment) = percent_decode(segment, false) else {
        return Route::NotFound;
    };
    // A bucket literally named `public` or `private` is matched by name first.
    let bucket = match buckets.iter().position(|b| b.name == segment) {
        Some(i) => BucketRef::Named(BucketId::new(i)),
        None if segment == "public" => BucketRef::AnyPublic,
        None if segment == "private" => BucketRef::AnyPrivate,
        None => return Route::NotFound,
    };
    let key = match percent_decode(raw_key, false) {
        Ok(k) => k.into_owned(),
        Err(reason) => return Route::BadKey(reason),
    };
    if let Err(reason) = validate_key(&key) {
        return Route::BadKey(reason);
    }
    Route::Download { bucket, key }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets() -> Vec<BucketConfig> {
        ["public-bucket", "private-bucket", "private"]
            .iter()
            .enumerate()
            .map(|(i, n)| BucketConfig {
                name: n.to_string(),
                manifest_key: "m".into(),
                public: i == 0,
            })
            .collect()
    }

    #[test]
    fn fixed_endpoints_and_aliases() {
        let b = buckets();
        assert_eq!(route("/redines", &b), Route::Readiness);
        assert_eq!(route("/helthcheck", &b), Route::Health);
        assert_eq!(route("/nope", &b), Route::NotFound);
        assert_eq!(route("/unknown-bucket/k", &b), Route::NotFound);
        assert_eq!(
            route("/public/a%20b+c.txt", &b),
            Route::Download {
                bucket: BucketRef::AnyPublic,
                key: "a b+c.txt".into()
            }
        );
        // A bucket named `private` wins over the alias.
        assert_eq!(
            route("/private/k", &b),
            Route::Download {
                bucket: BucketRef::Named(BucketId::new(2)),
                key: "k".into()
            }
        );
        assert_eq!(
            route("/private-bucket/dir/x/y.bin", &b),
            Route::Download {
                bucket: BucketRef::Named(BucketId::new(1)),
                key: "dir/x/y.bin".into()
            }
        );
    }

    #[test]
    fn bad_keys_never_become_downloads() {
        let b = buckets();
        for path in [
            "/public-bucket/",
            "/public-bucket/../private-bucket/x",
            "/public-bucket/%2e%2e/private-bucket/x",
            "/public-bucket/./x",
            "/public-bucket/a%00b",
            "/public-bucket/%zz",
            "/public-bucket/%ff",
        ] {
            assert!(matches!(route(path, &b), Route::BadKey(_)), "{path}");
        }
    }

    #[test]
    fn browse_pages_unless_a_bucket_is_named_browse() {
        let b = buckets();
        let folder = |f: &str| Route::Browse { folder: f.into() };
        assert_eq!(route("/browse", &b), folder(""));
        assert_eq!(route("/browse/", &b), folder(""));
        assert_eq!(route("/browse/a%20b/c/", &b), folder("a b/c/"));
        assert_eq!(route("/browsers/x", &b), Route::NotFound);
        assert!(matches!(route("/browse/%zz/", &b), Route::BadKey(_)));
        let mut named = b.clone();
        named.push(BucketConfig {
            name: "browse".into(),
            manifest_key: "m".into(),
            public: true,
        });
        assert_eq!(
            route("/browse/k.txt", &named),
            Route::Download {
                bucket: BucketRef::Named(BucketId::new(3)),
                key: "k.txt".into()
            }
        );
    }

    #[test]
    fn aliases_accept_by_type() {
        let b = buckets();
        assert!(BucketRef::AnyPublic.accepts(BucketId::new(0), &b));
        assert!(!BucketRef::AnyPublic.accepts(BucketId::new(1), &b));
        assert!(BucketRef::AnyPrivate.accepts(BucketId::new(1), &b));
        assert!(!BucketRef::Named(BucketId::new(1)).accepts(BucketId::new(2), &b));
    }
}
