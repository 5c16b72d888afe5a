//! Every bound a client can push against, tried as an attacker would: each test floods a real
//! server process one way and asserts that the offender is stopped, that everyone else keeps
//! being served, and that the server's resident memory stays within a stated budget.
//! docs/OPERATIONS.md lists each bound with its default and what happens when it is hit.

#[path = "../common/mod.rs"]
mod common;
mod http;
mod publish;
mod socketio;
mod support;
mod websocket;
mod wire;
