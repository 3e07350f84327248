//! The SNS side of `POST /events` (I/O): the signing certificate is fetched (once per
//! URL) and the signature checked when SNS mode is on (`PARPARCHIK_EVENTS_SNS_HOSTS`);
//! a `SubscriptionConfirmation` is answered by fetching its `SubscribeURL`, only on an
//! allowed host and only with a valid signature.

use std::time::Duration;

use hyper::{Response, StatusCode};
use serde_json::json;

use super::respond::{self, Body};
use crate::app::App;
use crate::events::parse::SnsMessage;
use crate::events::sns::{self, SnsError};
use crate::{info, warn};

const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A signing certificate is a few KiB; anything much larger is not one.
const MAX_CERT_BYTES: usize = 64 * 1024;

/// Checks an SNS envelope that carries records: in SNS mode its signature must verify;
/// otherwise the token alone vouches for it.
pub(crate) async fn check(app: &App, m: &SnsMessage) -> Result<(), Response<Body>> {
    if !app.config.events.sns() {
        return Ok(());
    }
    verify(app, m).await.map_err(|e| refuse(app, &e))
}

/// Confirms a subscription (SNS mode only).
pub(crate) async fn confirm(app: &App, m: &SnsMessage) -> Response<Body> {
    if !app.config.events.sns() {
        warn!(
            "SNS subscription confirmation for topic {} ignored: set PARPARCHIK_EVENTS_SNS_HOSTS (e.g. sns.*.amazonaws.com) to confirm SNS subscriptions",
            m.topic_arn
        );
        return respond::error(
            StatusCode::FORBIDDEN,
            "SNS subscriptions are not confirmed: PARPARCHIK_EVENTS_SNS_HOSTS is not set",
        );
    }
    let url = match m
        .subscribe_url
        .as_deref()
        .ok_or(SnsError::Missing("SubscribeURL"))
        .and_then(|u| sns::allowed_url("SubscribeURL", u, &app.config.events.sns_hosts))
    {
        Ok(u) => u,
        Err(e) => return refuse(app, &e),
    };
    if let Err(e) = verify(app, m).await {
        return refuse(app, &e);
    }
    match fetch(app, url).await {
        Ok(_) => {
            app.events
                .metrics
                .sns_confirmed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            info!("SNS subscription to topic {} confirmed", m.topic_arn);
            respond::json(
                StatusCode::OK,
                &json!({"status": "ok", "confirmed": m.topic_arn}),
            )
        }
        Err(e) => {
            warn!(
                "SNS subscription to topic {} not confirmed: {e}",
                m.topic_arn
            );
            respond::json(
                StatusCode::BAD_GATEWAY,
                &json!({"error": "subscription could not be confirmed"}),
            )
        }
    }
}

fn refuse(app: &App, e: &SnsError) -> Response<Body> {
    app.events
        .metrics
        .sns_refused
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    warn!("SNS message refused: {e}");
    respond::error(StatusCode::FORBIDDEN, &e.to_string())
}

async fn verify(app: &App, m: &SnsMessage) -> Result<(), SnsError> {
    // Nothing is fetched for a message that could not be verified anyway.
    sns::check_version(m)?;
    sns::string_to_sign(m)?;
    let url = sns::allowed_url(
        "SigningCertURL",
        &m.signing_cert_url,
        &app.config.events.sns_hosts,
    )?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let pem = match app.events.sns_cert(url.as_str()) {
        Some(pem) => pem,
        None => {
            let pem = fetch(app, url.clone())
                .await
                .map_err(|e| SnsError::Certificate(format!("cannot fetch it: {e}")))?;
            app.events.remember_sns_cert(url.as_str(), pem.clone());
            pem
        }
    };
    sns::verify(
        m,
        &pem,
        &host,
        &app.events.sns_roots(),
        rustls_pki_types::UnixTime::now(),
    )
}

/// GET over https (no redirects), at most [`MAX_CERT_BYTES`].
async fn fetch(app: &App, url: reqwest::Url) -> Result<bytes::Bytes, String> {
    let client = app.events.sns_client().map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(FETCH_TIMEOUT, client.get(url).send())
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let body = tokio::time::timeout(FETCH_TIMEOUT, resp.bytes())
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    if body.len() > MAX_CERT_BYTES {
        return Err(format!("answer over {MAX_CERT_BYTES} bytes"));
    }
    Ok(body)
}
