//! The [`ChatStore`](crate::ChatStore) trait in SQL. Search differs per database (FTS5, or
//! PostgreSQL's full-text search), so each backend passes its own statement.

/// Messages the user at `$2` may see: not hidden from them (by deleting for themself).
pub(crate) const VISIBLE: &str =
    "NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.app = m.app AND h.message_id = m.id AND h.user_id = $2)";

/// A user's conversations with their newest visible message and unread count; `$1` app,
/// `$2` user.
/// A conversation's kind, name, creator and creation time.
pub(crate) const CONVERSATION: &str =
    "SELECT kind, name, created_by, created_at FROM conversations WHERE app = $1 AND id = $2";
/// A conversation's participants, sorted.
pub(crate) const PARTICIPANTS: &str =
    "SELECT user_id FROM participants WHERE app = $1 AND conversation_id = $2 ORDER BY user_id";

/// Stores a message; answers its cursor.
pub(crate) const INSERT_MESSAGE: &str = "INSERT INTO messages (app, id, conversation_id, sender, kind, content,
   reply_to, media_url, mentions, temp_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
 RETURNING seq";

pub(crate) fn summaries_sql() -> String {
    format!(
        "SELECT c.id, c.kind, c.name, c.created_by, c.created_at,
           (SELECT MAX(m.seq) FROM messages m
             WHERE m.app = c.app AND m.conversation_id = c.id AND {VISIBLE}) AS last_seq,
           (SELECT COUNT(*) FROM messages m
             WHERE m.app = c.app AND m.conversation_id = c.id AND m.seq > p.last_read AND m.sender <> $2
               AND m.deleted_at IS NULL AND {VISIBLE}) AS unread
         FROM conversations c
         JOIN participants p ON p.app = c.app AND p.conversation_id = c.id AND p.user_id = $2
         WHERE c.app = $1"
    )
}

/// A summary row: id, kind, name, creator, created, newest visible message, unread.
pub(crate) type SummaryRow = (String, String, Option<String>, String, i64, Option<i64>, i64);

/// Implements [`ChatStore`](crate::ChatStore) for `$store` (with a `pool: sqlx::Pool<$db>`);
/// `$search` is the search statement (`$1` app, `$2` user, `$3` query, `$4` limit) and
/// `$query` turns what the user typed into its `$3`.
macro_rules! chat_store {
    ($store:ty, $db:ty, $search:expr, $query:expr) => {
        #[async_trait::async_trait]
        impl $crate::ChatStore for $store {
            async fn create_conversation(
                &self,
                new: &$crate::NewConversation,
            ) -> Result<($crate::Conversation, bool), $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                let key = $crate::chat::direct_key(new);
                let inserted = sqlx::query(
                    "INSERT INTO conversations (app, id, kind, name, created_by, created_at, direct_key)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                )
                .bind(&new.app)
                .bind(&new.id)
                .bind(&new.kind)
                .bind(&new.name)
                .bind(&new.created_by)
                .bind(new.created_at_ms as i64)
                .bind(&key)
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() == 0 {
                    let sql = "SELECT id FROM conversations WHERE app = $1 AND direct_key = $2";
                    let id: String = sqlx::query_scalar(sql).bind(&new.app).bind(&key).fetch_one(&mut *tx).await?;
                    tx.commit().await?;
                    let existing = self.conversation(&new.app, &id).await?;
                    return Ok((existing.unwrap_or_else(|| new.clone()), false));
                }
                let mut add = sqlx::QueryBuilder::<$db>::new("INSERT INTO participants (app, conversation_id, user_id) ");
                add.push_values(&new.participants, |mut row, user| {
                    row.push_bind(&new.app).push_bind(&new.id).push_bind(user);
                });
                add.build().execute(&mut *tx).await?;
                tx.commit().await?;
                Ok((new.clone(), true))
            }

            async fn conversation(
                &self,
                app: &str,
                id: &str,
            ) -> Result<Option<$crate::Conversation>, $crate::StoreError> {
                if let Some(found) = self.quick_conversation(app, id) {
                    return Ok(found);
                }
                let found: Option<(String, Option<String>, String, i64)> = sqlx::query_as($crate::sql::chat::CONVERSATION)
                    .bind(app)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                let Some((kind, name, created_by, created)) = found else { return Ok(None) };
                let participants =
                    sqlx::query_scalar($crate::sql::chat::PARTICIPANTS).bind(app).bind(id).fetch_all(&self.pool).await?;
                Ok(Some($crate::NewConversation {
                    app: app.into(),
                    id: id.into(),
                    kind,
                    name,
                    created_by,
                    participants,
                    created_at_ms: created as u64,
                }))
            }

            async fn conversations(
                &self,
                app: &str,
                user: &str,
            ) -> Result<Vec<$crate::ConversationSummary>, $crate::StoreError> {
                let sql = $crate::sql::chat::summaries_sql();
                let rows: Vec<$crate::sql::chat::SummaryRow> =
                    sqlx::query_as(&sql).bind(app).bind(user).fetch_all(&self.pool).await?;
                // Three statements whatever the number of conversations: the summaries, every
                // participant of them, and their newest messages.
                let mut participants = participants_of(&self.pool, app, user).await?;
                let newest: Vec<i64> = rows.iter().filter_map(|row| row.5).collect();
                let mut messages = messages_at(&self.pool, app, &newest).await?;
                let mut summaries = Vec::with_capacity(rows.len());
                for (id, kind, name, created_by, created, last, unread) in rows {
                    let conversation = $crate::NewConversation {
                        app: app.into(),
                        participants: participants.remove(&id).unwrap_or_default(),
                        id,
                        kind,
                        name,
                        created_by,
                        created_at_ms: created as u64,
                    };
                    let last_message = last.and_then(|seq| messages.remove(&(seq as u64)));
                    summaries.push($crate::ConversationSummary { conversation, last_message, unread: unread as u64 });
                }
                // Most recently active first: by the last message, else by creation.
                let active = |s: &$crate::ConversationSummary| {
                    s.last_message.as_ref().map_or(s.conversation.created_at_ms, |m| m.fields.created_at_ms)
                };
                summaries.sort_by(|a, b| active(b).cmp(&active(a)));
                Ok(summaries)
            }

            async fn partners(&self, app: &str, user: &str) -> Result<Vec<String>, $crate::StoreError> {
                let sql = "SELECT DISTINCT other.user_id FROM participants me
                     JOIN participants other ON other.app = me.app AND other.conversation_id = me.conversation_id
                     WHERE me.app = $1 AND me.user_id = $2 AND other.user_id <> $2 ORDER BY other.user_id";
                if let Some(partners) = self.quick_strings(sql, &[app, user]) {
                    return Ok(partners);
                }
                Ok(sqlx::query_scalar(sql).bind(app).bind(user).fetch_all(&self.pool).await?)
            }

            async fn insert_message(&self, m: &$crate::NewMessage) -> Result<$crate::Message, $crate::StoreError> {
                if let Some(written) = self.write_message(m).await {
                    return written;
                }
                let seq: i64 = sqlx::query_scalar($crate::sql::chat::INSERT_MESSAGE)
                .bind(&m.app)
                .bind(&m.id)
                .bind(&m.conversation)
                .bind(&m.sender)
                .bind(&m.kind)
                .bind(&m.content)
                .bind(&m.reply_to)
                .bind(&m.media_url)
                .bind(&m.mentions)
                .bind(&m.temp_id)
                .bind(m.created_at_ms as i64)
                .fetch_one(&self.pool)
                .await?;
                Ok($crate::Message { fields: m.clone(), cursor: seq as u64, edited_at_ms: None, deleted_at_ms: None })
            }

            async fn message(&self, app: &str, id: &str) -> Result<Option<$crate::Message>, $crate::StoreError> {
                let sql = format!("SELECT {} FROM messages m WHERE m.app = $1 AND m.id = $2", $crate::chat::MESSAGE_COLUMNS);
                let row: Option<$crate::chat::MessageRow> =
                    sqlx::query_as(&sql).bind(app).bind(id).fetch_optional(&self.pool).await?;
                Ok(row.map(|row| $crate::chat::message(app, row)))
            }

            async fn messages(
                &self,
                app: &str,
                conversation: &str,
                user: &str,
                before: Option<u64>,
                limit: u32,
            ) -> Result<Vec<$crate::Message>, $crate::StoreError> {
                let sql = format!(
                    "SELECT {} FROM messages m WHERE m.app = $1 AND {} AND m.conversation_id = $3 AND m.seq < $4
                     ORDER BY m.seq DESC LIMIT $5",
                    $crate::chat::MESSAGE_COLUMNS,
                    $crate::sql::chat::VISIBLE
                );
                let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
                let rows: Vec<$crate::chat::MessageRow> = sqlx::query_as(&sql)
                    .bind(app)
                    .bind(user)
                    .bind(conversation)
                    .bind(before)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.into_iter().map(|row| $crate::chat::message(app, row)).collect())
            }

            async fn edit_message(
                &self,
                app: &str,
                id: &str,
                content: &str,
                at_ms: u64,
            ) -> Result<Option<$crate::Message>, $crate::StoreError> {
                sqlx::query("UPDATE messages SET content = $1, edited_at = $2 WHERE app = $3 AND id = $4")
                    .bind(content)
                    .bind(at_ms as i64)
                    .bind(app)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                self.message(app, id).await
            }

            async fn delete_message(
                &self,
                app: &str,
                id: &str,
                user: &str,
                for_everyone: bool,
                at_ms: u64,
            ) -> Result<(), $crate::StoreError> {
                if for_everyone {
                    let sql = "UPDATE messages SET content = '', media_url = NULL, deleted_at = $1 WHERE app = $2 AND id = $3";
                    sqlx::query(sql).bind(at_ms as i64).bind(app).bind(id).execute(&self.pool).await?;
                } else {
                    let sql = "INSERT INTO hidden_messages (app, message_id, user_id) VALUES ($1, $2, $3)
                               ON CONFLICT DO NOTHING";
                    sqlx::query(sql).bind(app).bind(id).bind(user).execute(&self.pool).await?;
                }
                Ok(())
            }

            async fn mark_delivered(&self, app: &str, id: &str, user: &str, at_ms: u64) -> Result<u64, $crate::StoreError> {
                sqlx::query(
                    "INSERT INTO deliveries (app, message_id, user_id, delivered_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                )
                .bind(app)
                .bind(id)
                .bind(user)
                .bind(at_ms as i64)
                .execute(&self.pool)
                .await?;
                let sql = "SELECT delivered_at FROM deliveries WHERE app = $1 AND message_id = $2 AND user_id = $3";
                let at: i64 = sqlx::query_scalar(sql).bind(app).bind(id).bind(user).fetch_one(&self.pool).await?;
                Ok(at as u64)
            }

            async fn mark_read(
                &self,
                app: &str,
                conversation: &str,
                user: &str,
                cursor: u64,
            ) -> Result<u64, $crate::StoreError> {
                let mark: Option<i64> = sqlx::query_scalar(
                    "UPDATE participants SET last_read = CASE WHEN last_read < $1 THEN $1 ELSE last_read END
                     WHERE app = $2 AND conversation_id = $3 AND user_id = $4 RETURNING last_read",
                )
                .bind(cursor.min(i64::MAX as u64) as i64)
                .bind(app)
                .bind(conversation)
                .bind(user)
                .fetch_optional(&self.pool)
                .await?;
                Ok(mark.unwrap_or_default() as u64)
            }

            async fn unread_messages(&self, app: &str, user: &str) -> Result<Vec<(String, u64)>, $crate::StoreError> {
                let sql = format!(
                    "SELECT p.conversation_id, COUNT(m.seq) FROM participants p
                     JOIN messages m ON m.app = p.app AND m.conversation_id = p.conversation_id
                       AND m.seq > p.last_read AND m.sender <> p.user_id AND m.deleted_at IS NULL
                     WHERE p.app = $1 AND p.user_id = $2 AND {}
                     GROUP BY p.conversation_id ORDER BY p.conversation_id",
                    $crate::sql::chat::VISIBLE
                );
                let rows: Vec<(String, i64)> = sqlx::query_as(&sql).bind(app).bind(user).fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map(|(c, n)| (c, n as u64)).collect())
            }

            async fn search_messages(
                &self,
                app: &str,
                user: &str,
                query: &str,
                limit: u32,
            ) -> Result<Vec<$crate::Message>, $crate::StoreError> {
                let words = ($query)(query);
                let sql = $search;
                let rows: Vec<$crate::chat::MessageRow> = sqlx::query_as(&sql)
                    .bind(app)
                    .bind(user)
                    .bind(words)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.into_iter().map(|row| $crate::chat::message(app, row)).collect())
            }

            async fn set_last_seen(&self, app: &str, user: &str, at_ms: u64) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "INSERT INTO last_seen (app, user_id, at) VALUES ($1, $2, $3)
                     ON CONFLICT (app, user_id) DO UPDATE SET at = excluded.at",
                )
                .bind(app)
                .bind(user)
                .bind(at_ms as i64)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn last_seen(&self, app: &str, users: &[String]) -> Result<Vec<(String, u64)>, $crate::StoreError> {
                if users.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query = sqlx::QueryBuilder::<$db>::new("SELECT user_id, at FROM last_seen WHERE app = ");
                query.push_bind(app).push(" AND user_id IN (");
                let mut list = query.separated(", ");
                for user in users {
                    list.push_bind(user);
                }
                query.push(") ORDER BY user_id");
                let rows: Vec<(String, i64)> = query.build_query_as().fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map(|(u, at)| (u, at as u64)).collect())
            }
        }

        /// The participants of each of `user`'s conversations, sorted, by conversation.
        async fn participants_of(
            pool: &sqlx::Pool<$db>,
            app: &str,
            user: &str,
        ) -> Result<std::collections::HashMap<String, Vec<String>>, $crate::StoreError> {
            let sql = "SELECT p.conversation_id, p.user_id FROM participants me
                 JOIN participants p ON p.app = me.app AND p.conversation_id = me.conversation_id
                 WHERE me.app = $1 AND me.user_id = $2 ORDER BY p.conversation_id, p.user_id";
            let pairs: Vec<(String, String)> = sqlx::query_as(sql).bind(app).bind(user).fetch_all(pool).await?;
            let mut by_conversation = std::collections::HashMap::<String, Vec<String>>::new();
            for (conversation, participant) in pairs {
                by_conversation.entry(conversation).or_default().push(participant);
            }
            Ok(by_conversation)
        }

        /// The messages with cursors `seqs`, by cursor.
        async fn messages_at(
            pool: &sqlx::Pool<$db>,
            app: &str,
            seqs: &[i64],
        ) -> Result<std::collections::HashMap<u64, $crate::Message>, $crate::StoreError> {
            let mut found = std::collections::HashMap::with_capacity(seqs.len());
            // In chunks: a statement takes a bounded number of parameters.
            for chunk in seqs.chunks(1000) {
                let select = format!("SELECT {} FROM messages m WHERE m.app = ", $crate::chat::MESSAGE_COLUMNS);
                let mut query = sqlx::QueryBuilder::<$db>::new(select);
                query.push_bind(app).push(" AND m.seq IN (");
                let mut list = query.separated(", ");
                for seq in chunk {
                    list.push_bind(*seq);
                }
                query.push(")");
                let rows: Vec<$crate::chat::MessageRow> = query.build_query_as().fetch_all(pool).await?;
                found.extend(rows.into_iter().map(|row| $crate::chat::message(app, row)).map(|m| (m.cursor, m)));
            }
            Ok(found)
        }
    };
}
pub(crate) use chat_store;

/// The search statement for SQLite (FTS5).
pub(crate) fn sqlite_search() -> String {
    format!(
        "SELECT {} FROM messages_fts f JOIN messages m ON m.seq = f.rowid
         JOIN participants p ON p.app = m.app AND p.conversation_id = m.conversation_id AND p.user_id = $2
         WHERE messages_fts MATCH $3 AND m.app = $1 AND m.deleted_at IS NULL AND {VISIBLE}
         ORDER BY m.seq DESC LIMIT $4",
        crate::chat::MESSAGE_COLUMNS
    )
}

/// The search statement for PostgreSQL (`simple` text search: no stemming, like FTS5's).
pub(crate) fn postgres_search() -> String {
    format!(
        "SELECT {} FROM messages m
         JOIN participants p ON p.app = m.app AND p.conversation_id = m.conversation_id AND p.user_id = $2
         WHERE to_tsvector('simple', m.content) @@ plainto_tsquery('simple', $3) AND m.app = $1
           AND m.deleted_at IS NULL AND {VISIBLE}
         ORDER BY m.seq DESC LIMIT $4",
        crate::chat::MESSAGE_COLUMNS
    )
}
