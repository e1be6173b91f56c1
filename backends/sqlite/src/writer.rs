//! The dedicated writer of a database file: one thread owning one `rusqlite` connection, which
//! every write of the store queues for and which commits them in groups (`write.rs`).
//!
//! sqlx runs each SQLite statement on its connection's worker thread and answers over a
//! channel: a create was a dozen statements, so a dozen hand-offs each way, and its statements
//! were parsed again whenever their joined text changed (bench/README.md, "Where creates go").
//! Here the writes of a group run one after the other on this thread, each statement prepared
//! once per connection and reused (`prepare_cached`); a caller waits for one hand-off there and
//! one answer back.
//!
//! **Group commit.** While the thread commits one group, the batches that arrive queue in its
//! channel; it then takes all of them (up to [`GROUP_WRITES`] writes) as the next group. One
//! group is one transaction and one WAL append, whatever the number of callers in it.
//!
//! **Durability.** The file is in WAL mode with `synchronous = NORMAL`: a `COMMIT` returns once
//! the transaction is written to the WAL file (in the kernel's page cache), and only then are
//! the group's callers answered. An acknowledged write therefore survives a crash of the
//! process (`kill -9`), as the kernel still writes the file; a power loss or kernel crash may
//! lose the last transactions acknowledged before it, never half of one (the WAL is only
//! synced at checkpoints). `synchronous = FULL` would sync the WAL on each commit.
//!
//! **Loads.** An initial load's batch ([`Writer::load`], `load.rs`) is a transaction of its
//! own, after the group queued before it: its many single-row inserts need no savepoint and no
//! per-write check beyond its own. So are the search indexes the load sets aside and builds at
//! its end (`deferred.rs`).
//!
//! **Closing.** [`Writer::close`] lets the thread finish the groups already queued and end,
//! closing its connection; later writes fail with an error. Dropping every clone of the store
//! does the same without waiting.

use std::path::Path;
use std::sync::mpsc;

use async_trait::async_trait;
use fhirgate_engine::storage::{Guard, Write};
use fhirgate_sql::{Dialect, Driver, Error, KeyedRow, MatchRow, ONE_OFF_TEXT, SortKind, Sql, VersionRow};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::checkpoint::{Checkpointer, WAL_LIMIT_BYTES};
use crate::deferred::Aside;
use crate::readers::{bind, failed, first_integer, keyed_matches, matches, pairs, versions};
use crate::write::{Job, group};
use crate::{BUSY_TIMEOUT, CACHE_KIB};

/// Writes taken into one group at most (a batch larger than this is a group of its own): a
/// bound on how long the callers of one group wait for each other.
const GROUP_WRITES: usize = 2_000;
/// Helper threads SQLite may sort with when it builds an index (`deferred.rs`).
const SORT_THREADS: usize = 2;
/// Prepared statements kept: a write's statements differ by table, columns and row count.
const STATEMENTS: usize = 256;

/// What the writer thread is sent.
enum Message {
    Write(Job),
    /// Work on the connection alone, after the group queued before it (an initial load's batch,
    /// `load.rs`; the indexes it sets aside, `deferred.rs`); it answers its caller itself.
    Alone(Box<dyn FnOnce(&Connection) + Send>),
    /// Finish what is queued, then end; answered once the connection is closed.
    Close(oneshot::Sender<()>),
}

/// The handle of the writer thread of one database file.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Message>,
    aside: Aside,
}

impl Writer {
    /// Opens the writer connection on `file` (whose schema is up to date) and starts its thread.
    pub(crate) fn start(file: &Path, aside: Aside) -> Result<Self, Error> {
        let connection = connection(file, aside.clone())?;
        let checkpointer = Checkpointer::start(file)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| Error::Open(format!("the sqlite writer's runtime: {e}")))?;
        let (queue, received) = mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || serve(connection, checkpointer, &runtime, &received))
            .map_err(|e| Error::Open(format!("starting the sqlite writer thread: {e}")))?;
        Ok(Self { queue, aside })
    }

    /// Queues one batch and waits for its group's commit: its own answer.
    pub(crate) async fn transact(&self, writes: Vec<Write>, guards: &[Guard]) -> Result<(), Error> {
        let (done, answer) = oneshot::channel();
        let job = Job { writes, guards: guards.to_vec(), done };
        self.queue.send(Message::Write(job)).map_err(|_| Error::GroupFailed("the store is closed".into()))?;
        answer.await.unwrap_or_else(|_| Err(Error::GroupFailed("the writer stopped before the commit".into())))
    }

    /// Queues an initial load's batch and waits for its commit.
    pub(crate) async fn load(&self, writes: Vec<Write>) -> Result<(), Error> {
        self.alone(move |connection| crate::load::load(connection, &writes)).await
    }

    /// Sets aside the search indexes for an initial load (`deferred.rs`).
    pub(crate) async fn set_aside(&self) -> Result<(), Error> {
        let aside = self.aside.clone();
        self.alone(move |connection| crate::deferred::set_aside(connection, &aside)).await
    }

    /// Builds one index an initial load set aside; `true` if more remain (`deferred.rs`).
    pub(crate) async fn build_one(&self) -> Result<bool, Error> {
        let aside = self.aside.clone();
        self.alone(move |connection| crate::deferred::build_one(connection, &aside)).await
    }

    /// Runs `work` on the writer's connection after what is queued, and waits for its answer.
    async fn alone<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let (done, answer) = oneshot::channel();
        let job = Box::new(move |connection: &Connection| {
            let _ = done.send(work(connection));
        });
        self.queue.send(Message::Alone(job)).map_err(|_| Error::GroupFailed("the store is closed".into()))?;
        answer.await.unwrap_or_else(|_| Err(Error::GroupFailed("the writer stopped before the commit".into())))
    }

    /// Lets the thread commit what is queued, then stop; waits for it.
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Message::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

/// The writer connection: the file's usual settings (see the module doc for `synchronous`); it
/// checkpoints the WAL only to start it over once past its bound (`checkpoint.rs` does the
/// rest). Its temporary data is kept in memory: inside a transaction, SQLite copies each page a
/// statement that could fail part-way changes into a statement journal first, which spilled to
/// a temporary file past 64 KB (a file created, written and removed for nearly every create);
/// the journal lives as long as its statement (an initial load's index builds sort to files,
/// `deferred.rs`).
pub(crate) fn connection(file: &Path, aside: Aside) -> Result<WriteConnection, Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let connection = Connection::open_with_flags(file, flags).map_err(failed)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
    connection
        .execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA cache_size = {CACHE_KIB}; PRAGMA wal_autocheckpoint = 0; PRAGMA threads = {SORT_THREADS}; \
             PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}; PRAGMA temp_store = MEMORY;"
        ))
        .map_err(failed)?;
    crate::stable_plans(&connection).map_err(failed)?;
    connection.set_prepared_statement_cache_capacity(STATEMENTS);
    Ok(WriteConnection(connection, aside))
}

/// The thread: a group per turn, of every batch queued by then (up to work to be done alone,
/// which follows the group), until closed or forgotten.
fn serve(
    mut connection: WriteConnection,
    checkpointer: Checkpointer,
    runtime: &tokio::runtime::Runtime,
    received: &mpsc::Receiver<Message>,
) {
    let mut closing = None;
    while closing.is_none() {
        let Ok(first) = received.recv() else { break }; // every handle dropped
        let mut jobs = Vec::new();
        let mut alone = None;
        let mut writes = 0;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Write(job) => {
                    writes += job.writes.len();
                    jobs.push(job);
                }
                Message::Alone(work) => alone = Some(work),
                Message::Close(done) => closing = Some(done),
            }
            if writes < GROUP_WRITES && closing.is_none() && alone.is_none() {
                next = received.try_recv().ok();
            }
        }
        if !jobs.is_empty() {
            // The driver below never waits: the runtime only drives the shared async write steps.
            let answers = runtime.block_on(group(&mut connection, &jobs));
            if answers.iter().any(Result::is_ok) {
                checkpointer.committed();
            }
            for (job, answer) in jobs.into_iter().zip(answers) {
                let _ = job.done.send(answer);
            }
        }
        if let Some(work) = alone {
            // A load's writes are dropped before its caller, woken, makes its next batch.
            work(&connection.0);
            checkpointer.committed();
        }
        checkpointer.bound(&connection.0);
    }
    drop(checkpointer); // its last checkpoint done, its thread ended
    drop(connection);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// The writer's connection as a [`Driver`]: every statement runs here, on the writer thread.
pub(crate) struct WriteConnection(Connection, Aside);

#[async_trait]
impl Driver for WriteConnection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn value_indexes(&mut self) -> bool {
        self.1.value_indexes(&self.0)
    }

    fn value_indexes_gone(&mut self) {
        self.1.gone();
    }

    async fn versions(&mut self, sql: &Sql) -> Result<Vec<VersionRow>, Error> {
        versions(&self.0, sql)
    }

    async fn matches(&mut self, sql: &Sql) -> Result<Vec<MatchRow>, Error> {
        matches(&self.0, sql)
    }

    async fn keyed_matches(&mut self, sql: &Sql, kinds: &[SortKind]) -> Result<Vec<KeyedRow>, Error> {
        keyed_matches(&self.0, sql, kinds)
    }

    async fn pairs(&mut self, sql: &Sql) -> Result<Vec<(String, String)>, Error> {
        pairs(&self.0, sql)
    }

    async fn integer(&mut self, sql: &Sql) -> Result<Option<i64>, Error> {
        first_integer(&self.0, sql)
    }

    async fn execute(&mut self, sql: &Sql) -> Result<(), Error> {
        // A long text is a multi-row insert of one batch, unlikely to come again: not worth a
        // place among the prepared statements.
        if sql.text.len() <= ONE_OFF_TEXT {
            let mut statement = self.0.prepare_cached(&sql.text).map_err(failed)?;
            run(&mut statement, sql)
        } else {
            let mut statement = self.0.prepare(&sql.text).map_err(failed)?;
            run(&mut statement, sql)
        }
    }
}

/// Binds and runs one statement that returns no rows.
fn run(statement: &mut rusqlite::Statement<'_>, sql: &Sql) -> Result<(), Error> {
    bind(statement, sql)?;
    statement.raw_execute().map_err(failed)?;
    Ok(())
}
