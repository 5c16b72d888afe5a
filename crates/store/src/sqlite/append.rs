//! Appending history on SQLite: a few statements per batch, whatever its size.
//!
//! sqlx runs each statement on its SQLite worker thread, and the hand-off costs two context
//! switches; with three statements per event, those hand-offs were most of a durable
//! publish's CPU (docs/BENCHMARKS.md, change 6). So a batch (one round of the hub's group
//! commit) is written with one upsert of every touched channel's counter, multi-row inserts
//! of the events, and one trim per chunk of channels, all in one transaction.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use crate::{new_epoch, unix_now, HistoryAppend, StoreError};

/// Rows per multi-row statement: far below SQLite's 32,766 bound variables.
const CHUNK: usize = 500;

/// One channel's share of a batch.
struct Stream<'a> {
    app: &'a str,
    channel: &'a str,
    count: i64,
    size: u32,
    /// Filled by the upsert: the epoch and the seq of the channel's first event here.
    epoch: String,
    first: i64,
}

pub(super) async fn append(pool: &SqlitePool, events: &[HistoryAppend]) -> Result<Vec<(String, u64)>, StoreError> {
    // Per channel, in order of first appearance: how many events, and the window to trim to.
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    let mut streams: Vec<Stream<'_>> = Vec::new();
    let mut slot = Vec::with_capacity(events.len());
    for event in events {
        let key = (event.app.as_str(), event.channel.as_str());
        let i = *index.entry(key).or_insert_with(|| {
            let (app, channel) = key;
            streams.push(Stream { app, channel, count: 0, size: event.size, epoch: String::new(), first: 0 });
            streams.len() - 1
        });
        streams[i].count += 1;
        streams[i].size = event.size;
        slot.push(i);
    }
    let mut tx = pool.begin().await?;
    for chunk in streams.chunks_mut(CHUNK) {
        reserve(&mut tx, chunk).await?;
    }
    // Each event's seq: its channel's first seq here, plus how many of the channel came before.
    let mut next: Vec<i64> = streams.iter().map(|s| s.first).collect();
    let seqs: Vec<i64> = slot
        .iter()
        .map(|&i| {
            next[i] += 1;
            next[i] - 1
        })
        .collect();
    let now = unix_now();
    for (chunk, seqs) in events.chunks(CHUNK).zip(seqs.chunks(CHUNK)) {
        insert(&mut tx, chunk, seqs, now).await?;
    }
    for chunk in streams.chunks(CHUNK) {
        trim(&mut tx, chunk).await?;
    }
    tx.commit().await?;
    Ok(slot.iter().zip(seqs).map(|(&i, seq)| (streams[i].epoch.clone(), seq as u64)).collect())
}

/// Advances each channel's counter by its count; learns its epoch and first seq.
async fn reserve(tx: &mut sqlx::Transaction<'_, Sqlite>, streams: &mut [Stream<'_>]) -> Result<(), StoreError> {
    let mut upsert = QueryBuilder::<Sqlite>::new("INSERT INTO history_streams (app, channel, epoch, last_seq) ");
    upsert.push_values(streams.iter(), |mut row, s| {
        row.push_bind(s.app).push_bind(s.channel).push_bind(new_epoch()).push_bind(s.count);
    });
    upsert.push(
        " ON CONFLICT (app, channel) DO UPDATE SET last_seq = last_seq + excluded.last_seq
         RETURNING app, channel, epoch, last_seq",
    );
    let rows: Vec<(String, String, String, i64)> = upsert.build_query_as().fetch_all(&mut **tx).await?;
    for (app, channel, epoch, last) in rows {
        if let Some(s) = streams.iter_mut().find(|s| s.app == app && s.channel == channel) {
            s.first = last - s.count + 1;
            s.epoch = epoch;
        }
    }
    Ok(())
}

async fn insert(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    events: &[HistoryAppend],
    seqs: &[i64],
    now: i64,
) -> Result<(), StoreError> {
    let mut insert =
        QueryBuilder::<Sqlite>::new("INSERT INTO history_events (app, channel, seq, id, kind, data, ts, expires_at) ");
    insert.push_values(events.iter().zip(seqs), |mut row, (e, seq)| {
        row.push_bind(&e.app).push_bind(&e.channel).push_bind(*seq).push_bind(&e.id).push_bind(&e.kind);
        row.push_bind(&e.data).push_bind(e.ts as i64).push_bind(now + e.ttl.as_secs() as i64);
    });
    insert.build().execute(&mut **tx).await?;
    Ok(())
}

/// Drops what each channel's window no longer holds.
async fn trim(tx: &mut sqlx::Transaction<'_, Sqlite>, streams: &[Stream<'_>]) -> Result<(), StoreError> {
    let mut trim = QueryBuilder::<Sqlite>::new("DELETE FROM history_events WHERE ");
    for (n, s) in streams.iter().enumerate() {
        if n > 0 {
            trim.push(" OR ");
        }
        let newest = s.first + s.count - 1;
        trim.push("(app = ").push_bind(s.app).push(" AND channel = ").push_bind(s.channel);
        trim.push(" AND seq <= ").push_bind(newest - i64::from(s.size)).push(")");
    }
    trim.build().execute(&mut **tx).await?;
    Ok(())
}
