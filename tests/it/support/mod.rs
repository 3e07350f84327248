//! What the tests share: the in-process S3 and service (`common`), the SigV4 vector
//! loader (`sigv4`), doubles of the credential endpoints and the fault-injecting proxy.

pub mod common;
pub mod credential_doubles;
pub mod fault;
pub mod sigv4;
