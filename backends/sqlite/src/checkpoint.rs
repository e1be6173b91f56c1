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
//! A passive checkpoint never catches up with a writer that never pauses (a bulk load: the WAL
//! reached 36 GB beside a 6 GB database, and filled the disk), and the WAL starts over only once
//! copied in full (and its file, once grown, keeps its size). So once the WAL file is past
//! [`WAL_LIMIT_BYTES`], the writer, between two transactions, copies what is left and empties the
//! file itself ([`Checkpointer::bound`]: a `TRUNCATE` checkpoint, which keeps writes waiting for
//! as long as it takes to copy what is left).
//!
//! Durability is unchanged: a commit is acknowledged once it is in the WAL, as before
//! (`writer.rs`); a checkpoint only moves committed pages into the database file.

use std::path::{Path, PathBuf};
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

/// Size of the WAL file past which the writer empties it (1 MB in tests).
const WAL_LIMIT_BYTES: u64 = if cfg!(test) { 1 << 20 } else { 64 << 20 };

/// The checkpointing thread of one database file; stopped (and waited for) when dropped.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    /// The WAL file.
    wal: PathBuf,
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
        let mut wal = file.as_os_str().to_owned();
        wal.push("-wal");
        Ok(Self { wal: wal.into(), state, thread: Some(thread) })
    }

    /// Tells the thread that a transaction was committed.
    pub(crate) fn committed(&self) {
        self.state.dirty.store(true, Ordering::Release);
    }

    /// On the writer's connection, between two transactions: when the WAL file is past
    /// [`WAL_LIMIT_BYTES`], copies what is left of it into the database file and empties it
    /// (waiting up to the busy timeout for readers of older snapshots; one that could not finish,
    /// or met this thread's checkpoint, is tried again after the next turn).
    pub(crate) fn bound(&self, writer: &Connection) {
        if std::fs::metadata(&self.wal).map_or(0, |m| m.len()) <= WAL_LIMIT_BYTES {
            return;
        }
        match writer.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0)) {
            Ok(0) => tracing::debug!("sqlite WAL copied in full and emptied"),
            Ok(_) => tracing::debug!("sqlite WAL not emptied yet: busy"),
            Err(e) => tracing::debug!(error = %e, "sqlite WAL not emptied yet"),
        }
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

    /// A writer that never pauses still gets its WAL emptied: passive checkpoints alone never
    /// catch up with it, and a WAL file, once grown, keeps its size until it is truncated.
    #[tokio::test]
    async fn the_wal_of_a_writer_that_never_pauses_is_emptied() {
        let dir = std::env::temp_dir().join(format!("fhirgate-sqlite-wal-bound-{}", std::process::id()));
        let file = dir.join("fhir.db");
        let wal = dir.join("fhir.db-wal");
        let store = crate::open(&file).await.expect("a migrated file");
        let padding = "x".repeat(10_000);
        let write = |n: usize| {
            let mut v = version("Patient", &format!("p{n}"), 1, 0);
            v.json = Some(format!(r#"{{"resourceType":"Patient","id":"p{n}","text":"{padding}"}}"#));
            Write { version: v, index: sample_index() }
        };
        let (mut n, mut largest) = (0, 0);
        let started = std::time::Instant::now();
        while started.elapsed() < super::INTERVAL * 8 {
            store.transact(vec![write(n)]).await.expect("a write");
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            n += 1;
        }
        tokio::time::sleep(super::INTERVAL * 3).await;
        store.transact(vec![write(n)]).await.expect("a write");
        let left = std::fs::metadata(&wal).map_or(0, |m| m.len());
        assert!(largest < 32_000_000, "{n} writes of 10 KB; the WAL reached {largest} bytes");
        assert!(left < 1_000_000, "{n} writes of 10 KB; the WAL reached {largest} bytes and still holds {left}");
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
