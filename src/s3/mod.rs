//! The S3 side: where objects live (addressing), how to talk to S3 (client), and what
//! S3 says back (typed errors, XML documents).

pub mod breaker;
pub mod client;
pub mod endpoint;
pub mod error;
pub mod request_scope;
pub mod retry;
pub mod urls;
pub mod xml;

pub use client::{
    Evidence, ListPageRequest, ListedObject, ListedPage, ObjectMeta, PutCondition, S3Client,
};
pub use endpoint::Endpoint;
pub use error::S3Error;
