//! Bucket notifications, as MinIO's webhook target sends them: after every successful
//! put, copy, multipart completion and delete, a JSON body (`EventName`, `Key`,
//! `Records[]` in the S3 event structure, the object key query-escaped) is POSTed to a
//! configured URL with `Authorization: Bearer <token>`.
//!
//! Best effort, like MinIO: events wait in a queue (in order) and are retried with
//! backoff; after the last attempt an event is dropped and counted. For tests the
//! emitter can be switched off (events are dropped as if the target were lost) or
//! made to hold events back for a while.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

/// Where notifications go.
#[derive(Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    /// e.g. `http://127.0.0.1:8080/events`.
    pub url: String,
    /// Sent as `Authorization: Bearer <token>` when set.
    pub token: Option<String>,
}

// Hand-written so that the token never ends up in logs.
impl fmt::Debug for NotifyTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyTarget")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What the emitter does with new events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Send at once (the default).
    Deliver,
    /// Drop (a lost target, a full queue): nothing is sent, `dropped` counts them.
    Drop,
    /// Send each event this long after it happened.
    Delay(Duration),
}

/// Counters of the emitter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NotifyCounts {
    /// Events answered 2xx by the target.
    pub delivered: u64,
    /// Events dropped by [`Delivery::Drop`].
    pub dropped: u64,
    /// Events given up after every attempt failed.
    pub failed: u64,
    /// Attempts that failed (and were retried or given up).
    pub failed_attempts: u64,
}

/// Attempts per event, and the first and longest wait between them.
const ATTEMPTS: u32 = 8;
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LONGEST_RETRY: Duration = Duration::from_secs(2);

struct Queued {
    body: String,
    due: Instant,
}

struct Inner {
    target: Mutex<Option<NotifyTarget>>,
    delivery: Mutex<Delivery>,
    tx: mpsc::UnboundedSender<Queued>,
    /// Events queued and not yet delivered, dropped or given up.
    pending: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    failed_attempts: AtomicU64,
    /// Last sequencer handed out (nanoseconds), so sequencers strictly grow.
    sequencer: AtomicU64,
    principal: String,
}

/// The notification emitter of one server; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("target", &*lock(&self.inner.target))
            .field("delivery", &*lock(&self.inner.delivery))
            .field("counts", &self.counts())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One change of an object, as the store saw it.
pub(crate) struct ObjectEvent<'a> {
    /// Without the `s3:` prefix, e.g. `ObjectCreated:Put`.
    pub name: &'static str,
    pub bucket: &'a str,
    pub key: &'a str,
    pub size: u64,
    pub etag: &'a str,
}

impl Notifier {
    /// Starts the delivery task on the current runtime; it ends when every clone of
    /// the notifier is gone.
    pub(crate) fn start(target: Option<NotifyTarget>, principal: &str) -> Notifier {
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            target: Mutex::new(target),
            delivery: Mutex::new(Delivery::Deliver),
            tx,
            pending: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            sequencer: AtomicU64::new(0),
            principal: principal.to_owned(),
        });
        tokio::spawn(deliver(Arc::downgrade(&inner), rx));
        Notifier { inner }
    }

    /// Sends events to `target` from now on (`None`: emit nothing).
    pub fn set_target(&self, target: Option<NotifyTarget>) {
        *lock(&self.inner.target) = target;
    }

    pub fn set_delivery(&self, delivery: Delivery) {
        *lock(&self.inner.delivery) = delivery;
    }

    pub fn counts(&self) -> NotifyCounts {
        let i = &self.inner;
        NotifyCounts {
            delivered: i.delivered.load(Ordering::SeqCst),
            dropped: i.dropped.load(Ordering::SeqCst),
            failed: i.failed.load(Ordering::SeqCst),
            failed_attempts: i.failed_attempts.load(Ordering::SeqCst),
        }
    }

    /// Events queued and not yet delivered or given up.
    pub fn pending(&self) -> u64 {
        self.inner.pending.load(Ordering::SeqCst)
    }

    /// Waits until no event is pending, at most `limit`; whether it got there.
    pub async fn idle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.pending() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// A sequencer greater than every one before: nanoseconds since the epoch, in
    /// upper-case hex, as MinIO writes them.
    fn next_sequencer(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let prev = self
            .inner
            .sequencer
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or(now);
        format!("{:016X}", now.max(prev + 1))
    }

    /// Queues the notification of `event`. Called by the store while it still holds
    /// the object's write lock, so the events of one object are queued in the order
    /// of its changes.
    pub(crate) fn emit(&self, event: &ObjectEvent<'_>) {
        if lock(&self.inner.target).is_none() {
            return;
        }
        let due = match *lock(&self.inner.delivery) {
            Delivery::Drop => {
                self.inner.dropped.fetch_add(1, Ordering::SeqCst);
                return;
            }
            Delivery::Deliver => Instant::now(),
            Delivery::Delay(d) => Instant::now() + d,
        };
        let body = body(event, &self.next_sequencer(), &self.inner.principal);
        self.inner.pending.fetch_add(1, Ordering::SeqCst);
        if self.inner.tx.send(Queued { body, due }).is_err() {
            self.inner.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Sends queued events one at a time, in order, each retried with backoff.
async fn deliver(inner: std::sync::Weak<Inner>, mut rx: mpsc::UnboundedReceiver<Queued>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default();
    while let Some(event) = rx.recv().await {
        tokio::time::sleep_until(event.due.into()).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let mut wait = FIRST_RETRY;
        let mut delivered = false;
        for attempt in 1..=ATTEMPTS {
            let target = lock(&inner.target).clone();
            let Some(target) = target else {
                break;
            };
            let mut req = http
                .post(&target.url)
                .header("content-type", "application/json")
                .body(event.body.clone());
            if let Some(token) = &target.token {
                req = req.header("authorization", format!("Bearer {token}"));
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => {
                    delivered = true;
                    break;
                }
                _ => {
                    inner.failed_attempts.fetch_add(1, Ordering::SeqCst);
                    if attempt < ATTEMPTS {
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(LONGEST_RETRY);
                    }
                }
            }
        }
        let counter = if delivered {
            &inner.delivered
        } else {
            &inner.failed
        };
        counter.fetch_add(1, Ordering::SeqCst);
        inner.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The MinIO webhook body of one event.
fn body(e: &ObjectEvent<'_>, sequencer: &str, principal: &str) -> String {
    let name = format!("s3:{}", e.name);
    let time = event_time(SystemTime::now());
    let (bucket, principal) = (json_string(e.bucket), json_string(principal));
    format!(
        concat!(
            r#"{{"EventName":{name},"Key":{key},"Records":[{{"eventVersion":"2.0","eventSource":"minio:s3","#,
            r#""awsRegion":"","eventTime":"{time}","eventName":{name},"userIdentity":{{"principalId":{principal}}},"#,
            r#""requestParameters":{{}},"responseElements":{{}},"s3":{{"s3SchemaVersion":"1.0","configurationId":"Config","#,
            r#""bucket":{{"name":{bucket},"ownerIdentity":{{"principalId":{principal}}},"arn":{arn}}},"#,
            r#""object":{{"key":{escaped},"size":{size},"eTag":{etag},"contentType":"application/octet-stream","#,
            r#""userMetadata":{{}},"sequencer":"{sequencer}"}}}},"source":{{"host":"local-s3","port":"","userAgent":"local-s3"}}}}]}}"#
        ),
        name = json_string(&name),
        key = json_string(&format!("{}/{}", e.bucket, e.key)),
        time = time,
        principal = principal,
        bucket = bucket,
        arn = json_string(&format!("arn:aws:s3:::{}", e.bucket)),
        escaped = json_string(&query_escape(e.key)),
        size = e.size,
        etag = json_string(e.etag.trim_matches('"')),
        sequencer = sequencer,
    )
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn event_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let at = time::OffsetDateTime::UNIX_EPOCH + d;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// Query escaping as Go's `url.QueryEscape` (what MinIO applies to keys in events):
/// unreserved bytes as they are, a space as `+`, everything else `%XX`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_keys_like_minio() {
        assert_eq!(query_escape("dir/a b+c.txt"), "dir%2Fa+b%2Bc.txt");
        assert_eq!(query_escape("café"), "caf%C3%A9");
        assert_eq!(json_string("a\"b\\c\n"), r#""a\"b\\c\u000a""#);
    }

    #[test]
    fn body_has_the_webhook_fields() {
        let b = body(
            &ObjectEvent {
                name: "ObjectCreated:Put",
                bucket: "bkt",
                key: "a b",
                size: 7,
                etag: "\"abc\"",
            },
            "00000000000000FF",
            "me",
        );
        for part in [
            r#""EventName":"s3:ObjectCreated:Put""#,
            r#""Key":"bkt/a b""#,
            r#""key":"a+b""#,
            r#""size":7"#,
            r#""eTag":"abc""#,
            r#""sequencer":"00000000000000FF""#,
            r#""bucket":{"name":"bkt""#,
        ] {
            assert!(b.contains(part), "{part} missing in {b}");
        }
    }

    #[tokio::test]
    async fn sequencers_strictly_grow() {
        let n = Notifier::start(None, "p");
        let a = n.next_sequencer();
        let b = n.next_sequencer();
        assert_eq!(a.len(), 16);
        assert!(b > a, "{b} after {a}");
    }
}
