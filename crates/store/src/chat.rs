//! Conversations, messages, receipts and last-seen times: the rows behind chat and
//! presence (seed 003).
//!
//! A direct conversation is unique per pair of users (its `direct_key`); a group one has a
//! name. Messages are numbered per database (`cursor`), which orders a conversation and pages
//! it. A participant's read mark is the newest cursor they read: unread counts are the others'
//! messages above it. Deleting for oneself hides a message from one user; deleting for
//! everyone blanks it for all.

use async_trait::async_trait;

use crate::StoreError;

/// A conversation to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConversation {
    /// The app.
    pub app: String,
    /// Its public id.
    pub id: String,
    /// `direct` or `group`.
    pub kind: String,
    /// A group's name.
    pub name: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// Everyone in it, the creator too; sorted, no repeats.
    pub participants: Vec<String>,
    /// Unix milliseconds.
    pub created_at_ms: u64,
}

/// A stored conversation: the fields it was created with.
pub type Conversation = NewConversation;

/// A message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The app.
    pub app: String,
    /// Its public id.
    pub id: String,
    /// The conversation.
    pub conversation: String,
    /// The author.
    pub sender: String,
    /// `text`, `image`, `file`, ...
    pub kind: String,
    /// The text (empty when deleted for everyone).
    pub content: String,
    /// The message this one answers.
    pub reply_to: Option<String>,
    /// A media link.
    pub media_url: Option<String>,
    /// Mentioned users, as a JSON array.
    pub mentions: String,
    /// The sender's own id for it, echoed back.
    pub temp_id: Option<String>,
    /// Unix milliseconds.
    pub created_at_ms: u64,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The fields it was sent with (content as last edited).
    pub fields: NewMessage,
    /// Its place among all messages: larger is newer.
    pub cursor: u64,
    /// When its author last edited it.
    pub edited_at_ms: Option<u64>,
    /// When its author deleted it for everyone.
    pub deleted_at_ms: Option<u64>,
}

/// One of a user's conversations, as the first load shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    /// The conversation.
    pub conversation: Conversation,
    /// Its newest message the user can see.
    pub last_message: Option<Message>,
    /// Others' messages above the user's read mark.
    pub unread: u64,
}

/// The chat and presence part of the store.
#[async_trait]
pub trait ChatStore: Send + Sync {
    /// Creates a conversation. A direct one that exists for the same pair is returned
    /// instead, with `false`.
    async fn create_conversation(&self, new: &NewConversation) -> Result<(Conversation, bool), StoreError>;
    /// One conversation with its participants.
    async fn conversation(&self, app: &str, id: &str) -> Result<Option<Conversation>, StoreError>;
    /// A user's conversations, most recently active first, with their last message and
    /// unread count.
    async fn conversations(&self, app: &str, user: &str) -> Result<Vec<ConversationSummary>, StoreError>;
    /// Everyone who shares a conversation with `user`, sorted.
    async fn partners(&self, app: &str, user: &str) -> Result<Vec<String>, StoreError>;
    /// Stores a message.
    async fn insert_message(&self, new: &NewMessage) -> Result<Message, StoreError>;
    /// One message, whoever asks.
    async fn message(&self, app: &str, id: &str) -> Result<Option<Message>, StoreError>;
    /// A conversation's messages `user` can see, newest first, older than `before`.
    async fn messages(
        &self,
        app: &str,
        conversation: &str,
        user: &str,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// Replaces a message's content; `None` when there is no such message.
    async fn edit_message(&self, app: &str, id: &str, content: &str, at_ms: u64)
        -> Result<Option<Message>, StoreError>;
    /// Blanks a message for everyone (`for_everyone`) or hides it from `user` only.
    async fn delete_message(
        &self,
        app: &str,
        id: &str,
        user: &str,
        for_everyone: bool,
        at_ms: u64,
    ) -> Result<(), StoreError>;
    /// Records that `user` received a message; the time of the first record.
    async fn mark_delivered(&self, app: &str, id: &str, user: &str, at_ms: u64) -> Result<u64, StoreError>;
    /// Moves `user`'s read mark in a conversation up to `cursor` (never back); returns the mark.
    async fn mark_read(&self, app: &str, conversation: &str, user: &str, cursor: u64) -> Result<u64, StoreError>;
    /// `user`'s unread count per conversation that has any, sorted by conversation.
    async fn unread_messages(&self, app: &str, user: &str) -> Result<Vec<(String, u64)>, StoreError>;
    /// Messages `user` can see whose text matches every word of `query`, newest first.
    async fn search_messages(&self, app: &str, user: &str, query: &str, limit: u32)
        -> Result<Vec<Message>, StoreError>;
    /// Records when a user was last online.
    async fn set_last_seen(&self, app: &str, user: &str, at_ms: u64) -> Result<(), StoreError>;
    /// The last-seen times of those of `users` that have one.
    async fn last_seen(&self, app: &str, users: &[String]) -> Result<Vec<(String, u64)>, StoreError>;
}

/// The key that makes a direct conversation unique: its two users, sorted.
pub(crate) fn direct_key(new: &NewConversation) -> Option<String> {
    (new.kind == "direct").then(|| new.participants.join("\n"))
}

/// A message as both databases return it.
pub(crate) type MessageRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
);

/// The columns of a [`MessageRow`], in order, for a table aliased `m`.
pub(crate) const MESSAGE_COLUMNS: &str = "m.seq, m.id, m.conversation_id, m.sender, m.kind, m.content, m.reply_to, \
     m.media_url, m.mentions, m.temp_id, m.created_at, m.edited_at, m.deleted_at";

pub(crate) fn message(app: &str, row: MessageRow) -> Message {
    let (
        cursor,
        id,
        conversation,
        sender,
        kind,
        content,
        reply_to,
        media_url,
        mentions,
        temp_id,
        created,
        edited,
        deleted,
    ) = row;
    let fields = NewMessage {
        app: app.into(),
        id,
        conversation,
        sender,
        kind,
        content,
        reply_to,
        media_url,
        mentions,
        temp_id,
        created_at_ms: created as u64,
    };
    Message {
        fields,
        cursor: cursor as u64,
        edited_at_ms: edited.map(|e| e as u64),
        deleted_at_ms: deleted.map(|d| d as u64),
    }
}

/// A search for every word of `query`, as FTS5 reads it: each word a quoted phrase, so no
/// character a user types is an operator.
pub(crate) fn fts5_query(query: &str) -> String {
    query.split_whitespace().map(|w| format!("\"{}\"", w.replace('"', "\"\""))).collect::<Vec<_>>().join(" ")
}
