//! `local-s3`: serve a directory as S3 until Ctrl-C / SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use local_s3::{Config, LocalS3};

const USAGE: &str = "\
usage: local-s3 [--addr HOST:PORT] [--data DIR] [--bucket NAME[:public]]... [--notify URL]

  --addr    address to listen on (default 127.0.0.1:9000)
  --data    data directory, created if missing (default .devdata/s3)
  --bucket  bucket to create; ':public' allows anonymous GET/HEAD of its objects
            (default: public-bucket:public and private-bucket)
  --notify  POST MinIO-format bucket notifications of puts, copies and deletes to
            this URL (e.g. http://127.0.0.1:8080/events), with
            Authorization: Bearer $LOCAL_S3_NOTIFY_TOKEN when that is set

Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
(default minioadmin / minioadmin).";

#[derive(Debug)]
struct Args {
    addr: SocketAddr,
    data: PathBuf,
    /// (name, public)
    buckets: Vec<(String, bool)>,
    /// Where bucket notifications go.
    notify: Option<String>,
}

/// `Ok(None)` means help was asked for.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 9000)),
        data: PathBuf::from(".devdata/s3"),
        buckets: Vec::new(),
        notify: None,
    };
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg, None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        if !matches!(flag.as_str(), "--addr" | "--data" | "--bucket" | "--notify") {
            return Err(format!("unknown argument {flag:?}"));
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => {
                parsed.addr = value
                    .parse()
                    .map_err(|e| format!("bad --addr {value:?}: {e}"))?;
            }
            "--data" => parsed.data = PathBuf::from(value),
            "--notify" => {
                if !value.starts_with("http://") && !value.starts_with("https://") {
                    return Err(format!("bad --notify {value:?}: expected an http(s) URL"));
                }
                parsed.notify = Some(value);
            }
            _ => {
                let (name, public) = match value.split_once(':') {
                    None => (value.as_str(), false),
                    Some((name, "public")) => (name, true),
                    Some(_) => {
                        return Err(format!(
                            "bad --bucket {value:?}: expected NAME or NAME:public"
                        ));
                    }
                };
                if !s3s::path::check_bucket_name(name) {
                    return Err(format!(
                        "bad --bucket {value:?}: not a valid S3 bucket name"
                    ));
                }
                parsed.buckets.push((name.to_owned(), public));
            }
        }
    }
    if parsed.buckets.is_empty() {
        parsed.buckets = vec![
            ("public-bucket".to_owned(), true),
            ("private-bucket".to_owned(), false),
        ];
    }
    Ok(Some(parsed))
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("local-s3: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let mut cfg = Config::new(
        &args.data,
        env_or("AWS_ACCESS_KEY_ID", "minioadmin"),
        env_or("AWS_SECRET_ACCESS_KEY", "minioadmin"),
    );
    cfg.addr = args.addr;
    cfg.notify = args.notify.clone().map(|url| local_s3::NotifyTarget {
        url,
        token: std::env::var("LOCAL_S3_NOTIFY_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
    });
    for (name, public) in &args.buckets {
        if !cfg.buckets.contains(name) {
            cfg.buckets.push(name.clone());
        }
        if *public && !cfg.public_buckets.contains(name) {
            cfg.public_buckets.push(name.clone());
        }
    }
    let buckets: Vec<String> = cfg
        .buckets
        .iter()
        .map(|b| {
            if cfg.public_buckets.contains(b) {
                format!("{b} (public)")
            } else {
                b.clone()
            }
        })
        .collect();
    let access_key = cfg.access_key.clone();

    let s3 = match LocalS3::start(cfg).await {
        Ok(s3) => s3,
        Err(e) => {
            eprintln!(
                "local-s3: cannot start on {} with data {}: {e}",
                args.addr,
                args.data.display()
            );
            return ExitCode::FAILURE;
        }
    };
    println!(
        "local-s3: serving {} (access key {access_key}, data {}, buckets: {})",
        s3.endpoint(),
        args.data.display(),
        buckets.join(", ")
    );

    shutdown_signal().await;
    s3.stop().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn defaults() {
        let args = parse(&[]).unwrap().unwrap();
        assert_eq!(args.addr.to_string(), "127.0.0.1:9000");
        assert_eq!(args.data, PathBuf::from(".devdata/s3"));
        assert_eq!(
            args.buckets,
            [
                ("public-bucket".to_owned(), true),
                ("private-bucket".to_owned(), false)
            ]
        );
    }

    #[test]
    fn flags() {
        let args = parse(&[
            "--addr",
            "0.0.0.0:1234",
            "--data=/tmp/x",
            "--bucket",
            "pub-b:public",
            "--bucket=priv-b",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(args.addr.port(), 1234);
        assert_eq!(args.data, PathBuf::from("/tmp/x"));
        assert_eq!(
            args.buckets,
            [("pub-b".to_owned(), true), ("priv-b".to_owned(), false)]
        );
        assert!(parse(&["--help"]).unwrap().is_none());
        let args = parse(&["--notify", "http://127.0.0.1:8080/events"])
            .unwrap()
            .unwrap();
        assert_eq!(args.notify.as_deref(), Some("http://127.0.0.1:8080/events"));
    }

    #[test]
    fn errors() {
        assert!(parse(&["--addr"]).is_err());
        assert!(parse(&["--addr", "nope"]).is_err());
        assert!(parse(&["--bucket", "x:private"]).is_err());
        assert!(parse(&["--bucket", "Bad_Name"]).is_err());
        assert!(parse(&["extra"]).is_err());
        assert!(parse(&["--notify", "ftp://x"]).is_err());
    }
}
