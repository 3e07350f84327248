//! Addressing: which URL and `Host` reach a bucket or an object, for the service's own
//! calls (path style against `S3_ENDPOINT`, virtual-hosted for AWS) and for the URLs
//! handed to clients (public URL, presigned URL).

use crate::sigv4::encode::push_encoded_path;

/// How a custom endpoint is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`.
    Http,
    /// `https://`.
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// An S3 endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A custom server (MinIO, …): path-style URLs. `authority` is `host[:port]`, without
    /// a default port, exactly as it goes into the `Host` header.
    Custom {
        /// `http` or `https`.
        scheme: Scheme,
        /// `host[:port]`.
        authority: String,
    },
    /// AWS itself: virtual-hosted style, except for bucket names with dots (their
    /// virtual-hosted names would not match the wildcard TLS certificate).
    Aws {
        /// The region in the host names (`s3.<region>.amazonaws.com`).
        region: String,
    },
}

/// Where one request goes: URL to send to, `Host` to sign, decoded path to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `scheme://authority` without a trailing slash.
    pub origin: String,
    /// The `Host` header to send and sign.
    pub host: String,
    /// Decoded resource path (`/bucket/a b.txt`); the signer encodes it.
    pub path: String,
}

impl Target {
    /// The URL with the path encoded exactly as SigV4 (S3 mode) canonicalises it, so the
    /// request sent is the request signed. `query` must already be encoded.
    pub fn url(&self, query: &str) -> String {
        let mut url =
            String::with_capacity(self.origin.len() + self.path.len() * 2 + query.len() + 1);
        url.push_str(&self.origin);
        push_encoded_path(&mut url, &self.path);
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }
}

impl Endpoint {
    /// AWS S3 in `region`.
    pub fn aws(region: &str) -> Endpoint {
        Endpoint::Aws {
            region: region.to_owned(),
        }
    }

    /// `host:port` (meaning `http://`) or `http(s)://host[:port][/]`.
    pub fn parse(value: &str) -> Result<Endpoint, String> {
        let value = value.trim();
        let (scheme, rest) = if let Some(rest) = value.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else if let Some(rest) = value.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else if value.contains("://") {
            return Err(format!(
                "{value:?}: only http:// and https:// endpoints are supported"
            ));
        } else {
            (Scheme::Http, value)
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() {
            return Err(format!("{value:?} has no host"));
        }
        if authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(format!(
                "{value:?}: expected host:port or scheme://host[:port], without path, query or user"
            ));
        }
        let (host, port) =
            split_port(authority).ok_or_else(|| format!("{value:?} has an invalid port"))?;
        if host.is_empty() {
            return Err(format!("{value:?} has no host"));
        }
        let default_port = match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let authority = match port {
            Some(p) if p != default_port => format!("{host}:{p}"),
            _ => host.to_owned(),
        };
        Ok(Endpoint::Custom { scheme, authority })
    }

    fn bucket_is_virtual_hostable(bucket: &str) -> bool {
        !bucket.contains('.')
    }

    /// Target for an object request (or a bucket request when `key` is empty).
    pub fn target(&self, bucket: &str, key: &str) -> Target {
        match self {
            Endpoint::Custom { scheme, authority } => Target {
                origin: format!("{}://{authority}", scheme.as_str()),
                host: authority.clone(),
                path: path_style(bucket, key),
            },
            Endpoint::Aws { region } if Self::bucket_is_virtual_hostable(bucket) => {
                let host = format!("{bucket}.s3.{region}.amazonaws.com");
                Target {
                    origin: format!("https://{host}"),
                    host,
                    path: format!("/{key}"),
                }
            }
            Endpoint::Aws { region } => {
                let host = format!("s3.{region}.amazonaws.com");
                Target {
                    origin: format!("https://{host}"),
                    host,
                    path: path_style(bucket, key),
                }
            }
        }
    }

    /// What `/status` and logs show.
    pub fn display(&self) -> String {
        match self {
            Endpoint::Custom { scheme, authority } => format!("{}://{authority}", scheme.as_str()),
            Endpoint::Aws { region } => format!("https://s3.{region}.amazonaws.com"),
        }
    }
}

fn path_style(bucket: &str, key: &str) -> String {
    let mut p = String::with_capacity(bucket.len() + key.len() + 2);
    p.push('/');
    p.push_str(bucket);
    if !key.is_empty() {
        p.push('/');
        p.push_str(key);
    }
    p
}

/// Splits `host[:port]`, IPv6 literals in brackets included.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &authority[..end + 2];
        return match &rest[end + 1..] {
            "" => Some((host, None)),
            p => Some((host, Some(p.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match authority.rsplit_once(':') {
        None => Some((authority, None)),
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_forms() {
        assert_eq!(
            Endpoint::parse("minio:9000").unwrap(),
            Endpoint::Custom {
                scheme: Scheme::Http,
                authority: "minio:9000".into()
            }
        );
        assert_eq!(
            Endpoint::parse("https://s3.example.com:443/").unwrap(),
            Endpoint::Custom {
                scheme: Scheme::Https,
                authority: "s3.example.com".into()
            }
        );
        assert_eq!(
            Endpoint::parse("http://[::1]:9000").unwrap(),
            Endpoint::Custom {
                scheme: Scheme::Http,
                authority: "[::1]:9000".into()
            }
        );
        for bad in [
            "ftp://x",
            "http://",
            "http://h:port",
            "http://h/path",
            "h:99999",
            ":9000",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn custom_endpoints_are_path_style_with_encoded_keys() {
        let e = Endpoint::parse("127.0.0.1:9000").unwrap();
        let t = e.target("public-bucket", "dir/a b+c.txt");
        assert_eq!(t.host, "127.0.0.1:9000");
        assert_eq!(t.path, "/public-bucket/dir/a b+c.txt");
        assert_eq!(
            t.url(""),
            "http://127.0.0.1:9000/public-bucket/dir/a%20b%2Bc.txt"
        );
        assert_eq!(
            e.target("b", "").url("list-type=2"),
            "http://127.0.0.1:9000/b?list-type=2"
        );
    }

    #[test]
    fn aws_is_virtual_hosted_unless_the_bucket_has_dots() {
        let e = Endpoint::aws("eu-west-1");
        assert_eq!(
            e.target("files", "x/y").url(""),
            "https://files.s3.eu-west-1.amazonaws.com/x/y"
        );
        assert_eq!(
            e.target("my.files", "x").url(""),
            "https://s3.eu-west-1.amazonaws.com/my.files/x"
        );
    }
}
