//! [`merge`]: the targets' pages of a federated search become one page.
//!
//! With `_sort` the matches are merged k-way by their sort keys ([`super::sort`]), ties by the
//! targets' route order then by position; history entries the same way, newest first (each
//! entry's `response.lastModified`, else its resource's `meta.lastUpdated`, as instants); an entry is only emitted while every target that has
//! more pages still has a buffered match to compare with (a target's next match could come
//! first otherwise), so a page may be short but is never out of order. Without `_sort` the
//! targets come one after the other in route order. Included resources go with every page that
//! takes a match from the target page they came with; a target page's own OperationOutcome
//! entries go once, with the first match taken from it (or when it has none).

use std::collections::HashSet;

use serde_json::{Value, json};

use super::sort::{self, KeyValue};
use super::{Cursor, Merged, Part};
use crate::error::{Error, Result};

/// One target's page, as the merge consumes it.
struct Source {
    cursor: Cursor,
    /// Fetched and not already done: takes part in the merge.
    live: bool,
    /// The page's matches from the cursor's `skip` on, with their sort keys.
    matches: Vec<(Value, Vec<Option<KeyValue>>)>,
    /// How many of `matches` this merge took.
    taken: usize,
    /// The page's matches before `skip` plus those in `matches`.
    page_matches: usize,
    includes: Vec<Value>,
    outcomes: Vec<Value>,
    next: Option<String>,
    total: Option<u64>,
}

impl Source {
    fn remaining(&self) -> usize {
        self.matches.len() - self.taken
    }

    /// More matches may come from this target than are buffered.
    fn has_more_pages(&self) -> bool {
        self.next.is_some()
    }

    /// Where the target continues after this merge.
    fn continuation(&self) -> Cursor {
        let skip = self.cursor.skip.min(self.page_matches) + self.taken;
        let target = self.cursor.target.clone();
        if skip < self.page_matches {
            Cursor { target, page: self.cursor.page.clone(), skip, done: false }
        } else if let Some(next) = &self.next {
            Cursor { target, page: Some(next.clone()), skip: 0, done: false }
        } else {
            Cursor { target, page: None, skip: 0, done: true }
        }
    }
}

/// The order of a merged page.
#[derive(Debug, Clone, Copy)]
pub enum Order<'a> {
    /// `_sort` as the client gave it; empty: the targets' order, one after the other.
    Sort(&'a str),
    /// History entries: newest first (http.html "History": most recent first).
    Newest,
}

/// Merges the targets' pages into one page of at most `count` matches, in `order`. `total` is
/// the sum when every target gave one; a failed target becomes an OperationOutcome entry.
///
/// `parts` are in route order, one per target. A part whose cursor is already `done` is left
/// out of the merge (its page is not read) and keeps its cursor; a failed part's target is done
/// (its results are missing from this search, as its OperationOutcome entry says). `total` is
/// only given when every part was fetched, succeeded and carries one. With `count` 0 the page
/// holds no match and every cursor is done.
///
/// A page may hold no match while some cursor is not done (a target page that was empty, or
/// whose matches all sort after another target's unfetched ones): fetch the cursors again.
pub fn merge(resource_type: &str, parts: Vec<Part>, order: Order<'_>, count: usize) -> Result<Merged> {
    let keys = match order {
        Order::Sort(sort) => sort::parse(resource_type, sort)?,
        Order::Newest => vec![sort::newest()],
    };
    let mut sources = Vec::with_capacity(parts.len());
    let mut failures = Vec::new();
    let mut total: Option<u64> = Some(0);
    for part in parts {
        if part.cursor.done {
            total = None;
            sources.push(idle(part.cursor));
            continue;
        }
        match part.page {
            Ok((bundle, next)) => {
                let source = source(part.cursor, bundle, next, &keys);
                total = total.zip(source.total).map(|(a, b)| a + b);
                sources.push(source);
            }
            Err(error) => {
                total = None;
                failures.push(failure(&part.cursor.target, &error));
                sources.push(idle(Cursor { page: None, skip: 0, done: true, ..part.cursor }));
            }
        }
    }

    let mut order: Vec<(usize, usize)> = Vec::new(); // (source, match index) in page order
    while order.len() < count {
        let pick = if keys.is_empty() { next_in_route_order(&sources) } else { next_in_sort_order(&sources, &keys) };
        let Some(i) = pick else { break };
        order.push((i, sources[i].taken));
        sources[i].taken += 1;
    }

    let mut entries = Vec::with_capacity(order.len());
    let mut seen = HashSet::new();
    for &(i, n) in &order {
        // Each buffered match is served once; the rest of the merge reads counts only.
        let entry = sources[i].matches[n].0.take();
        if let Some(url) = entry.get("fullUrl").and_then(Value::as_str) {
            seen.insert(url.to_owned());
        }
        entries.push(entry);
    }
    for source in sources.iter_mut().filter(|s| s.live && s.taken > 0) {
        for include in std::mem::take(&mut source.includes) {
            let url = include.get("fullUrl").and_then(Value::as_str).map(str::to_owned);
            if url.is_none_or(|url| seen.insert(url)) {
                entries.push(include);
            }
        }
    }
    for source in sources.iter_mut().filter(|s| s.live && s.cursor.skip == 0) {
        if source.taken > 0 || source.page_matches == 0 {
            entries.append(&mut source.outcomes);
        }
    }
    entries.extend(failures);

    let cursors = sources
        .iter()
        .map(|s| match (count, s.live) {
            (0, _) => Cursor { target: s.cursor.target.clone(), page: None, skip: 0, done: true },
            (_, true) => s.continuation(),
            (_, false) => s.cursor.clone(),
        })
        .collect();
    let mut bundle = json!({ "resourceType": "Bundle", "type": "searchset" });
    if let Some(total) = total {
        bundle["total"] = json!(total);
    }
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    Ok(Merged { bundle, cursors })
}

/// A source that takes no part in the merge.
fn idle(cursor: Cursor) -> Source {
    Source {
        cursor,
        live: false,
        matches: Vec::new(),
        taken: 0,
        page_matches: 0,
        includes: Vec::new(),
        outcomes: Vec::new(),
        next: None,
        total: None,
    }
}

/// A fetched page, its entries (taken, not copied) sorted out by search mode.
fn source(cursor: Cursor, mut bundle: Value, next: Option<String>, keys: &[crate::search::query::SortKey]) -> Source {
    let mut matches = Vec::new();
    let mut includes = Vec::new();
    let mut outcomes = Vec::new();
    let entries = match bundle.get_mut("entry").map(Value::take) {
        Some(Value::Array(entries)) => entries,
        _ => Vec::new(),
    };
    for entry in entries {
        match entry.get("search").and_then(|s| s.get("mode")).and_then(Value::as_str) {
            Some("include") => includes.push(entry),
            Some("outcome") => outcomes.push(entry),
            _ => matches.push(entry),
        }
    }
    let page_matches = matches.len();
    let matches = matches
        .into_iter()
        .skip(cursor.skip)
        .map(|entry| {
            let values = sort::entry_values(keys, &entry);
            (entry, values)
        })
        .collect();
    let total = bundle.get("total").and_then(Value::as_u64);
    Source { cursor, live: true, matches, taken: 0, page_matches, includes, outcomes, next, total }
}

/// Without `_sort`: the first target in route order that is not exhausted; none when its
/// buffer is empty but it has more pages (they must be fetched first).
fn next_in_route_order(sources: &[Source]) -> Option<usize> {
    let i = sources.iter().position(|s| s.live && (s.remaining() > 0 || s.has_more_pages()))?;
    (sources[i].remaining() > 0).then_some(i)
}

/// With `_sort`: the smallest buffered match (ties: route order, then position); none while a
/// target with more pages has nothing buffered.
fn next_in_sort_order(sources: &[Source], keys: &[crate::search::query::SortKey]) -> Option<usize> {
    if sources.iter().any(|s| s.live && s.remaining() == 0 && s.has_more_pages()) {
        return None;
    }
    let mut best: Option<usize> = None;
    for (i, source) in sources.iter().enumerate().filter(|(_, s)| s.live && s.remaining() > 0) {
        let better = best.is_none_or(|b| {
            let (mine, theirs) = (&source.matches[source.taken].1, &sources[b].matches[sources[b].taken].1);
            sort::compare(keys, mine, theirs).is_lt()
        });
        if better {
            best = Some(i);
        }
    }
    best
}

/// The OperationOutcome entry of a target that failed: what happened, never where (no URL).
fn failure(target: &str, error: &Error) -> Value {
    let status = error.status();
    let what = match status {
        502 => "its answer was not usable",
        503 => "it is unavailable",
        504 => "it did not answer in time",
        s if s >= 500 => "it failed",
        _ => "it refused the search",
    };
    let outcome = error.outcome().to_json();
    let code = outcome["issue"][0]["code"].as_str().unwrap_or("exception").to_owned();
    let mut issues = vec![json!({
        "severity": "warning",
        "code": code,
        "diagnostics": format!("the results of target `{target}` are missing: {what} ({status})"),
    })];
    if status < 500 {
        // The target's own reasons (already on the client's base), without any URL.
        for issue in outcome["issue"].as_array().map_or(&[][..], Vec::as_slice) {
            if let Some(text) = issue["diagnostics"].as_str() {
                issues.push(json!({ "severity": "warning", "code": issue["code"], "diagnostics": without_urls(text) }));
            }
        }
    }
    json!({
        "resource": { "resourceType": "OperationOutcome", "issue": issues },
        "search": { "mode": "outcome" },
    })
}

/// `text` with every `http(s)://...` replaced by `(URL)`.
fn without_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("http://").into_iter().chain(rest.find("https://")).min() {
        out.push_str(&rest[..at]);
        out.push_str("(URL)");
        let after = &rest[at..];
        let end = after.find(|c: char| c.is_whitespace() || "\"'<>`()".contains(c)).unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}
