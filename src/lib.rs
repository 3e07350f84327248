//! parparchik: stable download routes for files in S3 / MinIO buckets.
//!
//! Layout: `config` (environment), `sigv4` (signing, sans-IO), `s3` (client and
//! addressing), `registry` (in-memory state, manifests, reconciliation, all pure),
//! `coordinator` (the I/O between registry and S3: locate, sync, persist, start-up),
//! `http` (routing and handlers on a bare hyper loop), `metrics`, `log`.

#![warn(missing_docs)]

pub mod app;
pub(crate) mod browse;
pub mod check;
pub mod cli;
pub mod config;
pub mod coordinator;
pub(crate) mod credentials;
pub(crate) mod events;
pub mod http;
pub mod join;
pub(crate) mod keycache;
pub mod log;
pub(crate) mod memory;
pub mod metrics;
pub mod registry;
pub mod s3;
pub mod sigv4;
pub mod timefmt;
pub(crate) mod tls;

/// Runs the service on `listener` until `shutdown` resolves: the registry is rebuilt in
/// the background (readiness flips when done) while requests are already answered.
pub async fn run(
    app: std::sync::Arc<app::App>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let rebuild = tokio::spawn(coordinator::startup::rebuild_until_ready(
        std::sync::Arc::clone(&app),
    ));
    let credentials = tokio::spawn(credentials::refresh::run(app.credentials.clone()));
    http::server::serve(app, listener, shutdown).await;
    rebuild.abort();
    credentials.abort();
    log::flush();
}
