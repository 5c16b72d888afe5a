//! Messages: send (stored before it is acknowledged), edit (by the author), delete (for
//! oneself or, by the author, for everyone), and the REST reads of the first load.

use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_hub::{rfc3339, unix_ms, App, Hub};
use switchboard_store::{Conversation, Message, NewMessage};

use crate::conversations::participant_of;
use crate::{new_id, push, view, Chat, ChatError, Delivery};

/// Most mentions one message may carry.
const MAX_MENTIONS: usize = 100;
/// Messages per page when the caller does not say; at most [`MAX_PAGE`].
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 100;

/// `chat:send`, with seed 003's field names.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendMessage {
    /// The conversation.
    pub conversation_id: String,
    /// The text; may be empty only when `mediaUrl` is set.
    #[serde(default)]
    pub content: String,
    /// `text` (default), `image`, `file`, ...
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The message this one answers.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// The client's own id, echoed in `chat:message:sent` to match the optimistic copy.
    #[serde(default)]
    pub temp_id: Option<String>,
    /// A media link.
    #[serde(default)]
    pub media_url: Option<String>,
    /// Mentioned users.
    #[serde(default)]
    pub mentions: Vec<String>,
}

/// `GET /me/conversations/{id}/messages?before=&limit=`.
#[derive(Debug, Default, Deserialize)]
pub struct MessagePage {
    /// A `messageId`: only messages older than it.
    #[serde(default)]
    pub before: Option<String>,
    /// 1 to 100, default 50.
    #[serde(default)]
    pub limit: Option<u32>,
}

impl Chat {
    /// Stores a message, then sends `chat:message:sent` to the sender's devices and
    /// `chat:message` to everyone else in the conversation. Answers the sent message.
    pub async fn send(&self, hub: &Hub, app: &App, sender: &str, req: SendMessage) -> Result<Value, ChatError> {
        check_content(app, &req.content, req.media_url.is_some())?;
        if req.mentions.len() > MAX_MENTIONS {
            return Err(ChatError::BadRequest(format!("field `mentions`: at most {MAX_MENTIONS} users")));
        }
        let conversation = participant_of(hub, app, &req.conversation_id, sender).await?;
        if let Some(reply_to) = &req.reply_to {
            in_conversation(hub, app, reply_to, &conversation).await.map_err(|_| {
                ChatError::BadRequest(format!("field `replyTo`: no message `{reply_to}` in this conversation"))
            })?;
        }
        // Under more load than history commits, refuse before storing: the client's retry
        // then sends the message once. (Once stored, its push waits for room instead.)
        hub.check_room(app, conversation.participants.len())?;
        let new = NewMessage {
            app: app.spec.slug.clone(),
            id: new_id(),
            conversation: conversation.id.clone(),
            sender: sender.to_owned(),
            kind: req.kind.unwrap_or_else(|| "text".into()),
            content: req.content,
            reply_to: req.reply_to,
            media_url: req.media_url,
            mentions: json!(req.mentions).to_string(),
            temp_id: req.temp_id,
            created_at_ms: unix_ms(),
        };
        let sent = view::message(&hub.store().insert_message(&new).await?);
        let deliveries = conversation
            .participants
            .iter()
            .map(|user| {
                let kind = if user == sender { "chat:message:sent" } else { "chat:message" };
                Delivery::new(user, kind, sent.clone())
            })
            .collect();
        push(hub, app, deliveries).await;
        Ok(sent)
    }

    /// The author replaces a message's text; everyone in the conversation gets
    /// `chat:message:edited`.
    pub async fn edit(&self, hub: &Hub, app: &App, user: &str, id: &str, content: &str) -> Result<Value, ChatError> {
        let (message, conversation) = visible_message(hub, app, id, user).await?;
        if message.fields.sender != user {
            return Err(ChatError::Forbidden("only the author may edit a message".into()));
        }
        if message.deleted_at_ms.is_some() {
            return Err(ChatError::NotFound(format!("message `{id}` was deleted")));
        }
        check_content(app, content, message.fields.media_url.is_some())?;
        let edited = hub.store().edit_message(&app.spec.slug, id, content, unix_ms()).await?;
        let edited = edited.ok_or_else(|| ChatError::NotFound(format!("no message `{id}`")))?;
        let event = json!({
            "messageId": id,
            "conversationId": conversation.id,
            "content": edited.fields.content,
            "editedAt": edited.edited_at_ms.map(rfc3339),
        });
        push(hub, app, to_all(&conversation, "chat:message:edited", &event)).await;
        Ok(event)
    }

    /// Deletes for the caller only, or (the author) for everyone: `chat:message:deleted` to
    /// the caller's devices, or to everyone in the conversation.
    pub async fn delete(
        &self,
        hub: &Hub,
        app: &App,
        user: &str,
        id: &str,
        for_everyone: bool,
    ) -> Result<Value, ChatError> {
        let (message, conversation) = visible_message(hub, app, id, user).await?;
        if for_everyone && message.fields.sender != user {
            return Err(ChatError::Forbidden("only the author may delete a message for everyone".into()));
        }
        let now = unix_ms();
        hub.store().delete_message(&app.spec.slug, id, user, for_everyone, now).await?;
        let event = json!({
            "messageId": id,
            "conversationId": conversation.id,
            "deletedAt": rfc3339(now),
            "forEveryone": for_everyone,
        });
        let deliveries = match for_everyone {
            true => to_all(&conversation, "chat:message:deleted", &event),
            false => vec![Delivery::new(user, "chat:message:deleted", event.clone())],
        };
        push(hub, app, deliveries).await;
        Ok(event)
    }

    /// A page of a conversation's messages, newest first; `next_before` pages on.
    pub async fn messages(
        &self,
        hub: &Hub,
        app: &App,
        user: &str,
        id: &str,
        page: &MessagePage,
    ) -> Result<Value, ChatError> {
        let conversation = participant_of(hub, app, id, user).await?;
        let limit = page.limit.unwrap_or(DEFAULT_PAGE);
        if limit == 0 || limit > MAX_PAGE {
            return Err(ChatError::BadRequest(format!("`limit` must be 1 to {MAX_PAGE}")));
        }
        let before = match page.before.as_deref().filter(|b| !b.is_empty()) {
            None => None,
            Some(b) => Some(in_conversation(hub, app, b, &conversation).await.map_err(|_| {
                ChatError::BadRequest(format!("`before` must be a messageId of this conversation, not `{b}`"))
            })?),
        };
        let rows = hub.store().messages(&app.spec.slug, id, user, before.map(|m| m.cursor), limit).await?;
        let next = (rows.len() == limit as usize).then(|| rows.last().map(|m| m.fields.id.clone())).flatten();
        Ok(json!({ "messages": rows.iter().map(view::message).collect::<Vec<_>>(), "next_before": next }))
    }

    /// Full-text search over the caller's conversations, newest first.
    pub async fn search(
        &self,
        hub: &Hub,
        app: &App,
        user: &str,
        query: &str,
        limit: Option<u32>,
    ) -> Result<Value, ChatError> {
        // Control characters separate words like spaces do: a NUL would end the query early
        // inside SQLite's FTS5 parser and is not text at all to PostgreSQL.
        let words: Vec<&str> =
            query.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect();
        if words.is_empty() {
            return Err(ChatError::BadRequest("`q` must hold at least one word".into()));
        }
        let query = words.join(" ");
        let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let found = hub.store().search_messages(&app.spec.slug, user, &query, limit).await?;
        Ok(json!({ "query": query, "messages": found.iter().map(view::message).collect::<Vec<_>>() }))
    }

    /// The caller's unread counts: `{total, conversations: {id: count}}`.
    pub async fn unread(&self, hub: &Hub, app: &App, user: &str) -> Result<Value, ChatError> {
        let counts = hub.store().unread_messages(&app.spec.slug, user).await?;
        let total: u64 = counts.iter().map(|(_, n)| n).sum();
        let by_conversation: serde_json::Map<String, Value> = counts.into_iter().map(|(c, n)| (c, json!(n))).collect();
        Ok(json!({ "total": total, "conversations": by_conversation }))
    }
}

/// A message and its conversation, when `user` takes part in it.
pub(crate) async fn visible_message(
    hub: &Hub,
    app: &App,
    id: &str,
    user: &str,
) -> Result<(Message, Conversation), ChatError> {
    let message = hub.store().message(&app.spec.slug, id).await?;
    let message = message.ok_or_else(|| ChatError::NotFound(format!("no message `{id}`")))?;
    let conversation = participant_of(hub, app, &message.fields.conversation, user).await?;
    Ok((message, conversation))
}

/// The message `id` if it belongs to `conversation`.
async fn in_conversation(hub: &Hub, app: &App, id: &str, conversation: &Conversation) -> Result<Message, ChatError> {
    let found = hub.store().message(&app.spec.slug, id).await?;
    found
        .filter(|m| m.fields.conversation == conversation.id)
        .ok_or_else(|| ChatError::NotFound(format!("no message `{id}` in this conversation")))
}

/// One event for every participant's devices.
pub(crate) fn to_all(conversation: &Conversation, kind: &'static str, data: &Value) -> Vec<Delivery> {
    conversation.participants.iter().map(|user| Delivery::new(user, kind, data.clone())).collect()
}

/// Text must be there (unless media is) and within the app's limit.
fn check_content(app: &App, content: &str, has_media: bool) -> Result<(), ChatError> {
    if content.trim().is_empty() && !has_media {
        return Err(ChatError::BadRequest("field `content` is empty; send text or a `mediaUrl`".into()));
    }
    let max = app.spec.chat.max_message_chars;
    let chars = content.chars().count();
    if chars > max {
        return Err(ChatError::BadRequest(format!(
            "field `content` is {chars} characters; the limit is {max} (chat.max_message_chars)"
        )));
    }
    Ok(())
}
