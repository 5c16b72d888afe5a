//! What one connection was sent of each channel with history, and the live events it holds
//! back while a replay runs. Replays use it to send every missed event once and in order:
//! what was already sent is skipped, and what arrives live during the replay waits behind it.
//! A channel's live events arrive in seq order, so one at or below the newest seq sent was
//! sent already (by a replay that read it from history before its live copy was delivered)
//! and is dropped.

use std::sync::Arc;

use bytes::Bytes;

/// The seqs of one channel queued on a connection since it subscribed: every one from
/// `first` to `last`, because a channel's events reach a subscriber in seq order, none
/// skipped (an overflow closes the connection instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentRange {
    /// The first seq queued.
    pub first: u64,
    /// The newest seq queued.
    pub last: u64,
}

struct Sent {
    channel: Arc<str>,
    range: SentRange,
}

struct Held {
    channel: Arc<str>,
    seq: u64,
    frame: Bytes,
}

/// Allocated on a connection's first event with a position, so idle connections pay nothing.
#[derive(Default)]
pub(super) struct Ledger {
    // A connection has few channels with history; a short list beats a map here.
    sent: Vec<Sent>,
    held: Option<Vec<Held>>,
    pub(super) held_bytes: usize,
}

impl Ledger {
    /// Records `seq` as sent; `false` (nothing recorded) when it was sent already.
    pub(super) fn admit(&mut self, channel: &Arc<str>, seq: u64) -> bool {
        match self.sent.iter_mut().find(|s| s.channel == *channel) {
            Some(sent) if seq <= sent.range.last => false,
            Some(sent) => {
                sent.range.last = seq;
                true
            }
            None => {
                self.sent.push(Sent { channel: channel.clone(), range: SentRange { first: seq, last: seq } });
                true
            }
        }
    }

    /// The client now stands at `seq` (a replay ended there, or it will refetch up to
    /// there): nothing at or below it goes out live any more.
    pub(super) fn advance(&mut self, channel: &Arc<str>, seq: u64) {
        match self.sent.iter_mut().find(|s| s.channel == *channel) {
            Some(sent) => sent.range.last = sent.range.last.max(seq),
            None => {
                let range = SentRange { first: seq + 1, last: seq };
                self.sent.push(Sent { channel: channel.clone(), range });
            }
        }
    }

    pub(super) fn sent(&self, channel: &str) -> Option<SentRange> {
        self.sent.iter().find(|s| &*s.channel == channel).map(|s| s.range)
    }

    /// After an unsubscribe the channel's next events are not contiguous with these.
    pub(super) fn forget(&mut self, channel: &str) {
        self.sent.retain(|s| &*s.channel != channel);
    }

    pub(super) fn holding(&self) -> bool {
        self.held.is_some()
    }

    pub(super) fn start_holding(&mut self) {
        self.held.get_or_insert_with(Vec::new);
    }

    pub(super) fn hold(&mut self, channel: &Arc<str>, seq: u64, frame: Bytes) {
        self.held_bytes += frame.len();
        self.held.get_or_insert_with(Vec::new).push(Held { channel: channel.clone(), seq, frame });
    }

    pub(super) fn drop_held(&mut self) {
        self.held = None;
        self.held_bytes = 0;
    }

    /// Ends holding: the held frames, in arrival order, except those already sent.
    pub(super) fn release(&mut self) -> Vec<Bytes> {
        let held = self.held.take().unwrap_or_default();
        self.held_bytes = 0;
        held.into_iter().filter(|h| self.admit(&h.channel, h.seq)).map(|h| h.frame).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_ranges_and_releases_what_the_replay_did_not_send() {
        let (a, b): (Arc<str>, Arc<str>) = ("user:1".into(), "group:g".into());
        let mut ledger = Ledger::default();
        assert!(ledger.admit(&a, 4) && ledger.admit(&a, 5));
        assert!(!ledger.admit(&a, 5), "sent already");
        assert_eq!(ledger.sent("user:1"), Some(SentRange { first: 4, last: 5 }));
        ledger.start_holding();
        for (channel, seq) in [(&a, 6), (&b, 1), (&a, 7), (&a, 8)] {
            ledger.hold(channel, seq, Bytes::from(format!("{channel}#{seq}")));
        }
        assert_eq!(ledger.held_bytes, "user:1#6group:g#1user:1#7user:1#8".len());
        ledger.advance(&a, 7); // a replay sent up to 7
        let out = ledger.release();
        assert_eq!(out, ["group:g#1", "user:1#8"]);
        assert!(!ledger.holding() && ledger.held_bytes == 0);
        assert_eq!(ledger.sent("user:1"), Some(SentRange { first: 4, last: 8 }));
        assert!(!ledger.admit(&a, 8), "a live copy of a replayed event is dropped");
        ledger.advance(&b, 0);
        ledger.advance(&"room:new".into(), 3);
        assert_eq!(ledger.sent("room:new"), Some(SentRange { first: 4, last: 3 }), "nothing sent yet");
        ledger.forget("user:1");
        assert_eq!(ledger.sent("user:1"), None);
    }
}
