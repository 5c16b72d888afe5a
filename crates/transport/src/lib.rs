//! Transports: turn a client's socket into a hub session.
//!
//! # Layout
//! - [`router`]: one route per declared endpoint path, for every app.
//! - `upgrade`: the HTTP side of connecting: Origin allowlist, where the token is found
//!   (header, query, cookie), and the WebSocket limits.
//! - [`websocket`]: the WebSocket layer (RFC 6455 framing, RFC 7692 permessage-deflate),
//!   set up per endpoint; the Socket.IO transport uses it too.
//! - `native`: adapts a WebSocket to the hub's [`switchboard_hub::Inbound`] /
//!   [`switchboard_hub::Outbound`] frames; the hub's session does the rest.
//! - `echo`: the diagnostic echo endpoint for the RFC 6455 and RFC 7692 conformance suites.
//!   Same stack and limits, no hub; off unless a manifest declares `"protocol": "echo"`.
//!
//! Transports own no routing and no business logic.

mod echo;
mod native;
mod upgrade;
pub mod websocket;

pub use upgrade::{client_addr, control_limit, router};
