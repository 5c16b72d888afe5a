//! The Redis broker's receiving side: one task owns the pub/sub connection, applies interest
//! changes in order, delivers what arrives, probes that the connection still delivers, and
//! reconnects when it breaks or stops delivering.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};

use super::{channel_name, decode, ANSWER_TIMEOUT, PROBE_EVERY};
use crate::remote::{Backoff, Change, Changes, Interest};
use crate::Deliver;

/// The receiving side: one task owns the pub/sub connection, applies interest changes in
/// order, delivers what arrives, probes that the connection still delivers, and reconnects
/// when it breaks or stops delivering.
pub(super) struct Receiver {
    pub(super) node: [u8; 16],
    pub(super) prefix: Arc<str>,
    /// The channel only this node subscribes to, for probes (`!` is in no app's slug).
    pub(super) probe_channel: String,
    pub(super) client: redis::Client,
    pub(super) deliver: Arc<OnceLock<Arc<dyn Deliver>>>,
    pub(super) interest: Interest<Change>,
    pub(super) healthy: Arc<AtomicBool>,
}

/// A receiving connection: the pub/sub halves, and a connection to publish probes on.
pub(super) struct Connection {
    sink: PubSubSink,
    stream: PubSubStream,
    probes: MultiplexedConnection,
}

/// The probe this connection waits for, if one is out.
#[derive(Default)]
struct Probes {
    next: u64,
    waiting: Option<(u64, Instant)>,
}

impl Receiver {
    pub(super) async fn run(self, first: Connection, mut changes: Changes<Change>) {
        let mut connection = Some(first);
        let mut backoff = Backoff::new();
        loop {
            let connection = match connection.take() {
                Some(connection) => connection,
                None => match self.reopen().await {
                    Ok(connection) => {
                        backoff.reset();
                        tracing::info!("reconnected to Redis pub/sub and subscribed again");
                        if let Some(deliver) = self.deliver.get() {
                            deliver.reconnected();
                        }
                        connection
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?backoff.pause(), "Redis pub/sub unreachable");
                        if !backoff.wait(&mut changes, settle_of).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            self.healthy.store(true, Ordering::Release);
            if !self.serve(connection, &mut changes).await {
                return;
            }
            self.healthy.store(false, Ordering::Release);
        }
    }

    /// Serves one connection until it breaks or stops delivering (`true`), or the broker is
    /// dropped (`false`).
    async fn serve(&self, connection: Connection, changes: &mut Changes<Change>) -> bool {
        let Connection { mut sink, mut stream, mut probes } = connection;
        let mut probe = tokio::time::interval(PROBE_EVERY);
        let mut state = Probes::default();
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(message) => self.receive(&message, &mut state),
                    None => {
                        tracing::error!("lost the Redis pub/sub connection; reconnecting");
                        return true;
                    }
                },
                change = changes.recv() => match change {
                    // A change the server does not answer in time: the connection is gone
                    // (the next one subscribes to every topic as it is then).
                    Some(change) => if tokio::time::timeout(ANSWER_TIMEOUT, self.apply(&mut sink, change)).await.is_err() {
                        tracing::error!("Redis did not answer a subscription change; reconnecting");
                        return true;
                    },
                    None => return false,
                },
                _ = probe.tick() => {
                    if !self.probe(&mut probes, &mut state).await {
                        tracing::error!("the Redis pub/sub connection stopped delivering; reconnecting");
                        return true;
                    }
                }
            }
        }
    }

    /// Sends a probe unless one is out; `false` when the one out is overdue or the probe
    /// cannot be sent.
    async fn probe(&self, probes: &mut MultiplexedConnection, state: &mut Probes) -> bool {
        if let Some((_, sent)) = state.waiting {
            return sent.elapsed() <= ANSWER_TIMEOUT;
        }
        state.next += 1;
        state.waiting = Some((state.next, Instant::now()));
        let command = redis::cmd("PUBLISH").arg(&self.probe_channel).arg(state.next).clone();
        let sent = tokio::time::timeout(ANSWER_TIMEOUT, command.query_async::<()>(probes)).await;
        matches!(sent, Ok(Ok(())))
    }

    /// [`Receiver::open`] within [`ANSWER_TIMEOUT`]: a server that accepts and then says
    /// nothing (a partition) must not hold the reconnection forever.
    async fn reopen(&self) -> Result<Connection, redis::RedisError> {
        match tokio::time::timeout(ANSWER_TIMEOUT, self.open()).await {
            Ok(opened) => opened,
            Err(_) => {
                let silent = std::io::Error::new(std::io::ErrorKind::TimedOut, "Redis did not answer");
                Err(redis::RedisError::from(silent))
            }
        }
    }

    /// A new pub/sub connection, subscribed to the probe channel and to every topic with
    /// local subscribers.
    pub(super) async fn open(&self) -> Result<Connection, redis::RedisError> {
        let (mut sink, stream) = self.client.get_async_pubsub().await?.split();
        sink.subscribe(&self.probe_channel).await?;
        for topic in self.interest.topics() {
            sink.subscribe(channel_name(&self.prefix, &topic)).await?;
        }
        let probes = self.client.get_multiplexed_async_connection().await?;
        Ok(Connection { sink, stream, probes })
    }

    fn receive(&self, message: &redis::Msg, probes: &mut Probes) {
        if message.get_channel_name() == self.probe_channel {
            let answered = message.get_payload::<u64>().ok();
            if probes.waiting.is_some_and(|(n, _)| Some(n) == answered) {
                probes.waiting = None;
                self.healthy.store(true, Ordering::Release);
            }
            return;
        }
        if let (Some(envelope), Some(deliver)) = (decode(&self.prefix, &self.node, message), self.deliver.get()) {
            deliver.deliver(envelope);
        }
    }

    /// Applies one subscribe or unsubscribe command.
    async fn apply(&self, sink: &mut PubSubSink, change: Change) {
        let result = match change {
            Change::Subscribe(topic) => sink.subscribe(channel_name(&self.prefix, &topic)).await,
            Change::Unsubscribe(topic) => sink.unsubscribe(channel_name(&self.prefix, &topic)).await,
            Change::Settle(done) => {
                let _ = done.send(());
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "Redis subscription change failed");
        }
    }
}

fn settle_of(change: Change) -> Option<tokio::sync::oneshot::Sender<()>> {
    match change {
        Change::Settle(done) => Some(done),
        _ => None,
    }
}
