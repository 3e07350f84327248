//! TLS to S3 and to the credential endpoints. rustls (through reqwest) trusts the roots
//! bundled in the binary, the system store (what `/etc/ssl/certs` holds, or
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` when set) and the PEM bundle of
//! `PARPARCHIK_S3_CA_FILE`. There is deliberately no way to turn verification off.

use std::path::{Path, PathBuf};

/// Extra trust anchors for an internal CA.
#[derive(Clone, Default)]
pub struct TlsSettings {
    /// Where the extra roots came from, for messages.
    pub ca_file: Option<PathBuf>,
    roots: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("ca_file", &self.ca_file)
            .field("roots", &self.roots.len())
            .finish()
    }
}

impl TlsSettings {
    /// Reads `PARPARCHIK_S3_CA_FILE`; an unreadable file or one without a certificate is
    /// an error naming the variable and the path (a start-up failure, not a surprise at
    /// the first request).
    pub fn load(ca_file: Option<&Path>) -> Result<TlsSettings, CaFileError> {
        let Some(path) = ca_file else {
            return Ok(TlsSettings::default());
        };
        let pem = std::fs::read(path).map_err(|e| CaFileError {
            path: path.to_owned(),
            problem: CaFileProblem::Unreadable(e),
        })?;
        let roots = parse_pem_bundle(&pem).map_err(|problem| CaFileError {
            path: path.to_owned(),
            problem,
        })?;
        Ok(TlsSettings {
            ca_file: Some(path.to_owned()),
            roots,
        })
    }

    /// Adds the extra roots to a client builder (the bundled and system roots are on by
    /// reqwest's features).
    pub fn apply(&self, mut builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        for cert in &self.roots {
            builder = builder.add_root_certificate(cert.clone());
        }
        builder
    }
}

/// reqwest could not build a client (its TLS backend failed to start: no usable roots
/// or crypto provider). Nothing the configuration can fix but the CA file.
#[derive(Debug)]
pub struct HttpClientError {
    /// What the client was for ("S3", "credentials").
    pub purpose: &'static str,
    pub source: reqwest::Error,
}

impl std::fmt::Display for HttpClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot build the HTTP client for {}: {}",
            self.purpose, self.source
        )
    }
}

impl std::error::Error for HttpClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Builds `builder`, naming `purpose` in the error.
pub(crate) fn build_client(
    builder: reqwest::ClientBuilder,
    purpose: &'static str,
) -> Result<reqwest::Client, HttpClientError> {
    builder
        .build()
        .map_err(|source| HttpClientError { purpose, source })
}

/// `PARPARCHIK_S3_CA_FILE` names a file the service cannot trust roots from.
#[derive(Debug)]
pub struct CaFileError {
    pub path: PathBuf,
    pub problem: CaFileProblem,
}

/// What is wrong with a CA file.
#[derive(Debug)]
pub enum CaFileProblem {
    Unreadable(std::io::Error),
    NoCertificate,
    InvalidBundle(reqwest::Error),
}

impl std::fmt::Display for CaFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PARPARCHIK_S3_CA_FILE={}: ", self.path.display())?;
        match &self.problem {
            CaFileProblem::Unreadable(e) => write!(f, "cannot read: {e}"),
            CaFileProblem::NoCertificate => {
                f.write_str("no PEM certificate (-----BEGIN CERTIFICATE-----) in the file")
            }
            CaFileProblem::InvalidBundle(e) => write!(f, "not a valid PEM bundle: {e}"),
        }
    }
}

impl std::error::Error for CaFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.problem {
            CaFileProblem::Unreadable(e) => Some(e),
            CaFileProblem::NoCertificate => None,
            CaFileProblem::InvalidBundle(e) => Some(e),
        }
    }
}

/// The certificates of a PEM bundle; at least one.
pub(crate) fn parse_pem_bundle(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, CaFileProblem> {
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(CaFileProblem::NoCertificate);
    }
    reqwest::Certificate::from_pem_bundle(pem).map_err(CaFileProblem::InvalidBundle)
}

/// A readable sentence for a certificate failure in `err`'s causes, naming `endpoint`
/// and what to do; `None` when the failure is not about certificates.
pub(crate) fn explain(err: &(dyn std::error::Error + 'static), endpoint: &str) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(c) = cause {
        let text = c.to_string();
        if text.contains("invalid peer certificate")
            || text.contains("certificate") && text.contains("not valid")
        {
            let hint = if text.contains("not valid for name") || text.contains("NotValidForName") {
                "the certificate does not name this host; use the host name it was issued for in the endpoint URL"
            } else if text.contains("UnknownIssuer") {
                "the certificate's issuer is not trusted; give its CA as a PEM file with PARPARCHIK_S3_CA_FILE (or SSL_CERT_FILE / SSL_CERT_DIR)"
            } else if text.contains("Expired") || text.contains("expired") {
                "the certificate has expired (or the clock is wrong)"
            } else {
                "check the server's certificate chain"
            };
            return Some(format!(
                "TLS certificate of {endpoint} rejected: {text}; {hint}"
            ));
        }
        cause = c.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_empty_ca_files_name_the_variable() {
        let e = TlsSettings::load(Some(Path::new("/nope/ca.pem")))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("PARPARCHIK_S3_CA_FILE=/nope/ca.pem: cannot read: "),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "hello").unwrap();
        let e = TlsSettings::load(Some(&p)).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        assert!(TlsSettings::load(None).unwrap().ca_file.is_none());
    }

    #[test]
    fn certificate_failures_are_explained() {
        #[derive(Debug)]
        struct E(&'static str);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {}
        let unknown = E("invalid peer certificate: UnknownIssuer");
        let s = explain(&unknown, "https://s3.internal:9000").unwrap();
        assert!(s.starts_with("TLS certificate of https://s3.internal:9000 rejected: invalid peer certificate: UnknownIssuer; "));
        assert!(s.contains("PARPARCHIK_S3_CA_FILE"));
        let name = E(
            "invalid peer certificate: certificate not valid for name \"127.0.0.1\"; certificate is only valid for DnsName(\"localhost\")",
        );
        assert!(
            explain(&name, "x")
                .unwrap()
                .contains("does not name this host")
        );
        assert!(explain(&E("connection refused"), "x").is_none());
    }
}
