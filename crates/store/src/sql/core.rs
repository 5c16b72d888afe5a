//! The [`Store`](crate::Store) trait in SQL: members, idempotency, settings and acks here;
//! history in `history.rs`.

/// Implements [`Store`](crate::Store) for `$store` (which has a `pool: sqlx::Pool<$db>`, and
/// inherent `append` for history, `ping_writes` for health and `finish_writes` for closing).
/// The invoking module must also invoke [`history_fns!`](crate::history_fns).
macro_rules! core_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::Store for $store {
            async fn add_member(&self, app: &str, channel: &str, user: &str) -> Result<bool, $crate::StoreError> {
                let done = sqlx::query(
                    "INSERT INTO members (app, channel, user_id, added_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                )
                .bind(app)
                .bind(channel)
                .bind(user)
                .bind($crate::unix_now())
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn remove_member(&self, app: &str, channel: &str, user: &str) -> Result<bool, $crate::StoreError> {
                let done = sqlx::query("DELETE FROM members WHERE app = $1 AND channel = $2 AND user_id = $3")
                    .bind(app)
                    .bind(channel)
                    .bind(user)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn members(&self, app: &str, channel: &str) -> Result<Vec<String>, $crate::StoreError> {
                let sql = "SELECT user_id FROM members WHERE app = $1 AND channel = $2 ORDER BY user_id";
                Ok(sqlx::query_scalar(sql).bind(app).bind(channel).fetch_all(&self.pool).await?)
            }

            async fn memberships(&self, app: &str, user: &str) -> Result<Vec<String>, $crate::StoreError> {
                let sql = "SELECT channel FROM members WHERE app = $1 AND user_id = $2 ORDER BY channel";
                if let Some(channels) = self.quick_strings(sql, &[app, user]) {
                    return Ok(channels);
                }
                Ok(sqlx::query_scalar(sql).bind(app).bind(user).fetch_all(&self.pool).await?)
            }

            async fn claim_idempotency(
                &self,
                app: &str,
                key: &str,
                result: &str,
                ttl: std::time::Duration,
            ) -> Result<Option<String>, $crate::StoreError> {
                let now = $crate::unix_now();
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM idempotency WHERE app = $1 AND key = $2 AND expires_at <= $3")
                    .bind(app)
                    .bind(key)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let inserted = sqlx::query(
                    "INSERT INTO idempotency (app, key, result, expires_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                )
                .bind(app)
                .bind(key)
                .bind(result)
                .bind(now + ttl.as_secs() as i64)
                .execute(&mut *tx)
                .await?;
                let existing = if inserted.rows_affected() == 1 {
                    None
                } else {
                    sqlx::query_scalar("SELECT result FROM idempotency WHERE app = $1 AND key = $2")
                        .bind(app)
                        .bind(key)
                        .fetch_optional(&mut *tx)
                        .await?
                };
                tx.commit().await?;
                Ok(existing)
            }

            async fn update_idempotency(&self, app: &str, key: &str, result: &str) -> Result<(), $crate::StoreError> {
                sqlx::query("UPDATE idempotency SET result = $1 WHERE app = $2 AND key = $3")
                    .bind(result)
                    .bind(app)
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn release_idempotency(&self, app: &str, key: &str) -> Result<(), $crate::StoreError> {
                sqlx::query("DELETE FROM idempotency WHERE app = $1 AND key = $2")
                    .bind(app)
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn purge_expired(&self) -> Result<u64, $crate::StoreError> {
                let now = $crate::unix_now();
                let keys =
                    sqlx::query("DELETE FROM idempotency WHERE expires_at <= $1").bind(now).execute(&self.pool).await?;
                let events = sqlx::query("DELETE FROM history_events WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                let now_ms = now * 1000;
                let control = sqlx::query("DELETE FROM control_log WHERE at <= $1")
                    .bind(now_ms - $crate::CONTROL_LOG_KEPT.as_millis() as i64)
                    .execute(&self.pool)
                    .await?;
                let acks = sqlx::query("DELETE FROM device_acks WHERE acked_at <= $1")
                    .bind(now_ms - $crate::ACKS_KEPT.as_millis() as i64)
                    .execute(&self.pool)
                    .await?;
                Ok(keys.rows_affected() + events.rows_affected() + control.rows_affected() + acks.rows_affected())
            }

            async fn log_control(&self, entry: &$crate::ControlEntry) -> Result<(), $crate::StoreError> {
                sqlx::query("INSERT INTO control_log (app, at, user_id, act) VALUES ($1, $2, $3, $4)")
                    .bind(&entry.app)
                    .bind(entry.at_ms as i64)
                    .bind(&entry.user)
                    .bind(&entry.act)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn control_since(
                &self,
                app: &str,
                since_ms: u64,
            ) -> Result<Vec<$crate::ControlEntry>, $crate::StoreError> {
                let rows: Vec<(i64, String, String)> =
                    sqlx::query_as("SELECT at, user_id, act FROM control_log WHERE app = $1 AND at >= $2 ORDER BY at")
                        .bind(app)
                        .bind(since_ms as i64)
                        .fetch_all(&self.pool)
                        .await?;
                let entry = |(at, user, act): (i64, String, String)| $crate::ControlEntry {
                    app: app.to_owned(),
                    at_ms: at as u64,
                    user,
                    act,
                };
                Ok(rows.into_iter().map(entry).collect())
            }

            async fn new_epoch(&self, app: Option<&str>) -> Result<(String, u64), $crate::StoreError> {
                let epoch = $crate::new_epoch();
                let done = sqlx::query("UPDATE history_streams SET epoch = $1 WHERE $2 IS NULL OR app = $2")
                    .bind(&epoch)
                    .bind(app)
                    .execute(&self.pool)
                    .await?;
                Ok((epoch, done.rows_affected()))
            }

            async fn ping(&self) -> Result<(), $crate::StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                self.ping_writes().await
            }

            async fn append_history(
                &self,
                events: &[$crate::HistoryAppend],
            ) -> Result<Vec<(String, u64)>, $crate::StoreError> {
                self.append(events).await
            }

            async fn history(
                &self,
                app: &str,
                channel: &str,
                after: u64,
                limit: u32,
            ) -> Result<$crate::HistoryPage, $crate::StoreError> {
                history_read(&self.pool, app, channel, after, limit).await
            }

            async fn history_head(&self, app: &str, channel: &str) -> Result<u64, $crate::StoreError> {
                let sql = "SELECT last_seq FROM history_streams WHERE app = $1 AND channel = $2";
                let head: Option<i64> =
                    sqlx::query_scalar(sql).bind(app).bind(channel).fetch_optional(&self.pool).await?;
                Ok(head.unwrap_or(0) as u64)
            }

            async fn save_acks(
                &self,
                app: &str,
                user: &str,
                acks: &[$crate::DeviceAck],
            ) -> Result<(), $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                for ack in acks {
                    // A late ack of an older seq in the same epoch must not move the position back.
                    sqlx::query(
                        "INSERT INTO device_acks (app, user_id, device, channel, epoch, seq, acked_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)
                         ON CONFLICT (app, user_id, device, channel) DO UPDATE
                         SET epoch = excluded.epoch, seq = excluded.seq, acked_at = excluded.acked_at
                         WHERE excluded.epoch <> device_acks.epoch OR excluded.seq > device_acks.seq",
                    )
                    .bind(app)
                    .bind(user)
                    .bind(&ack.device)
                    .bind(&ack.channel)
                    .bind(&ack.epoch)
                    .bind(ack.seq as i64)
                    .bind(ack.acked_at_ms as i64)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn acks(
                &self,
                app: &str,
                user: &str,
                device: Option<&str>,
            ) -> Result<Vec<$crate::DeviceAck>, $crate::StoreError> {
                let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
                    "SELECT device, channel, epoch, seq, acked_at FROM device_acks
                     WHERE app = $1 AND user_id = $2 AND ($3 IS NULL OR device = $3)
                     ORDER BY device, channel",
                )
                .bind(app)
                .bind(user)
                .bind(device)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map($crate::DeviceAck::from_row).collect())
            }

            async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, $crate::StoreError> {
                sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(key)
                    .bind(value)
                    .execute(&self.pool)
                    .await?;
                let sql = "SELECT value FROM settings WHERE key = $1";
                Ok(sqlx::query_scalar(sql).bind(key).fetch_one(&self.pool).await?)
            }

            async fn setting(&self, key: &str) -> Result<Option<String>, $crate::StoreError> {
                let sql = "SELECT value FROM settings WHERE key = $1";
                Ok(sqlx::query_scalar(sql).bind(key).fetch_optional(&self.pool).await?)
            }

            async fn close(&self) {
                self.finish_writes().await;
                self.pool.close().await;
            }
        }
    };
}
pub(crate) use core_store;
