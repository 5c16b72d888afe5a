//! One Engine.IO session: an outbound queue that the current transport drains (a pending
//! long-poll, or the WebSocket writer after an upgrade), inbound packets handed to the
//! Socket.IO layer in order, and the heartbeat.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::packet::Packet;

/// Heartbeat and size settings, sent in the handshake.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
    pub(crate) max_payload: usize,
}

/// Which transport carries the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Polling,
    WebSocket,
}

struct State {
    transport: Transport,
    /// A long-poll is waiting for packets.
    polling: bool,
    queue: VecDeque<Packet>,
}

/// One session, shared by its HTTP requests, its WebSocket and the Socket.IO layer.
pub(crate) struct EngineSocket {
    pub(crate) sid: String,
    pub(crate) timing: Timing,
    state: Mutex<State>,
    /// New packets to send, or a change of transport.
    wake: Notify,
    pong: Notify,
    /// Packets from the client, for the Socket.IO layer.
    inbound: mpsc::UnboundedSender<Packet>,
    closed: CancellationToken,
}

impl EngineSocket {
    /// A new session and the receiver of its client's packets.
    pub(crate) fn new(transport: Transport, timing: Timing) -> (Arc<Self>, mpsc::UnboundedReceiver<Packet>) {
        let (inbound, received) = mpsc::unbounded_channel();
        let socket = Arc::new(Self {
            sid: crate::random_id(),
            timing,
            state: Mutex::new(State { transport, polling: false, queue: VecDeque::new() }),
            wake: Notify::new(),
            pong: Notify::new(),
            inbound,
            closed: CancellationToken::new(),
        });
        (socket, received)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The handshake packet.
    pub(crate) fn open_packet(&self, upgrades: bool) -> Packet {
        let upgrades: &[&str] = if upgrades { &["websocket"] } else { &[] };
        let t = self.timing;
        Packet::Open(
            serde_json::json!({
                "sid": self.sid,
                "upgrades": upgrades,
                "pingInterval": t.ping_interval.as_millis() as u64,
                "pingTimeout": t.ping_timeout.as_millis() as u64,
                "maxPayload": t.max_payload,
            })
            .to_string(),
        )
    }

    /// Queues a packet for the client.
    pub(crate) fn send(&self, packet: Packet) {
        self.state().queue.push_back(packet);
        self.wake.notify_waiters();
    }

    /// Everything queued.
    fn drain(&self) -> Vec<Packet> {
        self.state().queue.drain(..).collect()
    }

    pub(crate) fn transport(&self) -> Transport {
        self.state().transport
    }

    /// Switches to WebSocket; a pending poll ends with a noop.
    pub(crate) fn upgraded(&self) {
        self.state().transport = Transport::WebSocket;
        self.wake.notify_waiters();
    }

    /// A packet from the client.
    pub(crate) fn received(&self, packet: Packet) {
        match packet {
            Packet::Pong(_) => self.pong.notify_one(),
            Packet::Close => self.close(),
            Packet::Message(_) | Packet::Binary(_) => {
                let _ = self.inbound.send(packet);
            }
            // Clients do not ping in v4; noops and stray upgrades change nothing.
            Packet::Ping(_) | Packet::Open(_) | Packet::Upgrade | Packet::Noop => {}
        }
    }

    /// Ends the session; its transports and the Socket.IO layer stop.
    pub(crate) fn close(&self) {
        self.closed.cancel();
        self.wake.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    pub(crate) fn closed(&self) -> &CancellationToken {
        &self.closed
    }

    /// Starts a long-poll; `None` when one is already waiting (the client broke the protocol).
    pub(crate) fn begin_poll(self: &Arc<Self>) -> Option<PollGuard> {
        let mut state = self.state();
        if state.polling {
            return None;
        }
        state.polling = true;
        Some(PollGuard(self.clone()))
    }

    /// Waits for packets (for a long-poll or the WebSocket writer). Empty when the transport
    /// changed or the session closed.
    pub(crate) async fn next_batch(&self, transport: Transport) -> Vec<Packet> {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.transport() != transport {
                return Vec::new();
            }
            // What was queued before a close still goes out (a last DISCONNECT, say).
            let batch = self.drain();
            if !batch.is_empty() || self.is_closed() {
                return batch;
            }
            notified.await;
        }
    }

    /// Pings every interval; closes the session when a pong does not come in time.
    pub(crate) async fn heartbeat(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.timing.ping_interval) => {}
                _ = self.closed.cancelled() => return,
            }
            self.send(Packet::Ping(String::new()));
            tokio::select! {
                _ = self.pong.notified() => {}
                _ = tokio::time::sleep(self.timing.ping_timeout) => {
                    tracing::debug!(sid = %self.sid, "engine.io ping timeout");
                    return self.close();
                }
                _ = self.closed.cancelled() => return,
            }
        }
    }
}

/// Marks the end of a long-poll, however its request ends.
pub(crate) struct PollGuard(Arc<EngineSocket>);

impl Drop for PollGuard {
    fn drop(&mut self) {
        self.0.state().polling = false;
    }
}
