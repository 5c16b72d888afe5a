//! Device acknowledgements on SQLite: one upsert per position, all in one transaction.

use sqlx::SqlitePool;

use crate::{DeviceAck, StoreError};

pub(super) async fn save(pool: &SqlitePool, app: &str, user: &str, acks: &[DeviceAck]) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    for ack in acks {
        // A late ack of an older seq in the same epoch must not move the position back.
        sqlx::query(
            "INSERT INTO device_acks (app, user_id, device, channel, epoch, seq, acked_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
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

pub(super) async fn read(
    pool: &SqlitePool,
    app: &str,
    user: &str,
    device: Option<&str>,
) -> Result<Vec<DeviceAck>, StoreError> {
    let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT device, channel, epoch, seq, acked_at FROM device_acks
         WHERE app = ? AND user_id = ? AND (? IS NULL OR device = ?)
         ORDER BY device, channel",
    )
    .bind(app)
    .bind(user)
    .bind(device)
    .bind(device)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(device, channel, epoch, seq, acked_at)| DeviceAck {
            device,
            channel,
            epoch,
            seq: seq as u64,
            acked_at_ms: acked_at as u64,
        })
        .collect())
}
