//! read, vread and the index entries of a version
//! (<https://hl7.org/fhir/R4/http.html#read>, <https://hl7.org/fhir/R4/http.html#vread>).

use fhirgate_engine::storage::{IndexEntry, IndexValue, ResourceVersion, SearchMatch, WriteKind};

use crate::bind::{Bind, Binder, Sql};
use crate::driver::{Driver, VersionRow};
use crate::instant::{from_millis, version_from_sql};
use crate::{Error, versions};

/// The columns of `resource_version v` that make a [`ResourceVersion`], in [`VersionRow`] order.
pub const COLUMNS: &str = "v.resource_type, v.id, v.version, v.last_updated, v.kind, v.json";

/// Turns a row into a version, checking what the schema does not.
pub(crate) fn decode(
    (resource_type, id, version, last_updated, kind, json): VersionRow,
) -> Result<ResourceVersion, Error> {
    let kind = WriteKind::from_code(&kind).ok_or_else(|| Error::Corrupt(format!("unknown write kind `{kind}`")))?;
    Ok(ResourceVersion {
        resource_type,
        id,
        version: version_from_sql(version)?,
        last_updated: from_millis(last_updated)?,
        kind,
        json,
    })
}

/// The rows of a statement selecting [`COLUMNS`], as versions.
pub(crate) async fn decoded(db: &mut dyn Driver, sql: &Sql) -> Result<Vec<ResourceVersion>, Error> {
    db.versions(sql).await?.into_iter().map(decode).collect()
}

/// The current version of a resource, deletions included.
pub async fn current(db: &mut dyn Driver, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>, Error> {
    let mut b = Binder::new(db.dialect());
    let text = format!(
        "SELECT {COLUMNS} FROM resource_version v WHERE v.resource_type = {} AND v.id = {} \
         ORDER BY v.version DESC LIMIT 1",
        b.text(resource_type),
        b.text(id)
    );
    Ok(decoded(db, &Sql { text, binds: b.binds }).await?.pop())
}

/// One version of a resource.
pub async fn version(
    db: &mut dyn Driver,
    resource_type: &str,
    id: &str,
    version: u64,
) -> Result<Option<ResourceVersion>, Error> {
    let Ok(version) = i64::try_from(version) else { return Ok(None) };
    let sql = one_version(db, COLUMNS, resource_type, id, version);
    Ok(decoded(db, &sql).await?.pop())
}

/// The versions `keys` name, in that order, leaving out those not stored.
pub async fn versions(db: &mut dyn Driver, keys: &[SearchMatch]) -> Result<Vec<ResourceVersion>, Error> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(versions::MAX_KEYS) {
        let sql = versions::select(db.dialect(), COLUMNS, chunk);
        found.extend(decoded(db, &sql).await?);
    }
    Ok(versions::in_order(keys, found))
}

/// The index entries of one version, in the order they were written; `None` for no such version.
pub async fn index(
    db: &mut dyn Driver,
    resource_type: &str,
    id: &str,
    version: u64,
) -> Result<Option<Vec<IndexEntry>>, Error> {
    let Ok(number) = i64::try_from(version) else { return Ok(None) };
    // Text columns only (`pairs`): the position as text, the entries or "" for a version written
    // before they were kept in its row (then they are in `index_entry`: SQLite only; PostgreSQL
    // moved them into their rows in migration 0006).
    let sql = one_version(db, "CAST(v.pos AS TEXT), COALESCE(v.index_entries, '')", resource_type, id, number);
    let corrupt =
        |e: serde_json::Error| Error::Corrupt(format!("index of `{resource_type}/{id}` version {version}: {e}"));
    let Some((pos, entries)) = db.pairs(&sql).await?.into_iter().next() else { return Ok(None) };
    if !entries.is_empty() {
        return serde_json::from_str(&entries).map(Some).map_err(corrupt);
    }
    let pos: i64 =
        pos.parse().map_err(|_| Error::Corrupt(format!("write position `{pos}` of `{resource_type}/{id}`")))?;
    let mut b = Binder::new(db.dialect());
    let text = format!("SELECT param, value FROM index_entry WHERE pos = {} ORDER BY seq", b.bind(Bind::Int(pos)));
    let rows = db.pairs(&Sql { text, binds: b.binds }).await?;
    let entries = rows
        .into_iter()
        .map(|(param, value)| {
            let value: IndexValue = serde_json::from_str(&value).map_err(corrupt)?;
            Ok(IndexEntry { param, value })
        })
        .collect::<Result<_, Error>>()?;
    Ok(Some(entries))
}

/// `SELECT {columns} FROM resource_version v` of one version.
fn one_version(db: &dyn Driver, columns: &str, resource_type: &str, id: &str, version: i64) -> Sql {
    let mut b = Binder::new(db.dialect());
    let text = format!(
        "SELECT {columns} FROM resource_version v WHERE v.resource_type = {} AND v.id = {} AND v.version = {}",
        b.text(resource_type),
        b.text(id),
        b.bind(Bind::Int(version))
    );
    Sql { text, binds: b.binds }
}
