//! The canonical query string of a parsed search, for the `self` link of the result bundle: the
//! clauses that were applied, as written, then the result parameters.

use super::expr::SearchQuery;
use super::result::{Summary, Total};
use crate::interaction::percent_encode;

/// `key=value&...` for what `query` applies, percent-encoded.
pub(crate) fn to_query_string(query: &SearchQuery) -> String {
    let mut pairs: Vec<(String, String)> = query.clauses.iter().map(|c| c.written.clone()).collect();
    let r = &query.result;
    if !r.types.is_empty() {
        pairs.push(("_type".into(), r.types.join(",")));
    }
    for (name, list) in [("_include", &r.include), ("_revinclude", &r.revinclude)] {
        for i in list {
            let key = if i.iterate { format!("{name}:iterate") } else { name.to_owned() };
            let mut value = i.source_type.clone();
            if i.source_type != "*" {
                value.push(':');
                value.push_str(i.param.as_deref().unwrap_or("*"));
            }
            if let Some(t) = &i.target_type {
                value.push(':');
                value.push_str(t);
            }
            pairs.push((key, value));
        }
    }
    if !r.sort.is_empty() {
        let keys: Vec<String> =
            r.sort.iter().map(|k| format!("{}{}", if k.descending { "-" } else { "" }, k.param)).collect();
        pairs.push(("_sort".into(), keys.join(",")));
    }
    if let Some(count) = r.count {
        pairs.push(("_count".into(), count.to_string()));
    }
    if let Some(total) = r.total {
        let code = match total {
            Total::None => "none",
            Total::Estimate => "estimate",
            Total::Accurate => "accurate",
        };
        pairs.push(("_total".into(), code.into()));
    }
    if let Some(summary) = r.summary {
        let code = match summary {
            Summary::True => "true",
            Summary::False => "false",
            Summary::Text => "text",
            Summary::Data => "data",
            Summary::Count => "count",
        };
        pairs.push(("_summary".into(), code.into()));
    }
    if !r.elements.is_empty() {
        pairs.push(("_elements".into(), r.elements.join(",")));
    }
    let encoded: Vec<String> =
        pairs.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect();
    encoded.join("&")
}
