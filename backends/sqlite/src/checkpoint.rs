//! Checkpoints of a database file's WAL on a thread of their own, off the writer's path.
//!
//! SQLite's default (`wal_autocheckpoint = 1000`) has the connection whose commit takes the WAL
//! past 1,000 pages copy them into the database file and sync both files before that `COMMIT`
//! returns: every few dozen groups, one group's callers (and every write queued behind them)
//! waited for a checkpoint and two `fsync`s. Here the writer connection never checkpoints;
//! this thread, on a connection of its own, runs a `PASSIVE` checkpoint at most every
//! [`INTERVAL`] when something was committed since the last one. A passive checkpoint takes no
//! lock a writer or reader waits for: the writer keeps appending to the WAL meanwhile, and
//! starts it over from the beginning once it has been copied in full.
//!
//! Durability is unchanged: a commit is acknowledged once it is in the WAL, as before
//! (`writer.rs`); a checkpoint only moves committed pages into the database file.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use fhirgate_sql::Error;
use rusqlite::{Connection, OpenFlags};

use crate::BUSY_TIMEOUT;
use crate::readers::failed;

/// The longest a commit waits to be copied into the database file; bounds the WAL's size to
/// what the writer appends in this time.
const INTERVAL: Duration = Duration::from_millis(250);

/// The checkpointing thread of one database file; stopped (and waited for) when dropped.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct State {
    /// Something was committed since the last checkpoint.
    dirty: AtomicBool,
    stop: AtomicBool,
}

impl Checkpointer {
    /// Opens a connection on `file` and starts the thread.
    pub(crate) fn start(file: &Path) -> Result<Self, Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let connection = Connection::open_with_flags(file, flags).map_err(failed)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
        let state = Arc::new(State::default());
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&connection, &shared))
            .map_err(|e| Error::Open(format!("starting the sqlite checkpoint thread: {e}")))?;
        Ok(Self { state, thread: Some(thread) })
    }

    /// Tells the thread that a transaction was committed.
    pub(crate) fn committed(&self) {
        self.state.dirty.store(true, Ordering::Release);
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// Every [`INTERVAL`], a passive checkpoint if something was committed; until stopped.
fn run(connection: &Connection, state: &State) {
    while !state.stop.load(Ordering::Acquire) {
        std::thread::park_timeout(INTERVAL);
        if state.dirty.swap(false, Ordering::AcqRel) {
            // (busy, pages in the WAL, pages copied); a failure is tried again next time.
            let done = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
            });
            match done {
                Ok((_, wal, copied)) => tracing::trace!(wal, copied, "sqlite checkpoint"),
                Err(e) => {
                    tracing::debug!(error = %e, "sqlite checkpoint failed");
                    state.dirty.store(true, Ordering::Release);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::expect_used, reason = "tests: a failed expectation is a failed test")]

    use fhirgate_engine::storage::contract::{sample_index, version};
    use fhirgate_engine::storage::{Store, Write};

    /// Only a checkpoint writes to the database file itself: commits go to the WAL, and the
    /// writer connection never checkpoints. So the file growing by what was committed, with no
    /// other connection writing, is this thread's work.
    #[tokio::test]
    async fn commits_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = std::env::temp_dir().join(format!("fhirgate-sqlite-checkpoint-{}", std::process::id()));
        let file = dir.join("fhir.db");
        let store = crate::open(&file).await.expect("a migrated file");
        let size = || std::fs::metadata(&file).expect("the file").len();
        // The migrations' pages, if still in the WAL, are copied first.
        store
            .transact(vec![Write { version: version("Patient", "first", 1, 0), index: sample_index() }])
            .await
            .expect("a write");
        tokio::time::sleep(super::INTERVAL * 3).await;
        let before = size();
        let padding = "x".repeat(4_000);
        for n in 0..100 {
            let mut v = version("Patient", &format!("p{n}"), 1, 0);
            v.json = Some(format!(r#"{{"resourceType":"Patient","id":"p{n}","text":"{padding}"}}"#));
            store.transact(vec![Write { version: v, index: sample_index() }]).await.expect("a write");
        }
        let mut grown = 0;
        for _ in 0..40 {
            tokio::time::sleep(super::INTERVAL / 2).await;
            grown = size().saturating_sub(before);
            if grown >= 400_000 {
                break;
            }
        }
        assert!(grown >= 400_000, "100 × 4 KB committed, the database file grew by {grown} bytes");
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
