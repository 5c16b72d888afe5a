//! A connection's outbound queue, bounded in bytes.
//!
//! Publishers push pre-encoded frames and never wait; the session drains them in batches.
//! Overflow does not block or drop silently: it closes the connection with 4008.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use switchboard_protocol::Disconnect;
use tokio::sync::Notify;

/// A clonable handle on one connection's queue.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    // std Mutex: held for a push or a drain only, never across an await.
    state: Mutex<State>,
    ready: Notify,
    aborted: Notify,
    max_bytes: usize,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Bytes>,
    bytes: usize,
    closing: Option<Closing>,
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
            Inner { state: Mutex::new(State::default()), ready: Notify::new(), aborted: Notify::new(), max_bytes };
        Self { inner: Arc::new(inner) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame. On overflow the connection is closed with 4008 and the frame dropped.
    pub fn push(&self, frame: Bytes) -> Result<(), Closed> {
        let mut state = self.state();
        if state.closing.is_some() {
            return Err(Closed);
        }
        if state.bytes + frame.len() > self.inner.max_bytes {
            state.frames.clear();
            state.bytes = 0;
            state.closing = Some(Closing { disconnect: Disconnect::slow_consumer(), drain: false });
            drop(state);
            self.inner.ready.notify_one();
            self.inner.aborted.notify_one();
            return Err(Closed);
        }
        state.bytes += frame.len();
        state.frames.push_back(frame);
        drop(state);
        self.inner.ready.notify_one();
        Ok(())
    }

    /// Asks the session to close. With `drain`, frames already queued are sent first.
    /// The first close wins.
    pub fn close(&self, disconnect: Disconnect, drain: bool) {
        let mut state = self.state();
        if state.closing.is_none() {
            if !drain {
                state.frames.clear();
                state.bytes = 0;
            }
            state.closing = Some(Closing { disconnect, drain });
        }
        drop(state);
        self.inner.ready.notify_one();
        if !drain {
            self.inner.aborted.notify_one();
        }
    }

    /// Waits for frames or a close. Cancel-safe: nothing is taken until it returns.
    pub async fn next_batch(&self) -> Batch {
        loop {
            let notified = self.inner.ready.notified();
            {
                let mut state = self.state();
                if !state.frames.is_empty() {
                    state.bytes = 0;
                    // Take the whole queue (no copy); `recycle` returns its allocation.
                    return Batch::Frames(std::mem::take(&mut state.frames));
                }
                if let Some(closing) = &state.closing {
                    return Batch::Close(closing.disconnect.clone());
                }
            }
            notified.await;
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
            Batch::Frames(_) => panic!("overflow must close, not deliver"),
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
            Batch::Frames(_) => panic!("expected close"),
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
}
