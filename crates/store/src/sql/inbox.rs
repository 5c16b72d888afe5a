//! The [`InboxStore`](crate::InboxStore) trait in SQL.

use crate::inbox::Page;

/// The columns of a [`NotificationRow`](crate::inbox::NotificationRow), in order.
pub(crate) const NOTIFICATION_COLUMNS: &str = "seq, id, user_id, kind, title, message, data, created_at, read_at";

/// An inbox table and the column naming each row's owner: they share the retention SQL.
pub(crate) const NOTIFICATIONS: (&str, &str) = ("notifications", "user_id");
/// See [`NOTIFICATIONS`].
pub(crate) const ALERTS: (&str, &str) = ("alerts", "group_id");

/// Stores a notification.
pub(crate) const INSERT_NOTIFICATION: &str = "INSERT INTO notifications (app, id, user_id, kind, title, message,
   data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// A user's unread notifications.
pub(crate) const UNREAD_NOTIFICATIONS: &str =
    "SELECT COUNT(*) FROM notifications WHERE app = $1 AND user_id = $2 AND read_at IS NULL";

/// Deletes an owner's rows beyond the newest `$3`, in an inbox table (`$1` app, `$2` owner).
pub(crate) fn keep_newest_sql((table, owner): (&str, &str)) -> String {
    format!(
        "DELETE FROM {table} WHERE app = $1 AND {owner} = $2 AND seq <= (
           SELECT seq FROM {table} WHERE app = $1 AND {owner} = $2 ORDER BY seq DESC LIMIT 1 OFFSET $3)"
    )
}

/// Whether a page asks only for pending rows, as the database compares it.
pub(crate) fn pending(page: Page) -> i64 {
    i64::from(page.pending_only)
}

/// Implements [`InboxStore`](crate::InboxStore) for `$store` (which has a `pool: sqlx::Pool<$db>`).
macro_rules! inbox_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::InboxStore for $store {
            async fn insert_notification(
                &self,
                n: &$crate::NewNotification,
                keep: u32,
            ) -> Result<u64, $crate::StoreError> {
                if let Some(written) = self.write_notification(n, keep).await {
                    return written;
                }
                let mut tx = self.pool.begin().await?;
                sqlx::query($crate::sql::inbox::INSERT_NOTIFICATION)
                    .bind(&n.app)
                    .bind(&n.id)
                    .bind(&n.user)
                    .bind(&n.kind)
                    .bind(&n.title)
                    .bind(&n.message)
                    .bind(&n.data)
                    .bind(n.created_at_ms as i64)
                    .execute(&mut *tx)
                    .await?;
                keep_newest(&mut *tx, $crate::sql::inbox::NOTIFICATIONS, &n.app, &n.user, keep).await?;
                let unread = unread_notifications(&mut *tx, &n.app, &n.user).await?;
                tx.commit().await?;
                Ok(unread)
            }

            async fn notifications(
                &self,
                app: &str,
                user: &str,
                page: $crate::inbox::Page,
            ) -> Result<Vec<$crate::Notification>, $crate::StoreError> {
                let sql = format!(
                    "SELECT {} FROM notifications
                     WHERE app = $1 AND user_id = $2 AND seq < $3 AND ($4 = 0 OR read_at IS NULL)
                     ORDER BY seq DESC LIMIT $5",
                    $crate::sql::inbox::NOTIFICATION_COLUMNS
                );
                let rows: Vec<$crate::inbox::NotificationRow> = sqlx::query_as(&sql)
                    .bind(app)
                    .bind(user)
                    .bind($crate::inbox::before(page))
                    .bind($crate::sql::inbox::pending(page))
                    .bind($crate::inbox::limit(page))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.into_iter().map(|row| $crate::inbox::notification(app, row)).collect())
            }

            async fn unread_notifications(&self, app: &str, user: &str) -> Result<u64, $crate::StoreError> {
                let mut conn = self.pool.acquire().await?;
                unread_notifications(&mut *conn, app, user).await
            }

            async fn read_notification(
                &self,
                app: &str,
                user: &str,
                id: &str,
                at_ms: u64,
            ) -> Result<Option<$crate::ReadMark>, $crate::StoreError> {
                // Whether this call read it is what changed, not the time: two reads can share
                // a millisecond.
                let marked: Option<i64> = sqlx::query_scalar(
                    "UPDATE notifications SET read_at = $1
                     WHERE app = $2 AND user_id = $3 AND id = $4 AND read_at IS NULL RETURNING read_at",
                )
                .bind(at_ms as i64)
                .bind(app)
                .bind(user)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(at) = marked {
                    return Ok(Some($crate::ReadMark { at_ms: at as u64, first: true }));
                }
                let sql = "SELECT read_at FROM notifications WHERE app = $1 AND user_id = $2 AND id = $3";
                let earlier: Option<Option<i64>> =
                    sqlx::query_scalar(sql).bind(app).bind(user).bind(id).fetch_optional(&self.pool).await?;
                Ok(earlier.flatten().map(|at| $crate::ReadMark { at_ms: at as u64, first: false }))
            }

            async fn read_all_notifications(
                &self,
                app: &str,
                user: &str,
                at_ms: u64,
            ) -> Result<u64, $crate::StoreError> {
                let done = sqlx::query(
                    "UPDATE notifications SET read_at = $1 WHERE app = $2 AND user_id = $3 AND read_at IS NULL",
                )
                .bind(at_ms as i64)
                .bind(app)
                .bind(user)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn delete_notification(&self, app: &str, user: &str, id: &str) -> Result<bool, $crate::StoreError> {
                let done = sqlx::query("DELETE FROM notifications WHERE app = $1 AND user_id = $2 AND id = $3")
                    .bind(app)
                    .bind(user)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_alert(&self, a: &$crate::NewAlert, keep: u32) -> Result<u64, $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO alerts (app, id, group_id, kind, title, message, severity, data, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&a.app)
                .bind(&a.id)
                .bind(&a.group)
                .bind(&a.kind)
                .bind(&a.title)
                .bind(&a.message)
                .bind(&a.severity)
                .bind(&a.data)
                .bind(a.created_at_ms as i64)
                .execute(&mut *tx)
                .await?;
                keep_newest(&mut *tx, $crate::sql::inbox::ALERTS, &a.app, &a.group, keep).await?;
                let count = group_alerts(&mut *tx, &a.app, &a.group).await?;
                tx.commit().await?;
                Ok(count)
            }

            async fn alert(&self, app: &str, id: &str) -> Result<Option<$crate::Alert>, $crate::StoreError> {
                let row: Option<$crate::inbox::AlertRow> = sqlx::query_as(
                    "SELECT seq, id, group_id, kind, title, message, severity, data, created_at,
                            CAST(NULL AS BIGINT)
                     FROM alerts WHERE app = $1 AND id = $2",
                )
                .bind(app)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|row| $crate::inbox::alert(app, row)))
            }

            async fn alerts(
                &self,
                app: &str,
                user: &str,
                groups: &[String],
                page: $crate::inbox::Page,
            ) -> Result<Vec<$crate::Alert>, $crate::StoreError> {
                if groups.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "SELECT a.seq, a.id, a.group_id, a.kind, a.title, a.message, a.severity, a.data,
                            a.created_at, k.acked_at
                     FROM alerts a LEFT JOIN alert_acks k
                       ON k.app = a.app AND k.alert_id = a.id AND k.user_id = ",
                );
                query.push_bind(user).push(" WHERE a.app = ").push_bind(app).push(" AND a.group_id IN (");
                let mut list = query.separated(", ");
                for group in groups {
                    list.push_bind(group);
                }
                query.push(") AND a.seq < ").push_bind($crate::inbox::before(page));
                if page.pending_only {
                    query.push(" AND k.acked_at IS NULL");
                }
                query.push(" ORDER BY a.seq DESC LIMIT ").push_bind($crate::inbox::limit(page));
                let rows: Vec<$crate::inbox::AlertRow> = query.build_query_as().fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map(|row| $crate::inbox::alert(app, row)).collect())
            }

            async fn unacknowledged_alerts(
                &self,
                app: &str,
                user: &str,
                groups: &[String],
            ) -> Result<u64, $crate::StoreError> {
                if groups.is_empty() {
                    return Ok(0);
                }
                let mut query = sqlx::QueryBuilder::<$db>::new("SELECT COUNT(*) FROM alerts a WHERE a.app = ");
                query.push_bind(app).push(" AND a.group_id IN (");
                let mut list = query.separated(", ");
                for group in groups {
                    list.push_bind(group);
                }
                query.push(
                    ") AND NOT EXISTS (SELECT 1 FROM alert_acks k
                       WHERE k.app = a.app AND k.alert_id = a.id AND k.user_id = ",
                );
                query.push_bind(user).push(")");
                let count: i64 = query.build_query_scalar().fetch_one(&self.pool).await?;
                Ok(count as u64)
            }

            async fn group_alerts(&self, app: &str, group: &str) -> Result<u64, $crate::StoreError> {
                let mut conn = self.pool.acquire().await?;
                group_alerts(&mut *conn, app, group).await
            }

            async fn acknowledge_alert(
                &self,
                app: &str,
                user: &str,
                id: &str,
                at_ms: u64,
            ) -> Result<Option<u64>, $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO alert_acks (app, alert_id, user_id, acked_at)
                     SELECT app, id, $1, $2 FROM alerts WHERE app = $3 AND id = $4
                     ON CONFLICT DO NOTHING",
                )
                .bind(user)
                .bind(at_ms as i64)
                .bind(app)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                let acked: Option<i64> = sqlx::query_scalar(
                    "SELECT acked_at FROM alert_acks WHERE app = $1 AND alert_id = $2 AND user_id = $3",
                )
                .bind(app)
                .bind(id)
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(acked.map(|a| a as u64))
            }

            async fn delete_alert(&self, app: &str, id: &str) -> Result<Option<String>, $crate::StoreError> {
                let sql = "DELETE FROM alerts WHERE app = $1 AND id = $2 RETURNING group_id";
                Ok(sqlx::query_scalar(sql).bind(app).bind(id).fetch_optional(&self.pool).await?)
            }

            async fn purge_inbox(
                &self,
                app: &str,
                notifications: $crate::Retention,
                alerts: $crate::Retention,
                now_ms: u64,
            ) -> Result<u64, $crate::StoreError> {
                let mut gone = 0;
                let kinds = [($crate::sql::inbox::NOTIFICATIONS, notifications), ($crate::sql::inbox::ALERTS, alerts)];
                for ((table, owner), keep) in kinds {
                    let old = format!("DELETE FROM {table} WHERE app = $1 AND created_at < $2");
                    let cutoff = $crate::inbox::cutoff(now_ms, keep.max_age);
                    gone += sqlx::query(&old).bind(app).bind(cutoff).execute(&self.pool).await?.rows_affected();
                    let extra = format!(
                        "DELETE FROM {table} WHERE seq IN (SELECT seq FROM (
                           SELECT seq, ROW_NUMBER() OVER (PARTITION BY {owner} ORDER BY seq DESC) AS n
                           FROM {table} WHERE app = $1) AS ranked WHERE n > $2)"
                    );
                    let max = i64::from(keep.max_count);
                    gone += sqlx::query(&extra).bind(app).bind(max).execute(&self.pool).await?.rows_affected();
                }
                Ok(gone)
            }
        }

        /// Deletes an owner's rows beyond the newest `keep`.
        async fn keep_newest(
            conn: &mut <$db as sqlx::Database>::Connection,
            (table, owner): (&str, &str),
            app: &str,
            who: &str,
            keep: u32,
        ) -> Result<(), $crate::StoreError> {
            let sql = $crate::sql::inbox::keep_newest_sql((table, owner));
            sqlx::query(&sql).bind(app).bind(who).bind(i64::from(keep)).execute(conn).await?;
            Ok(())
        }

        async fn unread_notifications(
            conn: &mut <$db as sqlx::Database>::Connection,
            app: &str,
            user: &str,
        ) -> Result<u64, $crate::StoreError> {
            let count: i64 = sqlx::query_scalar($crate::sql::inbox::UNREAD_NOTIFICATIONS)
                .bind(app)
                .bind(user)
                .fetch_one(conn)
                .await?;
            Ok(count as u64)
        }

        async fn group_alerts(
            conn: &mut <$db as sqlx::Database>::Connection,
            app: &str,
            group: &str,
        ) -> Result<u64, $crate::StoreError> {
            let sql = "SELECT COUNT(*) FROM alerts WHERE app = $1 AND group_id = $2";
            let count: i64 = sqlx::query_scalar(sql).bind(app).bind(group).fetch_one(conn).await?;
            Ok(count as u64)
        }
    };
}
pub(crate) use inbox_store;
