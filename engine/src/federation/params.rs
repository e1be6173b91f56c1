//! Search parameters that carry ids: `_id` and reference parameters (`subject=Patient/LAB-1`,
//! `patient=LAB-1`), plain or at the end of a chain (`subject:Patient._id=LAB-1`) or of a
//! `_has`. Which parameters are references comes from the R4 search parameter definitions.
//!
//! Towards the target a value naming another target's id cannot match there: it is left out,
//! and when no value of a parameter is left the search can match nothing on this target
//! (`None`); under `:not` the parameter is dropped instead (it excludes nothing here).

use super::ids::{Adjusted, Ids, is_id};
use crate::definitions::{Definitions, SearchParamType};
use crate::interaction::percent_encode;

/// What a parameter's values are, for the rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carries {
    /// Ids (`_id`): each value is an id.
    Ids,
    /// References: `Type/id`, an id alone, or an absolute URL.
    References,
    /// Nothing to rewrite.
    Nothing,
}

/// How a modifier changes the meaning of the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sense {
    /// The values are matched (`:Type`, none).
    Positive,
    /// The values are excluded (`:not`).
    Negative,
    /// The values are no ids (`:missing`, `:identifier`, `:text`...).
    Opaque,
}

/// The resource types a search on `path_type` with `query` runs on: the path's type, else
/// `_type`, else none (every type).
pub(super) fn types_of(path_type: Option<&str>, query: &[(String, String)]) -> Vec<String> {
    if let Some(t) = path_type {
        return vec![t.to_owned()];
    }
    query
        .iter()
        .filter(|(k, _)| k == "_type")
        .flat_map(|(_, v)| v.split(','))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Ids<'_> {
    /// The parameters as the other side must see them; `None` when the search can match nothing
    /// on this target (towards the target only).
    pub(super) fn params(&self, types: &[String], query: &[(String, String)]) -> Option<Vec<(String, String)>> {
        let mut out = Vec::with_capacity(query.len());
        for (key, value) in query {
            let (carries, sense) = classify(types, key);
            if carries == Carries::Nothing || sense == Sense::Opaque {
                out.push((key.clone(), value.clone()));
                continue;
            }
            let mut kept = Vec::new();
            for item in value.split(',') {
                match self.value(carries, item) {
                    Adjusted::Changed(new) => kept.push(new),
                    Adjusted::Same => kept.push(item.to_owned()),
                    Adjusted::Foreign => {}
                }
            }
            match (kept.is_empty(), sense) {
                (false, _) => out.push((key.clone(), kept.join(","))),
                (true, Sense::Negative) => {}
                (true, _) => return None,
            }
        }
        Some(out)
    }

    /// A query string (`a=1&b=2`, without `?`) rewritten as [`Self::params`]; `None` as there.
    /// Written as it was when nothing in it changes.
    pub(super) fn query_string(&self, types: &[String], query: &str) -> Option<String> {
        let pairs = crate::interaction::parse_query(query);
        let new = self.params(types, &pairs)?;
        Some(if new == pairs { query.to_owned() } else { encode(&new) })
    }

    /// One value of a parameter that carries ids.
    fn value(&self, carries: Carries, value: &str) -> Adjusted {
        if self.on_base(value) {
            return match self.urls(value) {
                (_, true) => Adjusted::Same, // an absolute URL to another target, searched as written
                (new, false) => Adjusted::Changed(new.into_owned()),
            };
        }
        match carries {
            Carries::Ids if is_id(value) => self.adjust_id(value),
            Carries::References if is_id(value) => self.adjust_id(value),
            Carries::References => self.relative(value),
            _ => Adjusted::Same,
        }
    }
}

/// Encodes decoded pairs as a query string.
pub(super) fn encode(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect::<Vec<_>>().join("&")
}

/// What the parameter `key` (with modifier, chain or `_has`) of a search on `types` carries.
fn classify(types: &[String], key: &str) -> (Carries, Sense) {
    let defs = Definitions::r4();
    let mut types: Vec<String> = types.to_vec();
    let mut rest = key;
    // Each turn consumes a `_has:Type:param:` or a `code[:Type].` of the key: bounded by its length.
    loop {
        if let Some(has) = rest.strip_prefix("_has:") {
            let mut parts = has.splitn(3, ':');
            let (Some(source), Some(_reference), Some(next)) = (parts.next(), parts.next(), parts.next()) else {
                return (Carries::Nothing, Sense::Opaque);
            };
            types = vec![source.to_owned()];
            rest = next;
            continue;
        }
        let Some((link, next)) = rest.split_once('.') else { break };
        let (code, modifier) = link.split_once(':').map_or((link, None), |(c, m)| (c, Some(m)));
        let Some(param) = defs.search_param_in(&types, code) else { return (Carries::Nothing, Sense::Opaque) };
        types = match modifier {
            Some(t) => vec![t.to_owned()],
            None => param.target.clone(),
        };
        rest = next;
    }
    let (code, modifier) = rest.split_once(':').map_or((rest, None), |(c, m)| (c, Some(m)));
    let sense = match modifier {
        None => Sense::Positive,
        Some("not") => Sense::Negative,
        Some(m) if defs.is_resource_type(m) => Sense::Positive,
        Some(_) => Sense::Opaque,
    };
    if code == "_id" {
        return (Carries::Ids, sense);
    }
    match defs.search_param_in(&types, code) {
        Some(p) if p.kind == SearchParamType::Reference => (Carries::References, sense),
        _ => (Carries::Nothing, sense),
    }
}
