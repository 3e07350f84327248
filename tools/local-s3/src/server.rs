//! Listener, connection handling and lifecycle of the embedded server.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s_fs::FileSystem;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::access::PublicReadAccess;
use crate::keys::KeyAuth;
use crate::notify::Notifier;
use crate::stats::Stats;
use crate::store::Store;
use crate::{Config, TlsIdentity};

/// A running local S3 server. Dropping it stops the server too (without
/// waiting); use [`LocalS3::stop`] to wait until the port is free again.
#[derive(Debug)]
pub struct LocalS3 {
    addr: SocketAddr,
    stats: Stats,
    notifier: Notifier,
    https: bool,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl LocalS3 {
    /// Prepares `data_dir` and the buckets, binds `addr` and spawns the
    /// server on the current tokio runtime. Returns once the socket listens.
    pub async fn start(cfg: Config) -> io::Result<LocalS3> {
        tokio::fs::create_dir_all(&cfg.data_dir).await?;
        // s3s-fs represents a bucket as a directory of the root.
        for bucket in &cfg.buckets {
            if !s3s::path::check_bucket_name(bucket) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("invalid bucket name {bucket:?}"),
                ));
            }
            tokio::fs::create_dir_all(cfg.data_dir.join(bucket)).await?;
        }
        let fs = FileSystem::new(&cfg.data_dir).map_err(|e| {
            io::Error::other(format!("cannot use {}: {e:?}", cfg.data_dir.display()))
        })?;

        let acceptor = cfg.tls.as_ref().map(tls_acceptor).transpose()?;
        let stats = Stats::default();
        let notifier = Notifier::start(cfg.notify.clone(), &cfg.access_key);
        let mut builder = S3ServiceBuilder::new(Store::new(fs, notifier.clone()));
        builder.set_auth(KeyAuth {
            access_key: cfg.access_key,
            secret_key: cfg.secret_key,
            keys: cfg.keys.clone(),
        });
        builder.set_access(PublicReadAccess {
            public_buckets: cfg.public_buckets.into_iter().collect(),
            stats: stats.clone(),
            keys: cfg.keys,
        });
        let service = builder.build();

        let socket = if cfg.addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // Lets a restarted server bind the port of a stopped one at once,
        // although its closed connections linger in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        socket.bind(cfg.addr)?;
        let listener = socket.listen(1024)?;
        let addr = listener.local_addr()?;

        let (shutdown, shutdown_rx) = oneshot::channel();
        let https = acceptor.is_some();
        let task = tokio::spawn(accept_loop(
            listener,
            service,
            stats.clone(),
            acceptor,
            shutdown_rx,
        ));
        Ok(LocalS3 {
            addr,
            stats,
            notifier,
            https,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// The bound address (with the actual port when started on port 0).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL for path-style requests, e.g. `http://127.0.0.1:9000`.
    /// A wildcard bind address is replaced by loopback, which is reachable.
    #[must_use]
    pub fn endpoint(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                Ipv4Addr::LOCALHOST.into()
            } else {
                Ipv6Addr::LOCALHOST.into()
            });
        }
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{addr}")
    }

    /// The bucket notification emitter: set its target, drop or delay events.
    #[must_use]
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// Request counters of this server.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Stops accepting, aborts every open connection (in-flight requests
    /// included, like a crashed S3 would) and returns once the listening
    /// socket and all connections are closed.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            // Only fails if the accept loop panicked, which leaves nothing to clean up.
            let _ = task.await;
        }
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A TLS server configuration from PEM (ring provider: the one already in the tree).
fn tls_acceptor(id: &TlsIdentity) -> io::Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}"))
    };
    let certs = CertificateDer::pem_slice_iter(&id.cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("certificate chain", &e))?;
    let key = PrivateKeyDer::from_pem_slice(&id.key_pem).map_err(|e| bad("private key", &e))?;
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad("TLS versions", &e))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| bad("certificate", &e))?;
    Ok(TlsAcceptor::from(std::sync::Arc::new(config)))
}

async fn accept_loop(
    listener: TcpListener,
    service: S3Service,
    stats: Stats,
    acceptor: Option<TlsAcceptor>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            // Fires on `send` and when the sender is dropped with `LocalS3`.
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Small responses (HEAD, errors) would otherwise wait for delayed ACKs.
                    let _ = stream.set_nodelay(true);
                    let (service, stats) = (service.clone(), stats.clone());
                    match acceptor.clone() {
                        None => {
                            conns.spawn(serve_connection(stream, service, stats));
                        }
                        Some(acceptor) => {
                            conns.spawn(async move {
                                // A failed handshake (untrusted certificate on the
                                // client side, …) just closes the connection.
                                if let Ok(tls) = acceptor.accept(stream).await {
                                    serve_connection(tls, service, stats).await;
                                }
                            });
                        }
                    }
                }
                // E.g. out of file descriptors: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished connections so the set does not grow forever.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    conns.shutdown().await;
}

async fn serve_connection(
    stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    service: S3Service,
    stats: Stats,
) {
    let svc = hyper::service::service_fn(move |req| {
        stats.record_http();
        hyper::service::Service::call(&service, req)
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's HTTP/1 header-read timeout needs a timer to be enforced.
    builder.http1().timer(TokioTimer::new());
    // Errors here are per-connection (client went away, bad request line).
    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
}
