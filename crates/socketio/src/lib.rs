//! Socket.IO for unchanged `socket.io-client` v4 front ends (seed 003).
//!
//! Engine.IO v4 (HTTP long-polling, WebSocket, and the upgrade between them) carries
//! Socket.IO v5 packets; the adapter turns a connection to the default namespace into an
//! ordinary hub session, so one hub core serves both protocols and this crate owns no
//! routing: events become `(type, data)`, emits with acknowledgements become requests with a
//! `ref`, and Socket.IO's connection state recovery becomes the hub's `resume`.
//!
//! # Layout
//! - `engine/`: Engine.IO: packets, sessions (queue, heartbeat), polling and WebSocket.
//! - `sio/`: Socket.IO packets and the bridge to the hub session; `diagnostic.rs`: the
//!   conformance mode (off unless a manifest asks for it).
//! - [`router`]: one route per Socket.IO endpoint of every app.
//! - `fuzzing.rs`: the packet decoders' entry points for `fuzz/` (only under `cfg(fuzzing)`).

mod engine;
#[cfg(any(fuzzing, test))]
pub mod fuzzing;
mod sio;

pub use sio::router;

/// An unguessable id: 128 random bits in hex.
fn random_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}
