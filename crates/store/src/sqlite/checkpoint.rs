//! Checkpoints off the write path: a thread with its own connection copies the WAL back into
//! the database while the history writer goes on appending.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold, so one
//! publish in a thousand waited for the copy and its fsyncs: p99 of personal messages at
//! 4,000/s was 7.8 ms with it and 1.2 ms without (docs/BENCHMARKS.md, change 12).

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;

/// At most one checkpoint per this long: each costs two fsyncs, so under load it copies what
/// a tenth of a second wrote at once (50 ms to 1 s measured alike).
const EVERY: Duration = Duration::from_millis(100);

/// WAL pages (4 KiB each) past which the checkpoint also makes writers wait, so the WAL
/// cannot outgrow this when writes never pause long enough for a passive one to finish.
const CAP: i64 = 16_384;

/// The writer's side: a nudge after each commit, and the thread to join on close.
pub(crate) struct Checkpointer {
    nudge: SyncSender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    pub(crate) fn start(path: &Path, busy: Duration) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(busy)?;
        let (nudge, nudges) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || run(&connection, &nudges))
            .map_err(|e| StoreError::Writer(format!("cannot start the WAL checkpoint thread: {e}")))?;
        Ok(Self { nudge, thread })
    }

    /// Says that a commit added to the WAL; never waits.
    pub(crate) fn nudge(&self) {
        let _ = self.nudge.try_send(());
    }

    /// Runs a last checkpoint and ends the thread.
    pub(crate) fn stop(self) {
        drop(self.nudge);
        let _ = self.thread.join();
    }
}

fn run(connection: &Connection, nudges: &Receiver<()>) {
    let mut mode = "PASSIVE";
    while nudges.recv().is_ok() {
        mode = match checkpoint(connection, mode) {
            Ok(wal_pages) if wal_pages > CAP => "RESTART",
            Ok(_) => "PASSIVE",
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed; it is tried again after the next commit");
                "PASSIVE"
            }
        };
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

/// Runs one checkpoint; the WAL's size in pages.
fn checkpoint(connection: &Connection, mode: &str) -> rusqlite::Result<i64> {
    connection.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| row.get(1))
}
