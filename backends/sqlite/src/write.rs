//! Applying a batch of writes atomically on SQLite (create, update, delete and transaction all
//! end here; <https://hl7.org/fhir/R4/http.html#concurrency>); the steps themselves are
//! `fhirgate_sql::write`'s.
//!
//! **Group commit.** Every commit appends each B-tree page it touched to the WAL, and a small
//! write touches a page of every table and index it writes to (tens of pages for a 2 KB
//! Patient): with one commit per write, creates spent half their time in the kernel writing WAL
//! pages (bench/README.md). So batches that arrive while another group is being written are
//! queued and written together, in arrival order, in one `BEGIN IMMEDIATE` transaction, each in
//! a savepoint of its own: a batch that fails (a version conflict, a matched guard) is rolled
//! back to its savepoint and fails alone; the others commit. Every batch is answered after the
//! group's `COMMIT`, so an acknowledged write is as durable as before. A group runs in a task of
//! its own, so a caller that goes away (a client gone, a timeout) cannot cut short the
//! transaction of the batches queued with its own.

use std::sync::{Arc, Mutex};

use fhirgate_engine::storage::{Guard, Write};
use fhirgate_sql::{Driver, Error, write};
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::oneshot;

/// Batches waiting for the writer connection.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    waiting: Mutex<Vec<Job>>,
}

/// One batch and whom to answer.
#[derive(Debug)]
struct Job {
    writes: Vec<Write>,
    guards: Vec<Guard>,
    done: oneshot::Sender<Result<(), Error>>,
}

/// Stores every write of the batch or none, in a group with whatever other batches are waiting.
/// `BEGIN IMMEDIATE` takes SQLite's write lock before the first check, so no other writer (in
/// this process or another) can slip in between a check and its insert; in this process groups
/// already queue for the pool's single connection. The positions the inserts draw are therefore
/// in commit order, and guards, checked first inside the same transaction (after the batches
/// before them in the group), still hold at the commit.
pub(crate) async fn transact(
    pool: &SqlitePool,
    queue: &Arc<Queue>,
    writes: Vec<Write>,
    guards: &[Guard],
) -> Result<(), Error> {
    if writes.is_empty() {
        return Ok(());
    }
    let (done, answer) = oneshot::channel();
    match queue.waiting.lock() {
        Ok(mut waiting) => waiting.push(Job { writes, guards: guards.to_vec(), done }),
        Err(_) => return Err(Error::GroupFailed("the write queue is poisoned".into())),
    }
    tokio::spawn(commit_waiting(pool.clone(), queue.clone()));
    answer.await.unwrap_or_else(|_| Err(Error::GroupFailed("the group's task stopped before its commit".into())))
}

/// Takes the writer connection, then every batch waiting by then (none if an earlier group took
/// them all), and commits them as one group.
async fn commit_waiting(pool: SqlitePool, queue: Arc<Queue>) {
    let connection = pool.acquire().await;
    let jobs = match queue.waiting.lock() {
        Ok(mut waiting) => std::mem::take(&mut *waiting),
        Err(_) => return, // the answers' senders drop with the queue: every caller gets an error
    };
    if jobs.is_empty() {
        return;
    }
    let mut connection = match connection {
        Ok(c) => c,
        Err(e) => {
            let message = e.to_string();
            for job in jobs {
                let _ = job.done.send(Err(Error::GroupFailed(message.clone())));
            }
            return;
        }
    };
    let answers = group(&mut connection, &jobs).await;
    for (job, answer) in jobs.into_iter().zip(answers) {
        let _ = job.done.send(answer);
    }
}

/// One transaction for `jobs`; each job's answer.
async fn group(connection: &mut SqliteConnection, jobs: &[Job]) -> Vec<Result<(), Error>> {
    use sqlx::Connection as _;

    let failed = |message: String| jobs.iter().map(|_| Err(Error::GroupFailed(message.clone()))).collect();
    let mut tx = match connection.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => return failed(e.to_string()),
    };
    let mut answers = Vec::with_capacity(jobs.len());
    if let [job] = jobs {
        // Alone: no savepoint needed, a failure rolls the whole transaction back.
        answers.push(apply(&mut *tx, &job.writes, &job.guards).await);
    } else {
        for job in jobs {
            match savepointed(&mut tx, job).await {
                Ok(answer) => answers.push(answer),
                Err(e) => {
                    let _ = tx.rollback().await;
                    return failed(e.to_string());
                }
            }
        }
    }
    if !answers.iter().any(Result::is_ok) {
        let _ = tx.rollback().await;
        return answers;
    }
    match tx.commit().await {
        Ok(()) => answers,
        Err(e) => {
            let message = e.to_string();
            answers.into_iter().map(|a| a.and(Err(Error::GroupFailed(message.clone())))).collect()
        }
    }
}

/// One job of a group in a savepoint: its answer, or the error that leaves the transaction in
/// an unknown state (the whole group fails then).
async fn savepointed(tx: &mut SqliteConnection, job: &Job) -> Result<Result<(), Error>, sqlx::Error> {
    sqlx::query("SAVEPOINT batch").execute(&mut *tx).await?;
    let answer = apply(&mut *tx, &job.writes, &job.guards).await;
    if answer.is_err() {
        sqlx::query("ROLLBACK TO batch").execute(&mut *tx).await?;
    }
    sqlx::query("RELEASE batch").execute(&mut *tx).await?;
    Ok(answer)
}

/// Checks the guards, then each write's precondition against what is stored (read for the whole
/// batch at once; a later write of the same resource expects the version an earlier one
/// wrote), and inserts them all.
async fn apply(db: &mut dyn Driver, writes: &[Write], guards: &[Guard]) -> Result<(), Error> {
    write::check_guards(db, guards).await?;
    let mut current = write::stored_versions(db, writes).await?;
    for w in writes {
        let expected = write::expected(w)?;
        let key = (w.version.resource_type.clone(), w.version.id.clone());
        let found = current.get(&key).copied().unwrap_or(0);
        if found != expected {
            return Err(Error::conflict(w, expected, found));
        }
        current.insert(key, w.version.version);
    }
    write::append_all(db, writes).await
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
    #[tokio::test]
    async fn a_group_commits_its_batches_and_fails_them_one_by_one() {
        let pool = SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await.expect("open");
        sqlx::migrate!("./migrations").run(&pool).await.expect("migrate");
        let (a, _) = job(vec![version("Patient", "a", 1, 0), version("Observation", "o", 1, 0)]);
        let (conflict, _) = job(vec![version("Patient", "b", 1, 0), version("Patient", "a", 1, 0)]);
        // A batch that fails half-way through its inserts (here a trigger refuses one row).
        let (half, _) = job(vec![version("Patient", "c", 1, 0), version("Patient", "boom", 1, 0)]);
        let (after, _) = job(vec![version("Patient", "a", 2, 10)]);
        let mut connection = pool.acquire().await.expect("connection");
        sqlx::query(
            "CREATE TEMP TRIGGER boom BEFORE INSERT ON search_current WHEN NEW.id = 'boom' \
             BEGIN SELECT RAISE(ABORT, 'boom'); END",
        )
        .execute(&mut *connection)
        .await
        .expect("trigger");
        let answers = group(&mut connection, &[a, conflict, half, after]).await;
        assert!(answers[0].is_ok(), "{answers:?}");
        assert!(matches!(answers[1], Err(Error::VersionConflict { .. })), "{answers:?}");
        assert!(answers[2].is_err(), "{answers:?}");
        assert!(answers[3].is_ok(), "a later batch expects what an earlier one wrote: {answers:?}");
        let stored: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT resource_type, id, version FROM resource_version ORDER BY pos")
                .fetch_all(&mut *connection)
                .await
                .expect("versions");
        let names: Vec<String> = stored.iter().map(|(t, id, v)| format!("{t}/{id}/{v}")).collect();
        assert_eq!(names, ["Patient/a/1", "Observation/o/1", "Patient/a/2"], "nothing of the failed batches");
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM search_current WHERE id IN ('b', 'c', 'boom')")
            .fetch_one(&mut *connection)
            .await
            .expect("count");
        assert_eq!(rows, 0, "nor its search rows");
    }
}
