//! The token modifiers answered by terminology (search.html "Modifiers"): `:in` and `:not-in`
//! (the codes of a value set), `:above` and `:below` (a code and its ancestors or descendants in
//! a loaded code system). Before the store runs a search, each such value is replaced by the
//! bounded list of `system|code` it stands for ([`Predicate::TokenSet`]), which every store
//! evaluates as it does plain tokens. The value set is found as the searching client may see
//! it ([`super::super::terminology::resolve`]), so `:in` reveals nothing a read would hide; the
//! matches are then decided as any search's are.

use super::super::Engine;
use super::super::gate::Gate;
use super::super::terminology::resolve::Resolver;
use crate::error::{Error, Result};
use crate::outcome::{Issue, IssueType};
use crate::search::query::{Clause, ConceptMatch, Predicate, SearchQuery, Token, TokenSystem};
use crate::terminology::Limits;

/// Most codes one `:in`, `:not-in`, `:above` or `:below` value may stand for.
pub(crate) const MAX_CODES: usize = 1_000;

/// Replaces every terminology predicate of `query` (chains and `_has` included) by the codes it
/// stands for.
pub(super) async fn resolve(engine: &Engine, gate: &Gate<'_>, query: &mut SearchQuery) -> Result<()> {
    let mut resolver: Option<Resolver<'_, '_>> = None;
    // Chains and `_has` nest at most `max_chain_depth` levels (checked by the parser).
    let mut pending: Vec<&mut Clause> = query.clauses.iter_mut().collect();
    while let Some(clause) = pending.pop() {
        let param = clause.param.clone();
        for predicate in &mut clause.alternatives {
            match predicate {
                Predicate::Chain(chain) => pending.push(&mut chain.next),
                Predicate::Has(has) => pending.push(&mut has.next),
                Predicate::Concepts { modifier, value } => {
                    let resolver = resolver.get_or_insert_with(|| Resolver::new(engine, gate));
                    let tokens =
                        codes(resolver, *modifier, value).await.map_err(|e| as_search_error(e, &param, *modifier))?;
                    *predicate = Predicate::TokenSet { not: *modifier == ConceptMatch::NotIn, tokens };
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The `system|code` pairs one value stands for.
async fn codes(resolver: &mut Resolver<'_, '_>, modifier: ConceptMatch, value: &str) -> Result<Vec<Token>> {
    let limits = Limits { max_size: MAX_CODES, ..Limits::default() };
    let token =
        |system: &str, code: &str| Token { system: TokenSystem::Is(system.to_owned()), code: Some(code.to_owned()) };
    match modifier {
        ConceptMatch::In | ConceptMatch::NotIn => {
            let value_set = resolver.value_set(value, None).await?;
            let expansion = resolver.expand(&value_set, &limits).await?;
            Ok(expansion.entries.iter().map(|e| token(&e.system, &e.code)).collect())
        }
        ConceptMatch::Above | ConceptMatch::Below => {
            let (system_url, code) = value
                .split_once('|')
                .filter(|(s, c)| !s.is_empty() && !c.is_empty())
                .ok_or_else(|| Error::bad_request(format!("the value must be `system|code`, not `{value}`")))?;
            let system = resolver.code_system(system_url, None).await?;
            let start = system.find(code).ok_or_else(|| {
                Error::bad_request(format!("the code `{code}` is not defined by the code system `{system_url}`"))
            })?;
            let related = match modifier {
                ConceptMatch::Below => system.descendants_and_self(start),
                _ => system.ancestors_and_self(start),
            };
            if related.len() > MAX_CODES {
                return Err(Error::BadRequest(vec![Issue::error(
                    IssueType::TooCostly,
                    format!("`{value}` stands for {} codes, more than the {MAX_CODES} a search may use", related.len()),
                )]));
            }
            Ok(related.into_iter().map(|i| token(&system.url, &system.concepts[i].code)).collect())
        }
    }
}

/// What could not be resolved, as the 400 of a search parameter (store failures stay as they are).
fn as_search_error(error: Error, param: &str, modifier: ConceptMatch) -> Error {
    let prefix = format!("`{param}:{}`: ", modifier.as_str());
    match error {
        Error::NotFound(m) | Error::NotSupported(m) => {
            Error::BadRequest(vec![Issue::error(IssueType::NotSupported, format!("{prefix}{m}"))])
        }
        Error::Unprocessable(issues) | Error::BadRequest(issues) | Error::Invalid(issues) => Error::BadRequest(
            issues.into_iter().map(|i| Issue { diagnostics: format!("{prefix}{}", i.diagnostics), ..i }).collect(),
        ),
        other => other,
    }
}
