//! `_include` and `_revinclude` (search.html "Including other resources"), with `:iterate` and
//! `*`. `_include` follows the reference index entries stored with each matched version;
//! `_revinclude` is itself a search (`Source?param=Type/id,...`) so it runs in the store. Included
//! resources are current versions, each at most once, and never one that is already a match.

use std::collections::HashSet;

use crate::definitions::{Definitions, SearchParamType};
use crate::error::Result;
use crate::interaction::Engine;
use crate::search::query::{Clause, Include, Predicate, ReferenceTarget, ResultParams, SearchQuery};
use crate::storage::{IndexValue, ResourceVersion};

/// Most resources one page includes, so one request cannot pull in a whole database.
const MAX_INCLUDED: usize = 5_000;
/// Rounds of `:iterate` after the first.
const MAX_ITERATIONS: usize = 4;

/// The resources the page's `matches` include.
pub(super) async fn resolve(
    engine: &Engine,
    result: &ResultParams,
    matches: &[ResourceVersion],
) -> Result<Vec<ResourceVersion>> {
    if result.include.is_empty() && result.revinclude.is_empty() {
        return Ok(Vec::new());
    }
    let mut seen: HashSet<(String, String)> = matches.iter().map(key).collect();
    let mut included = Vec::new();
    let mut frontier: Vec<ResourceVersion> = matches.to_vec();
    for round in 0..=MAX_ITERATIONS {
        let applies = |i: &&Include| round == 0 || i.iterate;
        let forwards: Vec<&Include> = result.include.iter().filter(applies).collect();
        let mut found = forward(engine, &forwards, &frontier).await?;
        for include in result.revinclude.iter().filter(applies) {
            found.extend(reverse(engine, include, &frontier).await?);
        }
        frontier = found.into_iter().filter(|v| seen.insert(key(v))).collect();
        included.extend(frontier.iter().cloned());
        if frontier.is_empty() || included.len() >= MAX_INCLUDED {
            break;
        }
    }
    included.truncate(MAX_INCLUDED);
    Ok(included)
}

fn key(v: &ResourceVersion) -> (String, String) {
    (v.resource_type.clone(), v.id.clone())
}

/// `_include=Source:param[:Target]`: the resources `from` refer to through `param`, for each of
/// `includes` (each source's index entries are read once for all of them).
async fn forward(engine: &Engine, includes: &[&Include], from: &[ResourceVersion]) -> Result<Vec<ResourceVersion>> {
    if includes.is_empty() {
        return Ok(Vec::new());
    }
    let defs = Definitions::r4();
    let mut targets = Vec::new();
    for source in from {
        let applying: Vec<&&Include> =
            includes.iter().filter(|i| i.source_type == "*" || i.source_type == source.resource_type).collect();
        if applying.is_empty() {
            continue;
        }
        let entries = engine.store.index(&source.resource_type, &source.id, source.version).await?.unwrap_or_default();
        for entry in entries {
            let IndexValue::Reference { resource_type: Some(t), id: Some(id), .. } = entry.value else { continue };
            let is_reference = || {
                defs.search_param(&source.resource_type, &entry.param)
                    .is_some_and(|p| p.kind == SearchParamType::Reference)
            };
            let wanted = applying.iter().any(|include| {
                let by_param = match &include.param {
                    Some(p) => *p == entry.param,
                    None => is_reference(),
                };
                by_param && include.target_type.as_ref().is_none_or(|target| *target == t)
            });
            if wanted && !targets.contains(&(t.clone(), id.clone())) {
                targets.push((t, id));
            }
        }
    }
    let mut out = Vec::new();
    for (t, id) in targets.into_iter().take(MAX_INCLUDED) {
        if let Some(v) = engine.store.read(&t, &id).await?.filter(|v| !v.is_deleted()) {
            out.push(v);
        }
    }
    Ok(out)
}

/// `_revinclude=Source:param[:Target]`: the `Source` resources whose `param` refers to `to`.
async fn reverse(engine: &Engine, include: &Include, to: &[ResourceVersion]) -> Result<Vec<ResourceVersion>> {
    let defs = Definitions::r4();
    let targets: Vec<&ResourceVersion> =
        to.iter().filter(|v| include.target_type.as_ref().is_none_or(|t| *t == v.resource_type)).collect();
    if targets.is_empty() || include.source_type == "*" {
        return Ok(Vec::new());
    }
    let params: Vec<String> = match &include.param {
        Some(p) => vec![p.clone()],
        None => defs
            .search_params(&include.source_type)
            .filter(|p| p.kind == SearchParamType::Reference)
            .map(|p| p.code.clone())
            .collect(),
    };
    let mut out = Vec::new();
    for param in params {
        let alternatives = targets
            .iter()
            .map(|v| {
                Predicate::Reference(ReferenceTarget::Local { types: vec![v.resource_type.clone()], id: v.id.clone() })
            })
            .collect();
        let query = SearchQuery {
            resource_type: Some(include.source_type.clone()),
            clauses: vec![Clause {
                param: param.clone(),
                modifier: None,
                alternatives,
                written: (param, String::new()),
            }],
            result: ResultParams::default(),
            compartment: None,
            after: None,
            after_sort: Vec::new(),
        };
        let limit = u32::try_from(MAX_INCLUDED).unwrap_or(u32::MAX);
        let matches = engine.store.search(&query, limit).await?;
        out.extend(engine.store.vread_many(&matches).await?);
    }
    Ok(out)
}
