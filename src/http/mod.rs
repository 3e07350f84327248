//! The HTTP side: a bare hyper accept loop, routing, handlers.

pub mod access;
pub mod client_addr;
pub mod conn;
pub mod decode;
pub mod events;
pub mod failure;
pub mod handlers;
pub mod list_body;
pub mod request_id;
pub mod respond;
pub mod router;
pub mod server;
pub mod sns;
