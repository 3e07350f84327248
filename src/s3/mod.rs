//! The S3 side: where objects live (addressing), how to talk to S3 (client), and what
//! S3 says back (typed errors, XML documents).

pub(crate) mod breaker;
pub mod client;
pub mod endpoint;
pub(crate) mod error;
pub(crate) mod request_scope;
pub(crate) mod retry;
pub mod urls;
pub mod xml;

pub use client::{
    Evidence, ListPageRequest, ListedObject, ListedPage, ObjectMeta, PutCondition, S3Client,
};
pub use endpoint::Endpoint;
pub use error::S3Error;
