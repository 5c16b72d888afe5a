//! A connection's outbound queue, bounded in bytes.
//!
//! Publishers push pre-encoded frames and never wait; the writer drains them in batches.
//! Overflow does not block or drop silently: it closes the connection with 4008.
//!
//! The writer's waker lives under the queue's own lock, and only a push onto an empty queue
//! wakes it: a burst of deliveries to one connection costs one wakeup, and no delivery
//! touches a second lock (tokio's `Notify` keeps its waiters under one).
//!
//! Events with a position also pass through a [`Ledger`](ledger) that replays rely on.

mod ledger;

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use bytes::Bytes;
use switchboard_protocol::Disconnect;
use tokio::sync::Notify;

use ledger::Ledger;
pub use ledger::SentRange;

/// A clonable handle on one connection's queue.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    // std Mutex: held for a push or a drain only, never across an await.
    state: Mutex<State>,
    aborted: Notify,
    /// Wakes a replay waiting for the writer to make room.
    room: Notify,
    max_bytes: usize,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Bytes>,
    bytes: usize,
    closing: Option<Closing>,
    /// The reader asked for a protocol ping.
    ping: bool,
    /// The writer, when it waits for work.
    writer: Option<Waker>,
    /// A replay waits for room: the writer notifies `room` when it takes the queue.
    room_wanted: bool,
    /// Boxed: most connections never see an event with a position.
    ledger: Option<Box<Ledger>>,
}

impl State {
    fn held_bytes(&self) -> usize {
        self.ledger.as_ref().map_or(0, |l| l.held_bytes)
    }

    fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
        if let Some(ledger) = &mut self.ledger {
            ledger.drop_held();
        }
    }
}

/// Releases the lock, then wakes a waiting writer (after, so it need not contend for it).
fn unlock_and_wake(mut state: MutexGuard<'_, State>) {
    let writer = state.writer.take();
    drop(state);
    if let Some(writer) = writer {
        writer.wake();
    }
}

/// Queues a frame that fits, waking the writer if the queue was empty.
fn append(mut state: MutexGuard<'_, State>, frame: Bytes) {
    state.bytes += frame.len();
    state.frames.push_back(frame);
    // A non-empty queue means the writer was already woken and has not drained it yet.
    if state.frames.len() == 1 {
        unlock_and_wake(state);
    }
}

struct Closing {
    disconnect: Disconnect,
    /// Send queued frames first (shutdown) or drop them (kick, overflow).
    drain: bool,
}

/// What the session should do next.
pub enum Batch {
    /// Write these frames, then flush, then hand the queue back with [`Outbox::recycle`].
    Frames(VecDeque<Bytes>),
    /// Send a protocol ping.
    Ping,
    /// Close the socket with this code.
    Close(Disconnect),
}

/// The frame was not queued: the connection is closing.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed;

impl Outbox {
    /// An empty queue holding at most `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        let inner =
            Inner { state: Mutex::new(State::default()), aborted: Notify::new(), room: Notify::new(), max_bytes };
        Self { inner: Arc::new(inner) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame. On overflow the connection is closed with 4008 and the frame dropped.
    pub fn push(&self, frame: Bytes) -> Result<(), Closed> {
        self.enqueue(self.state(), frame)
    }

    /// Queues an event of a channel with history: recorded in the ledger, or held back while
    /// a replay runs (held frames count against the same bound).
    pub fn push_event(&self, channel: &Arc<str>, seq: u64, frame: Bytes) -> Result<(), Closed> {
        let mut guard = self.state();
        let state = &mut *guard;
        if state.closing.is_some() {
            return Err(Closed);
        }
        let ledger = state.ledger.get_or_insert_with(Box::default);
        if !ledger.holding() {
            return match ledger.admit(channel, seq) {
                true => self.enqueue(guard, frame),
                false => Ok(()), // a replay sent it already
            };
        }
        if state.bytes + ledger.held_bytes + frame.len() > self.inner.max_bytes {
            self.overflow(guard);
            return Err(Closed);
        }
        ledger.hold(channel, seq, frame);
        Ok(())
    }

    fn enqueue(&self, state: MutexGuard<'_, State>, frame: Bytes) -> Result<(), Closed> {
        if state.closing.is_some() {
            return Err(Closed);
        }
        if state.bytes + state.held_bytes() + frame.len() > self.inner.max_bytes {
            self.overflow(state);
            return Err(Closed);
        }
        append(state, frame);
        Ok(())
    }

    fn overflow(&self, mut state: MutexGuard<'_, State>) {
        state.clear();
        state.closing = Some(Closing { disconnect: Disconnect::slow_consumer(), drain: false });
        unlock_and_wake(state);
        self.inner.aborted.notify_one();
        self.inner.room.notify_waiters();
    }

    /// Asks the session to close. With `drain`, frames already queued are sent first.
    /// The first close wins.
    pub fn close(&self, disconnect: Disconnect, drain: bool) {
        let mut state = self.state();
        if state.closing.is_none() {
            if !drain {
                state.clear();
            }
            state.closing = Some(Closing { disconnect, drain });
        }
        unlock_and_wake(state);
        if !drain {
            self.inner.aborted.notify_one();
        }
        self.inner.room.notify_waiters();
    }

    /// The close code asked for, once closing.
    pub fn close_code(&self) -> Option<u16> {
        self.state().closing.as_ref().map(|c| c.disconnect.code)
    }

    /// Asks the writer to send a protocol ping after whatever is queued.
    pub fn ping(&self) {
        let mut state = self.state();
        state.ping = true;
        unlock_and_wake(state);
    }

    /// Waits for frames, a ping or a close. Cancel-safe: nothing is taken until it returns.
    pub async fn next_batch(&self) -> Batch {
        poll_fn(|cx| {
            let mut state = self.state();
            if !state.frames.is_empty() {
                state.bytes = 0;
                if std::mem::take(&mut state.room_wanted) {
                    self.inner.room.notify_waiters();
                }
                // Take the whole queue (no copy); `recycle` returns its allocation.
                return Poll::Ready(Batch::Frames(std::mem::take(&mut state.frames)));
            }
            if let Some(closing) = &state.closing {
                return Poll::Ready(Batch::Close(closing.disconnect.clone()));
            }
            if std::mem::take(&mut state.ping) {
                return Poll::Ready(Batch::Ping);
            }
            if !state.writer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                state.writer = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// Holds back live events with a position until [`Outbox::release`]: a replay is about to
    /// send older ones, which must go first.
    pub fn hold(&self) {
        self.state().ledger.get_or_insert_with(Box::default).start_holding();
    }

    /// The seqs of `channel` this connection was sent since it subscribed.
    pub fn sent(&self, channel: &str) -> Option<SentRange> {
        self.state().ledger.as_ref().and_then(|l| l.sent(channel))
    }

    /// Forgets what was sent of a channel the connection left.
    pub fn forget(&self, channel: &str) {
        if let Some(ledger) = &mut self.state().ledger {
            ledger.forget(channel);
        }
    }

    /// Queues a replayed event, waiting while the queue is full rather than overflowing: a
    /// replay may be far larger than the bound, and the writer drains as the client reads.
    pub async fn push_replayed(&self, channel: &Arc<str>, seq: u64, frame: Bytes) -> Result<(), Closed> {
        loop {
            let room = self.inner.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut state = self.state();
                if state.closing.is_some() {
                    return Err(Closed);
                }
                let used = state.bytes + state.held_bytes();
                // An empty queue takes any one frame, so an event larger than the bound still goes,
                // and live events held meanwhile cannot stall the replay they wait for.
                if state.bytes == 0 || used + frame.len() <= self.inner.max_bytes {
                    if state.ledger.get_or_insert_with(Box::default).admit(channel, seq) {
                        append(state, frame);
                    }
                    return Ok(());
                }
                state.room_wanted = true;
            }
            room.await;
        }
    }

    /// Ends holding: each `(channel, seq)` in `positions` is where the client now stands
    /// on that channel; the held events go out in arrival order, except those already sent
    /// or at or below those positions.
    pub fn release(&self, positions: &[(Arc<str>, u64)]) {
        let mut state = self.state();
        let Some(ledger) = state.ledger.as_mut() else { return };
        for (channel, seq) in positions {
            ledger.advance(channel, *seq);
        }
        let frames = ledger.release();
        // Held frames were already counted against the bound, so they fit.
        let was_empty = state.frames.is_empty();
        for frame in frames {
            state.bytes += frame.len();
            state.frames.push_back(frame);
        }
        if was_empty && !state.frames.is_empty() {
            unlock_and_wake(state);
        }
    }

    /// Returns a written batch's queue so its allocation serves the next batch: in steady
    /// state a connection allocates nothing per delivery.
    pub fn recycle(&self, mut frames: VecDeque<Bytes>) {
        frames.clear();
        let mut state = self.state();
        if state.frames.is_empty() && state.frames.capacity() < frames.capacity() {
            state.frames = frames;
        }
    }

    /// Resolves when the connection must close without draining: a write stuck on a slow
    /// socket is abandoned when this fires.
    pub async fn aborted(&self) {
        loop {
            let notified = self.inner.aborted.notified();
            if matches!(&self.state().closing, Some(c) if !c.drain) {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(batch: Batch) -> Vec<Bytes> {
        match batch {
            Batch::Frames(f) => f.into(),
            Batch::Close(d) => panic!("unexpected close {d:?}"),
            Batch::Ping => panic!("unexpected ping"),
        }
    }

    #[tokio::test]
    async fn drains_in_order_and_overflows_by_bytes() {
        let outbox = Outbox::new(10);
        outbox.push(Bytes::from_static(b"abcd")).unwrap();
        outbox.push(Bytes::from_static(b"efgh")).unwrap();
        assert_eq!(frames(outbox.next_batch().await), vec!["abcd", "efgh"]);
        outbox.push(Bytes::from_static(b"123456")).unwrap();
        assert_eq!(outbox.push(Bytes::from_static(b"7890x")), Err(Closed));
        match outbox.next_batch().await {
            Batch::Close(d) => assert_eq!(d.code, Disconnect::SLOW_CONSUMER),
            _ => panic!("overflow must close, not deliver"),
        }
        outbox.aborted().await;
    }

    #[tokio::test]
    async fn draining_close_sends_queued_frames_first() {
        let outbox = Outbox::new(100);
        outbox.push(Bytes::from_static(b"last words")).unwrap();
        outbox.close(Disconnect::going_away(), true);
        assert_eq!(frames(outbox.next_batch().await), vec!["last words"]);
        match outbox.next_batch().await {
            Batch::Close(d) => assert_eq!(d.code, Disconnect::GOING_AWAY),
            _ => panic!("expected close"),
        }
        assert_eq!(outbox.push(Bytes::from_static(b"x")), Err(Closed));
    }

    #[tokio::test]
    async fn recycled_queue_keeps_its_allocation() {
        let outbox = Outbox::new(1000);
        for _ in 0..8 {
            outbox.push(Bytes::from_static(b"x")).unwrap();
        }
        let Batch::Frames(batch) = outbox.next_batch().await else { panic!("expected frames") };
        let capacity = batch.capacity();
        outbox.recycle(batch);
        outbox.push(Bytes::from_static(b"y")).unwrap();
        assert!(outbox.state().frames.capacity() >= capacity, "no new allocation per batch");
        assert_eq!(frames(outbox.next_batch().await), vec!["y"]);
    }

    #[tokio::test]
    async fn a_ping_waits_behind_queued_frames_and_wakes_the_writer() {
        let outbox = Outbox::new(100);
        let writer = tokio::spawn({
            let outbox = outbox.clone();
            async move { matches!(outbox.next_batch().await, Batch::Ping) }
        });
        tokio::task::yield_now().await;
        outbox.ping();
        assert!(writer.await.unwrap(), "the waiting writer is woken for the ping");
        outbox.push(Bytes::from_static(b"event")).unwrap();
        outbox.ping();
        assert_eq!(frames(outbox.next_batch().await), vec!["event"]);
        assert!(matches!(outbox.next_batch().await, Batch::Ping));
    }

    #[tokio::test]
    async fn a_push_wakes_a_waiting_writer() {
        let outbox = Outbox::new(100);
        let writer = tokio::spawn({
            let outbox = outbox.clone();
            async move { frames(outbox.next_batch().await) }
        });
        tokio::task::yield_now().await;
        outbox.push(Bytes::from_static(b"a")).unwrap();
        outbox.push(Bytes::from_static(b"b")).unwrap();
        let first = writer.await.unwrap();
        let rest = match first.len() {
            1 => frames(outbox.next_batch().await),
            _ => vec![],
        };
        assert_eq!([first, rest].concat(), vec!["a", "b"]);
    }

    #[tokio::test]
    async fn a_replay_waits_for_room_and_held_live_events_follow_it_once() {
        let outbox = Outbox::new(10);
        let channel: Arc<str> = "user:1".into();
        outbox.hold();
        outbox.push_event(&channel, 3, Bytes::from_static(b"live3")).unwrap();
        outbox.push_replayed(&channel, 1, Bytes::from_static(b"r1")).await.unwrap();
        let second = tokio::spawn({
            let (outbox, channel) = (outbox.clone(), channel.clone());
            async move { outbox.push_replayed(&channel, 2, Bytes::from_static(b"rep2")).await }
        });
        tokio::task::yield_now().await;
        assert!(!second.is_finished(), "2 + 5 held + 4 bytes would pass the bound: the replay waits");
        assert_eq!(frames(outbox.next_batch().await), vec!["r1"]);
        second.await.unwrap().unwrap();
        outbox.release(&[(channel.clone(), 2)]);
        assert_eq!(frames(outbox.next_batch().await), vec!["rep2", "live3"]);
        outbox.push_event(&channel, 3, Bytes::from_static(b"copy")).unwrap();
        outbox.push_event(&channel, 4, Bytes::from_static(b"live4")).unwrap();
        assert_eq!(frames(outbox.next_batch().await), vec!["live4"], "a live copy of a sent event is dropped");
    }
}
