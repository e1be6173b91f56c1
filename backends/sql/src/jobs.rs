//! Job records ([`JobRecord`]) in table `job` (migration 0005 of each store): one row per job,
//! its version checked by the statement that writes it.

use fhirgate_engine::storage::JobRecord;

use crate::bind::{Bind, Binder};
use crate::driver::Driver;
use crate::{Error, Sql};

fn sql(driver: &dyn Driver, build: impl FnOnce(&mut Binder) -> String) -> Sql {
    let mut binder = Binder::new(driver.dialect());
    let text = build(&mut binder);
    Sql { text, binds: binder.binds }
}

fn version(n: u64) -> Result<i64, Error> {
    i64::try_from(n).map_err(|_| Error::Invalid(format!("job version {n} out of range")))
}

fn record(id: String, kind: String, body: String, version: i64) -> Result<JobRecord, Error> {
    let version = u64::try_from(version).map_err(|_| Error::Corrupt(format!("job `{id}` has version {version}")))?;
    Ok(JobRecord { id, kind, version, body })
}

/// The record of job `id`.
pub(crate) async fn get(driver: &mut dyn Driver, id: &str) -> Result<Option<JobRecord>, Error> {
    let statement = sql(driver, |b| format!("SELECT kind, body, version FROM job WHERE id = {}", b.text(id)));
    let row = driver.matches(&statement).await?.into_iter().next();
    row.map(|(kind, body, version)| record(id.to_owned(), kind, body, version)).transpose()
}

/// Every record of `kind`.
pub(crate) async fn list(driver: &mut dyn Driver, kind: &str) -> Result<Vec<JobRecord>, Error> {
    let statement =
        sql(driver, |b| format!("SELECT id, body, version FROM job WHERE kind = {} ORDER BY id", b.text(kind)));
    let rows = driver.matches(&statement).await?;
    rows.into_iter().map(|(id, body, version)| record(id, kind.to_owned(), body, version)).collect()
}

/// Inserts version 1, or replaces version `n - 1` by `n`; a conflict otherwise.
pub(crate) async fn put(driver: &mut dyn Driver, job: &JobRecord) -> Result<(), Error> {
    let next = version(job.version)?;
    let statement = if job.version <= 1 {
        sql(driver, |b| {
            format!(
                "INSERT INTO job (id, kind, version, body) VALUES ({}, {}, 1, {}) ON CONFLICT (id) DO NOTHING \
                 RETURNING version",
                b.text(&job.id),
                b.text(&job.kind),
                b.text(&job.body)
            )
        })
    } else {
        sql(driver, |b| {
            format!(
                "UPDATE job SET version = {}, body = {} WHERE id = {} AND version = {} RETURNING version",
                b.bind(Bind::Int(next)),
                b.text(&job.body),
                b.text(&job.id),
                b.bind(Bind::Int(next - 1))
            )
        })
    };
    match driver.integer(&statement).await? {
        Some(_) => Ok(()),
        None => Err(Error::VersionConflict {
            resource_type: "job".into(),
            id: job.id.clone(),
            expected: job.version.saturating_sub(1),
            found: get(driver, &job.id).await?.map_or(0, |j| j.version),
        }),
    }
}

/// Removes the record of job `id`.
pub(crate) async fn delete(driver: &mut dyn Driver, id: &str) -> Result<(), Error> {
    let statement = sql(driver, |b| format!("DELETE FROM job WHERE id = {}", b.text(id)));
    driver.execute(&statement).await
}
