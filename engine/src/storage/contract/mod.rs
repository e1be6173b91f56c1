//! The storage contract suite: the known answers every [`Store`] must give, written once and run
//! by each backend's tests through [`store_contract!`](crate::store_contract).
//!
//! Each case is a public `async fn(&dyn Store)` that starts from an empty store and asserts.
//! Times are fixed instants (see [`at`]), so the answers do not depend on the clock.
//!
//! Semantics pinned here, beyond the trait's docs:
//! - instance history is ordered by version, newest first; type and system history by
//!   `last_updated`, newest first, then by the store's write order (a store with position
//!   buckets breaks ties between buckets by bucket); `total` counts every matching version
//!   inside the snapshot, whatever `offset` and `count` are;
//! - a page read by key ([`HistoryCursor`](super::HistoryCursor)) is the `count` versions just
//!   past the key in that same order, whichever level, with or without `_at`;
//! - `_at` is the state of the store at that instant: per resource the newest version with
//!   `last_updated <= at`, and nothing for a resource whose version then was a deletion
//!   (FHIR: "versions that were current at some point"; a deleted resource has no current
//!   content, and listing tombstones would make `_at` answer "what existed" wrongly);
//! - a failed batch reports the first precondition that failed and stores nothing.

mod basics;
mod guard;
mod history;
mod history_keys;
mod jobs;
mod load;
pub mod query;
mod reindex;
mod reopen;
mod search;
mod sorted;

pub use basics::*;
pub use guard::*;
pub use history::*;
pub use history_keys::*;
pub use jobs::*;
pub use load::*;
pub use reindex::*;
pub use reopen::*;
pub use search::*;
pub use sorted::*;

use time::OffsetDateTime;
use time::macros::datetime;

use super::{HistoryPage, HistoryQuery, IndexEntry, IndexValue, ResourceVersion, Store, StoreError, Write, WriteKind};

/// Expands to one `#[tokio::test]` per contract case. The argument is an expression (it may
/// `.await`) giving a pointer to a fresh, empty store: a `Box`, an `Arc`, or a guard that derefs
/// to the store and cleans up when dropped. It is evaluated once per case. The calling crate
/// needs `tokio` (with `macros` and `rt-multi-thread`) among its dev-dependencies.
///
/// ```ignore
/// fhirgate_engine::store_contract!(fresh_store().await);
/// ```
#[macro_export]
macro_rules! store_contract {
    ($make:expr) => {
        $crate::store_contract!(@cases $make;
            health_answers,
            create_then_read_and_vread,
            read_of_unknown_is_none,
            vread_many_keeps_the_order_asked,
            creating_twice_conflicts,
            skipping_a_version_conflicts,
            batch_is_atomic,
            batch_writes_every_resource,
            large_batch_is_atomic,
            delete_keeps_history,
            json_is_returned_byte_identical,
            last_updated_round_trips,
            same_id_in_different_types_is_independent,
            index_entries_are_stored,
            concurrent_writers_of_one_version_one_wins,
            instance_history_newest_first,
            type_history_covers_one_type,
            system_history_covers_all_types,
            history_since,
            history_at,
            history_paging,
            history_snapshot_hides_later_writes,
            history_pages_stable_under_concurrent_writes,
            history_key_pages_under_writes,
            history_foreign_key_is_an_error,
            search_string_modes,
            search_token_forms,
            search_bound_codes_have_their_system,
            search_token_sets,
            search_reference_forms,
            search_date_prefixes,
            search_number_quantity,
            search_uri_modes,
            search_chains_and_has,
            search_clauses_combined,
            search_continues_after_a_key,
            search_sort,
            sorted_search_continues_after_key_values,
            sorted_continuation_is_stable_under_writes,
            search_common_parameters,
            search_sees_current_versions,
            search_compartments_and_types,
            search_unsupported_is_an_error,
            guarded_batch_is_refused_when_the_guard_matches,
            concurrent_guarded_creates_one_wins,
            job_records_are_versioned,
            reindex_replaces_the_current_index,
            load_writes_resources_as_transact_would,
            load_of_a_resource_that_exists_stores_nothing,
            a_load_answers_right_before_and_after_it_ends,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $make;
                $crate::storage::contract::$case(&*store).await;
            }
        )*
    };
}

/// The instant `2024-01-01T00:00:00Z` plus `ms` milliseconds: every case's clock.
pub fn at(ms: i64) -> OffsetDateTime {
    datetime!(2024-01-01 00:00:00 UTC) + time::Duration::milliseconds(ms)
}

/// A version of `resource_type/id` written at [`at`]`(ms)`: a create for version 1, an update
/// after, with a small JSON body naming the version.
pub fn version(resource_type: &str, id: &str, version: u64, ms: i64) -> ResourceVersion {
    let kind = if version == 1 { WriteKind::Create } else { WriteKind::Update };
    ResourceVersion {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
        version,
        last_updated: at(ms),
        kind,
        json: Some(format!(r#"{{"resourceType":"{resource_type}","id":"{id}","meta":{{"versionId":"{version}"}}}}"#)),
    }
}

/// A deletion of `resource_type/id` as version `version`, at [`at`]`(ms)`.
pub fn deletion(resource_type: &str, id: &str, version: u64, ms: i64) -> ResourceVersion {
    ResourceVersion {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
        version,
        last_updated: at(ms),
        kind: WriteKind::Delete,
        json: None,
    }
}

/// A write without index entries.
pub fn write(version: ResourceVersion) -> Write {
    Write { version, index: Vec::new() }
}

/// Writes one version alone, asserting it succeeds.
pub async fn put(store: &dyn Store, version: ResourceVersion) {
    let what = format!("{}/{} version {}", version.resource_type, version.id, version.version);
    let result = store.transact(vec![write(version)]).await;
    assert!(result.is_ok(), "writing {what} failed: {result:?}");
}

/// A few index entries of every type, for the index case.
pub fn sample_index() -> Vec<IndexEntry> {
    vec![
        IndexEntry {
            param: "family".into(),
            value: IndexValue::String { value: "chalmers".into(), exact: "Chalmers".into() },
        },
        IndexEntry {
            param: "identifier".into(),
            value: IndexValue::Token {
                system: Some("urn:oid:1.2.36.146.595.217.0.1".into()),
                code: Some("12345".into()),
                text: None,
            },
        },
        IndexEntry {
            param: "gender".into(),
            value: IndexValue::Token { system: None, code: Some("male".into()), text: None },
        },
        IndexEntry {
            param: "organization".into(),
            value: IndexValue::Reference {
                reference: "Organization/1".into(),
                resource_type: Some("Organization".into()),
                id: Some("1".into()),
            },
        },
        IndexEntry {
            param: "birthdate".into(),
            value: IndexValue::Date {
                start: "1974-12-25T00:00:00.000Z".into(),
                end: "1974-12-25T23:59:59.999Z".into(),
            },
        },
        IndexEntry {
            param: "length".into(),
            value: IndexValue::Number { value: "1.5".into(), low: "1.45".into(), high: "1.55".into() },
        },
        IndexEntry {
            param: "weight".into(),
            value: IndexValue::Quantity {
                value: "72.25".into(),
                low: "72.245".into(),
                high: "72.255".into(),
                system: Some("http://unitsofmeasure.org".into()),
                code: Some("kg".into()),
                unit: Some("kg".into()),
            },
        },
        IndexEntry { param: "url".into(), value: IndexValue::Uri { value: "http://example.org/fhir".into() } },
        // The same parameter twice: a resource may have several values for one parameter.
        IndexEntry {
            param: "family".into(),
            value: IndexValue::String { value: "windsor".into(), exact: "Windsor".into() },
        },
    ]
}

/// Asserts that `result` is a version conflict on `resource_type/id` with these versions.
#[track_caller]
#[expect(clippy::panic, reason = "contract cases are tests: a panic is a failed assertion")]
pub fn assert_conflict(result: Result<(), StoreError>, resource_type: &str, id: &str, expected: u64, found: u64) {
    match result {
        Err(StoreError::VersionConflict { resource_type: t, id: i, expected: e, found: f }) => {
            assert_eq!((t.as_str(), i.as_str(), e, f), (resource_type, id, expected, found), "wrong version conflict");
        }
        other => panic!("expected a version conflict on `{resource_type}/{id}`, got {other:?}"),
    }
}

/// The value of a successful store call; a failure fails the case with `what` in the message.
#[track_caller]
#[expect(clippy::panic, reason = "contract cases are tests: a panic is a failed assertion")]
pub fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what} failed: {error}"),
    }
}

/// A history query for a system (no type), a type (no id) or an instance, first page of `count`.
pub fn history_query(resource_type: Option<&str>, id: Option<&str>, count: u32) -> HistoryQuery {
    HistoryQuery {
        resource_type: resource_type.map(str::to_owned),
        id: id.map(str::to_owned),
        count,
        ..HistoryQuery::default()
    }
}
