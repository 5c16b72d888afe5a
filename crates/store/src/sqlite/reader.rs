//! Quick reads on the caller's thread, for the few small lookups on a connect's path.
//!
//! A read through sqlx is handed to its worker thread and back: two wakeups that cost more
//! than the indexed lookup itself. A connect made two of them (the user's server-managed
//! memberships, and their chat partners for presence), and they were a quarter of its CPU
//! (docs/BENCHMARKS.md, change 13); a chat message read its conversation the same way
//! (change 15). Here such a read runs on a connection taken from a small
//! idle list, in the calling task, and never waits: with WAL a reader does not wait for the
//! writer, and in the rare case SQLite answers busy, or anything else goes wrong, the caller
//! reads through the pool instead, which waits and reports errors as every other read does.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

/// Connections kept idle between reads. A read holds one for microseconds without an await,
/// so at most one per runtime thread is ever in use; more are closed after their read.
const IDLE: usize = 4;

pub(crate) struct Reader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Reader {
    pub(crate) fn new(path: &Path) -> Self {
        Self { path: path.to_owned(), idle: Mutex::new(Vec::new()) }
    }

    /// The first column of every row `sql` returns with `params` bound in order, or `None`
    /// when the read could not be done here at once.
    pub(crate) fn strings(&self, sql: &str, params: &[&str]) -> Option<Vec<String>> {
        self.read(|connection| strings(connection, sql, params))
    }

    /// What `read` finds on a connection of the idle list, or `None` when it failed.
    pub(crate) fn read<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<T> {
        let taken = self.idle.lock().ok()?.pop();
        let connection = match taken {
            Some(connection) => connection,
            None => open(&self.path)?,
        };
        let found = read(&connection).ok();
        let mut idle = self.idle.lock().ok()?;
        if found.is_some() && idle.len() < IDLE {
            idle.push(connection);
        }
        found
    }
}

fn open(path: &Path) -> Option<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).ok()?;
    // Busy means "ask the pool", never "wait here": this runs on a runtime thread.
    connection.busy_timeout(std::time::Duration::ZERO).ok()?;
    connection.execute_batch("PRAGMA query_only = 1").ok()?;
    Some(connection)
}

/// The first column of every row `sql` returns with `params` bound in order.
pub(crate) fn strings(connection: &Connection, sql: &str, params: &[&str]) -> rusqlite::Result<Vec<String>> {
    let mut statement = connection.prepare_cached(sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(params), |row| row.get(0))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(name: &str) -> (PathBuf, Connection) {
        let path = std::env::temp_dir().join(format!("sb-reader-{}-{name}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE members (app TEXT, user_id TEXT, channel TEXT);
                 INSERT INTO members VALUES ('a', 'u', 'room:1'), ('a', 'u', 'group:g'), ('b', 'u', 'room:2');",
            )
            .unwrap();
        (path, connection)
    }

    const MEMBERSHIPS: &str = "SELECT channel FROM members WHERE app = $1 AND user_id = $2 ORDER BY channel";

    #[test]
    fn reads_what_is_committed_beside_an_open_write() {
        let (path, writer) = database("committed");
        let reader = Reader::new(&path);
        assert_eq!(reader.strings(MEMBERSHIPS, &["a", "u"]).unwrap(), ["group:g", "room:1"]);
        // A writer holding SQLite's write lock does not make the read wait or fail, and what
        // it has not committed is not seen.
        writer.execute_batch("BEGIN IMMEDIATE; INSERT INTO members VALUES ('a', 'u', 'room:3');").unwrap();
        assert_eq!(reader.strings(MEMBERSHIPS, &["a", "u"]).unwrap(), ["group:g", "room:1"]);
        writer.execute_batch("COMMIT").unwrap();
        assert_eq!(reader.strings(MEMBERSHIPS, &["a", "u"]).unwrap(), ["group:g", "room:1", "room:3"]);
        assert_eq!(reader.idle.lock().unwrap().len(), 1, "one connection, reused");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn what_cannot_be_read_here_is_left_to_the_pool() {
        let (path, _writer) = database("fallback");
        let reader = Reader::new(&path);
        assert_eq!(reader.strings("SELECT nothing FROM nowhere", &[]), None);
        assert_eq!(reader.strings(MEMBERSHIPS, &["a"]), None, "a parameter missing");
        let missing = Reader::new(&path.with_extension("missing"));
        assert_eq!(missing.strings(MEMBERSHIPS, &["a", "u"]), None, "never creates a database");
        assert!(!path.with_extension("missing").exists());
        std::fs::remove_file(path).unwrap();
    }
}
