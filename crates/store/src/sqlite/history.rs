//! Reading channel history on SQLite: a snapshot per read. Appending is in `append.rs`.

use sqlx::SqlitePool;

use crate::{new_epoch, unix_now, HistoryPage, StoreError, StoredEvent};

pub(super) async fn read(
    pool: &SqlitePool,
    app: &str,
    channel: &str,
    after: u64,
    limit: u32,
) -> Result<HistoryPage, StoreError> {
    let now = unix_now();
    // One read transaction: the newest seq, the oldest kept and the events agree.
    let mut tx = pool.begin().await?;
    let stream = "SELECT epoch, last_seq FROM history_streams WHERE app = ? AND channel = ?";
    let found: Option<(String, i64)> = sqlx::query_as(stream).bind(app).bind(channel).fetch_optional(&mut *tx).await?;
    let (epoch, latest) = match found {
        Some(found) => found,
        None => {
            // Only a channel's first read writes: readers must not queue behind appends.
            tx.commit().await?;
            create_stream(pool, app, channel).await?;
            tx = pool.begin().await?;
            sqlx::query_as(stream).bind(app).bind(channel).fetch_one(&mut *tx).await?
        }
    };
    let oldest: Option<i64> =
        sqlx::query_scalar("SELECT MIN(seq) FROM history_events WHERE app = ? AND channel = ? AND expires_at > ?")
            .bind(app)
            .bind(channel)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
    let rows: Vec<(i64, String, String, String, i64)> = sqlx::query_as(
        "SELECT seq, id, kind, data, ts FROM history_events
         WHERE app = ? AND channel = ? AND seq > ? AND expires_at > ? ORDER BY seq LIMIT ?",
    )
    .bind(app)
    .bind(channel)
    .bind(after as i64)
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let events = rows
        .into_iter()
        .map(|(seq, id, kind, data, ts)| StoredEvent { seq: seq as u64, id, kind, data, ts: ts as u64 })
        .collect();
    let latest = latest as u64;
    Ok(HistoryPage { epoch, latest, oldest: oldest.map_or(latest + 1, |o| o as u64), events })
}

/// Gives a channel its epoch, unless another reader or an append just did.
async fn create_stream(pool: &SqlitePool, app: &str, channel: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO history_streams (app, channel, epoch, last_seq) VALUES (?, ?, ?, 0) ON CONFLICT DO NOTHING",
    )
    .bind(app)
    .bind(channel)
    .bind(new_epoch())
    .execute(pool)
    .await?;
    Ok(())
}
