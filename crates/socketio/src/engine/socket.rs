//! One Engine.IO session: an outbound queue that the current transport drains (a pending
//! long-poll, or the WebSocket writer after an upgrade), inbound packets handed to the
//! Socket.IO layer in order, and the heartbeat.
//!
//! Both directions are bounded. Inbound, a small channel: when the Socket.IO layer falls
//! behind, the WebSocket reader stops reading and a POST waits, so the client is held back
//! by TCP. Outbound, the queue counts its bytes: the Socket.IO layer waits while it holds
//! more than [`SOFT_BYTES`] (so the hub's own bounded outbox fills and overflows for a client
//! that does not read), and anything that would take it past [`Timing::max_queue`] ends the
//! session as a slow consumer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use switchboard_hub::{Gate, Waiter};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::packet::Packet;

/// Bytes queued for the client above which the Socket.IO layer waits for the transport.
pub(crate) const SOFT_BYTES: usize = 64 << 10;
/// Client packets waiting for the Socket.IO layer, at most.
const INBOUND_PACKETS: usize = 16;

/// Heartbeat and size settings, sent in the handshake.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
    pub(crate) max_payload: usize,
    /// Bytes queued for the client past which the session ends as a slow consumer.
    pub(crate) max_queue: usize,
}

/// The waiting room a session takes its places in, and the address it counts against.
pub(crate) struct Room {
    pub(crate) gate: Arc<Gate>,
    pub(crate) address: std::net::IpAddr,
}

/// Which transport carries the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Polling,
    WebSocket,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The client sent a close packet: a pending poll ends with a noop.
    ByClient,
    /// The server ended it (timeout, slow consumer, Socket.IO refusal): polls get a close packet.
    ByServer,
    /// Its queue passed the limit.
    SlowConsumer,
}

struct State {
    transport: Transport,
    /// A WebSocket is upgrading this session: polls end at once with a noop, so the client
    /// can finish the switch, and another upgrade is refused.
    upgrading: bool,
    /// A long-poll is waiting for packets.
    polling: bool,
    /// A POST is being read or handed on.
    posting: bool,
    queue: VecDeque<Packet>,
    queued_bytes: usize,
    /// Someone waits on `room` for the queue to shrink: the next drain tells them.
    room_wanted: bool,
    ended: Option<End>,
    /// When the pong to the last ping is due; `None` while none is owed.
    pong_due: Option<Instant>,
}

/// One session, shared by its HTTP requests, its WebSocket and the Socket.IO layer.
pub(crate) struct EngineSocket {
    pub(crate) sid: String,
    pub(crate) timing: Timing,
    state: Mutex<State>,
    /// New packets to send, a change of transport, or the end.
    wake: Notify,
    /// The queue fell below [`SOFT_BYTES`].
    room: Notify,
    pong: Notify,
    /// A poll told the client that it closed the session: it may be forgotten.
    end_told: Notify,
    /// Packets from the client, for the Socket.IO layer.
    inbound: mpsc::Sender<Packet>,
    closed: CancellationToken,
    /// The session's place in the hub's waiting room, until it authenticates; where to ask
    /// for one again, should its hub session end.
    waiting: Mutex<Option<Waiter>>,
    waiting_room: Option<Room>,
    /// A hub session speaks through it.
    attached: AtomicBool,
}

impl EngineSocket {
    /// A new session and the receiver of its client's packets.
    pub(crate) fn new(
        transport: Transport,
        timing: Timing,
        room: Option<(Room, Waiter)>,
    ) -> (Arc<Self>, mpsc::Receiver<Packet>) {
        let (room, waiting) = room.unzip();
        let (inbound, received) = mpsc::channel(INBOUND_PACKETS);
        let state = State {
            transport,
            upgrading: false,
            polling: false,
            posting: false,
            // Bounded in bytes by `max_queue`: `send` ends the session past it.
            queue: VecDeque::new(),
            queued_bytes: 0,
            room_wanted: false,
            ended: None,
            pong_due: None,
        };
        let socket = Arc::new(Self {
            sid: crate::random_id(),
            timing,
            state: Mutex::new(state),
            wake: Notify::new(),
            room: Notify::new(),
            pong: Notify::new(),
            end_told: Notify::new(),
            inbound,
            closed: CancellationToken::new(),
            waiting: Mutex::new(waiting),
            waiting_room: room,
            attached: AtomicBool::new(false),
        });
        (socket, received)
    }

    /// The session authenticated: a hub session speaks through it, and it leaves the waiting room.
    pub(crate) fn authenticated(&self) {
        self.attached.store(true, Ordering::Relaxed);
        self.leave_waiting_room();
    }

    fn leave_waiting_room(&self) {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Its hub session ended and the client may CONNECT again: it waits like a newcomer,
    /// with a place in the waiting room again. `false` when the room is full.
    pub(crate) fn wait_again(&self) -> bool {
        if !self.attached.swap(false, Ordering::Relaxed) {
            return true; // it never left the room
        }
        let Some(room) = &self.waiting_room else { return true };
        match room.gate.enter(room.address) {
            Ok(waiter) => {
                *self.waiting.lock().unwrap_or_else(|e| e.into_inner()) = Some(waiter);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether a hub session speaks through it.
    pub(crate) fn is_attached(&self) -> bool {
        self.attached.load(Ordering::Relaxed)
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

    /// Queues a packet for the client. Past the queue's limit the session ends as a slow
    /// consumer and the packet is dropped; after the end, packets are dropped.
    pub(crate) fn send(&self, packet: Packet) {
        let mut state = self.state();
        if state.ended.is_some() {
            return;
        }
        let size = packet.size();
        // One packet always fits an empty queue: an event the hub let through is never too
        // large for a client that reads (its recovery offset may take it past the limit).
        if state.queued_bytes > 0 && state.queued_bytes + size > self.timing.max_queue {
            drop(state);
            tracing::debug!(sid = %self.sid, "engine.io queue over its limit: slow consumer");
            return self.end(End::SlowConsumer);
        }
        state.queued_bytes += size;
        state.queue.push_back(packet);
        // A queue that held packets already has its transport woken (a waiting transport
        // drains all of it): one wakeup per burst, not per packet.
        let first = state.queue.len() == 1;
        drop(state);
        if first {
            self.wake.notify_waiters();
        }
    }

    /// Waits until the queue holds less than [`SOFT_BYTES`], or the session ended.
    pub(crate) async fn room(&self) {
        // Most calls find room at once: no waiter is registered for them.
        if self.state().queued_bytes < SOFT_BYTES || self.is_closed() {
            return;
        }
        self.wait_for_room(|state| state.queued_bytes < SOFT_BYTES).await;
    }

    /// Waits until `enough` holds of the queue, or the session ended.
    async fn wait_for_room(&self, enough: impl Fn(&State) -> bool) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.state();
                if enough(&state) || state.ended.is_some() {
                    return;
                }
                state.room_wanted = true;
            }
            notified.await;
        }
    }

    /// Waits until the transport has taken everything queued, or the session ended. The
    /// conformance mode sends its packets one write at a time, as the reference server does
    /// and the published suites expect.
    pub(crate) async fn drained(&self) {
        self.wait_for_room(|state| state.queue.is_empty()).await;
    }

    /// Everything queued, when `transport` carries the session now (else `None`).
    fn take_for(&self, transport: Transport) -> Option<Vec<Packet>> {
        let mut state = self.state();
        if state.transport != transport || (transport == Transport::Polling && state.upgrading) {
            return None;
        }
        state.queued_bytes = 0;
        let batch = state.queue.drain(..).collect();
        let wanted = std::mem::take(&mut state.room_wanted);
        drop(state);
        if wanted {
            self.room.notify_waiters();
        }
        Some(batch)
    }

    pub(crate) fn transport(&self) -> Transport {
        self.state().transport
    }

    /// A WebSocket asks to take the session over; `false` when one already did or is.
    pub(crate) fn begin_upgrade(&self) -> bool {
        let mut state = self.state();
        let free = state.transport == Transport::Polling && !state.upgrading && state.ended.is_none();
        state.upgrading |= free;
        free
    }

    /// The probe arrived: a pending poll ends with a noop at once, as do later ones until
    /// the switch completes (Engine.IO clients wait for their last poll before switching).
    pub(crate) fn probed(&self) {
        self.wake.notify_waiters();
    }

    /// The upgrading WebSocket went away before the switch: polling goes on.
    pub(crate) fn upgrade_abandoned(&self) {
        self.state().upgrading = false;
    }

    /// Switches to WebSocket; a pending poll ends with a noop.
    pub(crate) fn upgraded(&self) {
        let mut state = self.state();
        state.transport = Transport::WebSocket;
        state.upgrading = false;
        drop(state);
        self.wake.notify_waiters();
    }

    /// A packet from the client. Messages wait for room in the inbound channel: this is how
    /// a client that sends faster than the Socket.IO layer reads is held back.
    pub(crate) async fn received(&self, packet: Packet) {
        match packet {
            Packet::Pong(_) => {
                self.pong.notify_one();
                // The hub session hears of it too (its own keepalive counts on it); when the
                // channel is full, the packets in it prove the client alive as well.
                let _ = self.inbound.try_send(packet);
            }
            Packet::Close => self.end(End::ByClient),
            Packet::Message(_) | Packet::Encoded(_) | Packet::Binary(_) => {
                tokio::select! {
                    _ = self.inbound.send(packet) => {}
                    _ = self.closed.cancelled() => {}
                }
            }
            // Clients do not ping in v4; noops and stray upgrades change nothing.
            Packet::Ping(_) | Packet::Open(_) | Packet::Upgrade | Packet::Noop => {}
        }
    }

    /// Ends the session on the server's side; its transports and the Socket.IO layer stop.
    pub(crate) fn close(&self) {
        self.end(End::ByServer);
    }

    fn end(&self, how: End) {
        let mut state = self.state();
        if state.ended.is_none() {
            state.ended = Some(how);
        }
        drop(state);
        self.leave_waiting_room(); // gone: its place is free
        self.closed.cancel();
        self.wake.notify_waiters();
        self.room.notify_waiters();
    }

    /// How the session ended; `None` while it lives.
    pub(crate) fn ended(&self) -> Option<End> {
        self.state().ended
    }

    /// A poll answered the end of a session the client closed.
    pub(crate) fn end_told(&self) {
        self.end_told.notify_one();
    }

    /// Waits (at most `limit`) for a poll to answer the end of a session the client closed:
    /// its close packet and its poll may arrive in either order, and the poll must see the
    /// session to end cleanly.
    pub(crate) async fn linger_for_poll(&self, limit: Duration) {
        if self.ended() == Some(End::ByClient) && self.transport() == Transport::Polling {
            let _ = tokio::time::timeout(limit, self.end_told.notified()).await;
        }
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
        (!std::mem::replace(&mut state.polling, true)).then(|| PollGuard(self.clone(), Request::Poll))
    }

    /// Starts a POST; `None` when one is already under way (the client broke the protocol:
    /// each POST's body is held until the Socket.IO layer takes its packets).
    pub(crate) fn begin_post(self: &Arc<Self>) -> Option<PollGuard> {
        let mut state = self.state();
        (!std::mem::replace(&mut state.posting, true)).then(|| PollGuard(self.clone(), Request::Post))
    }

    /// Waits for packets (for a long-poll or the WebSocket writer). Empty when the transport
    /// changed, an upgrade began (polls only) or the session closed.
    pub(crate) async fn next_batch(&self, transport: Transport) -> Vec<Packet> {
        // Most wakeups find packets, and those need no waiter registered.
        match self.take_for(transport) {
            Some(batch) if batch.is_empty() => {}
            taken => return taken.unwrap_or_default(),
        }
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // What was queued before a close still goes out (a last DISCONNECT, say).
            match self.take_for(transport) {
                Some(batch) if batch.is_empty() && !self.is_closed() => {}
                taken => return taken.unwrap_or_default(),
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
            let due = Instant::now() + self.timing.ping_timeout;
            self.state().pong_due = Some(due);
            self.send(Packet::Ping(String::new()));
            tokio::select! {
                _ = self.pong.notified() => self.state().pong_due = None,
                _ = tokio::time::sleep_until(due) => return self.time_out(),
                _ = self.closed.cancelled() => return,
            }
        }
    }

    /// Whether the session is past its pong's deadline: then it ends now, even if its timer
    /// has not fired yet, so that a request arriving just after the deadline finds it gone.
    pub(crate) fn timed_out(&self) -> bool {
        let late = self.state().pong_due.is_some_and(|due| Instant::now() >= due);
        if late {
            self.time_out();
        }
        late
    }

    fn time_out(&self) {
        tracing::debug!(sid = %self.sid, "engine.io ping timeout");
        self.close();
    }
}

/// Marks the end of a long-poll or a POST, however its request ends.
pub(crate) struct PollGuard(Arc<EngineSocket>, Request);

#[derive(Clone, Copy)]
enum Request {
    Poll,
    Post,
}

impl Drop for PollGuard {
    fn drop(&mut self) {
        let mut state = self.0.state();
        match self.1 {
            Request::Poll => state.polling = false,
            Request::Post => state.posting = false,
        }
    }
}
