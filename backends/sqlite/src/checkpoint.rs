//! Checkpoints of a database file's WAL on a thread of their own, off the writer's path.
//!
//! SQLite's default (`wal_autocheckpoint = 1000`) has the connection whose commit takes the WAL
//! past 1,000 pages copy them into the database file and sync both files before that `COMMIT`
//! returns: every few dozen groups, one group's callers (and every write queued behind them)
//! waited for a checkpoint and two `fsync`s. Here the writer connection never checkpoints but
//! to start the WAL over (below); this thread, on a connection of its own, runs a `PASSIVE`
//! checkpoint whenever something was committed: every [`BUSY_INTERVAL`] while commits keep
//! coming, else after [`INTERVAL`]. A passive checkpoint takes no lock a writer or reader waits
//! for: the writer keeps appending to the WAL meanwhile.
//!
//! A passive checkpoint never catches up with a writer that never pauses: the WAL starts over
//! only when it was copied in full as a write begins (a bulk load once grew it to 36 GB beside a
//! 6 GB database and filled the disk). So once the WAL holds more than [`WAL_LIMIT_BYTES`],
//! the writer, between two transactions and between two of this thread's checkpoints, copies
//! what is left and starts it over itself ([`Checkpointer::bound`]: a `RESTART` checkpoint,
//! which keeps writes waiting while it copies what was committed since this thread's last
//! checkpoint began). The file is written over from its start, not emptied: emptying it
//! (`TRUNCATE`) cost the writer the truncation and every later append the file's growth again.
//! Under creates at 1,000 patients this thread copies about as fast as the writer appends, so a
//! start-over copies one checkpoint's worth of frames (100-300 ms, bench/README.md); the larger
//! the limit, the rarer these pauses.
//!
//! Durability is unchanged: a commit is acknowledged once it is in the WAL, as before
//! (`writer.rs`); a checkpoint only moves committed pages into the database file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::thread::JoinHandle;
use std::time::Duration;

use fhirgate_sql::Error;
use rusqlite::{Connection, OpenFlags};

use crate::BUSY_TIMEOUT;
use crate::readers::failed;

/// The longest a commit waits to be copied into the database file when writes are few.
const INTERVAL: Duration = Duration::from_millis(250);

/// The pause between two checkpoints while commits keep coming: the less this thread lags
/// behind the writer, the less is left for the writer to copy when it starts the WAL over.
const BUSY_INTERVAL: Duration = Duration::from_millis(20);

/// Size of the WAL past which the writer starts it over (1 MB in tests); also the size its file
/// is cut back to then (`journal_size_limit`, `writer.rs`). A start-over pauses writes for what
/// the last checkpoint had not copied, whatever the limit, so the larger the limit the rarer
/// the pause: with 256 MB it came about once a second under creates and set their p99 (55 ms
/// at 100 patients); with 1 GB, every few seconds, p99 16-19 ms (bench/README.md). Readers are
/// not slowed by a long WAL: they look up only the frames not yet checkpointed.
pub(crate) const WAL_LIMIT_BYTES: u64 = if cfg!(test) { 1 << 20 } else { 1 << 30 };

/// [`WAL_LIMIT_BYTES`] in WAL frames of 4 KB pages (each with its 24-byte header).
const WAL_LIMIT_FRAMES: i64 = (WAL_LIMIT_BYTES / (4096 + 24)) as i64;

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
    /// Frames in the WAL at the last checkpoint (0 once the writer started it over).
    frames: AtomicI64,
    /// Held by whichever connection checkpoints: the writer starts the WAL over between this
    /// thread's checkpoints, never waiting for one (SQLite would have it sleep in steps of its
    /// busy handler until that checkpoint ended).
    turn: Mutex<()>,
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

    /// On the writer's connection, between two transactions: when the WAL held more than
    /// [`WAL_LIMIT_BYTES`] at the last checkpoint (or its file is larger than that: a WAL this
    /// thread has not seen yet), copies what is left of it into the database file and starts
    /// it over (`RESTART`: the next commit writes from the file's start, over what is there,
    /// and cuts a larger file back to the limit), waiting up to the busy timeout for readers of
    /// older snapshots; one that could not finish, or met this thread's checkpoint, is tried
    /// again after the next turn.
    pub(crate) fn bound(&self, writer: &Connection) {
        let frames = self.state.frames.load(Ordering::Acquire);
        let unseen = frames == 0 && std::fs::metadata(&self.wal).map_or(0, |m| m.len()) > 2 * WAL_LIMIT_BYTES;
        if frames <= WAL_LIMIT_FRAMES && !unseen {
            return;
        }
        // This thread is checkpointing: after it (at the next turn), what is left is less.
        let _turn = match self.state.turn.try_lock() {
            Ok(turn) => turn,
            Err(TryLockError::Poisoned(turn)) => turn.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        let started = std::time::Instant::now();
        let done = writer.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| row.get::<_, i64>(0));
        let ms = started.elapsed().as_secs_f64() * 1e3;
        match done {
            Ok(0) => {
                self.state.frames.store(0, Ordering::Release);
                tracing::debug!(frames, ms, "sqlite WAL copied in full and started over");
            }
            Ok(_) => tracing::debug!(frames, ms, "sqlite WAL not started over yet: busy"),
            Err(e) => tracing::debug!(error = %e, frames, ms, "sqlite WAL not started over yet"),
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

/// A passive checkpoint whenever something was committed: every [`BUSY_INTERVAL`] while
/// commits keep coming, else after [`INTERVAL`]; until stopped.
fn run(connection: &Connection, state: &State) {
    let mut busy = false;
    while !state.stop.load(Ordering::Acquire) {
        std::thread::park_timeout(if busy { BUSY_INTERVAL } else { INTERVAL });
        busy = state.dirty.swap(false, Ordering::AcqRel);
        if busy {
            // (busy, pages in the WAL, pages copied); a failure is tried again next time.
            let turn = state.turn.lock();
            let started = std::time::Instant::now();
            let done = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
            });
            drop(turn);
            match done {
                // (-1, -1 while the writer starts the WAL over.)
                Ok((_, wal, copied)) if wal >= 0 => {
                    state.frames.store(wal, Ordering::Release);
                    let ms = started.elapsed().as_secs_f64() * 1e3;
                    tracing::trace!(wal, copied, ms, "sqlite checkpoint");
                }
                Ok(_) => {}
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

    /// A writer that never pauses still has its WAL started over: passive checkpoints alone
    /// never catch up with it, and a WAL file, once grown, keeps its size until it is cut back.
    #[tokio::test]
    async fn the_wal_of_a_writer_that_never_pauses_stays_bounded() {
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
        assert!(
            left <= super::WAL_LIMIT_BYTES,
            "{n} writes of 10 KB; the WAL reached {largest} bytes and its file is still {left}"
        );
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
