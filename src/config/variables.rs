//! Every environment variable the service reads, with its default and meaning: the one
//! list that operators' files are checked against (and that `--help` can print). The
//! parser asks for no name that is missing here (checked in debug builds and tests), and
//! a test checks that every name here is asked for.

/// One environment variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variable {
    /// As written in the environment: `PARPARCHIK_PORT`.
    pub name: &'static str,
    /// As a person would write it; `—` when unset means off or not used.
    pub default: &'static str,
    pub(crate) meaning: &'static str,
    /// Who acts on it (`--help` notes the ones the parser does not read).
    pub read_by: ReadBy,
    /// A secret (key, token): shown masked by `check-config`, never as written.
    pub secret: bool,
}

/// Who reads a variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadBy {
    /// The configuration parser (`Config::from_lookup`).
    Parser,
    /// A library the service uses (the system trust store's loader), not the parser.
    Library,
    /// The build (`cargo build`, the Containerfile's `ARG`), not the running service:
    /// setting it at run time does nothing.
    Build,
}

const fn parser(name: &'static str, default: &'static str, meaning: &'static str) -> Variable {
    Variable {
        name,
        default,
        meaning,
        read_by: ReadBy::Parser,
        secret: false,
    }
}

/// A variable the parser reads whose value is a secret.
const fn secret(name: &'static str, default: &'static str, meaning: &'static str) -> Variable {
    Variable {
        secret: true,
        ..parser(name, default, meaning)
    }
}

/// In the order `--help` would show them: buckets, listener, S3, credentials, storage
/// behaviour, HTTP limits, logs and the browse page, shutdown; then the build.
pub const VARIABLES: &[Variable] = &[
    parser(
        "PARPARCHIK_BUCKETS",
        "—",
        "multi-bucket mode: name:manifest_key:public,... in priority order; wins over the two below",
    ),
    parser(
        "PARPARCHIK_PUBLIC_BUCKET",
        "—",
        "two-bucket mode: the public bucket",
    ),
    parser(
        "PARPARCHIK_PRIVATE_BUCKET",
        "—",
        "two-bucket mode: the private bucket",
    ),
    parser(
        "PARPARCHIK_REGISTRY_MANIFEST_KEY",
        ".parparchik/files.json",
        "manifest key in each bucket (two-bucket mode)",
    ),
    parser("PARPARCHIK_HOST", "0.0.0.0", "listen address"),
    parser(
        "PARPARCHIK_PORT",
        "8080",
        "listen port (also the port `parparchik healthcheck` probes)",
    ),
    parser(
        "S3_ENDPOINT",
        "AWS",
        "S3 endpoint: host:port (http) or http(s)://host[:port]; empty means https://s3.<region>.amazonaws.com",
    ),
    parser(
        "S3_EXTERNAL_ENDPOINT",
        "S3_ENDPOINT",
        "endpoint written into redirect URLs",
    ),
    parser("AWS_REGION", "us-east-1", "signing region"),
    parser(
        "AWS_ACCESS_KEY_ID",
        "—",
        "static credentials (first source of the chain)",
    ),
    secret("AWS_SECRET_ACCESS_KEY", "—", "static credentials"),
    secret(
        "AWS_SESSION_TOKEN",
        "—",
        "static credentials: session token",
    ),
    parser(
        "AWS_ACCESS_KEY_ID_FILE",
        "—",
        "file holding the access key id (re-read when it changes)",
    ),
    parser(
        "AWS_SECRET_ACCESS_KEY_FILE",
        "—",
        "file holding the secret access key",
    ),
    parser(
        "AWS_SESSION_TOKEN_FILE",
        "—",
        "file holding the session token",
    ),
    parser(
        "AWS_SHARED_CREDENTIALS_FILE",
        "~/.aws/credentials",
        "shared credentials file",
    ),
    parser("AWS_CONFIG_FILE", "~/.aws/config", "shared config file"),
    parser("AWS_PROFILE", "default", "profile of the shared files"),
    parser("HOME", "—", "where ~/.aws lives"),
    parser(
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "—",
        "web identity token (EKS IRSA, MinIO STS), re-read at each refresh",
    ),
    parser(
        "AWS_ROLE_ARN",
        "—",
        "role assumed with the web identity token",
    ),
    parser(
        "AWS_ROLE_SESSION_NAME",
        "parparchik-…",
        "session name for AssumeRoleWithWebIdentity",
    ),
    parser(
        "AWS_ENDPOINT_URL_STS",
        "https://sts.<region>.amazonaws.com",
        "STS endpoint",
    ),
    parser(
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "—",
        "container credentials path on 169.254.170.2 (ECS)",
    ),
    parser(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "—",
        "container credentials URL (EKS Pod Identity)",
    ),
    secret(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "—",
        "token sent to the container credentials endpoint",
    ),
    parser(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "—",
        "file holding that token",
    ),
    parser(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "http://169.254.169.254",
        "EC2 instance metadata (IMDSv2) endpoint",
    ),
    parser(
        "AWS_EC2_METADATA_DISABLED",
        "false",
        "true skips instance metadata",
    ),
    parser(
        "PARPARCHIK_CREDENTIALS_POLL_INTERVAL",
        "10",
        "seconds between checks of credential files for changes",
    ),
    parser(
        "PARPARCHIK_S3_CA_FILE",
        "—",
        "PEM bundle trusted for S3 and STS besides the bundled and system roots",
    ),
    Variable {
        name: "SSL_CERT_FILE",
        default: "—",
        meaning: "system trust store file (read by the system roots loader)",
        read_by: ReadBy::Library,
        secret: false,
    },
    Variable {
        name: "SSL_CERT_DIR",
        default: "—",
        meaning: "system trust store directory (read by the system roots loader)",
        read_by: ReadBy::Library,
        secret: false,
    },
    parser(
        "PARPARCHIK_PRESIGN_EXPIRES",
        "3600",
        "seconds a presigned URL is valid (at most 604800; never past the credentials' expiry)",
    ),
    parser("PARPARCHIK_S3_TIMEOUT", "5", "seconds per S3 attempt"),
    parser(
        "PARPARCHIK_S3_CONNECT_TIMEOUT",
        "2",
        "seconds to connect to S3",
    ),
    parser(
        "PARPARCHIK_S3_ATTEMPTS",
        "3",
        "attempts for S3 calls that failed as unavailable",
    ),
    parser(
        "PARPARCHIK_S3_MAX_CONCURRENCY",
        "256",
        "S3 calls in flight at most",
    ),
    parser(
        "PARPARCHIK_VERIFY_TTL",
        "0",
        "seconds a confirmed route redirects without asking S3 again",
    ),
    parser(
        "PARPARCHIK_VERIFY_DEADLINE",
        "1",
        "seconds a known route waits for S3 before answering from the registry",
    ),
    parser(
        "PARPARCHIK_MISS_TTL",
        "5",
        "seconds a key S3 proved missing is answered 404 without asking again",
    ),
    parser(
        "PARPARCHIK_MISS_CACHE_ENTRIES",
        "100000",
        "missing keys remembered at most",
    ),
    parser(
        "PARPARCHIK_SYNC_INTERVAL",
        "300",
        "seconds between periodic re-syncs (0 = off)",
    ),
    parser(
        "PARPARCHIK_LIST_CONCURRENCY",
        "8",
        "ranges of one bucket listed at once",
    ),
    parser(
        "PARPARCHIK_MAX_REMOVAL_SHARE",
        "0.1",
        "share of a bucket one listing may remove without a second listing agreeing",
    ),
    parser(
        "PARPARCHIK_MAX_REMOVAL_FLOOR",
        "5",
        "entries one listing may always remove",
    ),
    parser(
        "PARPARCHIK_MANIFEST_MAX_BYTES",
        "536870912",
        "larger manifests are ignored unread",
    ),
    parser(
        "PARPARCHIK_MANIFEST_COMPACT_INTERVAL",
        "60",
        "seconds a manifest may lag behind its journal of changes; 0 rewrites it whole with every change",
    ),
    parser(
        "PARPARCHIK_EVENTS_TOKEN",
        "—",
        "secret bucket notifications must carry in Authorization (Bearer or Basic password); enables POST /events",
    ),
    parser(
        "PARPARCHIK_EVENTS_VERIFY_TTL",
        "300",
        "seconds a route confirmed by an event or a sync redirects without asking S3 while the bucket's events are trusted",
    ),
    parser(
        "PARPARCHIK_EVENTS_MAX_BYTES",
        "1048576",
        "largest notification body accepted (413 beyond)",
    ),
    parser(
        "PARPARCHIK_EVENTS_SNS_HOSTS",
        "—",
        "comma-separated SNS host patterns (sns.*.amazonaws.com); when set, SNS subscriptions are confirmed and SNS signatures verified",
    ),
    parser(
        "PARPARCHIK_REDIRECT_CACHE_CONTROL",
        "no-store",
        "Cache-Control of redirects",
    ),
    secret(
        "PARPARCHIK_API_KEYS",
        "—",
        "comma-separated API keys; when set, every endpoint but the probes needs one",
    ),
    parser(
        "PARPARCHIK_RATE_LIMIT_PER_SECOND",
        "—",
        "requests per second per client address (off when unset)",
    ),
    parser(
        "PARPARCHIK_RATE_LIMIT_BURST",
        "one second's worth",
        "requests a client may send at once",
    ),
    parser(
        "PARPARCHIK_TRUSTED_PROXIES",
        "—",
        "CIDRs whose X-Forwarded-For names the client",
    ),
    parser(
        "PARPARCHIK_HEADER_TIMEOUT",
        "10",
        "seconds a client has to send its request head (also the keep-alive idle timeout)",
    ),
    parser(
        "PARPARCHIK_WRITE_TIMEOUT",
        "30",
        "seconds a write to a client may make no progress",
    ),
    parser(
        "PARPARCHIK_MAX_CONNECTIONS",
        "10000",
        "client connections open at once",
    ),
    parser(
        "PARPARCHIK_LOG_FORMAT",
        "text",
        "log lines as `text` (one line, human-first) or `json` (one object per line)",
    ),
    parser(
        "PARPARCHIK_LOG_LEVEL",
        "info",
        "least severe lines written: error, warn, info or debug (request lines: PARPARCHIK_ACCESS_LOG)",
    ),
    parser(
        "PARPARCHIK_ACCESS_LOG",
        "on",
        "one line per request (on) or none (off)",
    ),
    parser(
        "PARPARCHIK_BROWSE",
        "on",
        "the HTML listing at /browse/ (off answers 404)",
    ),
    parser(
        "PARPARCHIK_SHUTDOWN_DELAY",
        "5",
        "seconds after SIGTERM with readiness 503 while still serving",
    ),
    parser(
        "PARPARCHIK_DRAIN_TIMEOUT",
        "10",
        "seconds in-flight requests may finish after the delay",
    ),
    Variable {
        name: "PARPARCHIK_GIT_COMMIT",
        default: "unknown",
        meaning: "git commit compiled into `--version` (a build argument of the Containerfile)",
        read_by: ReadBy::Build,
        secret: false,
    },
];

/// The variable called `name`, if the service reads one by that name.
pub fn find(name: &str) -> Option<&'static Variable> {
    VARIABLES.iter().find(|v| v.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before);
    }

    #[test]
    fn secrets_are_marked() {
        for name in [
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            "PARPARCHIK_API_KEYS",
        ] {
            assert!(find(name).is_some_and(|v| v.secret), "{name}");
        }
        assert!(!find("PARPARCHIK_PORT").is_some_and(|v| v.secret));
    }
}
