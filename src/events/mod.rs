//! Bucket notifications (issue #15), the pure part: what a notification body says
//! ([`parse`]), which of two events on one object is newer ([`order`]), whether the
//! events of a bucket can be trusted to keep its routes fresh ([`trust`]), SNS message
//! signatures ([`sns`]) and the counters ([`metrics`]). Applying events to the registry
//! is `coordinator::events`; the endpoint is `http::events`.

pub(crate) mod metrics;
pub(crate) mod order;
pub(crate) mod parse;
pub(crate) mod sns;
pub(crate) mod trust;
