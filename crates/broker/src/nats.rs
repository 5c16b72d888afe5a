//! The NATS broker: nodes share a NATS server (`--broker nats://host:4222`).
//!
//! Each topic is its own subject, `sb.{app}.{channel}` (escaped so that each part is one
//! literal token; `?channel_prefix=name` makes it `sb.name.{app}.{channel}`). A node
//! subscribes to a subject while it has local subscribers, so it receives nothing else. One
//! connection per node carries everything in order, with `echo` off: the node delivers its
//! own publishes locally at once, and the server does not send them back. `settle` is a
//! PING: its PONG comes after the server applied every earlier SUB and UNSUB.
//!
//! A publish returns Ok once the server confirmed it: each batch of PUBs written to the socket
//! is followed by a PING, and the publishes of that batch are Ok when its PONG arrives (the
//! server answers in order, after it has routed every earlier PUB). A publish still unconfirmed
//! when the connection breaks fails, so no publisher is told Ok for a frame the server never
//! had. The same PINGs, and one every [`PROBE_EVERY`] when the connection is quiet, tell a
//! live server from a silent one: a PING unanswered for [`ANSWER_TIMEOUT`] drops the
//! connection and makes a new one (a half-open TCP connection otherwise looks healthy).
//!
//! When the connection breaks, the node reconnects by itself (pauses from 0.1 s growing to
//! 5 s) and subscribes again to every topic with local subscribers; publishes fail with
//! "unavailable" meanwhile. As with Redis, what others published during the outage is not
//! received live; the hub fills such holes from history (see the hub's `order.rs`).
//!
//! TLS: NATS greets in the clear (INFO), then the client upgrades the same TCP connection
//! before it sends CONNECT. The node upgrades when the URL asks for TLS (`tls://host:4222`,
//! or a `ca=` file) and when the server's INFO says `tls_required`, as NATS's own clients
//! do; a URL that asks for TLS is refused by a server that offers none, before any
//! credentials are sent. The certificate must chain to the `ca=` file (or to a public CA
//! without one) and name the URL's host, which is also the SNI name.

mod server;
mod wire;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use crate::remote::{Backoff, Change, Changes, Interest};
use crate::{Broker, BrokerError, Deliver, Envelope, Topic};
use server::{Server, Writer};
use wire::{ServerOp, Subscriptions};

/// How long a server may take to send its INFO after the TCP connection is made.
const GREETING_TIMEOUT: Duration = Duration::from_secs(10);
/// A quiet connection is probed with a PING this often.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// A PING unanswered this long means the server (or the path to it) is gone.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(6);
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

/// One PUB command and who waits for the server to confirm it.
struct Publish {
    frame: Vec<u8>,
    confirmed: oneshot::Sender<()>,
}

/// One PING written to the server, and those its PONG answers: settles, and the publishes
/// written before it.
struct Ping {
    sent: Instant,
    waiters: Vec<oneshot::Sender<()>>,
}

fn settle_of(change: Change) -> Option<oneshot::Sender<()>> {
    match change {
        Change::Settle(done) => Some(done),
        _ => None,
    }
}

/// One node's handle on a NATS server.
pub struct NatsBroker {
    prefix: Arc<str>,
    interest: Interest<Change>,
    /// Whole PUB commands for the connection task.
    publishes: mpsc::Sender<Publish>,
    deliver: Arc<OnceLock<Arc<dyn Deliver>>>,
    /// Whether the connection is up (publishes fail fast while it is not).
    up: Arc<AtomicBool>,
    closed: AtomicBool,
}

impl NatsBroker {
    /// Connects to `url` (`nats://host:4222`, or `tls://host:4222?ca=/path/ca.pem` for TLS).
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
    publishes: mpsc::Receiver<Publish>,
}

impl Link {
    async fn run(
        self,
        first: (Writer, mpsc::Receiver<ServerOp>),
        changes: Changes<Change>,
        publishes: mpsc::Receiver<Publish>,
    ) {
        let mut queues = Queues { changes, publishes };
        let mut connection = Some(first);
        let mut backoff = Backoff::new();
        loop {
            let (write, ops) = match connection.take() {
                Some(connection) => connection,
                // Bounded: a server that accepts and then says nothing must not hold it.
                None => match tokio::time::timeout(ANSWER_TIMEOUT, self.server.open()).await.unwrap_or_else(|_| {
                    Err(BrokerError::Unavailable(format!("NATS at {} did not answer", self.server.addr)))
                }) {
                    Ok(connection) => {
                        tracing::info!("reconnected to NATS and subscribed again");
                        backoff.reset();
                        if let Some(deliver) = self.deliver.get() {
                            deliver.reconnected();
                        }
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
            // What was queued for the broken connection fails (dropping `confirmed` tells
            // its publisher); receivers fill such holes from history.
            while queues.publishes.try_recv().is_ok() {}
            tracing::error!("lost the NATS connection; reconnecting");
        }
    }

    /// Serves one connection until it breaks (`true`) or the broker is dropped (`false`).
    async fn serve(&self, mut write: Writer, mut ops: mpsc::Receiver<ServerOp>, queues: &mut Queues) -> bool {
        let mut subscriptions = Subscriptions::default();
        // Bounded: past MAX_PINGS unanswered the server has stopped answering, and the
        // connection is dropped (failing their waiters) and made again.
        let mut pings: VecDeque<Ping> = VecDeque::new();
        let mut out = Vec::new();
        let mut probe = tokio::time::interval(PROBE_EVERY);
        for topic in self.interest.topics() {
            subscriptions.add(&mut out, &self.prefix, topic);
        }
        loop {
            // A TLS stream may hold written bytes until flushed. A server that takes nothing
            // for ANSWER_TIMEOUT is as gone as one that does not answer.
            if !out.is_empty() {
                let written = async {
                    write.write_all(&out).await?;
                    write.flush().await
                };
                if !matches!(tokio::time::timeout(ANSWER_TIMEOUT, written).await, Ok(Ok(()))) {
                    return true;
                }
            }
            out.clear();
            if pings.len() > MAX_PINGS || pings.front().is_some_and(|p| p.sent.elapsed() > ANSWER_TIMEOUT) {
                tracing::error!(waiting = pings.len(), "the NATS server stopped answering PINGs; reconnecting");
                return true;
            }
            tokio::select! {
                op = ops.recv() => match op {
                    Some(op) => self.on_op(op, &subscriptions, &mut pings, &mut out),
                    None => return true,
                },
                change = queues.changes.recv() => {
                    let Some(change) = change else { return false };
                    self.on_change(change, &mut subscriptions, &mut pings, &mut out);
                    // Whatever else is queued goes out in the same write.
                    for _ in 0..WRITE_BATCH {
                        let Some(change) = queues.changes.try_recv() else { break };
                        self.on_change(change, &mut subscriptions, &mut pings, &mut out);
                    }
                }
                publish = queues.publishes.recv() => {
                    let Some(publish) = publish else { return false };
                    let mut waiters = vec![publish.confirmed];
                    out.extend_from_slice(&publish.frame);
                    for _ in 0..WRITE_BATCH {
                        let Ok(publish) = queues.publishes.try_recv() else { break };
                        out.extend_from_slice(&publish.frame);
                        waiters.push(publish.confirmed);
                    }
                    ping(&mut out, &mut pings, waiters);
                }
                _ = probe.tick() => {
                    if pings.is_empty() {
                        ping(&mut out, &mut pings, Vec::new());
                    }
                }
            }
        }
    }

    fn on_op(&self, op: ServerOp, subs: &Subscriptions, pings: &mut VecDeque<Ping>, out: &mut Vec<u8>) {
        match op {
            ServerOp::Msg { sid, payload } => {
                let (Some(topic), Some(deliver)) = (subs.by_sid.get(&sid), self.deliver.get()) else { return };
                if let Some(envelope) = decode(topic, &payload) {
                    deliver.deliver(envelope);
                }
            }
            ServerOp::Ping => out.extend_from_slice(wire::PONG),
            ServerOp::Pong => {
                for done in pings.pop_front().into_iter().flat_map(|ping| ping.waiters) {
                    let _ = done.send(());
                }
            }
            ServerOp::Err(e) => tracing::error!(error = %e, "NATS reported an error"),
            ServerOp::Info(_) | ServerOp::Ok => {}
        }
    }

    fn on_change(&self, change: Change, subs: &mut Subscriptions, pings: &mut VecDeque<Ping>, out: &mut Vec<u8>) {
        match change {
            Change::Subscribe(topic) => subs.add(out, &self.prefix, topic),
            Change::Unsubscribe(topic) => subs.remove(out, &topic),
            Change::Settle(done) => ping(out, pings, vec![done]),
        }
    }
}

/// Appends a PING to `out`; its PONG will answer `waiters`.
fn ping(out: &mut Vec<u8>, pings: &mut VecDeque<Ping>, waiters: Vec<oneshot::Sender<()>>) {
    out.extend_from_slice(wire::PING);
    pings.push_back(Ping { sent: Instant::now(), waiters });
}

/// PINGs that may wait for the server's PONGs on one connection; more means it stopped
/// answering.
const MAX_PINGS: usize = 1024;

/// A message's payload is the event's seq and publish time (8 bytes each, big-endian), then
/// the frame.
fn decode(topic: &Topic, payload: &[u8]) -> Option<Envelope> {
    let seq = u64::from_be_bytes(payload.get(..8)?.try_into().ok()?);
    let published_us = u64::from_be_bytes(payload.get(8..16)?.try_into().ok()?);
    let frame = Bytes::copy_from_slice(&payload[16..]);
    Some(Envelope { app: topic.app.clone(), channel: topic.channel.clone(), payload: frame, seq, published_us })
}

impl NatsBroker {
    /// Delivers `envelope` to this node's own subscribers and queues its PUB; the receiver
    /// answers once the server confirmed it.
    async fn enqueue(&self, envelope: Envelope) -> Result<oneshot::Receiver<()>, BrokerError> {
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
        let (confirmed, confirmation) = oneshot::channel();
        self.publishes.send(Publish { frame, confirmed }).await.map_err(|_| BrokerError::Closed)?;
        Ok(confirmation)
    }
}

/// Waits for the server's confirmation of one queued publish.
async fn confirmed(confirmation: oneshot::Receiver<()>) -> Result<(), BrokerError> {
    confirmation.await.map_err(|_| {
        BrokerError::Unavailable("the NATS connection broke before the server confirmed the publish".into())
    })
}

#[async_trait]
impl Broker for NatsBroker {
    fn attach(&self, deliver: Arc<dyn Deliver>) {
        let _ = self.deliver.set(deliver);
    }

    async fn publish(&self, envelope: Envelope) -> Result<(), BrokerError> {
        confirmed(self.enqueue(envelope).await?).await
    }

    async fn publish_all(&self, envelopes: Vec<Envelope>) -> Vec<Result<(), BrokerError>> {
        let mut waiting = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            waiting.push(self.enqueue(envelope).await);
        }
        let mut results = Vec::with_capacity(waiting.len());
        for confirmation in waiting {
            results.push(match confirmation {
                Ok(confirmation) => confirmed(confirmation).await,
                Err(e) => Err(e),
            });
        }
        results
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

    fn health(&self) -> Result<(), BrokerError> {
        match self.up.load(Ordering::Acquire) {
            true => Ok(()),
            false => Err(BrokerError::Unavailable("the NATS connection is down; reconnecting".into())),
        }
    }

    async fn close(&self) -> Result<(), BrokerError> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::NatsBroker;
    use crate::{Broker, Envelope, Topic};

    #[tokio::test]
    async fn nats_passes_conformance() {
        let Some(url) = crate::testing::nats_url() else { return };
        crate::testing::conformance_on(|| async { NatsBroker::connect(&url).await.unwrap() }).await;
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
