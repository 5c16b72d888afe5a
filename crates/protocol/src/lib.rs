//! Switchboard's wire types, shared by the hub, the transports, the HTTP API and the SDKs.
//!
//! # Layout
//! - [`channel`]: the one routing primitive, [`Channel`], parsed from names such as
//!   `user:42`, `group:family-7`, `room:lobby`, `broadcast` or `stream:pond:42`.
//! - [`frame`]: what a client sends ([`ClientFrame`]) and the frames the server sends back
//!   ([`ServerFrame`], [`encode_event`]).
//! - [`close`]: [`Disconnect`], the close codes a client can switch on.
//! - [`error`]: [`ErrorCode`], the `code` of every `error` frame and HTTP error body.
//! - [`api`]: bodies of the HTTP server API.
//! - [`user`]: the one check of a user id taken from outside ([`check_user_id`]).
//!
//! This crate does no I/O and has no runtime: it is types and their encodings only.

pub mod api;
pub mod channel;
pub mod close;
pub mod error;
pub mod frame;
pub mod user;

pub use channel::{Channel, ChannelError};
pub use close::Disconnect;
pub use error::ErrorCode;
pub use frame::{encode_event, ClientFrame, EventMeta, FrameError, ServerFrame};
pub use user::{check_user_id, UserIdError, MAX_USER_ID_LEN};
