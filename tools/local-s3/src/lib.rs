//! An embedded, real S3 server for tests, demos and benchmarks.
//!
//! Built on [`s3s`] (HTTP + SigV4 verification) and [`s3s_fs`] (objects are
//! plain files under `data_dir/<bucket>/<key>`). Signed requests (header
//! signatures and presigned URLs) may do anything; unsigned requests may only
//! `GetObject`/`HeadObject` in [`Config::public_buckets`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let mut cfg = local_s3::Config::new("/tmp/s3-data", "minioadmin", "minioadmin");
//! cfg.buckets = vec!["public-bucket".into(), "private-bucket".into()];
//! cfg.public_buckets = vec!["public-bucket".into()];
//! let s3 = local_s3::LocalS3::start(cfg).await?;
//! println!("S3 at {}", s3.endpoint());
//! s3.stop().await;
//! # Ok(())
//! # }
//! ```

mod access;
mod compat;
mod keys;
mod notify;
mod server;
mod stats;
mod store;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

pub use keys::Keys;
pub use notify::{Delivery, Notifier, NotifyCounts, NotifyTarget};
pub use server::LocalS3;
pub use stats::Stats;

/// Settings of a [`LocalS3`].
#[derive(Clone)]
pub struct Config {
    /// Address to bind, e.g. `127.0.0.1:0` for a free port.
    pub addr: SocketAddr,
    /// Root directory of the stored objects; created if missing.
    pub data_dir: PathBuf,
    /// The only accepted access key.
    pub access_key: String,
    /// Its secret key.
    pub secret_key: String,
    /// Buckets created at start if missing.
    pub buckets: Vec<String>,
    /// Buckets whose objects anonymous clients may GET and HEAD (but not list).
    /// Listing a bucket here does not create it.
    pub public_buckets: Vec<String>,
    /// Further access keys, e.g. temporary credentials with session tokens; may be
    /// changed while the server runs.
    pub keys: Keys,
    /// Serve HTTPS with this certificate instead of plain HTTP.
    pub tls: Option<TlsIdentity>,
    /// Send MinIO-style bucket notifications there (see [`Notifier`]; the target can
    /// also be set or changed while the server runs).
    pub notify: Option<NotifyTarget>,
}

/// A certificate chain and its private key, both PEM.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert_chain_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl Config {
    /// `127.0.0.1:0`, no buckets.
    pub fn new(
        data_dir: impl Into<PathBuf>,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            data_dir: data_dir.into(),
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            buckets: Vec::new(),
            public_buckets: Vec::new(),
            keys: Keys::default(),
            tls: None,
            notify: None,
        }
    }
}

// Hand-written so that the secret key never ends up in logs.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("buckets", &self.buckets)
            .field("public_buckets", &self.public_buckets)
            .field("keys", &self.keys)
            .field("tls", &self.tls.is_some())
            .field("notify", &self.notify)
            .finish()
    }
}
