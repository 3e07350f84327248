//! `POST /events`: bucket notifications from MinIO's webhook target, S3 (through an
//! SNS HTTPS subscription) or anything that speaks their JSON.
//!
//! Off (404, like any unknown path) unless `PARPARCHIK_EVENTS_TOKEN` is set. The
//! sender proves it knows the token in `Authorization`: the bare token (MinIO's
//! `auth_token`), `Bearer <token>`, or `Basic` with the token as password (SNS, from
//! `https://user:<token>@host/events`). Compared in constant time; 401 otherwise.
//! The body is read up to `PARPARCHIK_EVENTS_MAX_BYTES` (413 beyond). The answer is 200
//! only once every change is in the manifests, so a sender that gets anything else
//! sends again (repeats are recognised and ignored).

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::respond::{self, Body};
use crate::app::App;
use crate::events::parse::{self, Body as Notification};
use crate::warn;

/// A sender that does not finish its body in this time is answered 408.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn handle(app: &App, method: &Method, req: Request<Incoming>) -> Response<Body> {
    let Some(token) = &app.config.events.token else {
        return respond::not_found();
    };
    if method != Method::POST {
        return respond::method_not_allowed("POST");
    }
    if !authorized(
        req.headers()
            .get(AUTHORIZATION)
            .map(hyper::http::HeaderValue::as_bytes),
        &token.0,
    ) {
        let mut answer = respond::error(StatusCode::UNAUTHORIZED, "unauthorized");
        // SNS sends the user part of its subscription URL only after this challenge.
        answer.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Basic realm=\"parparchik events\""),
        );
        return answer;
    }
    let limit = app.config.events.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    let body = match read_body(req.into_body(), limit).await {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    // Before the registry is rebuilt an event could be undone by start-up's listing
    // taken earlier; the sender keeps it and sends it again.
    if !app.is_ready() {
        return respond::unavailable(&json!({"error": "not ready"}));
    }
    let notification = match parse::parse(&body) {
        Ok(n) => n,
        Err(e) => return respond::error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    match notification {
        Notification::Records { records, sns } => {
            if let Some(sns) = sns
                && let Err(answer) = super::sns::check(app, &sns).await
            {
                return answer;
            }
            match crate::coordinator::events::apply(app, records).await {
                Ok(done) => respond::json(
                    StatusCode::OK,
                    &json!({"status": "ok", "applied": done.applied, "ignored": done.ignored}),
                ),
                Err(e) => {
                    warn!("bucket notification not fully applied, the sender will retry: {e}");
                    super::failure::Failure::StorageUnavailable.response()
                }
            }
        }
        Notification::SubscriptionConfirmation(m) => super::sns::confirm(app, &m).await,
        Notification::OtherSns(m) => {
            respond::json(StatusCode::OK, &json!({"status": "ok", "ignored": m.kind}))
        }
    }
}

fn too_large(limit: usize) -> Response<Body> {
    respond::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("notification body over {limit} bytes (PARPARCHIK_EVENTS_MAX_BYTES)"),
    )
}

/// The whole body, at most `limit` bytes, within [`BODY_TIMEOUT`].
async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, Response<Body>> {
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(limit)),
        Ok(Err(_)) => Err(respond::error(StatusCode::BAD_REQUEST, "body not readable")),
        Err(_) => Err(respond::error(
            StatusCode::REQUEST_TIMEOUT,
            "body not received in time",
        )),
    }
}

/// Whether an `Authorization` value carries `token`: bare, `Bearer <token>`, or
/// `Basic base64(user:token)`.
fn authorized(header: Option<&[u8]>, token: &str) -> bool {
    let Some(value) = header.map(<[u8]>::trim_ascii) else {
        return false;
    };
    let scheme = |name: &[u8]| {
        value
            .get(..name.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(name))
            .then(|| value[name.len()..].trim_ascii())
    };
    let presented: Vec<u8> = if let Some(rest) = scheme(b"bearer ") {
        rest.to_vec()
    } else if let Some(rest) = scheme(b"basic ") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
            return false;
        };
        match decoded.iter().position(|b| *b == b':') {
            Some(colon) => decoded[colon + 1..].to_vec(),
            None => return false,
        }
    } else {
        value.to_vec()
    };
    super::access::constant_time_eq(&presented, token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef-token";

    #[test]
    fn token_forms() {
        let basic = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        for ok in [
            TOKEN.to_owned(),
            format!("Bearer {TOKEN}"),
            format!("bearer  {TOKEN} "),
            basic(&format!("sns:{TOKEN}")),
            basic(&format!(":{TOKEN}")),
        ] {
            assert!(authorized(Some(ok.as_bytes()), TOKEN), "{ok}");
        }
        for bad in [
            String::new(),
            "Bearer".to_owned(),
            format!("Bearer {TOKEN}x"),
            format!("Token {TOKEN}"),
            basic(TOKEN),
            basic(&format!("{TOKEN}:nope")),
            "Basic !!!".to_owned(),
            TOKEN[..10].to_owned(),
        ] {
            assert!(!authorized(Some(bad.as_bytes()), TOKEN), "{bad}");
        }
        assert!(!authorized(None, TOKEN));
    }
}
