//! The `parparchik` binary: configuration, listener, background rebuild, signals.
//! `parparchik healthcheck` is a probe for container images without curl;
//! `parparchik check-config` checks the configuration and S3 ([`parparchik::check`]).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use parparchik::app::App;
use parparchik::cli::Command;
use parparchik::config::Config;
use parparchik::{info, warn};

/// Exits 0 when `/healthcheck` on the local port answers 200.
fn healthcheck() -> ExitCode {
    let port = std::env::var("PARPARCHIK_PORT")
        .ok()
        .and_then(|p| p.trim().parse::<u16>().ok())
        .unwrap_or(8080);
    let probe = || -> std::io::Result<bool> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 16];
        let n = s.read(&mut head)?;
        Ok(head[..n].starts_with(b"HTTP/1.1 200"))
    };
    match probe() {
        Ok(true) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

async fn shutdown_signal(app: Arc<App>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
                }
            }
            Err(e) => {
                warn!("cannot watch SIGTERM ({e}); only Ctrl-C will stop the service");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    app.begin_shutdown();
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parparchik::cli::parse(&args) {
        Ok(Command::Serve) => {}
        Ok(Command::Healthcheck) => return healthcheck(),
        Ok(Command::CheckConfig) => {
            let get = |name: &str| std::env::var(name).ok();
            let ok = parparchik::check::run(&get, &mut std::io::stdout().lock());
            return if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        Ok(Command::Help) => {
            print!("{}", parparchik::cli::help_text());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            print!("{}", parparchik::cli::version_text());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("parparchik: {e}");
            return ExitCode::from(2);
        }
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("parparchik: bad configuration: {e}");
            return ExitCode::from(2);
        }
    };
    parparchik::log::configure(config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("parparchik: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let addr = format!("{}:{}", config.host, config.port);
        let listener = match tokio::net::TcpListener::bind(&addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("parparchik: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let app = match App::new(config) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("parparchik: {e}");
                return ExitCode::FAILURE;
            }
        };
        let buckets: Vec<String> = app
            .config
            .buckets
            .iter()
            .map(|b| format!("{} ({})", b.name, b.bucket_type()))
            .collect();
        info!(
            "listening on {addr}; S3 endpoint {}; buckets {}",
            app.config.endpoint.display(),
            buckets.join(", ")
        );
        let shutdown = shutdown_signal(Arc::clone(&app));
        parparchik::run(app, listener, shutdown).await;
        info!("stopped");
        // Lines are written by a background thread; let it finish before exiting.
        parparchik::log::flush();
        ExitCode::SUCCESS
    })
}
