//! Contract cases for history pages read by key ([`HistoryCursor`]): forwards and back, at every
//! level and with `_at`, while other writers add versions, against the same history read as one
//! page; and a key the store did not write is an error, never a panic or a wrong page.

use super::{at, history_query, keys, ok, put, version, write};
use crate::storage::{HistoryCursor, HistoryKey, HistoryPage, HistoryQuery, Store};

/// Writes 23 versions: `Patient/k0`..`k11` one at a time, six Observations in one batch (one
/// write position and one instant for all six: the order breaks the tie), then five updates of
/// `Patient/k0`.
async fn seed(store: &dyn Store) {
    for n in 0..12 {
        put(store, version("Patient", &format!("k{n}"), 1, n * 10)).await;
    }
    let batch = (0..6).map(|n| write(version("Observation", &format!("b{n}"), 1, 200))).collect();
    ok(store.transact(batch).await, "the batch of six");
    for v in 2..=6 {
        put(store, version("Patient", "k0", v, 300 + i64::try_from(v).unwrap_or(0))).await;
    }
}

/// Other writers: updates of resources the history lists, new resources, and a batch.
async fn more_writes(store: &dyn Store) {
    for n in 1..5 {
        put(store, version("Patient", &format!("k{n}"), 2, 5_000)).await;
        tokio::task::yield_now().await;
    }
    for n in 0..6 {
        put(store, version("Patient", &format!("late{n}"), 1, 6_000)).await;
        tokio::task::yield_now().await;
    }
    let batch = (0..4).map(|n| write(version("Observation", &format!("late{n}"), 1, 7_000))).collect();
    ok(store.transact(batch).await, "a later batch");
    put(store, version("Patient", "k0", 7, 8_000)).await;
}

/// Reads `base` page by page from its first page, by the last key of each, inside the first
/// page's snapshot; then back from the last page by the first key of each. Returns the versions
/// forwards, and the pages read backwards put back in order.
async fn walk(store: &dyn Store, base: &HistoryQuery, first: HistoryPage) -> (Vec<String>, Vec<String>, u64) {
    let pinned = |cursor: HistoryCursor| HistoryQuery {
        snapshot: Some(first.snapshot.clone()),
        cursor: Some(cursor),
        ..base.clone()
    };
    let mut pages: Vec<HistoryPage> = vec![first.clone()];
    // Bounded: far more pages than the seed has versions.
    for _ in 0..100 {
        let Some(last) = pages.last().and_then(|p| p.last_key.clone()) else { break };
        let page = ok(store.history(&pinned(HistoryCursor::OlderThan(last))).await, "a next page");
        assert_eq!(
            (page.total, &page.snapshot),
            (first.total, &first.snapshot),
            "the snapshot and its total never move"
        );
        assert!(page.versions.len() <= base.count as usize);
        if page.versions.is_empty() {
            assert_eq!((page.first_key.clone(), page.last_key.clone()), (None, None), "an empty page has no keys");
            break;
        }
        tokio::task::yield_now().await;
        pages.push(page);
    }
    let forwards: Vec<String> = pages.iter().flat_map(keys).collect();
    let mut backwards: Vec<HistoryPage> = pages.last().cloned().into_iter().collect();
    for _ in 0..100 {
        let Some(first_key) = backwards.last().and_then(|p| p.first_key.clone()) else { break };
        let page = ok(store.history(&pinned(HistoryCursor::NewerThan(first_key))).await, "a previous page");
        if page.versions.is_empty() {
            break;
        }
        tokio::task::yield_now().await;
        backwards.push(page);
    }
    let pages_back = backwards.len();
    assert_eq!(pages_back, pages.len(), "as many pages back as forwards");
    backwards.reverse();
    (forwards, backwards.iter().flat_map(keys).collect(), first.total)
}

/// History of more than three pages at system, type and instance level, read by key while other
/// writers write: every version of the first page's snapshot exactly once, newest first, the
/// same as one page with that snapshot, forwards and back; `_at` pages the same way.
pub async fn history_key_pages_under_writes(store: &dyn Store) {
    seed(store).await;
    let levels = [
        history_query(None, None, 5),
        history_query(Some("Patient"), None, 4),
        history_query(Some("Observation"), None, 1),
        history_query(Some("Patient"), Some("k0"), 1),
        HistoryQuery { at: Some(at(250)), ..history_query(None, None, 3) },
    ];
    // Each level's first page, and what it lists, read as one page with its snapshot.
    let (mut firsts, mut whole) = (Vec::new(), Vec::new());
    for level in &levels {
        let first = ok(store.history(level).await, "a first page");
        let pinned = HistoryQuery { count: 1_000, snapshot: Some(first.snapshot.clone()), ..level.clone() };
        whole.push(keys(&ok(store.history(&pinned).await, "the whole history")));
        firsts.push(first);
    }
    assert_eq!(whole[0].len(), 23);
    assert_eq!(
        whole[3],
        ["Patient/k0/6", "Patient/k0/5", "Patient/k0/4", "Patient/k0/3", "Patient/k0/2", "Patient/k0/1"]
    );
    // `_at` 250 ms: the twelve patients' first versions and the six observations.
    assert_eq!(whole[4].len(), 18);
    let readers = async {
        let mut walked = Vec::new();
        for (level, first) in levels.iter().zip(firsts) {
            walked.push(walk(store, level, first).await);
        }
        walked
    };
    let ((), walked) = tokio::join!(more_writes(store), readers);
    for ((level, expected), (forwards, backwards, total)) in levels.iter().zip(&whole).zip(walked) {
        assert!(expected.len() as u32 > 3 * level.count, "more than three pages of {level:?}");
        assert_eq!(total, expected.len() as u64, "{level:?}");
        assert_eq!(&forwards, expected, "forwards, {level:?}: every version once, newest first");
        assert_eq!(&backwards, expected, "backwards, {level:?}");
    }
    let now = ok(store.history(&history_query(None, None, 1)).await, "history now");
    assert_eq!(now.total, 23 + 15, "the writes all landed, and are outside the walked snapshot");
}

/// A key the store did not write is refused with an error.
pub async fn history_foreign_key_is_an_error(store: &dyn Store) {
    seed(store).await;
    for key in ["", "not a key", "1.2.3.4.5.6", "|", "-"] {
        for cursor in
            [HistoryCursor::OlderThan(HistoryKey(key.into())), HistoryCursor::NewerThan(HistoryKey(key.into()))]
        {
            let query = HistoryQuery { cursor: Some(cursor), ..history_query(None, None, 5) };
            assert!(store.history(&query).await.is_err(), "key `{key}`");
        }
    }
}
