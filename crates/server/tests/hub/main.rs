//! Integration tests: a real server on 127.0.0.1:0, real WebSocket and HTTP clients.

#![allow(unreachable_pub)]
//! One module per area of the core hub.

mod alerts;
mod api;
mod auth;
mod bad_input;
mod chat;
mod cluster;
mod compression;
mod cors;
mod embed;
mod engineio;
mod handlers;
mod history;
mod inbox_bad_input;
mod lifecycle;
mod metrics;
mod notifications;
mod presence;
mod proxies;
mod recovery;
mod routing;
mod socketio;
mod socketio_clients;
mod support;
