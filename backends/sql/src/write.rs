//! The steps of a write that both stores take the same way (create, update, delete and
//! transaction all end here; <https://hl7.org/fhir/R4/http.html#concurrency>). How a store makes
//! the check and the insert atomic, and its write positions commit-ordered, is its own.

use fhirgate_engine::storage::{Guard, Write};

use crate::bind::{Bind, Binder, Sql};
use crate::driver::Driver;
use crate::instant::{millis_floor, version_from_sql, version_to_sql};
use crate::{Error, rows, search};

/// Rows of `index_entry` per `INSERT` (3 parameters each, far under both databases' limits).
const ENTRIES_PER_INSERT: usize = 250;

/// The current version a write expects (its own minus one; 0 for a create).
pub fn expected(write: &Write) -> Result<u64, Error> {
    let v = &write.version;
    v.version.checked_sub(1).ok_or_else(|| Error::Invalid(format!("version 0 of `{}/{}`", v.resource_type, v.id)))
}

/// The newest stored version of a resource, 0 if it never existed.
pub async fn stored_version(db: &mut dyn Driver, resource_type: &str, id: &str) -> Result<u64, Error> {
    let mut b = Binder::new(db.dialect());
    let text = format!(
        "SELECT COALESCE(MAX(version), 0) FROM resource_version WHERE resource_type = {} AND id = {}",
        b.text(resource_type),
        b.text(id)
    );
    version_from_sql(db.integer(&Sql { text, binds: b.binds }).await?.unwrap_or(0))
}

/// Fails with [`Error::GuardMatched`] for the first guard some current resource matches. Run
/// inside the batch's transaction, after whatever serialises batches with the same guards.
pub async fn check_guards(db: &mut dyn Driver, guards: &[Guard]) -> Result<(), Error> {
    for (n, guard) in guards.iter().enumerate() {
        if search::count(db, &guard.query).await? > 0 {
            return Err(Error::GuardMatched(n));
        }
    }
    Ok(())
}

/// Inserts a version whose precondition the store has checked, its index entries, and its rows
/// in the search tables (replacing those of the version before).
pub async fn append(db: &mut dyn Driver, write: &Write) -> Result<(), Error> {
    let v = &write.version;
    let (version, last_updated) = (version_to_sql(v.version)?, millis_floor(v.last_updated)?);
    let mut b = Binder::new(db.dialect());
    let text = format!(
        "INSERT INTO resource_version (resource_type, id, version, last_updated, kind, json) \
         VALUES ({}, {}, {}, {}, {}, {}) RETURNING pos",
        b.text(&v.resource_type),
        b.text(&v.id),
        b.bind(Bind::Int(version)),
        b.bind(Bind::Int(last_updated)),
        b.text(v.kind.code()),
        b.bind(v.json.as_ref().map_or(Bind::Null, |json| Bind::Text(json.clone()))),
    );
    let pos = db.integer(&Sql { text, binds: b.binds }).await?;
    let pos = pos.ok_or_else(|| Error::Corrupt("an insert returned no write position".into()))?;
    for statement in rows::replace(db.dialect(), write, version, last_updated) {
        db.execute(&statement).await?;
    }
    for statement in index_entries(db, pos, write)? {
        db.execute(&statement).await?;
    }
    Ok(())
}

/// The statements inserting a version's index entries, a few for all of them: every statement
/// is a round trip (to sqlx's SQLite thread, or to the server), which dominated the ingest
/// profile when it was one per entry.
fn index_entries(db: &dyn Driver, pos: i64, write: &Write) -> Result<Vec<Sql>, Error> {
    let mut statements = Vec::new();
    let mut seq = 0_i64;
    for chunk in write.index.chunks(ENTRIES_PER_INSERT) {
        let mut b = Binder::new(db.dialect());
        let pos = b.bind(Bind::Int(pos));
        let mut rows = Vec::with_capacity(chunk.len());
        for entry in chunk {
            let value = serde_json::to_string(&entry.value)
                .map_err(|e| Error::Invalid(format!("index entry `{}` is not serialisable: {e}", entry.param)))?;
            rows.push(format!(
                "({pos}, {}, {}, {})",
                b.bind(Bind::Int(seq)),
                b.text(&entry.param),
                b.bind(Bind::Text(value))
            ));
            seq += 1;
        }
        let text = format!("INSERT INTO index_entry (pos, seq, param, value) VALUES {}", rows.join(", "));
        statements.push(Sql { text, binds: b.binds });
    }
    Ok(statements)
}
