//! What the tests share: the in-process S3 and service (`common`), the SigV4 vector
//! loader (`sigv4`), doubles of the credential endpoints and the fault-injecting proxy.

pub(crate) mod common;
pub(crate) mod credential_doubles;
pub(crate) mod fault;
pub(crate) mod sigv4;
