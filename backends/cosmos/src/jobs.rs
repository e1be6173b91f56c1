//! Job records ([`JobRecord`]) as documents `j|<id>` of the store's partition (partitioned
//! layout: of the store's `jobs` partition), with `k = "j"`, so no search or history query,
//! which select `c` and `v` documents, ever sees them. A put of
//! version `n` replaces the document of version `n - 1` under its etag: a concurrent writer, or
//! a removal in between, makes it a version conflict.

use azure_data_cosmos::options::{ItemWriteOptions, Precondition};
use azure_data_cosmos::{FeedScope, Query};
use fhirgate_engine::storage::{JobRecord, StoreError};
use serde::{Deserialize, Serialize};

use crate::CosmosStore;
use crate::error::Error;
use crate::read::{charge, item, query_in};

/// One job's document.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobDoc {
    id: String,
    pk: String,
    /// `j`.
    k: String,
    job: String,
    kind: String,
    v: u64,
    body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
}

fn doc_id(id: &str) -> String {
    format!("j|{id}")
}

fn conflict(job: &JobRecord, found: u64) -> Error {
    Error::Store(StoreError::VersionConflict {
        resource_type: "job".into(),
        id: job.id.clone(),
        expected: job.version.saturating_sub(1),
        found,
    })
}

impl From<JobDoc> for JobRecord {
    fn from(doc: JobDoc) -> Self {
        Self { id: doc.job, kind: doc.kind, version: doc.v, body: doc.body }
    }
}

/// The record of job `id`.
pub(crate) async fn get(store: &CosmosStore, id: &str) -> Result<Option<JobRecord>, Error> {
    Ok(item::<JobDoc>(store, &store.jobs_pk(), &doc_id(id)).await?.map(|(doc, _)| doc.into()))
}

/// Every record of `kind`.
pub(crate) async fn list(store: &CosmosStore, kind: &str) -> Result<Vec<JobRecord>, Error> {
    let text = "SELECT * FROM c WHERE c.k = 'j' AND c.kind = @kind ORDER BY c.id";
    let scope = FeedScope::partition(store.jobs_pk());
    let docs: Vec<JobDoc> = query_in(store, scope, "jobs", Query::from(text).with_parameter("@kind", kind)?).await?;
    Ok(docs.into_iter().map(Into::into).collect())
}

/// Creates version 1, or replaces version `n - 1` by `n` under its etag.
pub(crate) async fn put(store: &CosmosStore, job: &JobRecord) -> Result<(), Error> {
    let inner = &store.inner;
    let id = doc_id(&job.id);
    let pk = store.jobs_pk();
    let doc = JobDoc {
        id: id.clone(),
        pk: pk.clone(),
        k: "j".into(),
        job: job.id.clone(),
        kind: job.kind.clone(),
        v: job.version,
        body: job.body.clone(),
        s: store.store_field(),
    };
    let written = if job.version <= 1 {
        inner.container.create_item(pk.clone(), &id, &doc, None).await
    } else {
        let Some((stored, etag)) = item::<JobDoc>(store, &pk, &id).await? else { return Err(conflict(job, 0)) };
        let Some(etag) = etag.filter(|_| stored.v + 1 == job.version) else { return Err(conflict(job, stored.v)) };
        let options = ItemWriteOptions::default().with_precondition(Precondition::IfMatch(etag.into()));
        inner.container.replace_item(pk.clone(), &id, &doc, Some(options)).await
    };
    match written {
        Ok(response) => {
            store.charged("job", charge(&response));
            Ok(())
        }
        Err(e) if e.status().is_conflict() || u16::from(e.status().status_code()) == 412 => {
            Err(conflict(job, get(store, &job.id).await?.map_or(0, |j| j.version)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Removes the record of job `id`.
pub(crate) async fn delete(store: &CosmosStore, id: &str) -> Result<(), Error> {
    let inner = &store.inner;
    match inner.container.delete_item(store.jobs_pk(), &doc_id(id), None).await {
        Ok(response) => {
            store.charged("job", charge(&response));
            Ok(())
        }
        Err(e) if e.status().is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}
