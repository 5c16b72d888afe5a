//! Each HTTP connection's clock, and the set of connections still sending their headers.
//!
//! A connection is in one of four phases. *Head*: from its accept, or from the first byte of
//! its next request, until hyper has read the request's headers; it is then in [`Pending`],
//! which closes the oldest member when there are too many, and it has `header_timeout` to
//! leave it. *Busy*: a request is being answered; no clock runs (a handler may take its
//! time, a response may stream). *Idle*: the response is written and keep-alive waits for the
//! next request, for at most `keepalive_timeout`. *Done*: served, or upgraded to a WebSocket,
//! whose own pings and limits then apply.
//!
//! The phase is an atomic, so the IO's check on every read (is this the first byte after an
//! idle spell?) costs one load; moves into and out of Head take the set's lock, so that an
//! eviction and a connection finishing its headers cannot interleave.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::HttpLimits;

const HEAD: u8 = 0;
const BUSY: u8 = 1;
const IDLE: u8 = 2;
const DONE: u8 = 3;

/// Why the server closed a connection itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// Its request's headers did not arrive within `header_timeout`.
    HeaderTimeout,
    /// It sat idle between requests for `keepalive_timeout`.
    IdleTimeout,
    /// It was the oldest of too many connections still sending headers.
    Evicted,
    /// Its headers were larger than `max_header_bytes` (hyper answered 431).
    TooLarge,
}

impl Closed {
    /// The `reason` label of `switchboard_http_connections_closed_total`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "header_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::Evicted => "incomplete_cap",
            Self::TooLarge => "header_too_large",
        }
    }
}

/// Milliseconds since the first connection: phase times fit in an atomic.
fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// One connection's phase and when it began.
pub(crate) struct Watch {
    phase: AtomicU8,
    since_ms: AtomicU64,
    /// Its key in [`Pending`] while in Head.
    ticket: AtomicU64,
    evicted: AtomicBool,
    wake: Notify,
}

enum Verdict {
    Close(Closed),
    Until(Instant),
    Wait,
}

impl Watch {
    fn new() -> Self {
        Self {
            phase: AtomicU8::new(DONE),
            since_ms: AtomicU64::new(0),
            ticket: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    fn phase(&self) -> u8 {
        self.phase.load(Ordering::Acquire)
    }

    /// Enters `phase` now; `since` is written first, so whoever reads the phase reads a
    /// start time at least as new.
    fn enter(&self, phase: u8) {
        self.since_ms.store(now_ms(), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Release);
    }

    /// The response is written: the connection idles until its next request.
    fn responded(&self) {
        if self.phase() == BUSY {
            self.enter(IDLE);
            self.wake.notify_one();
        }
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    fn verdict(&self, limits: HttpLimits) -> Verdict {
        if self.evicted.load(Ordering::Acquire) {
            return Verdict::Close(Closed::Evicted);
        }
        let (limit, reason) = match self.phase() {
            HEAD => (limits.header_timeout, Closed::HeaderTimeout),
            IDLE => (limits.keepalive_timeout, Closed::IdleTimeout),
            _ => return Verdict::Wait,
        };
        let deadline = epoch() + Duration::from_millis(self.since_ms.load(Ordering::Relaxed)) + limit;
        match Instant::now() >= deadline {
            true => Verdict::Close(reason),
            false => Verdict::Until(deadline),
        }
    }

    /// Resolves when the connection must close: a phase outlived its time, or the set
    /// evicted it. Every change of phase that can bring a deadline nearer wakes it.
    pub(crate) async fn watchdog(&self, limits: HttpLimits) -> Closed {
        loop {
            let woken = self.wake.notified();
            match self.verdict(limits) {
                Verdict::Close(reason) => return reason,
                Verdict::Until(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline.into()) => {}
                        () = woken => {}
                    }
                }
                Verdict::Wait => woken.await,
            }
        }
    }
}

/// The connections still sending their headers, oldest first.
pub(crate) struct Pending {
    max: usize,
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    by_ticket: BTreeMap<u64, Arc<Watch>>,
    next: u64,
    /// Set at shutdown: no connection may start another request.
    closed: bool,
}

impl Pending {
    pub(crate) fn new(max: usize) -> Self {
        Self { max, waiting: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new connection, waiting for its first request's headers.
    pub(crate) fn admit(&self) -> Arc<Watch> {
        let watch = Arc::new(Watch::new());
        self.wait_for_headers(&mut self.lock(), &watch);
        watch
    }

    /// Puts `watch` in Head and in the set; past the cap, closes whoever waited longest.
    fn wait_for_headers(&self, waiting: &mut Waiting, watch: &Arc<Watch>) {
        if waiting.closed {
            return watch.evict();
        }
        waiting.next += 1;
        watch.ticket.store(waiting.next, Ordering::Relaxed);
        watch.enter(HEAD);
        waiting.by_ticket.insert(waiting.next, watch.clone());
        while waiting.by_ticket.len() > self.max {
            if let Some((_, oldest)) = waiting.by_ticket.pop_first() {
                oldest.evict();
            }
        }
    }

    /// The first bytes of another request arrived on an idle keep-alive connection.
    fn next_request(&self, watch: &Arc<Watch>) {
        let mut waiting = self.lock();
        if watch.phase() == IDLE {
            self.wait_for_headers(&mut waiting, watch);
            watch.wake.notify_one();
        }
    }

    /// hyper has read a request's headers.
    pub(crate) fn headers_done(&self, watch: &Watch) {
        if watch.phase() == HEAD {
            let mut waiting = self.lock();
            waiting.by_ticket.remove(&watch.ticket.load(Ordering::Relaxed));
        }
        watch.enter(BUSY);
    }

    /// The connection is gone (or upgraded): it leaves the set for good.
    pub(crate) fn finish(&self, watch: &Watch) {
        let mut waiting = self.lock();
        if watch.phase() == HEAD {
            waiting.by_ticket.remove(&watch.ticket.load(Ordering::Relaxed));
        }
        watch.enter(DONE);
    }

    /// At shutdown: closes every connection still sending headers, and any that starts
    /// another request from now on.
    pub(crate) fn close_all(&self) {
        let mut waiting = self.lock();
        waiting.closed = true;
        for (_, watch) in std::mem::take(&mut waiting.by_ticket) {
            watch.evict();
        }
    }
}

/// The socket, noticing the first byte of each request after an idle spell.
pub(crate) struct WatchedIo {
    stream: TcpStream,
    watch: Arc<Watch>,
    pending: Arc<Pending>,
}

impl WatchedIo {
    pub(crate) fn new(stream: TcpStream, watch: Arc<Watch>, pending: Arc<Pending>) -> Self {
        Self { stream, watch, pending }
    }
}

impl AsyncRead for WatchedIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before && this.watch.phase() == IDLE {
            this.pending.next_request(&this.watch);
        }
        read
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// A response body that marks its connection idle once hyper has written it (and dropped it).
pub(crate) struct Tracked {
    body: Body,
    watch: Arc<Watch>,
}

impl Tracked {
    pub(crate) fn new(body: Body, watch: Arc<Watch>) -> Self {
        Self { body, watch }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.watch.responded();
    }
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::{Pending, BUSY, DONE, HEAD, IDLE};

    #[test]
    fn past_the_cap_the_connection_that_waited_longest_is_evicted() {
        let pending = Pending::new(2);
        let (first, second) = (pending.admit(), pending.admit());
        pending.headers_done(&second);
        let (third, fourth) = (pending.admit(), pending.admit());
        // `second` finished its headers, so `first` and `third` waited; `fourth` pushed out `first`.
        let evicted = |w: &super::Watch| w.evicted.load(Ordering::Relaxed);
        assert!(evicted(&first) && !evicted(&second) && !evicted(&third) && !evicted(&fourth));
        assert_eq!((second.phase(), third.phase()), (BUSY, HEAD));
        // An idle keep-alive connection re-enters the set with its next request's first byte.
        second.responded();
        assert_eq!(second.phase(), IDLE);
        pending.next_request(&second);
        assert!(evicted(&third), "the oldest waiting one made room");
        pending.finish(&second);
        assert_eq!(second.phase(), DONE);
        pending.close_all();
        assert!(evicted(&fourth));
    }
}
