//! Events as Socket.IO sends them, parsed once per event rather than once per connection.
//! The hub hands every subscriber the same encoded frame (one allocation, shared), so the
//! first Socket.IO connection to take a frame parses it, and the others that take it on the
//! same thread find it among the few frames parsed last.

use std::cell::RefCell;
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
}

impl Event {
    pub(crate) fn new(frame: Bytes, head: String, position: Option<(String, String, u64)>) -> Rc<Self> {
        let event = Rc::new(Self { frame, head, position });
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
