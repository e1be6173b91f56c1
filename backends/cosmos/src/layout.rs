//! Where a store's documents live: the one-partition layout (every document under the store's
//! partition key) or the partitioned one (a partition per resource, per transaction record, per
//! guard lock, and one for job records). Everything that names a partition key or a query's
//! scope asks here.

use azure_data_cosmos::FeedScope;

use crate::CosmosStore;
use crate::documents::{current_id, version_id};
use crate::error::Error;

/// How a store lays its documents out (`store.cosmos.layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Whatever the container holds for the store ([`crate::detect`]): a new store is
    /// partitioned, one of the one-partition layout stays so (with a warning) until migrated.
    #[default]
    Auto,
    /// Every document in one logical partition (serialised by a clock document).
    Single,
    /// One logical partition per resource; multi-resource writes through transaction records.
    Partitioned,
}

impl Layout {
    /// The layout named `name` (`auto`, `single` or `partitioned`).
    pub fn parse(name: &str) -> Result<Self, Error> {
        match name {
            "auto" => Ok(Self::Auto),
            "single" => Ok(Self::Single),
            "partitioned" => Ok(Self::Partitioned),
            other => {
                Err(Error::Config(format!("`store.cosmos.layout = \"{other}\"`: expected auto, single or partitioned")))
            }
        }
    }
}

/// Checks a store name: it is part of partition key values and of query text (`c.s = 'NAME'`),
/// so it is kept to letters, digits, `-` and `_`.
pub(crate) fn check_store_name(name: &str) -> Result<(), Error> {
    let fine =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if fine {
        Ok(())
    } else {
        Err(Error::Config(format!("`store.cosmos.partition = \"{name}\"`: use 1 to 64 letters, digits, `-` or `_`")))
    }
}

impl CosmosStore {
    pub(crate) fn partitioned(&self) -> bool {
        self.inner.layout == Layout::Partitioned
    }

    /// The layout the store runs with (never [`Layout::Auto`]: resolved at connect).
    pub fn layout(&self) -> Layout {
        self.inner.layout
    }

    /// The store's name (the partition key value of the one-partition layout).
    pub(crate) fn store_name(&self) -> &str {
        &self.inner.partition
    }

    /// The partition key of a resource's documents.
    pub(crate) fn resource_pk(&self, resource_type: &str, id: &str) -> String {
        if self.partitioned() {
            format!("{}|{resource_type}|{id}", self.inner.partition)
        } else {
            self.inner.partition.clone()
        }
    }

    /// Partition key and document id of a resource's current document.
    pub(crate) fn current_at(&self, resource_type: &str, id: &str) -> (String, String) {
        if self.partitioned() {
            (self.resource_pk(resource_type, id), "c".to_owned())
        } else {
            (self.inner.partition.clone(), current_id(resource_type, id))
        }
    }

    /// Partition key and document id of one version's document.
    pub(crate) fn version_at(&self, resource_type: &str, id: &str, version: u64) -> (String, String) {
        if self.partitioned() {
            (self.resource_pk(resource_type, id), format!("v|{version}"))
        } else {
            (self.inner.partition.clone(), version_id(resource_type, id, version))
        }
    }

    /// The partition of the job records.
    pub(crate) fn jobs_pk(&self) -> String {
        if self.partitioned() { format!("{}|jobs", self.inner.partition) } else { self.inner.partition.clone() }
    }

    /// Where searches and history look: the store's partition, or every partition.
    pub(crate) fn scope(&self) -> FeedScope {
        if self.partitioned() {
            FeedScope::full_container()
        } else {
            FeedScope::partition(self.inner.partition.clone())
        }
    }

    /// The condition selecting this store's documents in a query over `alias` (with `AND`), or
    /// nothing when the query runs inside the store's partition anyway.
    pub(crate) fn in_store(&self, alias: &str) -> String {
        if self.partitioned() {
            // The name was checked at connect: letters, digits, `-`, `_` only.
            format!("{alias}.s = '{}' AND ", self.inner.partition)
        } else {
            String::new()
        }
    }

    /// The store field of a partitioned document.
    pub(crate) fn store_field(&self) -> Option<String> {
        self.partitioned().then(|| self.inner.partition.clone())
    }
}
