//! The history store alone: how many events a second `Store::append_history` makes durable
//! in rounds like the hub's sequencer sends, beside SQLite's own batched insert rate on the
//! same machine (one prepared INSERT per row, one transaction per round, same schema).
//!
//! `target/release/storebench --events 200000 --round 256 --channels 1000`

use std::time::{Duration, Instant};

use clap::Parser;
use switchboard_store::{HistoryAppend, SqliteStore, Store};

#[derive(Debug, Parser)]
struct Args {
    /// Events to append in all.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Events per round (one transaction).
    #[arg(long, default_value_t = 256)]
    round: usize,
    /// Channels the events go to, in turn (a personal message per user).
    #[arg(long, default_value_t = 1000)]
    channels: usize,
}

fn event(i: usize, channels: usize) -> HistoryAppend {
    HistoryAppend {
        app: "bench".into(),
        channel: format!("user:{}", i % channels),
        id: format!("{i:032x}"),
        kind: "bench".into(),
        data: format!(r#"{{"t":{},"k":{i}}}"#, 1_700_000_000_000_000_000u64 + i as u64),
        ts: 1_700_000_000_000,
        size: 1000,
        ttl: Duration::from_secs(86_400),
    }
}

/// Events per second through the store, in rounds.
async fn store_rate(args: &Args, dir: &std::path::Path) -> anyhow::Result<f64> {
    let store = SqliteStore::open(&format!("sqlite://{}", dir.join("store.db").display())).await?;
    let events: Vec<HistoryAppend> = (0..args.events).map(|i| event(i, args.channels)).collect();
    let started = Instant::now();
    for round in events.chunks(args.round) {
        store.append_history(round).await?;
    }
    let rate = args.events as f64 / started.elapsed().as_secs_f64();
    store.close().await;
    Ok(rate)
}

/// Events per second as plain inserts into the same table, one transaction per round: no
/// counters, no trim, no thread hop.
fn sqlite_rate(args: &Args, dir: &std::path::Path) -> anyhow::Result<f64> {
    let mut db = rusqlite::Connection::open(dir.join("plain.db"))?;
    // The store's own layout (migration 7) with SQLite's defaults, automatic checkpoints included.
    db.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE history_events (app TEXT NOT NULL, channel TEXT NOT NULL, seq INTEGER NOT NULL,
           id TEXT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL, ts INTEGER NOT NULL,
           expires_at INTEGER NOT NULL);
         CREATE UNIQUE INDEX history_by_channel ON history_events (app, channel, seq);
         CREATE INDEX history_by_expiry ON history_events (expires_at);",
    )?;
    let events: Vec<HistoryAppend> = (0..args.events).map(|i| event(i, args.channels)).collect();
    let started = Instant::now();
    for (n, round) in events.chunks(args.round).enumerate() {
        let tx = db.transaction()?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO history_events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?;
            for (k, e) in round.iter().enumerate() {
                let seq = ((n * args.round + k) / args.channels) as i64;
                insert.execute(rusqlite::params![
                    e.app,
                    e.channel,
                    seq,
                    e.id,
                    e.kind,
                    e.data,
                    e.ts as i64,
                    e.ts as i64
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(args.events as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("sb-storebench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = store_rate(&args, &dir).await?;
    let plain = sqlite_rate(&args, &dir)?;
    std::fs::remove_dir_all(&dir)?;
    println!(
        "{}",
        serde_json::json!({"events": args.events, "round": args.round, "channels": args.channels,
            "store_events_per_sec": store.round(), "sqlite_inserts_per_sec": plain.round(),
            "store_share_of_sqlite": (store / plain * 100.0).round() / 100.0})
    );
    Ok(())
}
