//! What a notification body says, in the three forms the endpoint accepts:
//!
//! - a **MinIO webhook** body: `{"EventName","Key","Records":[…]}`;
//! - **S3 event JSON** as AWS sends it: `{"Records":[{"eventName","eventTime",
//!   "s3":{"bucket":{"name"},"object":{"key","size","eTag","sequencer"}}}]}`, where the
//!   object key is URL-encoded with `+` for a space (MinIO encodes it the same way);
//! - an **SNS HTTP message** (`Type: Notification` whose `Message` is the S3 JSON, or
//!   `SubscriptionConfirmation` / `UnsubscribeConfirmation`).
//!
//! Pure: bytes in, typed notices out. A body that is not JSON, or JSON of none of these
//! shapes, is an error (400); a record inside a valid body that lacks what is needed
//! is reported as [`Record::Invalid`] so that one odd record does not make the sender
//! retry the good ones forever.

use serde_json::Value;

/// What an event does to the object it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// `ObjectCreated:*` (put, post, copy, multipart completion, …).
    Created,
    /// `ObjectRemoved:*` (including delete markers) and lifecycle expirations.
    Removed,
}

/// One event about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Notice {
    /// `None` for event types that say nothing about where an object is (reads,
    /// tagging, restores, replication, …).
    pub change: Option<Change>,
    /// The event name without MinIO's `s3:` prefix, e.g. `ObjectCreated:Put`.
    pub name: String,
    pub bucket: String,
    /// The object key, decoded.
    pub key: String,
    pub size: Option<u64>,
    pub sequencer: Option<String>,
    /// Event time, milliseconds since the Unix epoch.
    pub time_ms: Option<i64>,
}

/// One entry of a notification body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    Notice(Notice),
    /// A record without a bucket, key or event name, or with a key that does not decode.
    Invalid(String),
}

/// The SNS fields the endpoint uses (signature verification and subscription).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SnsMessage {
    pub kind: String,
    pub message_id: String,
    pub topic_arn: String,
    pub subject: Option<String>,
    pub message: String,
    pub timestamp: String,
    pub token: Option<String>,
    pub subscribe_url: Option<String>,
    pub signature_version: String,
    pub signature: String,
    pub signing_cert_url: String,
}

/// A parsed notification body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// S3 or MinIO records, possibly inside an SNS `Notification` (then `sns` is it).
    Records {
        records: Vec<Record>,
        sns: Option<Box<SnsMessage>>,
    },
    /// An SNS `SubscriptionConfirmation`: confirmed by fetching its `SubscribeURL`.
    SubscriptionConfirmation(Box<SnsMessage>),
    /// Any other SNS message type (`UnsubscribeConfirmation`): nothing to do.
    OtherSns(Box<SnsMessage>),
}

/// Why a body is not a notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ParseError {
    NotJson(String),
    /// Valid JSON, but not a notification of any accepted form.
    NotANotification(&'static str),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::NotJson(e) => write!(f, "body is not JSON: {e}"),
            ParseError::NotANotification(why) => write!(
                f,
                "body is not an S3, MinIO or SNS bucket notification: {why}"
            ),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses a notification body.
pub(crate) fn parse(body: &[u8]) -> Result<Body, ParseError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    let Value::Object(top) = &value else {
        return Err(ParseError::NotANotification("not a JSON object"));
    };
    if let Some(kind) = top.get("Type").and_then(Value::as_str) {
        return sns(&value, kind);
    }
    s3_records(&value).map(|records| Body::Records { records, sns: None })
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn sns(value: &Value, kind: &str) -> Result<Body, ParseError> {
    let message = SnsMessage {
        kind: kind.to_owned(),
        message_id: text(value, "MessageId").unwrap_or_default(),
        topic_arn: text(value, "TopicArn").unwrap_or_default(),
        subject: text(value, "Subject"),
        message: text(value, "Message").unwrap_or_default(),
        timestamp: text(value, "Timestamp").unwrap_or_default(),
        token: text(value, "Token"),
        subscribe_url: text(value, "SubscribeURL"),
        signature_version: text(value, "SignatureVersion").unwrap_or_default(),
        signature: text(value, "Signature").unwrap_or_default(),
        signing_cert_url: text(value, "SigningCertURL").unwrap_or_default(),
    };
    match kind {
        "Notification" => {
            let inner: Value = serde_json::from_str(&message.message)
                .map_err(|_| ParseError::NotANotification("SNS Message is not JSON"))?;
            let records = s3_records(&inner)?;
            Ok(Body::Records {
                records,
                sns: Some(Box::new(message)),
            })
        }
        "SubscriptionConfirmation" => Ok(Body::SubscriptionConfirmation(Box::new(message))),
        _ => Ok(Body::OtherSns(Box::new(message))),
    }
}

/// The records of an S3 / MinIO body. S3's test event (`"Event":"s3:TestEvent"`, sent
/// when a notification is configured) has none.
fn s3_records(value: &Value) -> Result<Vec<Record>, ParseError> {
    match value.get("Records") {
        Some(Value::Array(records)) => Ok(records.iter().map(record).collect()),
        Some(_) => Err(ParseError::NotANotification("Records is not an array")),
        None if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") => {
            Ok(Vec::new())
        }
        None => Err(ParseError::NotANotification("no Records")),
    }
}

fn record(r: &Value) -> Record {
    let Some(name) = r.get("eventName").and_then(Value::as_str) else {
        return Record::Invalid("record without eventName".into());
    };
    let s3 = r.get("s3");
    let bucket = s3
        .and_then(|s| s.pointer("/bucket/name"))
        .and_then(Value::as_str);
    let object = s3.and_then(|s| s.get("object"));
    let raw_key = object.and_then(|o| o.get("key")).and_then(Value::as_str);
    let (Some(bucket), Some(raw_key)) = (bucket, raw_key) else {
        return Record::Invalid(format!("{name} record without bucket name or object key"));
    };
    let Some(key) = form_decode(raw_key) else {
        return Record::Invalid(format!("{name} record with an undecodable key"));
    };
    let name = name.strip_prefix("s3:").unwrap_or(name);
    Record::Notice(Notice {
        change: change_of(name),
        name: name.to_owned(),
        bucket: bucket.to_owned(),
        key,
        size: object.and_then(|o| o.get("size")).and_then(Value::as_u64),
        sequencer: object
            .and_then(|o| o.get("sequencer"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        time_ms: r
            .get("eventTime")
            .and_then(Value::as_str)
            .and_then(crate::timefmt::parse)
            .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()),
    })
}

/// What an event name (without `s3:`) does to its object.
pub(crate) fn change_of(name: &str) -> Option<Change> {
    let family = name.split(':').next().unwrap_or_default();
    match family {
        "ObjectCreated" => Some(Change::Created),
        "ObjectRemoved" | "LifecycleExpiration" => Some(Change::Removed),
        _ => None,
    }
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space, `%XX` a byte; the
/// result must be UTF-8. `None` for a bad escape or invalid UTF-8.
pub(crate) fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn notices(body: &str) -> Vec<Notice> {
        match parse(body.as_bytes()).expect("parses") {
            Body::Records { records, .. } => records
                .into_iter()
                .map(|r| match r {
                    Record::Notice(n) => n,
                    Record::Invalid(why) => panic!("invalid record: {why}"),
                })
                .collect(),
            other => panic!("not records: {other:?}"),
        }
    }

    /// The shape MinIO's webhook target posts (fields as MinIO names them).
    const MINIO: &str = r#"{"EventName":"s3:ObjectCreated:Put","Key":"public-bucket/dir/a b+c.txt",
      "Records":[{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"",
        "eventTime":"2026-05-05T10:00:00.123Z","eventName":"s3:ObjectCreated:Put",
        "userIdentity":{"principalId":"minioadmin"},"requestParameters":{},"responseElements":{},
        "s3":{"s3SchemaVersion":"1.0","configurationId":"Config",
          "bucket":{"name":"public-bucket","ownerIdentity":{"principalId":"minioadmin"},"arn":"arn:aws:s3:::public-bucket"},
          "object":{"key":"dir%2Fa+b%2Bc.txt","size":42,"eTag":"d41d8cd98f00b204e9800998ecf8427e",
            "contentType":"text/plain","userMetadata":{},"sequencer":"18B0F0A1C2D3E4F5"}},
        "source":{"host":"127.0.0.1","port":"","userAgent":"MinIO"}}]}"#;

    #[test]
    fn minio_webhook_body() {
        let n = notices(MINIO);
        assert_eq!(
            n,
            vec![Notice {
                change: Some(Change::Created),
                name: "ObjectCreated:Put".into(),
                bucket: "public-bucket".into(),
                key: "dir/a b+c.txt".into(),
                size: Some(42),
                sequencer: Some("18B0F0A1C2D3E4F5".into()),
                time_ms: Some(1_777_975_200_123),
            }]
        );
    }

    #[test]
    fn aws_s3_body_with_several_records() {
        let body = r#"{"Records":[
          {"eventVersion":"2.1","eventSource":"aws:s3","eventTime":"1970-01-01T00:00:01.000Z",
           "eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},
           "object":{"key":"caf%C3%A9+menu.pdf","sequencer":"0055AED6DCD90281E5"}}},
          {"eventName":"ObjectRemoved:DeleteMarkerCreated","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}},
          {"eventName":"ObjectAccessed:Get","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}},
          {"eventName":"LifecycleExpiration:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"old"}}}
        ]}"#;
        let n = notices(body);
        assert_eq!(n[0].change, Some(Change::Removed));
        assert_eq!(n[0].key, "café menu.pdf");
        assert_eq!(n[0].size, None);
        assert_eq!(n[0].time_ms, Some(1000));
        assert_eq!(n[1].change, Some(Change::Removed));
        assert_eq!(n[2].change, None, "reads say nothing about where a file is");
        assert_eq!(n[3].change, Some(Change::Removed));
    }

    #[test]
    fn sns_notification_wraps_the_s3_json() {
        let inner = r#"{"Records":[{"eventName":"ObjectCreated:Copy","s3":{"bucket":{"name":"b"},"object":{"key":"x","size":1}}}]}"#;
        let body = serde_json::json!({
            "Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Message": inner, "Timestamp": "2026-05-05T10:00:00.000Z",
            "SignatureVersion": "2", "Signature": "c2ln", "SigningCertURL": "https://sns.us-east-1.amazonaws.com/x.pem",
        });
        match parse(body.to_string().as_bytes()).unwrap() {
            Body::Records { records, sns } => {
                assert_eq!(records.len(), 1);
                let sns = sns.expect("the envelope is kept for its signature");
                assert_eq!(sns.message, inner);
                assert_eq!(sns.subject, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sns_subscription_and_s3_test_event() {
        let body = r#"{"Type":"SubscriptionConfirmation","MessageId":"m","Token":"t","TopicArn":"a",
            "Message":"You have chosen…","SubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
            "Timestamp":"2026-05-05T10:00:00.000Z","SignatureVersion":"2","Signature":"x","SigningCertURL":"https://sns.us-east-1.amazonaws.com/c.pem"}"#;
        match parse(body.as_bytes()).unwrap() {
            Body::SubscriptionConfirmation(m) => {
                assert_eq!(m.token.as_deref(), Some("t"));
                assert!(m.subscribe_url.unwrap().contains("ConfirmSubscription"));
            }
            other => panic!("{other:?}"),
        }
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-05-05T10:00:00.000Z","Bucket":"b"}"#;
        assert!(notices(test).is_empty());
    }

    #[test]
    fn malformed_bodies_and_records() {
        for bad in ["", "{", "[1,2]", "{}", r#"{"Records":5}"#, "\"text\""] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let body = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"}}},
            {"s3":{}}, {"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%zz"}}}]}"#;
        let Body::Records { records, .. } = parse(body.as_bytes()).unwrap() else {
            panic!()
        };
        assert!(records.iter().all(|r| matches!(r, Record::Invalid(_))));
    }

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a+b%2Bc%20d").as_deref(), Some("a b+c d"));
        assert_eq!(form_decode("%E2%82%AC").as_deref(), Some("€"));
        assert_eq!(form_decode("%"), None);
        assert_eq!(form_decode("%4"), None);
        assert_eq!(form_decode("%ff"), None, "not UTF-8");
    }

    /// The encoder S3 and MinIO use for keys in events (query escaping).
    fn form_encode(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char);
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }

    proptest! {
        #[test]
        fn any_key_survives_encoding(key in "\\PC{1,40}") {
            prop_assert_eq!(form_decode(&form_encode(&key)), Some(key));
        }

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&body);
        }
    }
}
