//! What the brokers with a server (Redis, NATS) share: the topics this node has local
//! subscribers for, the ordered queue of interest changes their connection task applies, and
//! the growing pause between reconnection attempts.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{oneshot, Notify};

use crate::Topic;

/// An interest change, in the order the hub made it.
pub(crate) enum Change {
    Subscribe(Topic),
    Unsubscribe(Topic),
    /// Answered once the server applied every earlier change.
    Settle(oneshot::Sender<()>),
}

/// The broker's side of interest: which topics have local subscribers (to subscribe to again
/// after a reconnect, and to deliver this node's own publishes directly), and the queue that
/// carries each change to the connection task as a `C`.
pub(crate) struct Interest<C> {
    shared: Arc<Shared<C>>,
}

/// The receiving end of an [`Interest`]'s queue, for the connection task.
pub(crate) struct Changes<C> {
    shared: Arc<Shared<C>>,
}

struct Shared<C> {
    state: Mutex<State<C>>,
    /// Wakes the receiver: something was queued, or the last [`Interest`] went.
    ready: Notify,
    /// Live [`Interest`] handles; the queue ends when none is left.
    handles: AtomicUsize,
    receiver_gone: AtomicBool,
}

struct State<C> {
    local: HashSet<Topic>,
    /// Bounded by construction: a topic is in it at most once (`queued` says whether), and
    /// the receiver turns it into the change to the topic's interest as it is *then*; so a
    /// topic that flips on and off faster than the server takes the changes costs one entry,
    /// not one per flip. The only commands are settles, each awaited by its caller.
    queue: VecDeque<Entry<C>>,
    queued: HashSet<Topic>,
}

enum Entry<C> {
    Topic(Topic),
    Command(C),
}

impl<C: From<Change>> Interest<C> {
    /// The interest, and the receiving end of its queue for the connection task.
    pub(crate) fn new() -> (Self, Changes<C>) {
        // Bounded by construction: at most one queued entry per topic (`queued`).
        let state = State { local: HashSet::new(), queue: VecDeque::new(), queued: HashSet::new() };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            ready: Notify::new(),
            handles: AtomicUsize::new(1),
            receiver_gone: AtomicBool::new(false),
        });
        (Self { shared: shared.clone() }, Changes { shared })
    }

    fn state(&self) -> MutexGuard<'_, State<C>> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this node has local subscribers of `topic`.
    pub(crate) fn has(&self, topic: &Topic) -> bool {
        self.state().local.contains(topic)
    }

    /// Every topic with local subscribers.
    pub(crate) fn topics(&self) -> Vec<Topic> {
        self.state().local.iter().cloned().collect()
    }

    pub(crate) fn subscribe(&self, topic: Topic) {
        let mut state = self.state();
        if state.local.insert(topic.clone()) {
            self.changed(&mut state, topic);
        }
    }

    pub(crate) fn unsubscribe(&self, topic: Topic) {
        let mut state = self.state();
        if state.local.remove(&topic) {
            self.changed(&mut state, topic);
        }
    }

    /// Queues `topic`'s change, unless one is queued already (it will carry this one).
    fn changed(&self, state: &mut State<C>, topic: Topic) {
        if state.queued.insert(topic.clone()) {
            state.queue.push_back(Entry::Topic(topic));
            self.shared.ready.notify_one();
        }
    }

    pub(crate) async fn settle(&self) {
        let (done, settled) = oneshot::channel();
        if self.send(Change::Settle(done).into()) {
            let _ = settled.await;
        }
    }

    /// Queues something else for the connection task, after every change so far.
    pub(crate) fn send(&self, command: C) -> bool {
        if self.shared.receiver_gone.load(Ordering::Acquire) {
            return false;
        }
        self.state().queue.push_back(Entry::Command(command));
        self.shared.ready.notify_one();
        true
    }

    /// A handle for the connection task (same topics, same queue).
    pub(crate) fn share(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Self { shared: self.shared.clone() }
    }
}

impl<C> Drop for Interest<C> {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.ready.notify_one();
        }
    }
}

impl<C: From<Change>> Changes<C> {
    /// The next change or command, in order; `None` once every [`Interest`] is gone.
    /// Cancel-safe: an entry is taken only by the poll that returns it.
    pub(crate) async fn recv(&mut self) -> Option<C> {
        loop {
            if let Some(next) = self.try_recv() {
                return Some(next);
            }
            if self.shared.handles.load(Ordering::Acquire) == 0 {
                return None;
            }
            self.shared.ready.notified().await;
        }
    }

    /// The next change or command, if one is queued. A topic's change is its interest now.
    pub(crate) fn try_recv(&mut self) -> Option<C> {
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.queue.pop_front()? {
            Entry::Command(command) => Some(command),
            Entry::Topic(topic) => {
                state.queued.remove(&topic);
                let change = match state.local.contains(&topic) {
                    true => Change::Subscribe(topic),
                    false => Change::Unsubscribe(topic),
                };
                Some(change.into())
            }
        }
    }
}

impl<C> Drop for Changes<C> {
    fn drop(&mut self) {
        self.shared.receiver_gone.store(true, Ordering::Release);
    }
}

/// The pause before the next reconnection attempt: 0.1 s, doubling up to 5 s.
pub(crate) struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MOST: Duration = Duration::from_secs(5);

    pub(crate) fn new() -> Self {
        Self(Self::FIRST)
    }

    pub(crate) fn reset(&mut self) {
        self.0 = Self::FIRST;
    }

    /// Waits out the pause, then doubles it. Interest changes meanwhile need no command (the
    /// reconnect subscribes to what is local then), so settles are answered at once rather
    /// than holding subscribers up while the server is away; other commands are dropped.
    /// `false` when the broker is gone.
    pub(crate) async fn wait<C: From<Change>>(
        &mut self,
        queue: &mut Changes<C>,
        settle: fn(C) -> Option<oneshot::Sender<()>>,
    ) -> bool {
        let deadline = tokio::time::sleep(self.0);
        tokio::pin!(deadline);
        self.0 = (self.0 * 2).min(Self::MOST);
        loop {
            tokio::select! {
                () = &mut deadline => return true,
                command = queue.recv() => match command {
                    Some(command) => if let Some(done) = settle(command) { let _ = done.send(()); },
                    None => return false,
                },
            }
        }
    }

    /// The pause the next attempt waits, for logs.
    pub(crate) fn pause(&self) -> Duration {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::{Change, Interest};
    use crate::Topic;

    fn topic(channel: &str) -> Topic {
        Topic { app: "a".into(), channel: channel.into() }
    }

    fn name(change: Option<Change>) -> String {
        match change {
            Some(Change::Subscribe(t)) => format!("+{}", t.channel),
            Some(Change::Unsubscribe(t)) => format!("-{}", t.channel),
            Some(Change::Settle(_)) => "settle".into(),
            None => "none".into(),
        }
    }

    #[tokio::test]
    async fn a_topic_flipping_faster_than_it_is_applied_holds_one_entry_with_its_latest_state() {
        let (interest, mut changes) = Interest::<Change>::new();
        for _ in 0..10_000 {
            interest.subscribe(topic("room:1"));
            interest.unsubscribe(topic("room:1"));
        }
        interest.subscribe(topic("room:2"));
        interest.subscribe(topic("room:1"));
        let settle = tokio::spawn({
            let interest = interest.share();
            async move { interest.settle().await }
        });
        tokio::task::yield_now().await;
        // Twenty thousand flips of room:1 queued one change: subscribed, as it is now; then
        // room:2, then the settle, in the order they were first queued.
        assert_eq!(name(changes.recv().await), "+room:1");
        assert_eq!(name(changes.recv().await), "+room:2");
        let Some(Change::Settle(done)) = changes.recv().await else { panic!("the settle comes last") };
        assert_eq!(name(changes.try_recv()), "none");
        done.send(()).unwrap();
        settle.await.unwrap();
        interest.unsubscribe(topic("room:2"));
        assert_eq!(name(changes.recv().await), "-room:2");
        assert!(interest.has(&topic("room:1")) && !interest.has(&topic("room:2")));
    }
}
