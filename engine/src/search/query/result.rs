//! The result parameters (search.html "Modifying Search Results"): `_count`, `_sort`, `_total`,
//! `_summary`, `_elements`, `_include`, `_revinclude`, and `_type` for a system search.
//! `_format` and `_pretty` only shape the response and are not part of the query.

use super::value::Problem;
use crate::definitions::Definitions;

/// How the result set is shaped; all empty / `None` when not asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultParams {
    pub count: Option<u32>,
    pub sort: Vec<SortKey>,
    pub total: Option<Total>,
    pub summary: Option<Summary>,
    pub elements: Vec<String>,
    pub include: Vec<Include>,
    pub revinclude: Vec<Include>,
    /// `_type`: the resource types of a system search.
    pub types: Vec<String>,
}

/// One `_sort` key; `-name` sorts descending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub param: String,
    pub descending: bool,
}

/// `_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    None,
    Estimate,
    Accurate,
}

pub use crate::format::Summary;

/// `_include=Source:param[:Target]` (or `*`), `:iterate` to follow included resources too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    pub source_type: String,
    /// `None` for `*` (every reference parameter of the source type).
    pub param: Option<String>,
    pub target_type: Option<String>,
    pub iterate: bool,
}

/// Whether `name` is a result parameter (or a formatting one the query ignores).
pub(super) fn is_result_param(name: &str) -> bool {
    matches!(
        name,
        "_count"
            | "_sort"
            | "_total"
            | "_summary"
            | "_elements"
            | "_include"
            | "_revinclude"
            | "_type"
            | "_format"
            | "_pretty"
    )
}

/// Applies the result parameter `name[:modifier]=value` to `result`.
pub(super) fn apply(
    defs: &Definitions,
    resource_type: Option<&str>,
    name: &str,
    modifier: Option<&str>,
    value: &str,
    result: &mut ResultParams,
) -> Result<(), Problem> {
    let invalid = |what: &str| Problem::Invalid(format!("`{name}={value}`: {what}"));
    if modifier.is_some() && !matches!(name, "_include" | "_revinclude") {
        return Err(Problem::Ignored(format!("`{name}` takes no modifier")));
    }
    match name {
        "_count" => {
            let count = value.parse::<u32>().map_err(|_| invalid("expected a number of 0 or more"))?;
            result.count = Some(count);
        }
        "_sort" => {
            for key in value.split(',') {
                let (descending, param) = key.strip_prefix('-').map_or((false, key), |p| (true, p));
                if param.is_empty() {
                    return Err(invalid("empty sort key"));
                }
                if let Some(t) = resource_type.filter(|t| defs.search_param(t, param).is_none()) {
                    return Err(Problem::Ignored(format!("unknown sort parameter `{param}` for `{t}`")));
                }
                result.sort.push(SortKey { param: param.to_owned(), descending });
            }
        }
        "_total" => {
            result.total = Some(match value {
                "none" => Total::None,
                "estimate" => Total::Estimate,
                "accurate" => Total::Accurate,
                _ => return Err(invalid("expected `none`, `estimate` or `accurate`")),
            });
        }
        "_summary" => {
            result.summary = Some(match value {
                "true" => Summary::True,
                "false" => Summary::False,
                "text" => Summary::Text,
                "data" => Summary::Data,
                "count" => Summary::Count,
                _ => return Err(invalid("expected `true`, `false`, `text`, `data` or `count`")),
            });
        }
        "_elements" => {
            result.elements.extend(value.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned));
        }
        "_include" | "_revinclude" => {
            let iterate = match modifier {
                None => false,
                Some("iterate" | "recurse") => true,
                Some(m) => return Err(Problem::Ignored(format!("modifier `:{m}` is not supported on `{name}`"))),
            };
            let include = include(defs, value, iterate).map_err(|what| invalid(&what))?;
            if name == "_include" { result.include.push(include) } else { result.revinclude.push(include) }
        }
        "_type" => {
            for t in value.split(',') {
                if !defs.is_resource_type(t) {
                    return Err(invalid(&format!("unknown resource type `{t}`")));
                }
                result.types.push(t.to_owned());
            }
        }
        _ => {} // `_format`, `_pretty`: formatting, not query.
    }
    Ok(())
}

fn include(defs: &Definitions, value: &str, iterate: bool) -> Result<Include, String> {
    if value == "*" {
        return Ok(Include { source_type: "*".to_owned(), param: None, target_type: None, iterate });
    }
    let mut parts = value.split(':');
    let source = parts.next().unwrap_or_default();
    let param = parts.next().ok_or("expected `Type:param[:Target]`")?;
    let target = parts.next();
    if parts.next().is_some() || !defs.is_resource_type(source) {
        return Err(format!("expected `Type:param[:Target]` with a known type, not `{value}`"));
    }
    if param != "*" {
        let Some(def) = defs.search_param(source, param) else {
            return Err(format!("unknown parameter `{param}` for `{source}`"));
        };
        if let Some(t) = target.filter(|t| !def.target.iter().any(|d| d == t)) {
            return Err(format!("`{t}` is not a target of `{source}:{param}`"));
        }
    }
    Ok(Include {
        source_type: source.to_owned(),
        param: (param != "*").then(|| param.to_owned()),
        target_type: target.map(str::to_owned),
        iterate,
    })
}
