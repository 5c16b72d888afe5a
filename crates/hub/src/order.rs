//! The order a channel's events reach this node's subscribers in: by seq, none twice.
//!
//! With several nodes, two nodes publishing to one channel number their events in the shared
//! store (its row lock makes the numbering and the commits happen in seq order), but their
//! live copies race through the broker: seq 6 may arrive before seq 5. And a node that lost
//! its broker connection for a moment, or a publisher killed between its commit and its
//! publish, leaves a hole. So each node keeps, per channel with local subscribers, the newest
//! seq it delivered. An event right after it goes out at once; an older one was delivered
//! already (a gap fill read it) and is dropped; a newer one opens a gap: it and whatever
//! follows wait while the hub reads the missing events from the store, which has every event
//! below one that arrived (each was committed before it).
//!
//! The order starts at the channel's head, read from the store before the node subscribes
//! to the channel at the broker. Starting at the first event that arrives instead would lose
//! events: if another node's seq 6 overtakes this node's seq 5, seq 5 would count as old.

use std::sync::Arc;

use switchboard_broker::Envelope;

/// Events missing before a waiting one: those after `after` up to `horizon`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The channel.
    pub channel: Arc<str>,
    /// The newest seq delivered.
    pub after: u64,
    /// The newest seq waiting when the gap was seen: every event up to it is in the store
    /// by now, so a fill that reads up to it leaves nothing out that could still come.
    pub horizon: u64,
}

/// What to do with an arriving event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Deliver it now.
    Deliver,
    /// Delivered already; drop it.
    Stale,
    /// Queued behind a fill; start one for this gap if it is `Some`.
    Wait(Option<Gap>),
}

/// Events that may wait behind one fill, at most, in count and in bytes. Past either they
/// are let go: each was committed before it was published, so the fill reads them from
/// history too (it goes on to the newest one let go).
const MAX_WAITING: usize = 1024;
const MAX_WAITING_BYTES: usize = 16 << 20;

/// What arrived while a fill ran.
#[derive(Default)]
struct Waiting {
    events: Vec<Envelope>,
    bytes: usize,
    /// The newest seq let go (0: none was).
    beyond: u64,
}

impl Waiting {
    fn push(&mut self, envelope: Envelope) {
        if self.events.len() >= MAX_WAITING || self.bytes + envelope.payload.len() > MAX_WAITING_BYTES {
            self.beyond = self.beyond.max(envelope.seq);
            return;
        }
        self.bytes += envelope.payload.len();
        self.events.push(envelope);
    }

    /// The newest seq that arrived, kept or let go.
    fn newest(&self) -> u64 {
        self.events.iter().map(|e| e.seq).max().unwrap_or(0).max(self.beyond)
    }
}

/// What a fill released.
#[derive(Debug, Default)]
pub(crate) struct Resumed {
    /// To deliver now, in seq order.
    pub(crate) ready: Vec<Envelope>,
    /// The next gap to read, if one is left: the seqs after `.0` up to `.1`.
    pub(crate) next: Option<(u64, u64)>,
    /// Events of the channel are gone from history before reaching this node: how many of
    /// `ready` come before the first hole. Only those may go out before the subscribers are
    /// told: a client that got an event past the hole would resume from there and never
    /// learn of it.
    pub(crate) lost: Option<usize>,
}

/// One channel's delivery order on this node.
#[derive(Default)]
pub(crate) struct Order {
    /// The newest seq delivered, or the head it started at; `None` when the head could not
    /// be read, and then the first event that arrives sets it.
    last: Option<u64>,
    waiting: Option<Waiting>,
}

impl Order {
    /// An order that delivers the events after `head` (`None`: after the first to arrive).
    pub(crate) fn after(head: Option<u64>) -> Self {
        Self { last: head, waiting: None }
    }

    /// Judges an arriving event of the channel.
    pub(crate) fn admit(&mut self, envelope: &Envelope) -> Verdict {
        let seq = envelope.seq;
        if let Some(waiting) = &mut self.waiting {
            waiting.push(envelope.clone());
            return Verdict::Wait(None);
        }
        match self.last {
            None => self.last = Some(seq),
            Some(last) if seq <= last => return Verdict::Stale,
            Some(last) if seq == last + 1 => self.last = Some(seq),
            Some(last) => {
                let mut waiting = Waiting::default();
                waiting.push(envelope.clone());
                self.waiting = Some(waiting);
                let channel = envelope.channel.clone();
                return Verdict::Wait(Some(Gap { channel, after: last, horizon: seq }));
            }
        }
        Verdict::Deliver
    }

    /// The channel's newest committed seq is `head`, read after this node may have missed
    /// events (its broker connection was lost and is back). Returns the gap to read when
    /// events up to `head` were not delivered and no fill runs; a running fill is extended
    /// to `head`.
    pub(crate) fn catch_up(&mut self, channel: &Arc<str>, head: u64) -> Option<Gap> {
        if let Some(waiting) = &mut self.waiting {
            waiting.beyond = waiting.beyond.max(head);
            return None;
        }
        let last = self.last?;
        if head <= last {
            return None;
        }
        self.waiting = Some(Waiting::default());
        Some(Gap { channel: channel.clone(), after: last, horizon: head })
    }

    /// A fill read `filled`: every event history still has after the gap's start, up to
    /// `read_to` (the gap's horizon, or less when the fill reads it page by page). Returns what
    /// to deliver now, in seq order, the next gap (the rest of this one, or one that opened
    /// among the events that arrived meanwhile), and whether a seq is missing at or below
    /// `read_to`: trimmed from history, gone for good.
    pub(crate) fn resume(&mut self, filled: Vec<Envelope>, read_to: u64, horizon: u64) -> Resumed {
        let waiting = self.waiting.take().unwrap_or_default();
        let target = horizon.max(waiting.newest());
        let mut pending = waiting.events;
        pending.extend(filled);
        pending.sort_by_key(|e| e.seq);
        let mut resumed = Resumed::default();
        // A gap opens only once the order has a start.
        let mut last = self.last.unwrap_or(0);
        let mut rest = pending.into_iter();
        while let Some(envelope) = rest.next() {
            if envelope.seq <= last {
                continue;
            }
            if envelope.seq > last + 1 && envelope.seq > read_to {
                // Not read yet: it waits, with what follows it, for the next fill.
                let mut left = Waiting { beyond: waiting.beyond, ..Waiting::default() };
                left.push(envelope);
                rest.for_each(|e| left.push(e));
                let horizon = target.max(left.newest());
                self.waiting = Some(left);
                self.last = Some(last);
                resumed.next = Some((last, horizon));
                return resumed;
            }
            if envelope.seq > last + 1 && resumed.lost.is_none() {
                resumed.lost = Some(resumed.ready.len());
            }
            last = envelope.seq;
            resumed.ready.push(envelope);
        }
        self.last = Some(last);
        if last < target {
            // More to read: the rest of the gap, or events let go while it was read.
            self.waiting = Some(Waiting::default());
            resumed.next = Some((last, target));
        }
        resumed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> Envelope {
        Envelope { app: "a".into(), channel: "user:1".into(), payload: seq.to_string().into(), seq, published_us: 0 }
    }

    fn seqs(envelopes: &[Envelope]) -> Vec<u64> {
        envelopes.iter().map(|e| e.seq).collect()
    }

    fn gap(after: u64, horizon: u64) -> Verdict {
        Verdict::Wait(Some(Gap { channel: "user:1".into(), after, horizon }))
    }

    #[test]
    fn catching_up_reads_what_a_lost_broker_connection_missed() {
        let channel: Arc<str> = "user:1".into();
        let mut order = Order::after(Some(3));
        assert_eq!(order.catch_up(&channel, 3), None, "nothing was missed");
        let gap = order.catch_up(&channel, 9).expect("4 to 9 were missed");
        assert_eq!((gap.after, gap.horizon), (3, 9));
        assert_eq!(order.admit(&event(10)), Verdict::Wait(None), "the fill runs: later events wait");
        assert_eq!(order.catch_up(&channel, 12), None, "the running fill goes on to 12");
        let resumed = order.resume((4..=9).map(event).collect(), 9, 9);
        assert_eq!((seqs(&resumed.ready), resumed.next), ((4..=10).collect(), Some((10, 12))));
        assert_eq!(Order::default().catch_up(&channel, 5), None, "an order without a start has nothing to miss");
    }

    #[test]
    fn delivers_in_order_and_drops_what_was_delivered() {
        let mut order = Order::default();
        assert_eq!(order.admit(&event(4)), Verdict::Deliver, "the first event sets the start");
        assert_eq!(order.admit(&event(5)), Verdict::Deliver);
        assert_eq!(order.admit(&event(5)), Verdict::Stale);
        assert_eq!(order.admit(&event(3)), Verdict::Stale);
    }

    #[test]
    fn an_order_started_at_the_head_waits_for_an_overtaken_event() {
        let mut order = Order::after(Some(0));
        assert_eq!(order.admit(&event(2)), gap(0, 2), "seq 1 is not old: it is late");
        assert_eq!(order.admit(&event(1)), Verdict::Wait(None));
        let resumed = order.resume(vec![event(1), event(2)], 2, 2);
        assert_eq!((seqs(&resumed.ready), resumed.next, resumed.lost), (vec![1, 2], None, None));
        let mut order = Order::after(Some(7));
        assert_eq!(order.admit(&event(7)), Verdict::Stale, "committed before the subscription");
        assert_eq!(order.admit(&event(8)), Verdict::Deliver);
    }

    #[test]
    fn a_gap_waits_for_the_fill_then_releases_in_seq_order() {
        let mut order = Order::default();
        order.admit(&event(1));
        assert_eq!(order.admit(&event(4)), gap(1, 4));
        assert_eq!(order.admit(&event(2)), Verdict::Wait(None), "the late copy waits too");
        assert_eq!(order.admit(&event(5)), Verdict::Wait(None));
        let resumed = order.resume(vec![event(2), event(3), event(4)], 4, 4);
        assert_eq!(seqs(&resumed.ready), [2, 3, 4, 5], "each once, in order");
        assert_eq!((resumed.next, resumed.lost), (None, None));
        assert_eq!(order.admit(&event(6)), Verdict::Deliver);
    }

    #[test]
    fn a_hole_past_what_was_read_opens_the_next_gap_and_one_below_it_is_reported_lost() {
        let mut order = Order::default();
        order.admit(&event(1));
        order.admit(&event(5));
        order.admit(&event(9)); // arrived during the fill; 6..8 may still come
        let resumed = order.resume(vec![event(3), event(4), event(5)], 5, 5);
        assert_eq!(seqs(&resumed.ready), [3, 4, 5]);
        assert_eq!(resumed.lost, Some(0), "2 was trimmed from history: gone, and said so before 3 goes out");
        assert_eq!(resumed.next, Some((5, 9)));
        assert_eq!(order.admit(&event(6)), Verdict::Wait(None));
        let resumed = order.resume(vec![event(6), event(7), event(8), event(9)], 9, 9);
        assert_eq!(seqs(&resumed.ready), [6, 7, 8, 9], "the copy of 6 from the fill is dropped");
        assert_eq!((resumed.next, resumed.lost), (None, None));
    }

    #[test]
    fn a_long_gap_is_read_page_by_page_to_its_horizon() {
        let mut order = Order::after(Some(0));
        assert_eq!(order.admit(&event(2500)), gap(0, 2500));
        // The first page holds 1..=1000: read to 1000 of 2500.
        let resumed = order.resume((1..=1000).map(event).collect(), 1000, 2500);
        assert_eq!((resumed.ready.len(), resumed.next, resumed.lost), (1000, Some((1000, 2500)), None));
        assert_eq!(order.admit(&event(2501)), Verdict::Wait(None), "still behind the fill");
        let resumed = order.resume((1001..=2000).map(event).collect(), 2000, 2500);
        assert_eq!((resumed.ready.len(), resumed.next), (1000, Some((2000, 2501))));
        let resumed = order.resume((2001..=2500).map(event).collect(), 2501, 2501);
        assert_eq!(seqs(&resumed.ready), (2001..=2501).collect::<Vec<_>>(), "nothing skipped");
        assert_eq!((resumed.next, resumed.lost), (None, None));
        assert_eq!(order.admit(&event(2502)), Verdict::Deliver);
    }

    #[test]
    fn what_waits_behind_a_fill_is_bounded_and_read_from_history_past_the_bound() {
        let mut order = Order::after(Some(0));
        order.admit(&event(5));
        let flood = MAX_WAITING as u64 + 100;
        for seq in 6..=flood {
            assert_eq!(order.admit(&event(seq)), Verdict::Wait(None));
        }
        let waiting = order.waiting.as_ref().unwrap();
        assert_eq!((waiting.events.len(), waiting.beyond), (MAX_WAITING, flood), "kept no more than the bound");
        let resumed = order.resume((1..=5).map(event).collect(), 5, 5);
        assert_eq!(seqs(&resumed.ready), (1..=MAX_WAITING as u64 + 4).collect::<Vec<_>>());
        assert_eq!(resumed.next, Some((MAX_WAITING as u64 + 4, flood)), "the rest is read, not lost");
        assert_eq!(resumed.lost, None);
    }
}
