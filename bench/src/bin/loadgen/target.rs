//! What differs between the servers under test: how a client connects and joins, and how
//! an event is published. Everything else in the load generator is shared.

use std::net::SocketAddr;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::json;
use sha2::Sha256;
use yawc::{Frame, OpCode};

use crate::http::Post;
use crate::wire::Counted;
use crate::{now_nanos, Args, Kind};

/// A connected client socket, counting the bytes it reads.
pub(crate) type Socket = yawc::WebSocket<Counted>;

/// The Pusher app that bench/run.py configures Sockudo with.
pub(crate) const PUSHER_APP: (&str, &str) = ("bench", "bench-key");

/// One event to publish: to a user, or to everyone.
pub(crate) type Event = (Option<usize>, u64);

pub(crate) struct Target {
    pub(crate) args: Args,
}

impl Target {
    /// The node that client (or publisher) `n` uses.
    pub(crate) fn node_of(&self, n: usize) -> SocketAddr {
        self.args.addr[n % self.args.addr.len()]
    }

    pub(crate) fn ws_url(&self, user: usize) -> String {
        let addr = self.node_of(user);
        match self.args.kind {
            Kind::Switchboard => format!("ws://{addr}/ws?token={}", self.token(user)),
            Kind::SwitchboardSocketio => {
                format!("ws://{addr}/socket.io/?EIO=4&transport=websocket&token={}", self.token(user))
            }
            Kind::Peer => format!("ws://{addr}/ws?user=u{user}"),
            Kind::Socketio => format!("ws://{addr}/socket.io/?EIO=4&transport=websocket&user=u{user}"),
            Kind::Pusher => format!("ws://{addr}/app/{}?protocol=7&client=bench&version=1", PUSHER_APP.1),
        }
    }

    /// User `u{user}`'s JWT for a day.
    fn token(&self, user: usize) -> String {
        let claims = json!({"sub": format!("u{user}"), "exp": now_nanos() / 1_000_000_000 + 86_400});
        let claims = claims.as_object().cloned().unwrap_or_default();
        switchboard_auth::mint(switchboard_auth::Algorithm::HS256, self.args.secret.as_bytes(), &claims)
            .unwrap_or_default()
    }

    /// Completes the protocol's own handshake, so that the client receives events once this
    /// returns.
    pub(crate) async fn join(&self, ws: &mut Socket, user: usize) -> anyhow::Result<()> {
        match self.args.kind {
            Kind::Switchboard => wait_for(ws, "\"connected\"").await,
            Kind::Peer => Ok(()),
            Kind::Socketio | Kind::SwitchboardSocketio => {
                wait_for(ws, "0{").await?; // Engine.IO open
                ws.send(Frame::text("40")).await?; // Socket.IO connect to "/"
                wait_for(ws, "40").await
            }
            Kind::Pusher => {
                wait_for(ws, "pusher:connection_established").await?;
                for channel in ["broadcast".to_owned(), format!("user-u{user}")] {
                    let subscribe = json!({"event": "pusher:subscribe", "data": {"channel": channel}});
                    ws.send(Frame::text(subscribe.to_string())).await?;
                    wait_for(ws, "subscription_succeeded").await?;
                }
                Ok(())
            }
        }
    }

    /// One HTTP request carrying `events`.
    pub(crate) fn publish(&self, events: &[Event]) -> Post {
        match self.args.kind {
            Kind::Switchboard | Kind::SwitchboardSocketio => self.switchboard_request(events),
            Kind::Peer | Kind::Socketio => {
                let (user, k) = events[0];
                let event = json!({"type": "bench", "data": self.data(k)});
                let body = json!({"user": user.map(|u| format!("u{u}")), "event": event});
                Post { path: "/publish".into(), bearer: None, body: body.to_string() }
            }
            Kind::Pusher => self.pusher_request(events[0]),
        }
    }

    /// An event's data: the send time, a counter and, with `--payload`, a notification body.
    fn data(&self, k: u64) -> serde_json::Value {
        match self.args.payload {
            0 => json!({"t": now_nanos(), "k": k}),
            size => json!({"t": now_nanos(), "k": k, "title": "Family wallet", "body": crate::wire::body(k, size)}),
        }
    }

    fn switchboard_request(&self, events: &[Event]) -> Post {
        let event = |(user, k): &Event| {
            let channel = user.map_or("broadcast".to_owned(), |u| format!("user:u{u}"));
            json!({"channels": [channel], "type": "bench", "data": self.data(*k)})
        };
        let (path, body) = match events {
            [(Some(user), k)] if self.args.scenario == crate::Scenario::Notify => {
                let data = self.data(*k);
                let body = json!({"user": format!("u{user}"), "title": "Bench", "message": "A notification", "type": "bench", "data": data});
                ("/api/v1/apps/bench/notifications", body)
            }
            [one] => ("/api/v1/apps/bench/publish", event(one)),
            many => ("/api/v1/apps/bench/publish/batch", json!({"events": many.iter().map(event).collect::<Vec<_>>()})),
        };
        Post { path: path.into(), bearer: Some(self.args.key.clone()), body: body.to_string() }
    }

    /// Pusher's HTTP API: the query is signed with the app secret (HMAC-SHA256).
    fn pusher_request(&self, (user, k): Event) -> Post {
        let channel = user.map_or("broadcast".to_owned(), |u| format!("user-u{u}"));
        let data = self.data(k).to_string();
        let body = json!({"name": "bench", "channels": [channel], "data": data}).to_string();
        let path = format!("/apps/{}/events", PUSHER_APP.0);
        let query = format!(
            "auth_key={}&auth_timestamp={}&auth_version=1.0&body_md5={}",
            PUSHER_APP.1,
            now_nanos() / 1_000_000_000,
            hex::encode(Md5::digest(body.as_bytes()))
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(self.args.key.as_bytes()).expect("HMAC takes any key length");
        mac.update(format!("POST\n{path}\n{query}").as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        Post { path: format!("{path}?{query}&auth_signature={signature}"), bearer: None, body }
    }
}

/// Reads until a text frame containing `marker` arrives.
async fn wait_for(ws: &mut Socket, marker: &str) -> anyhow::Result<()> {
    while let Some(frame) = ws.next().await {
        if frame.opcode() == OpCode::Text && frame.as_str().contains(marker) {
            return Ok(());
        }
    }
    Err(anyhow::anyhow!("closed before {marker}")).context("joining")
}

/// Where the load generator connects from: 127.0.0.2-127.0.0.249, so that 19k clients do
/// not exhaust one source address's ephemeral ports.
pub(crate) fn source_of(user: usize) -> SocketAddr {
    SocketAddr::new(std::net::Ipv4Addr::new(127, 0, 0, 2 + (user % 248) as u8).into(), 0)
}
