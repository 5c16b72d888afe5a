//! Channel history in SQL: appends in a few multi-row statements per batch, reads as one
//! snapshot.
//!
//! sqlx hands each SQLite statement to a worker thread, and the hand-off costs two context
//! switches; with three statements per event those hand-offs were most of a durable publish's
//! CPU (docs/BENCHMARKS.md, change 6). So a batch (one round of the hub's group commit) is one
//! upsert of every touched channel's counter, multi-row inserts of the events and one trim per
//! chunk of channels, in one transaction. Channels are locked in sorted order so that two
//! PostgreSQL nodes appending to the same channels cannot deadlock.

/// Rows per multi-row statement: far below both databases' bound-variable limits.
pub(crate) const CHUNK: usize = 500;

/// One channel's share of a batch.
pub(crate) struct Stream<'a> {
    pub(crate) app: &'a str,
    pub(crate) channel: &'a str,
    pub(crate) count: i64,
    pub(crate) size: u32,
    /// Filled by the upsert: the epoch and the seq of the channel's first event here.
    pub(crate) epoch: String,
    pub(crate) first: i64,
}

impl Stream<'_> {
    /// The newest seq the channel's window no longer holds, once it has had more events than
    /// the window; before that there is nothing to trim, and the trim's statement (an index
    /// seek per channel, per round) is skipped. Seqs start at 1.
    pub(crate) fn trim_through(&self) -> Option<i64> {
        let through = self.first + self.count - 1 - i64::from(self.size);
        (through >= 1).then_some(through)
    }
}

/// The batch's channels, sorted, and each event's index among them.
pub(crate) fn streams(events: &[crate::HistoryAppend]) -> (Vec<Stream<'_>>, Vec<usize>) {
    let mut streams: Vec<Stream<'_>> = Vec::new();
    let mut keys: Vec<(&str, &str)> = events.iter().map(|e| (e.app.as_str(), e.channel.as_str())).collect();
    keys.sort_unstable();
    keys.dedup();
    for (app, channel) in &keys {
        streams.push(Stream { app, channel, count: 0, size: 0, epoch: String::new(), first: 0 });
    }
    let slot: Vec<usize> =
        events.iter().map(|e| keys.binary_search(&(e.app.as_str(), e.channel.as_str())).unwrap_or_default()).collect();
    for (event, &i) in events.iter().zip(&slot) {
        streams[i].count += 1;
        streams[i].size = event.size;
    }
    (streams, slot)
}

/// Each event's seq: its channel's first seq in the batch plus how many of it came before.
pub(crate) fn seqs(streams: &[Stream<'_>], slot: &[usize]) -> Vec<i64> {
    let mut next: Vec<i64> = streams.iter().map(|s| s.first).collect();
    slot.iter()
        .map(|&i| {
            next[i] += 1;
            next[i] - 1
        })
        .collect()
}

/// Defines `history_append` and `history_read` for pools of `$db`. `$snapshot` is the
/// statement that makes a read transaction one snapshot, if the database needs one.
macro_rules! history_fns {
    ($db:ty, $snapshot:expr) => {
        async fn history_append(
            pool: &sqlx::Pool<$db>,
            events: &[$crate::HistoryAppend],
        ) -> Result<Vec<(String, u64)>, $crate::StoreError> {
            use $crate::sql::history::{seqs, streams, CHUNK};
            let (mut streams, slot) = streams(events);
            let mut tx = pool.begin().await?;
            for chunk in streams.chunks_mut(CHUNK) {
                history_reserve(&mut tx, chunk).await?;
            }
            let seqs = seqs(&streams, &slot);
            let now = $crate::unix_now();
            for (chunk, seqs) in events.chunks(CHUNK).zip(seqs.chunks(CHUNK)) {
                let mut insert = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO history_events (app, channel, seq, id, kind, data, ts, expires_at) ",
                );
                insert.push_values(chunk.iter().zip(seqs), |mut row, (e, seq)| {
                    row.push_bind(&e.app).push_bind(&e.channel).push_bind(*seq).push_bind(&e.id).push_bind(&e.kind);
                    row.push_bind(&e.data).push_bind(e.ts as i64).push_bind(now + e.ttl.as_secs() as i64);
                });
                insert.build().execute(&mut *tx).await?;
            }
            let full: Vec<_> = streams.iter().filter_map(|s| Some((s, s.trim_through()?))).collect();
            for chunk in full.chunks(CHUNK) {
                // Drops what each channel's window no longer holds.
                let mut trim = sqlx::QueryBuilder::<$db>::new("DELETE FROM history_events WHERE ");
                for (n, (s, through)) in chunk.iter().enumerate() {
                    trim.push(if n > 0 { " OR (app = " } else { "(app = " }).push_bind(s.app);
                    trim.push(" AND channel = ").push_bind(s.channel);
                    trim.push(" AND seq <= ").push_bind(*through).push(")");
                }
                trim.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(slot.iter().zip(seqs).map(|(&i, seq)| (streams[i].epoch.clone(), seq as u64)).collect())
        }

        /// Advances each channel's counter by its count; learns its epoch and first seq.
        async fn history_reserve(
            tx: &mut sqlx::Transaction<'_, $db>,
            streams: &mut [$crate::sql::history::Stream<'_>],
        ) -> Result<(), $crate::StoreError> {
            let mut upsert =
                sqlx::QueryBuilder::<$db>::new("INSERT INTO history_streams (app, channel, epoch, last_seq) ");
            upsert.push_values(streams.iter(), |mut row, s| {
                row.push_bind(s.app).push_bind(s.channel).push_bind($crate::new_epoch()).push_bind(s.count);
            });
            upsert.push(
                " ON CONFLICT (app, channel) DO UPDATE
                 SET last_seq = history_streams.last_seq + excluded.last_seq
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

        async fn history_read(
            pool: &sqlx::Pool<$db>,
            app: &str,
            channel: &str,
            after: u64,
            limit: u32,
        ) -> Result<$crate::HistoryPage, $crate::StoreError> {
            let now = $crate::unix_now();
            let stream = "SELECT epoch, last_seq FROM history_streams WHERE app = $1 AND channel = $2";
            let begin = || async {
                let mut tx = pool.begin().await?;
                if let Some(snapshot) = $snapshot {
                    sqlx::query(snapshot).execute(&mut *tx).await?;
                }
                Ok::<_, sqlx::Error>(tx)
            };
            // One read transaction: the newest seq, the oldest kept and the events agree.
            let mut tx = begin().await?;
            let found: Option<(String, i64)> =
                sqlx::query_as(stream).bind(app).bind(channel).fetch_optional(&mut *tx).await?;
            let (epoch, latest) = match found {
                Some(found) => found,
                None => {
                    // Only a channel's first read writes: readers must not queue behind appends.
                    tx.commit().await?;
                    sqlx::query(
                        "INSERT INTO history_streams (app, channel, epoch, last_seq) VALUES ($1, $2, $3, 0)
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(app)
                    .bind(channel)
                    .bind($crate::new_epoch())
                    .execute(pool)
                    .await?;
                    tx = begin().await?;
                    sqlx::query_as(stream).bind(app).bind(channel).fetch_one(&mut *tx).await?
                }
            };
            let oldest: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(seq) FROM history_events WHERE app = $1 AND channel = $2 AND expires_at > $3",
            )
            .bind(app)
            .bind(channel)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let rows: Vec<(i64, String, String, String, i64)> = sqlx::query_as(
                "SELECT seq, id, kind, data, ts FROM history_events
                 WHERE app = $1 AND channel = $2 AND seq > $3 AND expires_at > $4 ORDER BY seq LIMIT $5",
            )
            .bind(app)
            .bind(channel)
            .bind(after as i64)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok($crate::HistoryPage::from_rows(epoch, latest, oldest, rows))
        }
    };
}
pub(crate) use history_fns;
