//! A remote page's `next` link under a per-resource grant: it leads to a match the client may
//! see, never to a page of hidden matches only.
//!
//! The remote pages what it holds; the client sees each page after its entries are decided
//! ([`super::search::decide`]). A page whose matches were all hidden would reach the client
//! empty, with a `next` link or at the end of the search, and say that matches it may not see
//! exist there — what a local store never shows (its first page reads on until a visible match
//! follows). So before a page with a `next` link is answered, the pages after it are read and
//! decided until one holds a match the client may see: the link then leads to that page (the
//! pages of hidden matches only before it are skipped), and a search whose remaining pages hold
//! hidden matches only ends here (no `next`). A page that holds no match itself (the first page
//! of a search whose first matches are hidden) shows the first page after it that does. The
//! page found is read again when the client
//! follows the link: one remote request more per page, for per-resource grants only.
//!
//! Bounded: at most [`MAX_PEEKS`] pages are read past a page; after that the link leads to the
//! first page not read. A page that fails to be read or decided leaves the link as it is (the
//! client meets the failure when it follows the link).

use serde_json::{Map, Value};

use super::Call;
use super::search::{self, Listing};
use super::send;
use crate::interaction::{Gate, Method, parse_query};

/// Most remote pages read past one page to find a match the client may see.
const MAX_PEEKS: usize = 32;

/// Points `bundle`'s `next` link (on `base_url`, the remote's base) past the remote pages that
/// hold hidden matches only, and removes it when only such pages follow; a page that holds no
/// match itself shows the first following page that does. Nothing to do when the grant covers
/// every resource.
pub(super) async fn skip_hidden_pages(
    call: &Call<'_>,
    gate: &Gate<'_>,
    listing: Listing,
    bundle: &mut Map<String, Value>,
    base_url: &str,
) {
    if gate.covers_data() {
        return;
    }
    let mut shown = has_match(bundle);
    for _ in 0..MAX_PEEKS {
        let Some(next) = link(bundle, "next") else { return };
        let Some(below) = next.strip_prefix(base_url.trim_end_matches('/')) else { return };
        let (path, query) = below.split_once('?').unwrap_or((below, ""));
        let sent = send::request(Method::Get, path.trim_matches('/'), parse_query(query), base_url);
        let Ok(mut reply) = send::exchange(call.upstream, &sent).await else { return };
        let Ok(mut page) = reply.bundle(listing.kinds()) else { return };
        if search::decide(call, gate, listing, &mut page, base_url).await.is_err() {
            return;
        }
        let found = has_match(&page);
        if shown && found {
            return;
        }
        if !shown {
            // This page holds no match: the one read stands in for it.
            match page.remove("entry") {
                Some(entries) => bundle.insert("entry".into(), entries),
                None => bundle.remove("entry"),
            };
            shown = found;
        }
        set_next(bundle, link(&page, "next"));
    }
}

/// The URL of `bundle`'s link of `relation`.
pub(super) fn link(bundle: &Map<String, Value>, relation: &str) -> Option<String> {
    let links = bundle.get("link")?.as_array()?;
    let found = links.iter().find(|l| l.get("relation").and_then(Value::as_str) == Some(relation))?;
    found.get("url")?.as_str().map(str::to_owned)
}

/// Whether a decided page holds a match (an entry that is neither included nor a note; history
/// entries have no search mode).
fn has_match(page: &Map<String, Value>) -> bool {
    let entries = page.get("entry").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    entries.iter().any(|e| !matches!(e.pointer("/search/mode").and_then(Value::as_str), Some("include" | "outcome")))
}

/// Sets the `next` link's URL to `url`, or removes the link.
fn set_next(bundle: &mut Map<String, Value>, url: Option<String>) {
    let Some(Value::Array(links)) = bundle.get_mut("link") else { return };
    let is_next = |l: &Value| l.get("relation").and_then(Value::as_str) == Some("next");
    match url {
        Some(url) => {
            for l in links.iter_mut().filter(|l| is_next(l)) {
                l["url"] = Value::String(url.clone());
            }
        }
        None => links.retain(|l| !is_next(l)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn bundle(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn next_links_are_moved_or_removed() {
        let mut b = bundle(json!({"link": [{"relation": "self", "url": "s"}, {"relation": "next", "url": "a"}]}));
        assert_eq!(link(&b, "next").as_deref(), Some("a"));
        set_next(&mut b, Some("b".into()));
        assert_eq!(link(&b, "next").as_deref(), Some("b"));
        set_next(&mut b, None);
        assert_eq!(link(&b, "next"), None);
        assert_eq!(link(&b, "self").as_deref(), Some("s"), "other links stay");
    }

    #[test]
    fn includes_and_notes_are_no_matches() {
        let include = json!({"search": {"mode": "include"}, "resource": {}});
        let note = json!({"search": {"mode": "outcome"}, "resource": {}});
        assert!(!has_match(&bundle(json!({"entry": [include, note]}))));
        assert!(has_match(&bundle(json!({"entry": [{"search": {"mode": "match"}}]}))));
        assert!(has_match(&bundle(json!({"entry": [{"request": {"method": "PUT"}}]}))), "a history entry");
        assert!(!has_match(&bundle(json!({}))));
    }
}
