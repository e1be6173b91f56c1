//! `fhirgate store migrate-cosmos`: copies a store of the one-partition layout into the
//! partitioned layout, in the same container (the layouts' partition key values never meet:
//! `STORE` against `STORE|Type|id`). Documents are read from the old partition in id order, a
//! page at a time, rewritten (`c|Type|id` → `c` in `STORE|Type|id`, `v|Type|id|n` → `v|n`,
//! `j|id` in `STORE|jobs`; the clock is left behind) and upserted; after each page a checkpoint
//! (`m` in `STORE|migration`) records the last id copied, so an interrupted run resumes there and
//! re-copying a page is harmless. History keeps its order: old versions keep their clock
//! positions, which are all below the microsecond positions of the partitioned layout.
//! Writers must be stopped while it runs (a resource changed behind the checkpoint is not
//! copied again).

use azure_data_cosmos::{FeedScope, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::CosmosStore;
use crate::error::Error;
use crate::read::{self, charge};

/// What one run of the migration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Documents copied by this run.
    pub copied: u64,
    /// Documents copied by every run so far.
    pub total: u64,
    /// Whether everything is copied.
    pub done: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    id: String,
    pk: String,
    s: String,
    k: String,
    after: String,
    total: u64,
    done: bool,
}

impl CosmosStore {
    /// Copies the one-partition store whose partition key value is `source` (in this store's
    /// container) into this store, which must use the partitioned layout; `page` documents per
    /// query, at most `max_pages` pages in this run (all with `None`).
    pub async fn migrate_from_single(
        &self,
        source: &str,
        page: u32,
        max_pages: Option<u32>,
    ) -> Result<MigrationReport, Error> {
        if !self.partitioned() {
            return Err(Error::Config("the migration's target must use `layout = \"partitioned\"`".into()));
        }
        let pk = format!("{}|migration", self.store_name());
        let id = format!("m|{source}");
        let mut checkpoint = match read::item::<Checkpoint>(self, &pk, &id).await? {
            Some((c, _)) => c,
            None => Checkpoint {
                id: id.clone(),
                pk: pk.clone(),
                s: self.store_name().to_owned(),
                k: "m".into(),
                after: String::new(),
                total: 0,
                done: false,
            },
        };
        let mut copied = 0;
        let mut pages = 0;
        while !checkpoint.done && max_pages.is_none_or(|max| pages < max) {
            let query = Query::from("SELECT * FROM c WHERE c.id > @after ORDER BY c.id OFFSET 0 LIMIT @page")
                .with_parameter("@after", &checkpoint.after)?
                .with_parameter("@page", page.max(1))?;
            let docs: Vec<Map<String, Value>> =
                read::query_in(self, FeedScope::partition(source.to_owned()), "migration", query).await?;
            for doc in &docs {
                if let Some((pk, id, doc)) = self.rewrite(doc) {
                    let response = self.inner.container.upsert_item(pk, &id, &doc, None).await?;
                    self.charged("migration", charge(&response));
                    copied += 1;
                }
            }
            match docs.last().and_then(|d| d.get("id")).and_then(Value::as_str) {
                Some(last) => checkpoint.after = last.to_owned(),
                None => checkpoint.done = true,
            }
            checkpoint.total = checkpoint.total.saturating_add(u64::try_from(docs.len()).unwrap_or(0));
            let response = self.inner.container.upsert_item(pk.clone(), &id, &checkpoint, None).await?;
            self.charged("migration", charge(&response));
            pages += 1;
        }
        Ok(MigrationReport { copied, total: checkpoint.total, done: checkpoint.done })
    }

    /// A document of the one-partition layout as the partitioned layout keeps it: partition
    /// key, id, body; `None` for what is not copied (the clock).
    fn rewrite(&self, doc: &Map<String, Value>) -> Option<(String, String, Map<String, Value>)> {
        let text = |name: &str| doc.get(name).and_then(Value::as_str).map(str::to_owned);
        let old_id = text("id")?;
        let (pk, id) = match text("k").as_deref() {
            Some("c") => self.current_at(&text("t")?, &text("rid")?),
            Some("v") => self.version_at(&text("t")?, &text("rid")?, doc.get("v").and_then(Value::as_u64)?),
            Some("j") => (self.jobs_pk(), old_id),
            _ => return None,
        };
        let mut out: Map<String, Value> =
            doc.iter().filter(|(name, _)| !name.starts_with('_')).map(|(k, v)| (k.clone(), v.clone())).collect();
        out.insert("id".into(), Value::String(id.clone()));
        out.insert("pk".into(), Value::String(pk.clone()));
        out.insert("s".into(), Value::String(self.store_name().to_owned()));
        Some((pk, id, out))
    }
}
