//! Links inside a resource's narratives (`<a href="#x">`) must lead somewhere: to an element
//! with that `id`, or an anchor with that `name`, in one of the resource's narratives (its own,
//! its contained resources', a Bundle's entries'), or to a contained resource with that id. A
//! link that leads nowhere is an error of `$validate`, as the reference validator has it; writes
//! do not check it, profiled ones neither (the text is for people, a dead link breaks no data,
//! and R4's own v3 ValueSets and CodeSystems link to codes their narratives do not anchor).
//!
//! Bounded: the walk stops at [`super::MAX_DEPTH`], and narratives that are not well-formed are
//! skipped (the base checks report them).

use std::collections::HashSet;

use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::Value;

use crate::outcome::{Issue, IssueType};

/// The narratives under `value` (`div` of an object with `status`, i.e. a Narrative) with their
/// paths, and the ids of the contained resources.
fn gather<'v>(
    value: &'v Value,
    path: &str,
    depth: usize,
    divs: &mut Vec<(String, &'v str)>,
    ids: &mut HashSet<&'v str>,
) {
    if depth >= super::MAX_DEPTH {
        return;
    }
    match value {
        Value::Object(object) => {
            if let (Some(Value::String(div)), Some(_)) = (object.get("div"), object.get("status")) {
                divs.push((format!("{path}.div"), div));
            }
            for contained in object.get("contained").and_then(Value::as_array).into_iter().flatten() {
                if let Some(id) = contained.get("id").and_then(Value::as_str) {
                    ids.insert(id);
                }
            }
            for (key, child) in object {
                gather(child, &format!("{path}.{key}"), depth + 1, divs, ids);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                gather(item, &format!("{path}[{i}]"), depth + 1, divs, ids);
            }
        }
        _ => {}
    }
}

/// A narrative's anchors (`id` and `name` attributes) and its internal links (`href="#..."`,
/// without the `#`).
fn read(div: &str) -> (Vec<String>, Vec<String>) {
    let (mut anchors, mut links) = (Vec::new(), Vec::new());
    let mut reader = Reader::from_str(div);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                for attribute in e.attributes().flatten() {
                    let value = String::from_utf8_lossy(&attribute.value).into_owned();
                    match attribute.key.as_ref() {
                        b"id" | b"name" => anchors.push(value),
                        b"href" => {
                            if let Some(fragment) = value.strip_prefix('#').filter(|f| !f.is_empty()) {
                                links.push(fragment.to_owned());
                            }
                        }
                        _ => {}
                    }
                }
            }
            Ok(Event::Eof) | Err(_) => return (anchors, links),
            Ok(_) => {}
        }
    }
}

/// The internal links of `resource`'s narratives that lead nowhere.
pub(crate) fn check(resource: &Value) -> Vec<Issue> {
    let path = resource.get("resourceType").and_then(Value::as_str).unwrap_or_default();
    let (mut divs, mut contained) = (Vec::new(), HashSet::new());
    gather(resource, path, 0, &mut divs, &mut contained);
    let read: Vec<(String, Vec<String>, Vec<String>)> = divs
        .into_iter()
        .map(|(at, div)| {
            let (anchors, links) = read(div);
            (at, anchors, links)
        })
        .collect();
    let anchors: HashSet<&str> = read.iter().flat_map(|(_, a, _)| a.iter().map(String::as_str)).collect();
    let mut issues = Vec::new();
    for (at, _, links) in &read {
        for link in links {
            if !anchors.contains(link.as_str()) && !contained.contains(link.as_str()) {
                let message = format!("the hyperlink `#{}` does not resolve", super::shorten(link));
                issues.push(Issue::error(IssueType::Value, message).at(at.clone()));
            }
        }
    }
    issues
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn links_resolve_to_anchors_and_contained_resources() {
        let list = json!({"resourceType": "List", "text": {"status": "generated",
            "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><a name=\"top\"/><p id=\"p1\">x</p>\
                    <a href=\"#top\">a</a><a href=\"#p1\">b</a><a href=\"#c1\">c</a><a href=\"#top/c1\">d</a>\
                    <a href=\"#\">e</a><a href=\"http://x.org/#y\">f</a></div>"},
            "contained": [{"resourceType": "Device", "id": "c1"}]});
        let mut divs = Vec::new();
        let mut ids = std::collections::HashSet::new();
        super::gather(&list, "List", 0, &mut divs, &mut ids);
        assert_eq!(divs.len(), 1);
        assert!(ids.contains("c1"));
        let (anchors, links) = super::read(divs[0].1);
        assert_eq!(anchors, ["top", "p1"]);
        assert_eq!(links, ["top", "p1", "c1", "top/c1"]);
        let issues = super::check(&list);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(issues[0].diagnostics.contains("`#top/c1`"));
    }
}
