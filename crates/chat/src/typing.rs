//! Typing indicators: `chat:typing` becomes `chat:typing:start` and `chat:typing:stop` for
//! the other participants. A typist who stays silent for the app's `chat.typing_timeout`
//! (5 s), or whose connection closes, stops automatically. Live only: never stored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use switchboard_hub::{App, ConnId, Hub};
use switchboard_store::Conversation;

use crate::conversations::participant_of;
use crate::{signal, view, Chat, ChatError};

/// One typist in one conversation: (app, conversation, user).
type Key = (Arc<str>, String, String);

/// Who is typing where, and from which connection.
#[derive(Default, Clone)]
pub(crate) struct Typing {
    typists: Arc<Mutex<HashMap<Key, Typist>>>,
    generations: Arc<AtomicU64>,
}

#[derive(Clone, Copy)]
struct Typist {
    connection: ConnId,
    /// Changes with every keystroke signal, so an older timer knows it is stale.
    generation: u64,
}

impl Typing {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Typist>> {
        self.typists.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts or renews; returns the new generation and whether this is a start.
    fn renew(&self, key: Key, connection: ConnId) -> (u64, bool) {
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        let before = self.lock().insert(key, Typist { connection, generation });
        (generation, before.is_none())
    }

    /// Ends a typist; `true` if it was typing (and `generation`, when given, is current).
    fn end(&self, key: &Key, generation: Option<u64>) -> bool {
        let mut typists = self.lock();
        match typists.get(key) {
            Some(t) if generation.is_none_or(|g| g == t.generation) => typists.remove(key).is_some(),
            _ => false,
        }
    }

    /// Ends every typist of a closed connection; returns their keys.
    fn end_connection(&self, connection: ConnId) -> Vec<Key> {
        let mut typists = self.lock();
        let gone: Vec<Key> =
            typists.iter().filter(|(_, t)| t.connection == connection).map(|(k, _)| k.clone()).collect();
        for key in &gone {
            typists.remove(key);
        }
        gone
    }
}

impl Chat {
    /// `chat:typing {conversationId, isTyping}` from one connection.
    pub async fn typing(
        &self,
        hub: &Hub,
        app: &Arc<App>,
        user: &str,
        connection: ConnId,
        conversation: &str,
        is_typing: bool,
    ) -> Result<Value, ChatError> {
        let conversation = participant_of(hub, app, conversation, user).await?;
        let key: Key = (app.slug.clone(), conversation.id.clone(), user.to_owned());
        if !is_typing {
            if self.typing.end(&key, None) {
                announce(hub, app, &conversation, user, false).await;
            }
            return Ok(json!({ "conversationId": conversation.id, "isTyping": false }));
        }
        let (generation, started) = self.typing.renew(key.clone(), connection);
        if started {
            announce(hub, app, &conversation, user, true).await;
        }
        let (typing, hub, app, user) = (self.typing.clone(), hub.clone(), app.clone(), user.to_owned());
        let id = conversation.id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(app.spec.chat.typing_timeout).await;
            if typing.end(&key, Some(generation)) {
                announce(&hub, &app, &conversation, &user, false).await;
            }
        });
        Ok(json!({ "conversationId": id, "isTyping": true }))
    }

    /// A closed connection stops typing everywhere it was.
    pub(crate) async fn typing_closed(&self, hub: &Hub, app: &App, connection: ConnId) {
        for (_, conversation, user) in self.typing.end_connection(connection) {
            if let Ok(Some(conversation)) = hub.store().conversation(&app.spec.slug, &conversation).await {
                announce(hub, app, &conversation, &user, false).await;
            }
        }
    }
}

/// `chat:typing:start` or `:stop` to everyone in the conversation but the typist.
async fn announce(hub: &Hub, app: &App, conversation: &Conversation, user: &str, typing: bool) {
    let others: Vec<String> = conversation.participants.iter().filter(|p| *p != user).cloned().collect();
    let kind = if typing { "chat:typing:start" } else { "chat:typing:stop" };
    let data = json!({ "conversationId": conversation.id, "userKey": user, "timestamp": view::now() });
    signal(hub, app, &others, kind, &data).await;
}
