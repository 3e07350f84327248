//! Bucket notifications (issue #15), the pure part: what a notification body says
//! ([`parse`]), which of two events on one object is newer ([`order`]), whether the
//! events of a bucket can be trusted to keep its routes fresh ([`trust`]), SNS message
//! signatures ([`sns`]) and the counters ([`metrics`]). Applying events to the registry
//! is `coordinator::events`; the endpoint is `http::events`.

pub mod metrics;
pub mod order;
pub mod parse;
pub mod sns;
pub mod trust;
