//! Control messages between nodes. They travel on one internal topic per app, `$control`,
//! which no client can name (a channel name needs a namespace), so every broker carries them
//! like events, in order per sending node.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_broker::{Envelope, Topic};
use switchboard_protocol::api::ConnectionInfo;
use switchboard_protocol::{Channel, Disconnect};

use super::Hub;
use crate::metrics::Traffic;
use crate::App;

/// The internal topic of an app's control messages.
pub(crate) const CONTROL: &str = "$control";

/// One control message: who sent it, and what.
#[derive(Serialize, Deserialize)]
pub(crate) struct Control {
    /// The sending node's id.
    pub(crate) node: String,
    /// A number drawn at the sending process's start: a restarted node is a new member.
    pub(crate) boot: u64,
    #[serde(flatten)]
    pub(crate) op: Op,
}

/// What a control message asks or tells.
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Op {
    /// I am alive, with these connections; `services` holds what each service adds.
    Beat {
        counts: NodeCounts,
        #[serde(default)]
        services: Map<String, Value>,
        #[serde(default)]
        traffic: Traffic,
    },
    /// Every node: do `act` for `user`'s connections there, then answer `id`'s asker.
    Ask { id: u64, user: String, act: Act },
    /// A node's answer to the asker `to`: the user's connections there, and how many the act
    /// touched.
    Answer { id: u64, to: String, connections: Vec<ConnectionInfo>, count: usize },
    /// A service's own message to the same service on the other nodes.
    Service { service: String, body: Value },
}

/// What every node does for one user's connections there.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "act", rename_all = "snake_case")]
pub(crate) enum Act {
    /// Nothing: list them.
    List,
    /// Close them with 4403.
    Disconnect,
    /// Subscribe them to `channel` (a new membership), in effect at the broker before the answer.
    Join {
        channel: String,
        /// The channel's newest seq, read by the asking node before any node subscribed: where
        /// the channel's order starts on a node where it has no subscribers yet.
        #[serde(default)]
        head: Option<u64>,
    },
    /// Unsubscribe them from `channel`, except where the token's groups grant it.
    Leave { channel: String },
    /// Not a user's: queue `frame` for the one connection named, wherever it is.
    Send { connection_id: String, frame: String },
}

/// One node's connections of one app.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeCounts {
    /// Live connections.
    pub total: usize,
    /// Distinct users among them.
    pub users: usize,
    /// Connections without a user.
    pub anonymous: usize,
    /// Connections per endpoint name.
    pub by_endpoint: BTreeMap<String, usize>,
}

impl NodeCounts {
    /// This node's counts for `app`.
    pub(crate) fn of(app: &App) -> Self {
        let all = app.registry.all();
        let mut by_endpoint = BTreeMap::new();
        for meta in &all {
            *by_endpoint.entry(meta.endpoint.clone()).or_default() += 1;
        }
        Self {
            total: all.len(),
            users: app.registry.user_count(),
            anonymous: all.iter().filter(|m| m.user_id.is_none()).count(),
            by_endpoint,
        }
    }

    /// Adds another node's counts to these.
    pub(crate) fn add(&mut self, other: &NodeCounts) {
        self.total += other.total;
        self.users += other.users;
        self.anonymous += other.anonymous;
        for (endpoint, n) in &other.by_endpoint {
            *self.by_endpoint.entry(endpoint.clone()).or_default() += n;
        }
    }
}

impl Hub {
    /// Subscribes to every app's control topic; called once at start.
    pub(crate) fn listen_for_control(&self) {
        for app in self.apps() {
            self.shared.broker.subscribe(Topic { app: app.slug.clone(), channel: CONTROL.into() });
        }
    }

    /// Queues a control message for the other nodes. Messages go out one at a time in the
    /// order queued, so the other nodes see one node's messages in that order too.
    pub(crate) fn send_control(&self, app: &App, op: Op) {
        let control = Control { node: self.node_id().to_owned(), boot: self.shared.boot, op };
        match serde_json::to_vec(&control) {
            Ok(payload) => {
                let (app, channel, payload) = (app.slug.clone(), CONTROL.into(), payload.into());
                let envelope = Envelope { app, channel, payload, seq: 0, published_us: 0 };
                let _ = self.shared.cluster.outgoing.send(envelope);
            }
            Err(e) => tracing::error!(error = %e, "could not encode a control message"),
        }
    }

    /// Sends `body` to the service named `service` on every other node, after this node's
    /// earlier control messages.
    pub fn tell_nodes(&self, app: &App, service: &str, body: Value) {
        self.send_control(app, Op::Service { service: service.to_owned(), body });
    }

    /// A control message from the broker (this node's own are skipped).
    pub(crate) fn on_control(&self, app: &std::sync::Arc<App>, payload: &[u8]) {
        let control = match serde_json::from_slice::<Control>(payload) {
            Ok(control) => control,
            Err(e) => return tracing::warn!(error = %e, "unreadable control message"),
        };
        if control.node == self.node_id() && control.boot == self.shared.boot {
            return;
        }
        self.heard(app, &control);
        match control.op {
            Op::Beat { .. } => {} // `heard` took it
            Op::Ask { id, user, act } => {
                let count = act_on_user(app, &user, &act);
                let (hub, app, to) = (self.clone(), app.clone(), control.node);
                // A membership change is answered once the broker applied it, so that the
                // asker's next publish reaches these connections.
                let settle = matches!(act, Act::Join { .. } | Act::Leave { .. });
                tokio::spawn(async move {
                    if settle {
                        hub.settle().await;
                    }
                    let connections = hub.user_connections(&app, &user);
                    hub.send_control(&app, Op::Answer { id, to, connections, count });
                });
            }
            Op::Answer { id, to, connections, count } if to == self.node_id() => {
                self.shared.cluster.answered(id, control.node, connections, count);
            }
            Op::Answer { .. } => {}
            Op::Service { service, body } => {
                for s in self.services().iter().filter(|s| s.name() == service) {
                    s.on_node(self, app, &control.node, crate::NodeEvent::Message(&body));
                }
            }
        }
    }
}

/// Does `act` for `user`'s connections on this node (or, for [`Act::Send`], for the
/// connection it names); how many it touched.
pub(crate) fn act_on_user(app: &App, user: &str, act: &Act) -> usize {
    act_on_connections(app, app.registry.user_connections(user), act)
}

/// Does `act` for the connections `ids` (or, for [`Act::Send`], for the connection it
/// names); how many it touched.
pub(crate) fn act_on_connections(app: &App, ids: Vec<crate::ConnId>, act: &Act) -> usize {
    match act {
        Act::List => 0,
        Act::Disconnect => {
            let reason = Disconnect::new(Disconnect::FORBIDDEN, "disconnected by the server");
            let outboxes = ids.into_iter().filter_map(|id| app.registry.get(id)).map(|(_, outbox)| outbox);
            outboxes.map(|outbox| outbox.close(reason.clone(), false)).count()
        }
        Act::Join { channel, head } => ids.into_iter().filter(|id| app.registry.subscribe(*id, channel, *head)).count(),
        Act::Leave { channel } => {
            let granted_by_token = |meta: &crate::ConnMeta| match Channel::parse(channel) {
                Ok(Channel::Group(group)) => meta.groups.iter().any(|g| g == group),
                _ => false,
            };
            let kept = |id: &crate::ConnId| app.registry.get(*id).is_some_and(|(meta, _)| granted_by_token(&meta));
            ids.into_iter().filter(|id| !kept(id) && app.registry.unsubscribe(*id, channel)).count()
        }
        Act::Send { connection_id, frame } => {
            let outbox = app.registry.find(connection_id);
            usize::from(outbox.is_some_and(|o| o.push(bytes::Bytes::from(frame.clone())).is_ok()))
        }
    }
}
