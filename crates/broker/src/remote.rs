//! What the brokers with a server (Redis, NATS) share: the topics this node has local
//! subscribers for, the ordered queue of interest changes their connection task applies, and
//! the growing pause between reconnection attempts.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

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
    local: Arc<Mutex<HashSet<Topic>>>,
    queue: mpsc::UnboundedSender<C>,
}

impl<C: From<Change>> Interest<C> {
    /// The interest, and the receiving end of its queue for the connection task.
    pub(crate) fn new() -> (Self, mpsc::UnboundedReceiver<C>) {
        let (queue, changes) = mpsc::unbounded_channel();
        (Self { local: Arc::default(), queue }, changes)
    }

    fn local(&self) -> MutexGuard<'_, HashSet<Topic>> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this node has local subscribers of `topic`.
    pub(crate) fn has(&self, topic: &Topic) -> bool {
        self.local().contains(topic)
    }

    /// Every topic with local subscribers.
    pub(crate) fn topics(&self) -> Vec<Topic> {
        self.local().iter().cloned().collect()
    }

    pub(crate) fn subscribe(&self, topic: Topic) {
        if self.local().insert(topic.clone()) {
            let _ = self.queue.send(Change::Subscribe(topic).into());
        }
    }

    pub(crate) fn unsubscribe(&self, topic: Topic) {
        if self.local().remove(&topic) {
            let _ = self.queue.send(Change::Unsubscribe(topic).into());
        }
    }

    pub(crate) async fn settle(&self) {
        let (done, settled) = oneshot::channel();
        if self.queue.send(Change::Settle(done).into()).is_ok() {
            let _ = settled.await;
        }
    }

    /// Queues something else for the connection task, after every change so far.
    pub(crate) fn send(&self, command: C) -> bool {
        self.queue.send(command).is_ok()
    }

    /// A handle for the connection task (same topics, same queue).
    pub(crate) fn share(&self) -> Self {
        Self { local: self.local.clone(), queue: self.queue.clone() }
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
    pub(crate) async fn wait<C>(
        &mut self,
        queue: &mut mpsc::UnboundedReceiver<C>,
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
