//! The JSON clients see, with seed 003's camelCase names (`messageId`, `senderKey`, ...).

use serde_json::{json, Value};
use switchboard_hub::rfc3339;
use switchboard_store::{Conversation, ConversationSummary, Message};

/// A message as `chat:message:sent`, `chat:message` and the REST lists carry it.
pub(crate) fn message(m: &Message) -> Value {
    let f = &m.fields;
    json!({
        "messageId": f.id,
        "conversationId": f.conversation,
        "senderKey": f.sender,
        "content": f.content,
        "type": f.kind,
        "status": "sent",
        "createdAt": rfc3339(f.created_at_ms),
        "tempId": f.temp_id,
        "replyTo": f.reply_to,
        "mentions": serde_json::from_str::<Value>(&f.mentions).unwrap_or_else(|_| json!([])),
        "mediaUrl": f.media_url,
        "editedAt": m.edited_at_ms.map(rfc3339),
        "deleted": m.deleted_at_ms.is_some(),
    })
}

/// A conversation as `chat:conversation:created` carries it.
pub(crate) fn conversation(c: &Conversation) -> Value {
    json!({
        "conversationId": c.id,
        "type": c.kind,
        "participants": c.participants,
        "name": c.name,
        "createdBy": c.created_by,
        "createdAt": rfc3339(c.created_at_ms),
    })
}

/// A conversation in a user's list: with its last message and unread count.
pub(crate) fn summary(s: &ConversationSummary) -> Value {
    let mut view = conversation(&s.conversation);
    view["lastMessage"] = s.last_message.as_ref().map_or(Value::Null, message);
    view["unread"] = json!(s.unread);
    view
}

/// Now, as events stamp it.
pub(crate) fn now() -> String {
    rfc3339(switchboard_hub::unix_ms())
}
