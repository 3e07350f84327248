//! The HTTP side: a bare hyper accept loop, routing, handlers.

pub mod access;
pub mod decode;
pub mod handlers;
pub mod respond;
pub mod router;
pub mod server;
