//! Events as Socket.IO sends them, parsed once per event rather than once per connection.
//! The hub hands every subscriber the same encoded frame (one allocation, shared), so the
//! first Socket.IO connection to take a frame parses it, and the others that take it on the
//! same thread find it among the few frames parsed last.

use std::cell::{OnceCell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;

/// Frames remembered per thread, at most.
const RECENT: usize = 8;
/// Frames larger than this are parsed each time rather than kept (the list pins them).
const LARGEST: usize = 64 << 10;

/// An event, ready for any connection.
pub(crate) struct Event {
    /// The hub's frame: holding it keeps its address from naming another frame.
    frame: Bytes,
    /// `2["type",data`: the EVENT packet up to its optional last argument.
    pub(crate) head: String,
    /// Its channel's position, when the channel keeps history: channel, epoch, seq.
    pub(crate) position: Option<(String, String, u64)>,
    /// The Engine.IO message without an offset, built by the first connection that sends it.
    shared: OnceCell<Bytes>,
}

impl Event {
    pub(crate) fn new(frame: Bytes, head: String, position: Option<(String, String, u64)>) -> Rc<Self> {
        let event = Rc::new(Self { frame, head, position, shared: OnceCell::new() });
        if event.frame.len() <= LARGEST {
            RECENT_EVENTS.with(|recent| {
                let mut recent = recent.borrow_mut();
                if recent.len() == RECENT {
                    recent.pop_front();
                }
                recent.push_back(event.clone());
            });
        }
        event
    }

    /// The Engine.IO message `42["type",data]`, the same bytes for every connection.
    pub(crate) fn shared(&self) -> Bytes {
        self.shared.get_or_init(|| self.message(None)).clone()
    }

    /// The Engine.IO message with `offset` as its last argument, for one connection.
    pub(crate) fn with_offset(&self, offset: &str) -> Bytes {
        self.message(Some(offset))
    }

    /// `4` (an Engine.IO message), the EVENT packet's head, the offset if any, `]`: one
    /// allocation.
    fn message(&self, offset: Option<&str>) -> Bytes {
        let extra = offset.map_or(0, |o| o.len() + 3);
        let mut text = String::with_capacity(self.head.len() + extra + 2);
        text.push('4');
        text.push_str(&self.head);
        if let Some(offset) = offset {
            text.push_str(",\"");
            text.push_str(offset);
            text.push('"');
        }
        text.push(']');
        Bytes::from(text)
    }

    /// The event this very frame was parsed into, if this thread parsed it lately.
    pub(crate) fn recent(frame: &Bytes) -> Option<Rc<Self>> {
        RECENT_EVENTS.with(|recent| {
            let recent = recent.borrow();
            let same = |e: &&Rc<Event>| e.frame.as_ptr() == frame.as_ptr() && e.frame.len() == frame.len();
            recent.iter().rev().find(same).cloned()
        })
    }
}

thread_local! {
    // Bounded: at most RECENT events, each at most LARGEST bytes.
    static RECENT_EVENTS: RefCell<VecDeque<Rc<Event>>> = const { RefCell::new(VecDeque::new()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_parsed_once_per_thread_and_never_mistaken_for_another() {
        let frame = Bytes::from_static(br#"{"type":"t","data":1}"#);
        assert!(Event::recent(&frame).is_none());
        let event = Event::new(frame.clone(), "2[\"t\",1".into(), None);
        let again = Event::recent(&frame.clone()).expect("the same frame, handed to another connection");
        assert!(Rc::ptr_eq(&event, &again));
        assert_eq!(event.shared(), "42[\"t\",1]");
        assert_eq!(event.shared().as_ptr(), again.shared().as_ptr(), "built once, shared");
        assert_eq!(event.with_offset("abc"), "42[\"t\",1,\"abc\"]");
        let equal_but_other = Bytes::from(frame.to_vec());
        assert!(Event::recent(&equal_but_other).is_none(), "identity, not content, names a frame");
        let big = Bytes::from(vec![b' '; LARGEST + 1]);
        Event::new(big.clone(), String::new(), None);
        assert!(Event::recent(&big).is_none(), "large frames are not kept");
        for n in 0..RECENT {
            Event::new(Bytes::from(vec![n as u8]), String::new(), None);
        }
        assert!(Event::recent(&frame).is_none(), "only the last few are kept");
    }
}
