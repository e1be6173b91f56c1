//! Contract case for job records ([`Store::job`], [`Store::put_job`], [`Store::jobs`],
//! [`Store::delete_job`]): versioned like resources, listed by kind, never part of the FHIR data.

use super::ok;
use crate::storage::{HistoryQuery, JobRecord, Store, StoreError};

fn record(id: &str, kind: &str, version: u64, body: &str) -> JobRecord {
    JobRecord { id: id.into(), kind: kind.into(), version, body: body.into() }
}

/// A put of version `n` needs version `n - 1`; reads, lists and deletes see what was put; no
/// history or search shows a job.
#[expect(clippy::panic, reason = "contract cases are tests: a panic is a failed assertion")]
pub async fn job_records_are_versioned(store: &dyn Store) {
    assert_eq!(ok(store.job("j1").await, "job"), None);
    ok(store.put_job(&record("j1", "export", 1, "{\"a\":1}")).await, "put_job");
    ok(store.put_job(&record("j2", "other", 1, "{}")).await, "put_job");
    match store.put_job(&record("j1", "export", 1, "{}")).await {
        Err(StoreError::VersionConflict { .. }) => {}
        other => panic!("a second version 1 conflicts: {other:?}"),
    }
    ok(store.put_job(&record("j1", "export", 2, "{\"a\":2}")).await, "put_job");
    match store.put_job(&record("j1", "export", 2, "{}")).await {
        Err(StoreError::VersionConflict { .. }) => {}
        other => panic!("a stale update conflicts: {other:?}"),
    }
    assert_eq!(ok(store.job("j1").await, "job"), Some(record("j1", "export", 2, "{\"a\":2}")));
    assert_eq!(ok(store.jobs("export").await, "jobs"), vec![record("j1", "export", 2, "{\"a\":2}")]);
    let history = ok(store.history(&HistoryQuery { count: 10, ..HistoryQuery::default() }).await, "history");
    assert_eq!(history.total, 0, "jobs are no FHIR data");
    ok(store.delete_job("j1").await, "delete_job");
    assert_eq!(ok(store.job("j1").await, "job"), None);
    match store.put_job(&record("j1", "export", 3, "{}")).await {
        Err(StoreError::VersionConflict { .. }) => {}
        other => panic!("an update of a removed job conflicts: {other:?}"),
    }
    ok(store.delete_job("j1").await, "delete_job");
}
