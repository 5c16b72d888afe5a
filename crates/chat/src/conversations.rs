//! Conversations: direct (one per pair) and group (with a name). Everyone in one hears of it
//! by `chat:conversation:created` on their own devices.

use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_hub::{unix_ms, App, Hub};
use switchboard_store::{Conversation, NewConversation};

use crate::{check_user, new_id, push, view, Chat, ChatError, Delivery};

/// Most participants one conversation may have.
const MAX_PARTICIPANTS: usize = 500;
/// Longest group name, in characters.
const MAX_NAME: usize = 200;

/// `chat:conversation:create` and `POST /conversations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateConversation {
    /// `direct` or `group`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The users in it; the creator joins whether listed or not.
    pub participants: Vec<String>,
    /// A group's name (required for groups).
    #[serde(default)]
    pub name: Option<String>,
    /// Who creates it: the server API names them; over the socket it is the caller.
    #[serde(default)]
    pub created_by: Option<String>,
}

impl Chat {
    /// Creates a conversation (or finds the pair's direct one) and tells every participant
    /// of a new one. Answers the conversation with `created`.
    pub async fn create_conversation(
        &self,
        hub: &Hub,
        app: &App,
        creator: &str,
        req: CreateConversation,
    ) -> Result<Value, ChatError> {
        let new = checked(app, creator, req)?;
        let (conversation, created) = hub.store().create_conversation(&new).await?;
        let mut answer = view::conversation(&conversation);
        if created {
            let deliveries = conversation
                .participants
                .iter()
                .map(|user| Delivery::new(user, "chat:conversation:created", answer.clone()))
                .collect();
            push(hub, app, deliveries).await;
        }
        answer["created"] = json!(created);
        Ok(answer)
    }

    /// `chat:conversation:join`: a participant (re)opens a conversation. Participants already
    /// receive its events, so joining only answers its state, with the caller's unread count.
    pub async fn join(&self, hub: &Hub, app: &App, user: &str, id: &str) -> Result<Value, ChatError> {
        let conversation = participant_of(hub, app, id, user).await?;
        let unread = hub.store().unread_messages(&app.spec.slug, user).await?;
        let mut answer = view::conversation(&conversation);
        answer["unread"] = json!(unread.iter().find(|(c, _)| *c == conversation.id).map_or(0, |(_, n)| *n));
        Ok(answer)
    }

    /// `GET /me/conversations`: most recently active first, with the last message and unread
    /// count of each.
    pub async fn conversations(&self, hub: &Hub, app: &App, user: &str) -> Result<Value, ChatError> {
        let summaries = hub.store().conversations(&app.spec.slug, user).await?;
        Ok(json!({ "conversations": summaries.iter().map(view::summary).collect::<Vec<_>>() }))
    }
}

/// The conversation `id` if `user` is in it: unknown is `not_found`, someone else's is
/// `forbidden`.
pub(crate) async fn participant_of(hub: &Hub, app: &App, id: &str, user: &str) -> Result<Conversation, ChatError> {
    let found = hub.store().conversation(&app.spec.slug, id).await?;
    let conversation = found.ok_or_else(|| ChatError::NotFound(format!("no conversation `{id}`")))?;
    if !conversation.participants.iter().any(|p| p == user) {
        return Err(ChatError::Forbidden(format!("you are not a participant of conversation `{id}`")));
    }
    Ok(conversation)
}

/// The conversation to store, once every rule holds.
fn checked(app: &App, creator: &str, req: CreateConversation) -> Result<NewConversation, ChatError> {
    check_user("created_by", creator)?;
    let mut participants = req.participants;
    for user in &participants {
        check_user("participants", user)?;
    }
    participants.push(creator.to_owned());
    participants.sort();
    participants.dedup();
    if participants.len() > MAX_PARTICIPANTS {
        return Err(ChatError::BadRequest(format!("field `participants`: at most {MAX_PARTICIPANTS} users")));
    }
    let name = req.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    match req.kind.as_str() {
        "direct" if participants.len() != 2 => Err(ChatError::BadRequest(
            "field `participants`: a direct conversation is between the creator and one other user".into(),
        )),
        "group" if name.is_none() => {
            Err(ChatError::BadRequest("field `name`: a group conversation needs a name".into()))
        }
        "group" if name.as_ref().is_some_and(|n| n.chars().count() > MAX_NAME) => {
            Err(ChatError::BadRequest(format!("field `name`: at most {MAX_NAME} characters")))
        }
        "direct" | "group" => Ok(NewConversation {
            app: app.spec.slug.clone(),
            id: new_id(),
            name: if req.kind == "group" { name } else { None },
            kind: req.kind,
            created_by: creator.to_owned(),
            participants,
            created_at_ms: unix_ms(),
        }),
        other => Err(ChatError::BadRequest(format!("field `type`: `{other}` is neither `direct` nor `group`"))),
    }
}
