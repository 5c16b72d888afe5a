//! Transports: turn a client's socket into a hub session.
//!
//! # Layout
//! - [`router`]: one route per declared endpoint path, for every app.
//! - `upgrade`: the HTTP side of connecting: Origin allowlist, where the token is found
//!   (header, query, cookie), and the WebSocket limits.
//! - `native`: adapts an axum WebSocket to the hub's [`switchboard_hub::Inbound`] /
//!   [`switchboard_hub::Outbound`] frames; the hub's session does the rest.
//! - `echo`: the diagnostic echo endpoint for the RFC 6455 conformance suite. Same stack
//!   and limits, no hub; off unless a manifest declares `"protocol": "echo"`.
//!
//! Transports own no routing and no business logic.

mod echo;
mod native;
mod upgrade;

pub use upgrade::router;
