//! The HTTP side: a bare hyper accept loop, routing, handlers.

pub(crate) mod access;
pub(crate) mod client_addr;
pub(crate) mod conn;
pub mod decode;
pub(crate) mod events;
pub(crate) mod failure;
pub(crate) mod handlers;
pub(crate) mod list_body;
pub mod request_id;
pub(crate) mod respond;
pub mod router;
pub(crate) mod server;
pub(crate) mod sns;
