//! The search query parser (search.html): turns the query parameters of a search into the
//! backend-neutral [`SearchQuery`], validated against the definitions. It does not run searches;
//! stores translate the expression.
//!
//! Handling (search.html "Handling Errors"): with `strict`, unknown parameters or modifiers are a
//! 400; otherwise they are skipped and reported in [`ParsedSearch::ignored`]. A malformed value of a
//! known parameter is a 400 either way. Every problem is reported, not only the first.
//!
//! Bounds ([`Limits`]): the number and size of parameters, and the depth of chains and `_has`,
//! are checked before parsing, so a hostile query is a 400 and never a deep recursion.

pub mod comparison;
mod expr;
mod limits;
mod prefix;
mod render;
mod result;
mod selectivity;
mod value;

use crate::definitions::{Definitions, SearchParam, SearchParamType};
use crate::error::Error;
use crate::outcome::{Issue, IssueType};

pub use expr::{
    Chain, Clause, Compartment, ConceptMatch, Has, Predicate, ReferenceTarget, SearchQuery, SortValue, StringMatch,
    Token, TokenSystem, UriMatch,
};
pub use limits::{Limits, chain_depth};
pub use prefix::Prefix;
pub(crate) use render::to_query_string;
pub use result::{Include, ResultParams, SortKey, Summary, Total};
pub use selectivity::driving_clause;
use value::Problem;

/// A parsed search, with what was left out of it and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSearch {
    pub query: SearchQuery,
    /// `(name, value, reason)` of each parameter skipped under lenient handling.
    pub ignored: Vec<(String, String, String)>,
}

/// Parses the (percent-decoded) query `params` of a search on `resource_type` (`None` for a
/// system search); `strict` for `Prefer: handling=strict`. Within the default [`Limits`].
pub fn parse(
    defs: &Definitions,
    resource_type: Option<&str>,
    params: &[(String, String)],
    strict: bool,
) -> Result<ParsedSearch, Error> {
    parse_within(defs, resource_type, params, strict, &Limits::default())
}

/// [`parse`] within `limits`: more parameters or bytes than allowed, or a chain or `_has`
/// deeper than allowed, is a 400 whatever the handling.
pub fn parse_within(
    defs: &Definitions,
    resource_type: Option<&str>,
    params: &[(String, String)],
    strict: bool,
    limits: &Limits,
) -> Result<ParsedSearch, Error> {
    limits.check_size(params)?;
    let mut result = ResultParams::default();
    let mut problems: Vec<(String, String, Problem)> = Vec::new();
    let mut ignored = Vec::new();
    // Result parameters first: `_type` decides which parameters a system search may use.
    for (key, value) in params {
        let (name, modifier) = split_modifier(key);
        if !result::is_result_param(name) {
            continue;
        }
        if let Err(p) = result::apply(defs, resource_type, name, modifier, value, &mut result) {
            problems.push((key.clone(), value.clone(), p));
        }
    }
    let scope = Scope { defs, types: &result.types, max_depth: limits.chain_depth() };
    let mut clauses = Vec::new();
    for (key, value) in params {
        let (name, _) = split_modifier(key);
        if result::is_result_param(name) {
            continue;
        }
        if value.is_empty() {
            ignored.push((key.clone(), value.clone(), "empty value".to_owned()));
            continue;
        }
        if let Err(m) = limits.check_key(key) {
            problems.push((limits::shorten(key), String::new(), Problem::Invalid(m)));
            continue;
        }
        match scope.clause(resource_type, key, value, 0) {
            Ok(clause) => clauses.push(clause),
            Err(found) => problems.extend(found.into_iter().map(|p| (key.clone(), value.clone(), p))),
        }
    }
    let mut issues = Vec::new();
    for (key, value, problem) in problems {
        match problem {
            Problem::Invalid(m) => issues.push(Issue::error(IssueType::Invalid, m)),
            Problem::Ignored(m) if strict => issues.push(Issue::error(IssueType::NotSupported, m)),
            Problem::Ignored(m) => ignored.push((key, value, m)),
        }
    }
    if !issues.is_empty() {
        return Err(Error::BadRequest(issues));
    }
    let query = SearchQuery {
        resource_type: resource_type.map(str::to_owned),
        clauses,
        result,
        compartment: None,
        after: None,
        after_sort: Vec::new(),
    };
    Ok(ParsedSearch { query, ignored })
}

/// `name:modifier` → `("name", Some("modifier"))`.
fn split_modifier(key: &str) -> (&str, Option<&str>) {
    key.split_once(':').map_or((key, None), |(n, m)| (n, Some(m)))
}

/// What parameters resolve against.
struct Scope<'a> {
    defs: &'a Definitions,
    /// `_type` of a system search.
    types: &'a [String],
    /// Chain and `_has` links allowed in one parameter.
    max_depth: usize,
}

impl Scope<'_> {
    /// The definition of `code` for `resource_type`; for a system search, a parameter every
    /// `_type` has, or one defined on every resource.
    fn param(&self, resource_type: Option<&str>, code: &str) -> Result<&SearchParam, Problem> {
        let found = match resource_type {
            Some(t) => self.defs.search_param(t, code),
            None if self.types.is_empty() => self.defs.search_param("Parameters", code),
            None => {
                let all = self.types.iter().map(|t| self.defs.search_param(t, code)).collect::<Option<Vec<_>>>();
                all.and_then(|all| all.first().copied())
            }
        };
        found.ok_or_else(|| match resource_type.filter(|t| self.defs.is_custom_pending(t, code)) {
            Some(t) => Problem::Ignored(format!(
                "search parameter `{code}` of `{t}` is not usable yet: the resources it covers are being reindexed"
            )),
            None => Problem::Ignored(format!(
                "unknown search parameter `{code}` for `{}`",
                resource_type.unwrap_or("all types")
            )),
        })
    }

    /// The clause for `key=value`: a `_has`, a chain or a plain parameter with its modifier;
    /// `depth` links above it already.
    fn clause(
        &self,
        resource_type: Option<&str>,
        key: &str,
        value: &str,
        depth: usize,
    ) -> Result<Clause, Vec<Problem>> {
        if let Some(rest) = key.strip_prefix("_has:") {
            return self.has(resource_type, rest, value, depth).map(|has| Clause {
                param: "_has".to_owned(),
                modifier: None,
                alternatives: vec![Predicate::Has(has)],
                written: (key.to_owned(), value.to_owned()),
            });
        }
        if let Some((head, tail)) = key.split_once('.') {
            let (code, modifier) = split_modifier(head);
            let chain = self.chain(resource_type, code, modifier, tail, value, depth)?;
            return Ok(Clause {
                param: code.to_owned(),
                modifier: modifier.map(str::to_owned),
                written: (key.to_owned(), value.to_owned()),
                alternatives: vec![Predicate::Chain(chain)],
            });
        }
        let (code, modifier) = split_modifier(key);
        let param = self.param(resource_type, code).map_err(|p| vec![p])?;
        let mut alternatives = Vec::new();
        let mut problems = Vec::new();
        for raw in value::split_escaped(value, ',') {
            match value::parse(self.defs, param, modifier, &raw) {
                Ok(p) => alternatives.push(p),
                Err(p) if !problems.contains(&p) => problems.push(p),
                Err(_) => {}
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Clause {
            param: code.to_owned(),
            modifier: modifier.map(str::to_owned),
            alternatives,
            written: (key.to_owned(), value.to_owned()),
        })
    }

    /// `code[:Type].tail=value` (search.html "Chained parameters").
    fn chain(
        &self,
        resource_type: Option<&str>,
        code: &str,
        modifier: Option<&str>,
        tail: &str,
        value: &str,
        depth: usize,
    ) -> Result<Chain, Vec<Problem>> {
        self.deeper(depth, tail)?;
        let param = self.param(resource_type, code).map_err(|p| vec![p])?;
        if param.kind != SearchParamType::Reference {
            return Err(vec![Problem::Ignored(format!("`{code}` is not a reference parameter and cannot be chained"))]);
        }
        let candidates: Vec<&String> = match modifier {
            Some(t) if param.target.iter().any(|target| target == t) => {
                param.target.iter().filter(|x| *x == t).collect()
            }
            Some(t) => return Err(vec![Problem::Ignored(format!("`{t}` is not a target type of `{code}`"))]),
            None => param.target.iter().collect(),
        };
        // The next parameter's code, before its own modifier or chain.
        let next_code = tail.split(['.', ':']).next().unwrap_or_default();
        let target_types: Vec<String> = candidates
            .into_iter()
            .filter(|t| next_code == "_has" || self.defs.search_param(t, next_code).is_some())
            .cloned()
            .collect();
        let Some(first) = target_types.first() else {
            return Err(vec![Problem::Ignored(format!("no target type of `{code}` has the parameter `{next_code}`"))]);
        };
        let next = self.clause(Some(first), tail, value, depth + 1)?;
        Ok(Chain { target_types, next: Box::new(next) })
    }

    /// `_has:Type:param:rest=value` (search.html "Reverse chaining").
    fn has(&self, resource_type: Option<&str>, rest: &str, value: &str, depth: usize) -> Result<Has, Vec<Problem>> {
        self.deeper(depth, rest)?;
        let mut parts = rest.splitn(3, ':');
        let (Some(source), Some(reference), Some(next)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(vec![Problem::Invalid(format!("`_has:{rest}` must be `_has:Type:param:filter`"))]);
        };
        if !self.defs.is_resource_type(source) {
            return Err(vec![Problem::Invalid(format!("unknown resource type `{source}` in `_has:{rest}`"))]);
        }
        let Some(param) = self.defs.search_param(source, reference) else {
            return Err(vec![Problem::Invalid(format!(
                "unknown search parameter `{reference}` for `{source}` in `_has`"
            ))]);
        };
        let points_here = resource_type.is_none_or(|t| param.target.iter().any(|target| target == t));
        if param.kind != SearchParamType::Reference || !points_here {
            let here = resource_type.unwrap_or_default();
            return Err(vec![Problem::Invalid(format!("`{source}:{reference}` is not a reference to `{here}`"))]);
        }
        let next = self.clause(Some(source), next, value, depth + 1)?;
        Ok(Has { resource_type: source.to_owned(), reference_param: reference.to_owned(), next: Box::new(next) })
    }

    /// Fails before a link below `depth` when it would exceed the allowed depth (the key was
    /// checked as a whole already: this keeps the recursion bounded on its own).
    fn deeper(&self, depth: usize, rest: &str) -> Result<(), Vec<Problem>> {
        if depth >= self.max_depth {
            return Err(vec![Problem::Invalid(format!(
                "`{}` goes deeper than the {} chain or `_has` levels this server allows (`max_chain_depth`)",
                limits::shorten(rest),
                self.max_depth
            ))]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
