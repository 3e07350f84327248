//! Response builders, and the response body type: one buffer, or chunks produced as
//! the client reads (`/list`).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde_json::Value;

/// Produces a body piece by piece; asked for the next piece only when hyper has room to
/// write it, so a client that does not read holds no more than one piece.
pub(crate) trait ChunkSource: Send + 'static {
    fn next_chunk(&mut self) -> Option<Bytes>;
}

enum Inner {
    Full(Option<Bytes>),
    Chunks(Box<dyn ChunkSource>),
}

/// A response body.
pub(crate) struct Body(Inner);

impl Body {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
        let bytes = bytes.into();
        Body(Inner::Full((!bytes.is_empty()).then_some(bytes)))
    }

    pub(crate) fn empty() -> Body {
        Body(Inner::Full(None))
    }

    pub(crate) fn chunks(source: impl ChunkSource) -> Body {
        Body(Inner::Chunks(Box::new(source)))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = match &mut self.get_mut().0 {
            Inner::Full(bytes) => bytes.take(),
            Inner::Chunks(source) => source.next_chunk(),
        };
        Poll::Ready(next.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.0, Inner::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            // Exact, so hyper sends Content-Length rather than chunked encoding.
            Inner::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Inner::Chunks(_) => SizeHint::default(),
        }
    }
}

pub(crate) fn json(status: StatusCode, value: &Value) -> Response<Body> {
    // Serialising a `Value` cannot fail.
    let body = serde_json::to_vec(value).unwrap_or_default();
    json_bytes(status, body)
}

pub(crate) fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub(crate) fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "error": message }))
}

pub(crate) fn not_found() -> Response<Body> {
    error(StatusCode::NOT_FOUND, "not found")
}

pub(crate) fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

/// 503 with `Retry-After`, for "S3 could not answer, try again shortly".
pub(crate) fn unavailable(value: &Value) -> Response<Body> {
    let mut r = json(StatusCode::SERVICE_UNAVAILABLE, value);
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("2"));
    r
}

pub(crate) fn redirect(location: Bytes, cache_control: &HeaderValue) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::FOUND;
    match HeaderValue::from_maybe_shared(location) {
        Ok(v) => {
            r.headers_mut().insert(LOCATION, v);
        }
        // Locations are built from encoded parts only, so this cannot happen; refuse
        // rather than redirect somewhere unintended.
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "cannot build redirect"),
    }
    r.headers_mut().insert(CACHE_CONTROL, cache_control.clone());
    r
}

pub(crate) fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// An HTML page with its `Content-Security-Policy`; never cached (it lists what the
/// registry holds now) and never sniffed as anything else.
pub(crate) fn html(body: String, csp: &str) -> Response<Body> {
    let mut r = text(StatusCode::OK, "text/html; charset=utf-8", body);
    let h = r.headers_mut();
    // The policy is built from a hex nonce and fixed text, so it is a valid value.
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert("content-security-policy", v);
    } else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot build the page policy",
        );
    }
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

/// A JSON body streamed from `source`.
pub(crate) fn json_stream(status: StatusCode, source: impl ChunkSource) -> Response<Body> {
    let mut r = Response::new(Body::chunks(source));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Error answers must not be cached: a 404 for a file that appears a second later, or a
/// 503 during an outage, would otherwise be served from a CDN long after.
pub(crate) fn no_store_if_error(r: &mut Response<Body>) {
    if r.status().is_client_error() || r.status().is_server_error() {
        r.headers_mut()
            .entry(CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    struct Counting(u8);
    impl ChunkSource for Counting {
        fn next_chunk(&mut self) -> Option<Bytes> {
            (self.0 < 3).then(|| {
                self.0 += 1;
                Bytes::from(vec![b'0' + self.0])
            })
        }
    }

    #[tokio::test]
    async fn bodies_full_empty_and_chunked() {
        use hyper::body::Body as _;
        let b = Body::full("abc");
        assert_eq!(b.size_hint().exact(), Some(3));
        assert_eq!(b.collect().await.unwrap().to_bytes(), "abc");
        let b = Body::empty();
        assert!(b.is_end_stream());
        assert_eq!(b.size_hint().exact(), Some(0));
        let b = Body::chunks(Counting(0));
        assert_eq!(b.size_hint().exact(), None);
        assert_eq!(b.collect().await.unwrap().to_bytes(), "123");
    }

    #[test]
    fn error_answers_are_not_stored() {
        for status in [400, 401, 404, 405, 414, 429, 500, 503] {
            let mut r = error(StatusCode::from_u16(status).unwrap(), "x");
            no_store_if_error(&mut r);
            assert_eq!(r.headers()[CACHE_CONTROL], "no-store", "{status}");
        }
        let mut ok = json(StatusCode::OK, &serde_json::json!({}));
        no_store_if_error(&mut ok);
        assert!(ok.headers().get(CACHE_CONTROL).is_none());
        let mut r = error(StatusCode::NOT_FOUND, "x");
        r.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=5"));
        no_store_if_error(&mut r);
        assert_eq!(
            r.headers()[CACHE_CONTROL],
            "max-age=5",
            "an explicit choice stays"
        );
    }
}
