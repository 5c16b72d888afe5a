//! Receipts: `chat:delivered` tells a message's author it arrived; `chat:read` moves the
//! reader's read mark (which drives unread counts) and tells everyone in the conversation.

use serde_json::{json, Value};
use switchboard_hub::{rfc3339, unix_ms, App, Hub};

use crate::conversations::participant_of;
use crate::messages::{to_all, visible_message};
use crate::{push, Chat, ChatError, Delivery};

impl Chat {
    /// Records that the caller's device received a message; the author's devices get
    /// `chat:message:delivered` the first time.
    pub async fn delivered(&self, hub: &Hub, app: &App, user: &str, id: &str) -> Result<Value, ChatError> {
        let (message, _) = visible_message(hub, app, id, user).await?;
        let now = unix_ms();
        let at = hub.store().mark_delivered(&app.spec.slug, id, user, now).await?;
        let event = json!({
            "messageId": id,
            "conversationId": message.fields.conversation,
            "deliveredTo": user,
            "timestamp": rfc3339(at),
        });
        if at == now && message.fields.sender != user {
            push(hub, app, vec![Delivery::new(&message.fields.sender, "chat:message:delivered", event.clone())]).await;
        }
        Ok(event)
    }

    /// Marks read up to a message (`messageId`) or the whole conversation
    /// (`conversationId`); everyone in it gets `chat:message:read`. Answers with the caller's
    /// unread count left in that conversation.
    pub async fn read(
        &self,
        hub: &Hub,
        app: &App,
        user: &str,
        conversation: Option<&str>,
        message: Option<&str>,
    ) -> Result<Value, ChatError> {
        let store = hub.store();
        let (conversation, cursor) = match (message, conversation) {
            (Some(id), _) => {
                let (message, conversation) = visible_message(hub, app, id, user).await?;
                (conversation, message.cursor)
            }
            (None, Some(id)) => {
                let conversation = participant_of(hub, app, id, user).await?;
                let newest = store.messages(&app.spec.slug, id, user, None, 1).await?;
                (conversation, newest.first().map_or(0, |m| m.cursor))
            }
            (None, None) => {
                return Err(ChatError::BadRequest("send `data.conversationId` or `data.messageId`".into()));
            }
        };
        store.mark_read(&app.spec.slug, &conversation.id, user, cursor).await?;
        let mut event = json!({ "conversationId": conversation.id, "readBy": user, "timestamp": rfc3339(unix_ms()) });
        if let Some(id) = message {
            event["messageId"] = json!(id);
        }
        push(hub, app, to_all(&conversation, "chat:message:read", &event)).await;
        let unread = store.unread_messages(&app.spec.slug, user).await?;
        event["unread"] = json!(unread.iter().find(|(c, _)| *c == conversation.id).map_or(0, |(_, n)| *n));
        Ok(event)
    }
}
