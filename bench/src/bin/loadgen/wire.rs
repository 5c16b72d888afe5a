//! What the compression rows need: a socket that counts the bytes it reads, the client's
//! permessage-deflate offer, and event text that compresses like real notifications do.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream that adds every byte it reads to a shared counter.
pub(crate) struct Counted {
    inner: TcpStream,
    read: Arc<AtomicU64>,
}

impl Counted {
    pub(crate) fn new(inner: TcpStream, read: Arc<AtomicU64>) -> Self {
        Self { inner, read }
    }
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.read.fetch_add((buf.filled().len() - before) as u64, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What a browser offers: permessage-deflate with the default window and context takeover.
pub(crate) fn offer() -> yawc::Options {
    yawc::Options::default().with_compression_level(yawc::CompressionLevel::fast())
}

const WORDS: [&str; 24] = [
    "family",
    "wallet",
    "transfer",
    "approved",
    "tokens",
    "invoice",
    "meeting",
    "reminder",
    "pond",
    "oxygen",
    "sensor",
    "alert",
    "budget",
    "groceries",
    "school",
    "payment",
    "received",
    "pending",
    "shared",
    "calendar",
    "tomorrow",
    "morning",
    "update",
    "weekly",
];

/// About `size` bytes of words, different for every `k` (a small linear congruential
/// sequence), so that no two events are the same text.
pub(crate) fn body(k: u64, size: usize) -> String {
    let mut state = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut text = String::with_capacity(size + 16);
    while text.len() < size {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        text.push_str(WORDS[(state >> 33) as usize % WORDS.len()]);
        text.push(' ');
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn bodies_have_the_size_asked_for_and_differ() {
        let (a, b) = (super::body(1, 600), super::body(2, 600));
        assert!(a.len() >= 600 && a.len() < 620, "{}", a.len());
        assert_ne!(a, b);
    }
}
