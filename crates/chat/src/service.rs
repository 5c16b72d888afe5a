//! Chat and presence over the socket: seed 003's client events, answered by a `reply` (when
//! the frame has a `ref`) or a `chat:error` carrying the message's `tempId`.

use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;
use switchboard_hub::{App, Caller, Hub, NodeEvent, Refusal, Service};
use switchboard_protocol::ErrorCode;

use crate::error::chat_error;
use crate::{Chat, ChatError, CreateConversation, SendMessage};

const CHAT_TYPES: [&str; 8] = [
    "chat:send",
    "chat:read",
    "chat:delivered",
    "chat:typing",
    "chat:edit",
    "chat:delete",
    "chat:conversation:create",
    "chat:conversation:join",
];

/// The chat and presence [`Service`].
pub struct ChatService {
    chat: Arc<Chat>,
}

impl ChatService {
    /// The service over the server's one [`Chat`].
    pub fn new(chat: Arc<Chat>) -> Self {
        Self { chat }
    }
}

#[async_trait]
impl Service for ChatService {
    fn owns(&self, caller: &Caller, kind: &str) -> bool {
        let features = &caller.app.spec.features;
        (features.chat && CHAT_TYPES.contains(&kind)) || (features.presence && kind == "presence:set")
    }

    async fn handle(&self, hub: &Hub, caller: &Caller, kind: &str, data: &Value) -> Result<Value, Refusal> {
        let Some(user) = caller.meta.user_id.as_deref() else {
            let refusal = Refusal::new(ErrorCode::Forbidden, "anonymous connections cannot chat; connect with a token");
            return Err(self.reshape(kind, data, refusal));
        };
        let answer = match kind {
            "presence:set" => {
                let status = text(data, "status")?;
                return self.chat.set_status(hub, &caller.app, user, status).await.map_err(plain);
            }
            _ => self.chat(hub, caller, user, kind, data).await,
        };
        answer.map_err(|e| e.refusal(data))
    }

    fn reshape(&self, kind: &str, data: &Value, refusal: Refusal) -> Refusal {
        if kind.starts_with("chat:") {
            chat_error(refusal, data)
        } else {
            refusal
        }
    }

    async fn connected(&self, hub: &Hub, caller: &Caller) {
        if caller.app.spec.features.presence {
            self.chat.connected(hub, &caller.app, &caller.meta).await;
        }
    }

    async fn disconnected(&self, hub: &Hub, caller: &Caller) {
        self.chat.typing_closed(hub, &caller.app, caller.meta.id).await;
        if caller.app.spec.features.presence {
            self.chat.disconnected(hub, &caller.app, &caller.meta);
        }
    }

    fn name(&self) -> &'static str {
        crate::presence::SERVICE
    }

    fn beat(&self, app: &App) -> Option<Value> {
        self.chat.presence.beat(app)
    }

    fn on_node(&self, hub: &Hub, app: &Arc<App>, node: &str, event: NodeEvent<'_>) {
        self.chat.presence.on_node(hub, app, node, event);
    }
}

impl ChatService {
    async fn chat(&self, hub: &Hub, caller: &Caller, user: &str, kind: &str, data: &Value) -> Result<Value, ChatError> {
        let (chat, app) = (&self.chat, &caller.app);
        match kind {
            "chat:send" => chat.send(hub, app, user, parse::<SendMessage>(data)?).await,
            "chat:edit" => chat.edit(hub, app, user, field(data, "messageId")?, field(data, "content")?).await,
            "chat:delete" => {
                let for_everyone = flag(data, "forEveryone", false)?;
                chat.delete(hub, app, user, field(data, "messageId")?, for_everyone).await
            }
            "chat:delivered" => chat.delivered(hub, app, user, field(data, "messageId")?).await,
            "chat:read" => {
                let (conversation, message) = (optional(data, "conversationId")?, optional(data, "messageId")?);
                chat.read(hub, app, user, conversation, message).await
            }
            "chat:typing" => {
                let (conversation, typing) = (field(data, "conversationId")?, flag(data, "isTyping", true)?);
                chat.typing(hub, app, user, caller.meta.id, conversation, typing).await
            }
            "chat:conversation:create" => {
                let mut request = parse::<CreateConversation>(data)?;
                request.created_by = None; // over the socket, the caller creates
                chat.create_conversation(hub, app, user, request).await
            }
            _ => chat.join(hub, app, user, field(data, "conversationId")?).await,
        }
    }
}

/// `data` as a request type; errors name the field.
fn parse<T: DeserializeOwned>(data: &Value) -> Result<T, ChatError> {
    serde_path_to_error::deserialize(data).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        ChatError::BadRequest(if path == "." {
            format!("data: {inner}")
        } else {
            format!("field `data.{path}`: {inner}")
        })
    })
}

/// A required, non-empty string field of `data`.
fn field<'d>(data: &'d Value, name: &str) -> Result<&'d str, ChatError> {
    optional(data, name)?.ok_or_else(|| ChatError::BadRequest(format!("missing field `data.{name}`")))
}

fn optional<'d>(data: &'d Value, name: &str) -> Result<Option<&'d str>, ChatError> {
    match data.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
        Some(_) => Err(ChatError::BadRequest(format!("field `data.{name}` must be a non-empty string"))),
    }
}

fn flag(data: &Value, name: &str, default: bool) -> Result<bool, ChatError> {
    match data.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ChatError::BadRequest(format!("field `data.{name}` must be true or false"))),
    }
}

/// A required string for `presence:set`, refused as a plain `error`.
fn text<'d>(data: &'d Value, name: &str) -> Result<&'d str, Refusal> {
    field(data, name).map_err(plain)
}

/// A presence error: a plain `error` frame, not `chat:error`.
fn plain(e: ChatError) -> Refusal {
    let refusal = e.refusal(&Value::Null);
    Refusal::new(refusal.code, refusal.message)
}
