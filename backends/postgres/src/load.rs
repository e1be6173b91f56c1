//! An initial load's batch on PostgreSQL (`$import` in `InitialLoad` mode): version 1 of many new
//! resources in one transaction of a few multi-row statements, each column bound as one array
//! and spread by `UNNEST`, rather than a dozen statements per resource (`write.rs`).
//!
//! The same rows as `write::transact` of the same creates, made safe the same way:
//! 1. claim: the batch's `resource_current` rows are inserted in sorted key order at version 1,
//!    `ON CONFLICT DO NOTHING`; a key that inserts nothing is a resource that exists or existed
//!    (or a concurrent creator's that committed first): the batch is a version conflict and
//!    nothing is written. A concurrent writer of the same key waits on the row as with `lock`.
//! 2. append: the search rows (`bulk.rs`), then the versions' write positions drawn from their
//!    buckets as `write::transact` draws them (`write::positions`: each bucket's row locked until
//!    the commit, so positions stay commit-ordered within a bucket for history snapshots), then
//!    the versions; then commit.

use std::collections::HashSet;

use fhirgate_engine::storage::Write;
use fhirgate_sql::Error;
use sqlx::{PgConnection, PgPool};

use crate::bulk;
use crate::write::positions;

/// Stores every create of `writes` or none ([`Error::VersionConflict`] for the first resource
/// that exists).
pub(crate) async fn load(pool: &PgPool, writes: &[Write]) -> Result<(), Error> {
    if writes.is_empty() {
        return Ok(());
    }
    fhirgate_sql::write::only_creates(writes)?;
    let mut tx = pool.begin().await?;
    claim(&mut tx, writes).await?;
    bulk::search_rows(&mut tx, writes).await?;
    let positions = positions(&mut tx, writes).await?;
    bulk::versions(&mut tx, writes, &positions).await?;
    tx.commit().await?;
    Ok(())
}

/// Inserts the `resource_current` rows of `writes` at version 1, in key order; the conflict of
/// the first write whose resource already had one.
async fn claim(conn: &mut PgConnection, writes: &[Write]) -> Result<(), Error> {
    let mut keys: Vec<(&str, &str)> =
        writes.iter().map(|w| (w.version.resource_type.as_str(), w.version.id.as_str())).collect();
    keys.sort_unstable();
    keys.dedup();
    let (types, ids): (Vec<&str>, Vec<&str>) = keys.iter().copied().unzip();
    let claimed: Vec<(String, String)> = sqlx::query_as(
        "INSERT INTO resource_current (resource_type, id, version) \
         SELECT t, i, 1 FROM UNNEST($1::text[], $2::text[]) AS k (t, i) \
         ON CONFLICT (resource_type, id) DO NOTHING RETURNING resource_type, id",
    )
    .bind(&types)
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    if claimed.len() == writes.len() {
        return Ok(());
    }
    let claimed: HashSet<(&str, &str)> = claimed.iter().map(|(t, i)| (t.as_str(), i.as_str())).collect();
    let taken = writes.iter().find(|w| !claimed.contains(&(w.version.resource_type.as_str(), w.version.id.as_str())));
    match taken {
        // A resource twice in the batch: the second create expects version 1.
        None => Err(Error::conflict(&writes[0], 0, 1)),
        Some(w) => {
            let found = fhirgate_sql::write::stored_version(conn, &w.version.resource_type, &w.version.id).await?;
            Err(Error::conflict(w, 0, found.max(1)))
        }
    }
}
