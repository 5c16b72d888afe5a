//! The NATS broker: nodes share a NATS server (`--broker nats://host:4222`).
//!
//! Each topic is its own subject, `sb.{app}.{channel}` (escaped so that each part is one
//! literal token; `?channel_prefix=name` makes it `sb.name.{app}.{channel}`). A node
//! subscribes to a subject while it has local subscribers, so it receives nothing else. One
//! connection per node carries everything in order, with `echo` off: the node delivers its
//! own publishes locally at once, and the server does not send them back. `settle` is a
//! PING: its PONG comes after the server applied every earlier SUB and UNSUB.
//!
//! When the connection breaks, the node reconnects by itself (pauses from 0.1 s growing to
//! 5 s) and subscribes again to every topic with local subscribers; publishes fail with
//! "unavailable" meanwhile. As with Redis, what others published during the outage is not
//! received live; the hub fills such holes from history (see the hub's `order.rs`).

mod wire;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::remote::{Backoff, Change, Changes, Interest};
use crate::{split_prefix, Broker, BrokerError, Deliver, Envelope, Topic};
use wire::ServerOp;

/// Commands written to the socket in one go, at most.
const WRITE_BATCH: usize = 256;
/// Publishes waiting for the socket, at most. Past it `publish` waits for room: whoever
/// publishes slows to what the NATS server takes (and the history sequencer, waiting behind
/// it, sheds what it cannot queue) instead of the queue growing without end.
const PUBLISH_QUEUE: usize = 1024;
/// Messages read from the server and not yet handed to the hub, at most. Past it the reader
/// stops reading, TCP pushes back, and the NATS server treats the node as a slow consumer
/// (it may drop the connection; the node reconnects and fills holes from history).
const OPS_QUEUE: usize = 256;

fn settle_of(change: Change) -> Option<oneshot::Sender<()>> {
    match change {
        Change::Settle(done) => Some(done),
        _ => None,
    }
}

/// Where and how to connect.
#[derive(Clone)]
struct Server {
    addr: String,
    user: Option<String>,
    pass: Option<String>,
    token: Option<String>,
}

impl Server {
    /// `nats://[user:pass@|token@]host[:port][?channel_prefix=name]`; returns the subject prefix too.
    fn parse(url: &str) -> Result<(Self, String), BrokerError> {
        let (url, name) = split_prefix(url)?;
        let prefix = name.map_or_else(|| "sb.".to_owned(), |n| format!("sb.{n}."));
        let rest =
            url.strip_prefix("nats://").ok_or_else(|| BrokerError::Unavailable(format!("`{url}` is not nats://")))?;
        let rest = rest.trim_end_matches('/');
        let (credentials, host) = rest.rsplit_once('@').map_or((None, rest), |(c, h)| (Some(c), h));
        let (user, pass, token) = match credentials.map(|c| c.split_once(':')) {
            Some(Some((user, pass))) => (Some(user.to_owned()), Some(pass.to_owned()), None),
            Some(None) => (None, None, credentials.map(str::to_owned)),
            None => (None, None, None),
        };
        let addr = if host.contains(':') { host.to_owned() } else { format!("{host}:4222") };
        Ok((Self { addr, user, pass, token }, prefix))
    }

    /// Opens a connection: reads INFO, sends CONNECT, and waits for the PONG to a PING, so
    /// that a refused CONNECT (bad credentials) is an error here. Its reader runs as a task.
    async fn open(&self) -> Result<(OwnedWriteHalf, mpsc::Receiver<ServerOp>), BrokerError> {
        let io = |e: std::io::Error| BrokerError::Unavailable(format!("NATS at {}: {e}", self.addr));
        let (read, mut write) = TcpStream::connect(&self.addr).await.map_err(io)?.into_split();
        let mut reader = BufReader::new(read);
        let first = wire::read_op(&mut reader).await.map_err(io)?;
        if first != Some(ServerOp::Info) {
            return Err(BrokerError::Unavailable(format!("{} did not greet like a NATS server", self.addr)));
        }
        let mut hello = wire::connect(self.user.as_deref(), self.pass.as_deref(), self.token.as_deref());
        hello.extend_from_slice(wire::PING);
        write.write_all(&hello).await.map_err(io)?;
        loop {
            match wire::read_op(&mut reader).await.map_err(io)? {
                Some(ServerOp::Pong) => break,
                Some(ServerOp::Err(e)) => return Err(BrokerError::Unavailable(format!("NATS refused: {e}"))),
                Some(_) => continue,
                None => return Err(BrokerError::Unavailable("NATS closed the connection".into())),
            }
        }
        let (ops, received) = mpsc::channel(OPS_QUEUE);
        tokio::spawn(async move {
            while let Ok(Some(op)) = wire::read_op(&mut reader).await {
                if ops.send(op).await.is_err() {
                    return;
                }
            }
        });
        Ok((write, received))
    }
}

/// One node's handle on a NATS server.
pub struct NatsBroker {
    prefix: Arc<str>,
    interest: Interest<Change>,
    /// Whole PUB commands for the connection task.
    publishes: mpsc::Sender<Vec<u8>>,
    deliver: Arc<OnceLock<Arc<dyn Deliver>>>,
    /// Whether the connection is up (publishes fail fast while it is not).
    up: Arc<AtomicBool>,
    closed: AtomicBool,
}

impl NatsBroker {
    /// Connects to `url` (`nats://host:4222`).
    pub async fn connect(url: &str) -> Result<Self, BrokerError> {
        let (server, prefix) = Server::parse(url)?;
        let first = server.open().await?;
        let (interest, changes) = Interest::new();
        let (publishes, queued) = mpsc::channel(PUBLISH_QUEUE);
        let link = Link {
            server,
            prefix: prefix.into(),
            deliver: Arc::default(),
            interest: interest.share(),
            up: Arc::new(AtomicBool::new(true)),
        };
        let broker = Self {
            prefix: link.prefix.clone(),
            interest,
            publishes,
            deliver: link.deliver.clone(),
            up: link.up.clone(),
            closed: AtomicBool::new(false),
        };
        tokio::spawn(link.run(first, changes, queued));
        Ok(broker)
    }
}

/// The task that owns the connection: writes commands in order, hands messages to the hub,
/// answers the server's PINGs, and reconnects.
struct Link {
    server: Server,
    prefix: Arc<str>,
    deliver: Arc<OnceLock<Arc<dyn Deliver>>>,
    interest: Interest<Change>,
    up: Arc<AtomicBool>,
}

/// What the connection task reads from: interest changes and publishes, each in order.
struct Queues {
    changes: Changes<Change>,
    publishes: mpsc::Receiver<Vec<u8>>,
}

/// One connection's subscriptions, by id and by topic.
#[derive(Default)]
struct Subscriptions {
    next: u64,
    by_sid: HashMap<u64, Topic>,
    by_topic: HashMap<Topic, u64>,
}

impl Subscriptions {
    fn add(&mut self, out: &mut Vec<u8>, prefix: &str, topic: Topic) {
        if self.by_topic.contains_key(&topic) {
            return;
        }
        self.next += 1;
        wire::subscribe(out, &wire::subject(prefix, &topic), self.next);
        self.by_sid.insert(self.next, topic.clone());
        self.by_topic.insert(topic, self.next);
    }

    fn remove(&mut self, out: &mut Vec<u8>, topic: &Topic) {
        if let Some(sid) = self.by_topic.remove(topic) {
            self.by_sid.remove(&sid);
            wire::unsubscribe(out, sid);
        }
    }
}

impl Link {
    async fn run(
        self,
        first: (OwnedWriteHalf, mpsc::Receiver<ServerOp>),
        changes: Changes<Change>,
        publishes: mpsc::Receiver<Vec<u8>>,
    ) {
        let mut queues = Queues { changes, publishes };
        let mut connection = Some(first);
        let mut backoff = Backoff::new();
        loop {
            let (write, ops) = match connection.take() {
                Some(connection) => connection,
                None => match self.server.open().await {
                    Ok(connection) => {
                        tracing::info!("reconnected to NATS and subscribed again");
                        backoff.reset();
                        connection
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?backoff.pause(), "NATS unreachable");
                        if !backoff.wait(&mut queues.changes, settle_of).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            self.up.store(true, Ordering::Release);
            if !self.serve(write, ops, &mut queues).await {
                return;
            }
            self.up.store(false, Ordering::Release);
            // What was published into the broken connection is lost, as it would be in
            // flight; receivers fill the hole from history.
            while queues.publishes.try_recv().is_ok() {}
            tracing::error!("lost the NATS connection; reconnecting");
        }
    }

    /// Serves one connection until it breaks (`true`) or the broker is dropped (`false`).
    async fn serve(&self, mut write: OwnedWriteHalf, mut ops: mpsc::Receiver<ServerOp>, queues: &mut Queues) -> bool {
        let mut subscriptions = Subscriptions::default();
        // Bounded: each waits for one PONG; past MAX_SETTLES the server has stopped answering
        // and the connection is dropped (with them) and made again.
        let mut settles: VecDeque<oneshot::Sender<()>> = VecDeque::new();
        let mut out = Vec::new();
        for topic in self.interest.topics() {
            subscriptions.add(&mut out, &self.prefix, topic);
        }
        loop {
            if !out.is_empty() && write.write_all(&out).await.is_err() {
                return true;
            }
            out.clear();
            tokio::select! {
                op = ops.recv() => match op {
                    Some(op) => self.on_op(op, &subscriptions, &mut settles, &mut out),
                    None => return true,
                },
                change = queues.changes.recv() => {
                    let Some(change) = change else { return false };
                    self.on_change(change, &mut subscriptions, &mut settles, &mut out);
                    // Whatever else is queued goes out in the same write.
                    for _ in 0..WRITE_BATCH {
                        let Some(change) = queues.changes.try_recv() else { break };
                        self.on_change(change, &mut subscriptions, &mut settles, &mut out);
                    }
                    if settles.len() > MAX_SETTLES {
                        tracing::error!(waiting = settles.len(), "the NATS server stopped answering PINGs; reconnecting");
                        return true;
                    }
                }
                frame = queues.publishes.recv() => {
                    let Some(frame) = frame else { return false };
                    out.extend_from_slice(&frame);
                    for _ in 0..WRITE_BATCH {
                        let Ok(frame) = queues.publishes.try_recv() else { break };
                        out.extend_from_slice(&frame);
                    }
                }
            }
        }
    }

    fn on_op(
        &self,
        op: ServerOp,
        subs: &Subscriptions,
        settles: &mut VecDeque<oneshot::Sender<()>>,
        out: &mut Vec<u8>,
    ) {
        match op {
            ServerOp::Msg { sid, payload } => {
                let (Some(topic), Some(deliver)) = (subs.by_sid.get(&sid), self.deliver.get()) else { return };
                if let Some(envelope) = decode(topic, &payload) {
                    deliver.deliver(envelope);
                }
            }
            ServerOp::Ping => out.extend_from_slice(wire::PONG),
            ServerOp::Pong => {
                if let Some(done) = settles.pop_front() {
                    let _ = done.send(());
                }
            }
            ServerOp::Err(e) => tracing::error!(error = %e, "NATS reported an error"),
            ServerOp::Info | ServerOp::Ok => {}
        }
    }

    fn on_change(
        &self,
        change: Change,
        subs: &mut Subscriptions,
        settles: &mut VecDeque<oneshot::Sender<()>>,
        out: &mut Vec<u8>,
    ) {
        match change {
            Change::Subscribe(topic) => subs.add(out, &self.prefix, topic),
            Change::Unsubscribe(topic) => subs.remove(out, &topic),
            Change::Settle(done) => {
                out.extend_from_slice(wire::PING);
                settles.push_back(done);
            }
        }
    }
}

/// Settles that may wait for the server's PONGs on one connection; more means it stopped
/// answering.
const MAX_SETTLES: usize = 1024;

/// A message's payload is the event's seq and publish time (8 bytes each, big-endian), then
/// the frame.
fn decode(topic: &Topic, payload: &[u8]) -> Option<Envelope> {
    let seq = u64::from_be_bytes(payload.get(..8)?.try_into().ok()?);
    let published_us = u64::from_be_bytes(payload.get(8..16)?.try_into().ok()?);
    let frame = Bytes::copy_from_slice(&payload[16..]);
    Some(Envelope { app: topic.app.clone(), channel: topic.channel.clone(), payload: frame, seq, published_us })
}

#[async_trait]
impl Broker for NatsBroker {
    fn attach(&self, deliver: Arc<dyn Deliver>) {
        let _ = self.deliver.set(deliver);
    }

    async fn publish(&self, envelope: Envelope) -> Result<(), BrokerError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BrokerError::Closed);
        }
        if !self.up.load(Ordering::Acquire) {
            return Err(BrokerError::Unavailable("the NATS connection is down; reconnecting".into()));
        }
        let topic = Topic { app: envelope.app.clone(), channel: envelope.channel.clone() };
        let mut payload = Vec::with_capacity(16 + envelope.payload.len());
        payload.extend_from_slice(&envelope.seq.to_be_bytes());
        payload.extend_from_slice(&envelope.published_us.to_be_bytes());
        payload.extend_from_slice(&envelope.payload);
        let mut frame = Vec::with_capacity(payload.len() + 64);
        wire::publish(&mut frame, &wire::subject(&self.prefix, &topic), &payload);
        if self.interest.has(&topic) {
            if let Some(deliver) = self.deliver.get() {
                deliver.deliver(envelope);
            }
        }
        self.publishes.send(frame).await.map_err(|_| BrokerError::Closed)
    }

    fn subscribe(&self, topic: Topic) {
        self.interest.subscribe(topic);
    }

    fn unsubscribe(&self, topic: Topic) {
        self.interest.unsubscribe(topic);
    }

    async fn settle(&self) {
        self.interest.settle().await;
    }

    async fn close(&self) -> Result<(), BrokerError> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{NatsBroker, Server};
    use crate::{Broker, Envelope, Topic};

    #[tokio::test]
    async fn nats_passes_conformance() {
        let Some(url) = crate::testing::nats_url() else { return };
        crate::testing::conformance_on(|| async { NatsBroker::connect(&url).await.unwrap() }).await;
    }

    #[test]
    fn urls_name_the_server_its_credentials_and_the_prefix() {
        let (s, prefix) = Server::parse("nats://127.0.0.1:4333").unwrap();
        assert_eq!((s.addr.as_str(), prefix.as_str()), ("127.0.0.1:4333", "sb."));
        let (s, prefix) = Server::parse("nats://ann:pw@nats.internal/?channel_prefix=blue").unwrap();
        assert_eq!(
            (s.addr.as_str(), s.user.as_deref(), s.pass.as_deref()),
            ("nats.internal:4222", Some("ann"), Some("pw"))
        );
        assert_eq!(prefix, "sb.blue.");
        let (s, _) = Server::parse("nats://s3cret@h:1").unwrap();
        assert_eq!(s.token.as_deref(), Some("s3cret"));
    }

    #[tokio::test]
    async fn an_unreachable_nats_is_a_clear_error() {
        let error = NatsBroker::connect("nats://127.0.0.1:1").await.err().expect("nothing listens on port 1");
        assert!(error.to_string().starts_with("broker unavailable: NATS at 127.0.0.1:1"), "{error}");
    }

    /// Starts Debian's nats-server on `port` and waits until it accepts connections.
    async fn spawn_nats(port: u16) -> tokio::process::Child {
        let child = tokio::process::Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server (Debian's nats-server package) is installed");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return child;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("nats-server did not start on port {port}");
    }

    /// A NATS server of this test's own, restarted under the broker: it reconnects.
    #[tokio::test]
    async fn a_restarted_server_is_reconnected_and_subscribed_again() {
        if crate::testing::nats_url().is_none() {
            return;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let start = || spawn_nats(port);
        let mut server = start().await;
        let url = format!("nats://127.0.0.1:{port}");
        let (receiving, sending) = (NatsBroker::connect(&url).await.unwrap(), NatsBroker::connect(&url).await.unwrap());
        let recorder = Arc::new(crate::testing::Recorder::default());
        receiving.attach(recorder.clone());
        let topic = Topic { app: "reconnect".into(), channel: "room:1".into() };
        receiving.subscribe(topic);
        receiving.settle().await;
        server.kill().await.unwrap();
        let _server = start().await;
        let envelope = |n: u32| Envelope {
            app: "reconnect".into(),
            channel: "room:1".into(),
            payload: n.to_string().into(),
            seq: 0,
            published_us: 0,
        };
        // Publish until one gets through both reconnections (bounded: 200 tries, 10 s).
        for n in 0..200 {
            let _ = sending.publish(envelope(n)).await;
            let got = tokio::time::timeout(std::time::Duration::from_millis(50), recorder.wait_for(1)).await;
            if got.is_ok_and(|payloads| !payloads.is_empty()) {
                return;
            }
        }
        panic!("no publish reached the node after its NATS server restarted");
    }
}
