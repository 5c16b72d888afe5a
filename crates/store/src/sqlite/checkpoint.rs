//! Checkpoints off the write path: a thread with its own connection copies the WAL back into
//! the database while the history writer goes on appending.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold, so one
//! publish in a thousand waited for the copy and its fsyncs: p99 of personal messages at
//! 4,000/s was 7.8 ms with it and 1.2 ms without (docs/BENCHMARKS.md, change 12).

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;

/// At most one checkpoint per this long: each costs two fsyncs, so under load it copies what
/// a tenth of a second wrote at once (50 ms to 1 s measured alike).
const EVERY: Duration = Duration::from_millis(100);

/// WAL pages (4 KiB each) past which the writer checkpoints in RESTART mode itself, between
/// rounds. The WAL starts over only when a write begins with every frame copied back, which
/// under steady writes a passive checkpoint beside the writer may never see; a RESTART by the
/// writer makes sure it does, at the price of one pause.
pub(crate) const CAP: i64 = 16_384;

/// The writer's side: a nudge after each commit, the WAL's size as last measured, and the
/// thread to join on close.
pub(crate) struct Checkpointer {
    nudge: SyncSender<()>,
    wal_pages: Arc<AtomicI64>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    pub(crate) fn start(path: &Path, busy: Duration) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(busy)?;
        let (nudge, nudges) = std::sync::mpsc::sync_channel(1);
        let wal_pages = Arc::new(AtomicI64::new(0));
        let measured = wal_pages.clone();
        let thread = std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || run(&connection, &nudges, &measured))
            .map_err(|e| StoreError::Writer(format!("cannot start the WAL checkpoint thread: {e}")))?;
        Ok(Self { nudge, wal_pages, thread })
    }

    /// After a commit on `writer`: a nudge that never waits, and a RESTART checkpoint right
    /// here when the WAL has grown past [`CAP`].
    pub(crate) fn after_commit(&self, writer: &Connection) {
        if self.wal_pages.load(Ordering::Relaxed) > CAP {
            self.wal_pages.store(0, Ordering::Relaxed);
            match checkpoint(writer, "RESTART") {
                Ok((false, _)) => {}
                Ok((true, pages)) => tracing::warn!(pages, "the WAL could not start over: a reader held it"),
                Err(e) => tracing::warn!(error = %e, "WAL checkpoint (RESTART) failed"),
            }
        }
        let _ = self.nudge.try_send(());
    }

    /// Runs a last checkpoint and ends the thread.
    pub(crate) fn stop(self) {
        drop(self.nudge);
        let _ = self.thread.join();
    }
}

fn run(connection: &Connection, nudges: &Receiver<()>, wal_pages: &AtomicI64) {
    while nudges.recv().is_ok() {
        match checkpoint(connection, "PASSIVE") {
            Ok((_, pages)) => wal_pages.store(pages, Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; it is tried again after the next commit"),
        }
        if matches!(nudges.try_recv(), Err(TryRecvError::Disconnected)) {
            break;
        }
        std::thread::sleep(EVERY);
    }
    // Closing: leave an empty WAL behind.
    if let Err(e) = checkpoint(connection, "TRUNCATE") {
        tracing::warn!(error = %e, "the last WAL checkpoint failed; SQLite replays the WAL on the next open");
    }
}

/// Runs one checkpoint: whether it was blocked before finishing, and the WAL's size in pages.
fn checkpoint(connection: &Connection, mode: &str) -> rusqlite::Result<(bool, i64)> {
    connection
        .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| Ok((row.get::<_, i64>(0)? != 0, row.get(1)?)))
}
