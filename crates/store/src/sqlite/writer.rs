//! The history writer: one thread that owns one SQLite connection and appends every round.
//!
//! Through sqlx, each statement is handed to its SQLite worker thread and back, and a round
//! of one event took five such hand-offs: the context switches were most of a durable
//! publish's CPU, and SQLite's own work under 2% (docs/BENCHMARKS.md, changes 6 and 12).
//! Here a round crosses threads once each way, and runs as prepared statements on a
//! connection whose page cache stays warm between rounds. The inbox's and chat's hot writes
//! (a notification, a message) run here too, between rounds (`features.rs`). Reads and the
//! other writes keep using the sqlx pool: SQLite in WAL mode lets readers run beside this
//! writer, and other writers wait for its lock (the busy timeout).

use std::cell::Cell;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::{self, Checkpointer};
use crate::sql::history::{seqs, streams, Stream};
use crate::{HistoryAppend, StoreError};

/// Rounds waiting for the thread, at most. The hub's sequencer sends one round at a time,
/// so this bounds only direct callers.
const WAITING: usize = 16;

type Positions = Result<Vec<(String, u64)>, StoreError>;

/// Work for the writer's connection, run between rounds: the inbox's and chat's writes.
type Work = Box<dyn FnOnce(&mut Connection) + Send>;

enum Job {
    Append(Vec<HistoryAppend>, oneshot::Sender<Positions>),
    Run(Work),
    Ping(oneshot::Sender<Result<(), StoreError>>),
    Close(oneshot::Sender<()>),
}

/// The handle: appends go to the thread, answers come back.
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Opens a second connection to the database at `path` (already migrated) and starts
    /// the thread that owns it.
    pub(crate) fn open(path: &Path, busy: Duration) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        connection.busy_handler(Some(wait_for_lock))?;
        // The same durability as the pool's connections: with WAL, NORMAL loses nothing on
        // a process crash. Statement journals stay in memory rather than in temporary files.
        // Checkpoints run on their own thread (checkpoint.rs), never inside a commit here.
        // A WAL reset after a long one leaves the file at most this large.
        connection.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY;
             PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {};",
            checkpoint::CAP * 4096
        ))?;
        let checkpointer = Checkpointer::start(path, busy)?;
        let (jobs, waiting) = mpsc::channel(WAITING);
        let thread = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || run(connection, checkpointer, waiting))
            .map_err(|e| StoreError::Writer(format!("cannot start the history writer thread: {e}")))?;
        Ok(Self { jobs, thread: std::sync::Mutex::new(Some(thread)) })
    }

    /// Appends `events` in one transaction; each event's epoch and seq, in order.
    pub(crate) async fn append(&self, events: &[HistoryAppend]) -> Positions {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job::Append(events.to_vec(), reply)).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Runs `work` on the writer's connection, in its turn between rounds: SQLite takes one
    /// writer at a time, and here no other connection waits for its lock.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Run(Box::new(move |connection| {
            let _ = reply.send(work(connection));
        }));
        self.jobs.send(job).await.map_err(|_| closed())?;
        Ok(answer.await.map_err(|_| closed())??)
    }

    /// Answers once the thread has run a trivial query after every round queued before it.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job::Ping(reply)).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Closes the connection and ends the thread; later appends fail.
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.jobs.send(Job::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// How long the writer waits between looks at a write lock another connection holds: in fine
/// steps for the first milliseconds (the holder is most likely a short inbox or chat
/// transaction), then coarser ones, so that a long wait neither spins nor starves the pool's
/// writers, which back off the same way past that point.
const FINE_STEP: Duration = Duration::from_micros(100);
const FINE_FOR: Duration = Duration::from_millis(10);
const COARSE_STEP: Duration = Duration::from_millis(2);

thread_local! {
    /// When the current wait for the lock began.
    static WAITING_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// SQLite's own busy timeout sleeps 1, 2, 5, 10, ... 100 ms between looks, so a round that
/// found an inbox write holding the lock for a fraction of a millisecond slept far longer.
/// Gives up after the pool's busy timeout, measured in time (sleeps overshoot).
fn wait_for_lock(looks: i32) -> bool {
    let since = WAITING_SINCE.with(|since| {
        if looks == 0 || since.get().is_none() {
            since.set(Some(Instant::now()));
        }
        since.get().unwrap_or_else(Instant::now)
    });
    let waited = since.elapsed();
    std::thread::sleep(if waited < FINE_FOR { FINE_STEP } else { COARSE_STEP });
    waited < super::BUSY
}

fn closed() -> StoreError {
    StoreError::Writer("the history writer is closed".into())
}

fn run(mut connection: Connection, checkpointer: Checkpointer, mut jobs: mpsc::Receiver<Job>) {
    let mut done = None;
    while let Some(job) = jobs.blocking_recv() {
        match job {
            Job::Append(events, reply) => {
                let _ = reply.send(append(&mut connection, &events).map_err(StoreError::from));
                checkpointer.after_commit(&connection);
            }
            Job::Run(work) => {
                work(&mut connection);
                checkpointer.after_commit(&connection);
            }
            Job::Ping(reply) => {
                let answer = connection.query_row("SELECT 1", [], |_| Ok(()));
                let _ = reply.send(answer.map_err(StoreError::from));
            }
            Job::Close(closed) => {
                done = Some(closed);
                break;
            }
        }
    }
    drop(connection);
    checkpointer.stop();
    if let Some(done) = done {
        let _ = done.send(());
    }
}

/// One round in one immediate transaction: each channel's counter, the events, the trim.
fn append(connection: &mut Connection, events: &[HistoryAppend]) -> rusqlite::Result<Vec<(String, u64)>> {
    let (mut streams, slot) = streams(events);
    // Immediate: the write lock is taken (or waited for) up front, never by upgrading a
    // read, which SQLite may refuse without waiting.
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    reserve(&tx, &mut streams)?;
    let seqs = seqs(&streams, &slot);
    let now = crate::unix_now();
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO history_events (app, channel, seq, id, kind, data, ts, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for (e, seq) in events.iter().zip(&seqs) {
            let expires = now + e.ttl.as_secs() as i64;
            insert.execute(params![e.app, e.channel, seq, e.id, e.kind, e.data, e.ts as i64, expires])?;
        }
        // Drops what each channel's window no longer holds.
        let mut trim = tx.prepare_cached("DELETE FROM history_events WHERE app = ?1 AND channel = ?2 AND seq <= ?3")?;
        for (s, through) in streams.iter().filter_map(|s| Some((s, s.trim_through()?))) {
            trim.execute(params![s.app, s.channel, through])?;
        }
    }
    tx.commit()?;
    Ok(slot.iter().zip(seqs).map(|(&i, seq)| (streams[i].epoch.clone(), seq as u64)).collect())
}

/// Advances each channel's counter by its count; learns its epoch and first seq.
fn reserve(tx: &rusqlite::Transaction<'_>, streams: &mut [Stream<'_>]) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO history_streams (app, channel, epoch, last_seq) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (app, channel) DO UPDATE SET last_seq = history_streams.last_seq + excluded.last_seq
         RETURNING epoch, last_seq",
    )?;
    for s in streams {
        let (epoch, last): (String, i64) = upsert
            .query_row(params![s.app, s.channel, crate::new_epoch(), s.count], |row| Ok((row.get(0)?, row.get(1)?)))?;
        s.first = last - s.count + 1;
        s.epoch = epoch;
    }
    Ok(())
}
