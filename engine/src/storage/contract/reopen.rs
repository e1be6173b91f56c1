//! What every persistent store's own tests share: a store that owns its temporary place, and the
//! two halves of "data and history survive closing and opening the store again".

use std::ops::Deref;

use super::{HistoryPage, ResourceVersion, Store, history_query, ok, put, seed, version};
use crate::storage::HistoryQuery;

/// A store with what must outlive it (a temporary directory or database, removed when dropped),
/// dropped after the store. Derefs to the store, so `store_contract!` takes it as is.
pub struct Scoped<S, G> {
    store: S,
    _place: G,
}

impl<S, G> Scoped<S, G> {
    /// `store`, living in `place`.
    pub fn new(store: S, place: G) -> Self {
        Self { store, _place: place }
    }
}

impl<S, G> Deref for Scoped<S, G> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.store
    }
}

/// What a store held before it was closed: the [`seed`] written, and its history.
#[derive(Debug)]
pub struct BeforeReopening {
    written: Vec<ResourceVersion>,
    history: HistoryPage,
}

/// The first half of the reopening case: writes the [`seed`] and reads its history. Close the
/// store, open it again on the same data, then call [`check_reopened`].
pub async fn seed_for_reopening(store: &dyn Store) -> BeforeReopening {
    let written = seed(store).await;
    let history = ok(store.history(&history_query(None, None, 100)).await, "history");
    BeforeReopening { written, history }
}

/// The second half: the reopened store holds the same versions and history, writing goes on
/// from where it was, and the old snapshot still means the same thing. Leaves 8 versions.
pub async fn check_reopened(store: &dyn Store, before: BeforeReopening) {
    let after = ok(store.history(&history_query(None, None, 100)).await, "history");
    assert_eq!(after, before.history);
    assert_eq!(after.versions, before.written.into_iter().rev().collect::<Vec<_>>());
    let current = ok(store.read("Patient", "a").await, "read");
    assert_eq!(current.map(|v| v.version), Some(3));
    put(store, version("Patient", "a", 4, 70)).await;
    let pinned = HistoryQuery { snapshot: Some(before.history.snapshot), ..history_query(None, None, 100) };
    assert_eq!(ok(store.history(&pinned).await, "history").total, 7);
}
