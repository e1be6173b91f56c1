//! Applying batches of writes atomically on SQLite (create, update, delete and transaction all
//! end here; <https://hl7.org/fhir/R4/http.html#concurrency>); the steps themselves are
//! `fhirgate_sql::write`'s.
//!
//! **Group commit.** Every commit appends each B-tree page it touched to the WAL, and a small
//! write touches a page of every table and index it writes to (tens of pages for a 2 KB
//! Patient): with one commit per write, creates spent half their time in the kernel writing WAL
//! pages (bench/README.md). So the batches that queue while a group is being written (for a
//! database file: in the writer thread's channel, `writer.rs`) are written together, in arrival
//! order, in one `BEGIN IMMEDIATE` transaction, each in a savepoint of its own: a batch that
//! fails (a version conflict, a matched guard, a failing statement) is rolled back to its
//! savepoint and fails alone; the others commit. Every batch is answered after the group's
//! `COMMIT`, so an acknowledged write is as durable as a write committed alone.
//!
//! An in-memory database (tests, `sqlite::memory:`) has no writer thread: its one sqlx
//! connection, shared with its reads, runs each batch as a group of one, in a task of its own so
//! that a caller that goes away (a client gone, a timeout) cannot cut a transaction short.

use fhirgate_engine::storage::{Guard, Write};
use fhirgate_sql::{Driver, Error, Sql, write};
use sqlx::SqlitePool;
use tokio::sync::oneshot;

/// One batch and whom to answer.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) writes: Vec<Write>,
    pub(crate) guards: Vec<Guard>,
    pub(crate) done: oneshot::Sender<Result<(), Error>>,
}

/// Stores every write of the batch or none, on the pool's one connection (an in-memory
/// database). `BEGIN IMMEDIATE` takes SQLite's write lock before the first check, so no other
/// writer can slip in between a check and its insert.
pub(crate) async fn transact_pooled(pool: &SqlitePool, writes: Vec<Write>, guards: &[Guard]) -> Result<(), Error> {
    let (done, answer) = oneshot::channel();
    let job = Job { writes, guards: guards.to_vec(), done };
    let pool = pool.clone();
    tokio::spawn(async move {
        let answer = match pool.acquire().await {
            Ok(mut connection) => group(&mut *connection, std::slice::from_ref(&job)).await.pop(),
            Err(e) => Some(Err(Error::from(e))),
        };
        let _ = job.done.send(answer.unwrap_or_else(|| Err(Error::GroupFailed("no answer".into()))));
    });
    answer.await.unwrap_or_else(|_| Err(Error::GroupFailed("the write's task stopped before its commit".into())))
}

/// One transaction for `jobs`; each job's answer. `BEGIN IMMEDIATE` takes SQLite's write lock
/// before the first check, so no other writer (in this process or another) slips in between a
/// check and its insert, and the positions the inserts draw are in commit order; guards,
/// checked first inside the same transaction (after the batches before them in the group),
/// still hold at the commit.
///
/// A batch whose checks fail has written nothing, so the group is first written without a
/// savepoint per batch (a savepoint makes SQLite copy every page its batch changes into a
/// sub-journal first). Only when a statement fails part-way through a batch (half of it
/// written) is the group rolled back and written again, each batch in its savepoint.
pub(crate) async fn group(db: &mut dyn Driver, jobs: &[Job]) -> Vec<Result<(), Error>> {
    match transaction(db, jobs, false).await {
        Some(answers) => answers,
        None => transaction(db, jobs, true).await.unwrap_or_default(),
    }
}

/// [`group`]'s transaction, each batch in a savepoint of its own when `savepoints`; `None` when
/// (without savepoints, in a group of several batches) a batch failed half-written and the
/// transaction was rolled back.
async fn transaction(db: &mut dyn Driver, jobs: &[Job], savepoints: bool) -> Option<Vec<Result<(), Error>>> {
    let failed = |message: String| Some(jobs.iter().map(|_| Err(Error::GroupFailed(message.clone()))).collect());
    if let Err(e) = run(db, "BEGIN IMMEDIATE").await {
        return failed(e.to_string());
    }
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        let answer = if savepoints {
            match savepointed(db, job).await {
                Ok(answer) => answer,
                Err(e) => {
                    let _ = run(db, "ROLLBACK").await;
                    return failed(e.to_string());
                }
            }
        } else {
            match apply(db, &job.writes, &job.guards).await {
                // Alone, a batch half-written is rolled back with the transaction below.
                Err(Applied::HalfWritten(_)) if jobs.len() > 1 => {
                    let _ = run(db, "ROLLBACK").await;
                    return None;
                }
                answer => answer.map_err(Applied::into_error),
            }
        };
        answers.push(answer);
    }
    if !answers.iter().any(Result::is_ok) {
        let _ = run(db, "ROLLBACK").await;
        return Some(answers);
    }
    match run(db, "COMMIT").await {
        Ok(()) => Some(answers),
        Err(e) => {
            // A failed COMMIT may leave the transaction open (SQLite): end it, so the next
            // group starts afresh.
            let _ = run(db, "ROLLBACK").await;
            let message = e.to_string();
            Some(answers.into_iter().map(|a| a.and(Err(Error::GroupFailed(message.clone())))).collect())
        }
    }
}

/// Runs a statement without parameters.
async fn run(db: &mut dyn Driver, text: &str) -> Result<(), Error> {
    db.execute(&Sql { text: text.into(), binds: Vec::new() }).await
}

/// One job of a group in a savepoint: its answer, or the error that leaves the transaction in
/// an unknown state (the whole group fails then).
async fn savepointed(db: &mut dyn Driver, job: &Job) -> Result<Result<(), Error>, Error> {
    run(db, "SAVEPOINT batch").await?;
    let answer = apply(db, &job.writes, &job.guards).await.map_err(Applied::into_error);
    if answer.is_err() {
        run(db, "ROLLBACK TO batch").await?;
    }
    run(db, "RELEASE batch").await?;
    Ok(answer)
}

/// Why a batch was not applied.
enum Applied {
    /// Its checks failed: nothing of it was written.
    Refused(Error),
    /// A statement failed after others of the batch were written.
    HalfWritten(Error),
}

impl Applied {
    fn into_error(self) -> Error {
        match self {
            Self::Refused(e) | Self::HalfWritten(e) => e,
        }
    }
}

/// Checks the guards, then each write's precondition against what is stored (read for the whole
/// batch at once; a later write of the same resource expects the version an earlier one
/// wrote), and inserts them all.
async fn apply(db: &mut dyn Driver, writes: &[Write], guards: &[Guard]) -> Result<(), Applied> {
    write::check_guards(db, guards).await.map_err(Applied::Refused)?;
    let mut current = write::stored_versions(db, writes).await.map_err(Applied::Refused)?;
    for w in writes {
        let expected = write::expected(w).map_err(Applied::Refused)?;
        let key = (w.version.resource_type.clone(), w.version.id.clone());
        let found = current.get(&key).copied().unwrap_or(0);
        if found != expected {
            return Err(Applied::Refused(Error::conflict(w, expected, found)));
        }
        current.insert(key, w.version.version);
    }
    write::append_all(db, writes).await.map_err(Applied::HalfWritten)
}

#[cfg(test)]
mod tests {
    #![expect(clippy::expect_used, reason = "tests: a failed expectation is a failed test")]

    use fhirgate_engine::storage::contract::{sample_index, version};
    use sqlx::sqlite::SqlitePoolOptions;

    use super::*;

    fn job(versions: Vec<fhirgate_engine::storage::ResourceVersion>) -> (Job, oneshot::Receiver<Result<(), Error>>) {
        let (done, answer) = oneshot::channel();
        let writes = versions.into_iter().map(|version| Write { version, index: sample_index() }).collect();
        (Job { writes, guards: Vec::new(), done }, answer)
    }

    /// Batches of one group fail alone: the conflicting one is rolled back to its savepoint,
    /// the ones before and after it commit, and a later batch sees what an earlier one wrote.
    async fn batches_of_a_group_fail_alone(db: &mut dyn Driver) {
        let (a, _) = job(vec![version("Patient", "a", 1, 0), version("Observation", "o", 1, 0)]);
        let (conflict, _) = job(vec![version("Patient", "b", 1, 0), version("Patient", "a", 1, 0)]);
        // A batch that fails half-way through its inserts (here a trigger refuses one row).
        let (half, _) = job(vec![version("Patient", "c", 1, 0), version("Patient", "boom", 1, 0)]);
        let (after, _) = job(vec![version("Patient", "a", 2, 10)]);
        let trigger = "CREATE TEMP TRIGGER boom BEFORE INSERT ON search_current WHEN NEW.id = 'boom' \
                       BEGIN SELECT RAISE(ABORT, 'boom'); END";
        run(db, trigger).await.expect("trigger");
        let answers = group(db, &[a, conflict, half, after]).await;
        assert!(answers[0].is_ok(), "{answers:?}");
        assert!(matches!(answers[1], Err(Error::VersionConflict { .. })), "{answers:?}");
        assert!(answers[2].is_err(), "{answers:?}");
        assert!(answers[3].is_ok(), "a later batch expects what an earlier one wrote: {answers:?}");
        let stored = db
            .matches(&Sql {
                text: "SELECT resource_type, id, version FROM resource_version ORDER BY pos".into(),
                binds: vec![],
            })
            .await
            .expect("versions");
        let names: Vec<String> = stored.iter().map(|(t, id, v)| format!("{t}/{id}/{v}")).collect();
        assert_eq!(names, ["Patient/a/1", "Observation/o/1", "Patient/a/2"], "nothing of the failed batches");
        let count = "SELECT COUNT(*) FROM search_current WHERE id IN ('b', 'c', 'boom')";
        let rows = db.integer(&Sql { text: count.into(), binds: vec![] }).await.expect("count");
        assert_eq!(rows, Some(0), "nor its search rows");
        // The connection is out of the transaction: the next group starts afresh.
        let (next, _) = job(vec![version("Patient", "d", 1, 0)]);
        assert!(group(db, &[next]).await[0].is_ok());
    }

    #[tokio::test]
    async fn a_group_on_an_sqlx_connection_fails_its_batches_one_by_one() {
        let pool = SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await.expect("open");
        sqlx::migrate!("./migrations").run(&pool).await.expect("migrate");
        let mut connection = pool.acquire().await.expect("connection");
        batches_of_a_group_fail_alone(&mut *connection).await;
    }

    #[tokio::test]
    async fn a_group_on_the_writer_connection_fails_its_batches_one_by_one() {
        let dir = std::env::temp_dir().join(format!("fhirgate-sqlite-group-{}", std::process::id()));
        let file = dir.join("fhir.db");
        let store = crate::open(&file).await.expect("a migrated file");
        let mut connection =
            crate::writer::connection(&file, crate::deferred::Aside::default()).expect("a writer connection");
        batches_of_a_group_fail_alone(&mut connection).await;
        drop(connection);
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
