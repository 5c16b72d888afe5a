//! The inbox's and chat's hot paths: their writes on the history writer's connection, and a
//! chat message's read of its conversation on the caller's thread (reader.rs).
//!
//! Through the sqlx pool, a notification was three statements handed to a worker thread and
//! back one by one, and its connection then took turns with the history writer at SQLite's
//! write lock, waiting with SQLite's coarse sleeps: a notification cost 15 times a durable
//! publish (docs/BENCHMARKS.md, changes 12 and 15). On the writer's thread it is one hop each
//! way, prepared statements in one transaction, and no lock to wait for. The SQL is the
//! pool's (`crate::sql`): SQLite reads `$1` as the first parameter, as PostgreSQL does.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::reader;
use super::SqliteStore;
use crate::sql::chat::{CONVERSATION, INSERT_MESSAGE, PARTICIPANTS};
use crate::sql::inbox::{keep_newest_sql, INSERT_NOTIFICATION, NOTIFICATIONS, UNREAD_NOTIFICATIONS};
use crate::{Conversation, Message, NewMessage, NewNotification, StoreError};

impl SqliteStore {
    /// Stores a notification, keeping the user's newest `keep`; their unread count. `None` on
    /// an in-memory database, whose pool's one connection writes.
    pub(crate) async fn write_notification(&self, n: &NewNotification, keep: u32) -> Option<Result<u64, StoreError>> {
        let writer = self.writer.as_ref()?;
        let n = n.clone();
        Some(writer.run(move |connection| insert_notification(connection, &n, keep)).await)
    }

    /// A conversation and its participants, read on this thread (reader.rs); `None` when
    /// that could not be done at once, and the pool reads it.
    pub(crate) fn quick_conversation(&self, app: &str, id: &str) -> Option<Option<Conversation>> {
        self.reader.as_ref()?.read(|connection| conversation(connection, app, id))
    }

    /// Stores a message. `None` on an in-memory database.
    pub(crate) async fn write_message(&self, m: &NewMessage) -> Option<Result<Message, StoreError>> {
        let writer = self.writer.as_ref()?;
        let fields = m.clone();
        let stored = writer.run(move |connection| insert_message(connection, fields)).await;
        Some(stored)
    }
}

fn insert_notification(connection: &mut Connection, n: &NewNotification, keep: u32) -> rusqlite::Result<u64> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.prepare_cached(INSERT_NOTIFICATION)?.execute(params![
        n.app,
        n.id,
        n.user,
        n.kind,
        n.title,
        n.message,
        n.data,
        n.created_at_ms as i64
    ])?;
    tx.prepare_cached(&keep_newest_sql(NOTIFICATIONS))?.execute(params![n.app, n.user, i64::from(keep)])?;
    let unread: i64 = tx.prepare_cached(UNREAD_NOTIFICATIONS)?.query_row(params![n.app, n.user], |row| row.get(0))?;
    tx.commit()?;
    Ok(unread as u64)
}

fn insert_message(connection: &mut Connection, m: NewMessage) -> rusqlite::Result<Message> {
    let seq: i64 = connection.prepare_cached(INSERT_MESSAGE)?.query_row(
        params![
            m.app,
            m.id,
            m.conversation,
            m.sender,
            m.kind,
            m.content,
            m.reply_to,
            m.media_url,
            m.mentions,
            m.temp_id,
            m.created_at_ms as i64
        ],
        |row| row.get(0),
    )?;
    Ok(Message { fields: m, cursor: seq as u64, edited_at_ms: None, deleted_at_ms: None })
}

fn conversation(connection: &Connection, app: &str, id: &str) -> rusqlite::Result<Option<Conversation>> {
    let found = connection.prepare_cached(CONVERSATION)?.query_row(params![app, id], |row| {
        Ok((row.get::<_, String>(0)?, row.get(1)?, row.get::<_, String>(2)?, row.get::<_, i64>(3)?))
    });
    let Some((kind, name, created_by, created)) = found.optional()? else { return Ok(None) };
    let participants = reader::strings(connection, PARTICIPANTS, &[app, id])?;
    let (app, id) = (app.to_owned(), id.to_owned());
    Ok(Some(Conversation { app, id, kind, name, created_by, participants, created_at_ms: created as u64 }))
}
