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

/// One channel's delivery order on this node.
#[derive(Default)]
pub(crate) struct Order {
    /// The newest seq delivered, or the head it started at; `None` when the head could not
    /// be read, and then the first event that arrives sets it.
    last: Option<u64>,
    waiting: Option<Vec<Envelope>>,
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
                self.waiting = Some(vec![envelope.clone()]);
                let channel = envelope.channel.clone();
                return Verdict::Wait(Some(Gap { channel, after: last, horizon: seq }));
            }
        }
        Verdict::Deliver
    }

    /// A fill read `filled` (every event the store still has up to the gap's `horizon`):
    /// returns what to deliver now, in seq order, and the next gap if one opened among
    /// events that arrived during the fill. A seq missing at or below the horizon is gone
    /// (trimmed from history) and is skipped rather than waited for.
    pub(crate) fn resume(&mut self, filled: Vec<Envelope>, horizon: u64) -> (Vec<Envelope>, Option<Gap>) {
        let mut pending = self.waiting.take().unwrap_or_default();
        pending.extend(filled);
        pending.sort_by_key(|e| e.seq);
        let mut ready = Vec::with_capacity(pending.len());
        let mut rest = pending.into_iter();
        // A gap opens only once the order has a start.
        let mut last = self.last.unwrap_or(0);
        for envelope in rest.by_ref() {
            if envelope.seq <= last {
                continue;
            }
            if envelope.seq > last + 1 && envelope.seq > horizon {
                let gap = Gap { channel: envelope.channel.clone(), after: last, horizon: envelope.seq };
                let mut waiting = vec![envelope];
                waiting.extend(rest);
                self.waiting = Some(waiting);
                self.last = Some(last);
                return (ready, Some(gap));
            }
            last = envelope.seq;
            ready.push(envelope);
        }
        self.last = Some(last);
        (ready, None)
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
        let gap = Gap { channel: "user:1".into(), after: 0, horizon: 2 };
        assert_eq!(order.admit(&event(2)), Verdict::Wait(Some(gap)), "seq 1 is not old: it is late");
        assert_eq!(order.admit(&event(1)), Verdict::Wait(None));
        let (ready, next) = order.resume(vec![event(1), event(2)], 2);
        assert_eq!(seqs(&ready), [1, 2]);
        assert_eq!(next, None);
        let mut order = Order::after(Some(7));
        assert_eq!(order.admit(&event(7)), Verdict::Stale, "committed before the subscription");
        assert_eq!(order.admit(&event(8)), Verdict::Deliver);
    }

    #[test]
    fn a_gap_waits_for_the_fill_then_releases_in_seq_order() {
        let mut order = Order::default();
        order.admit(&event(1));
        let gap = Gap { channel: "user:1".into(), after: 1, horizon: 4 };
        assert_eq!(order.admit(&event(4)), Verdict::Wait(Some(gap)));
        assert_eq!(order.admit(&event(2)), Verdict::Wait(None), "the late copy waits too");
        assert_eq!(order.admit(&event(5)), Verdict::Wait(None));
        let (ready, next) = order.resume(vec![event(2), event(3), event(4)], 4);
        assert_eq!(seqs(&ready), [2, 3, 4, 5], "each once, in order");
        assert_eq!(next, None);
        assert_eq!(order.admit(&event(6)), Verdict::Deliver);
    }

    #[test]
    fn a_hole_past_the_horizon_opens_the_next_gap_and_one_below_it_is_skipped() {
        let mut order = Order::default();
        order.admit(&event(1));
        order.admit(&event(5));
        order.admit(&event(9)); // arrived during the fill; 6..8 may still come
        let (ready, next) = order.resume(vec![event(3), event(4), event(5)], 5);
        assert_eq!(seqs(&ready), [3, 4, 5], "2 was trimmed from history: skipped, not awaited");
        assert_eq!(next, Some(Gap { channel: "user:1".into(), after: 5, horizon: 9 }));
        assert_eq!(order.admit(&event(6)), Verdict::Wait(None));
        let (ready, next) = order.resume(vec![event(6), event(7), event(8), event(9)], 9);
        assert_eq!(seqs(&ready), [6, 7, 8, 9], "the copy of 6 from the fill is dropped");
        assert_eq!(next, None);
    }
}
