//! Symbolic proofs over policy sets with Cedar's symbolic compiler (`cedar-policy-symcc`): for
//! every request the schema allows (each principal type × action × resource type, with every
//! possible attribute value and entity hierarchy), not for a few test cases.
//!
//! Two kinds of property:
//! - **never errors**: no policy of the set fails to evaluate on any request (an error skips
//!   the policy, which can silently turn a `forbid` off);
//! - **bounded by**: the set allows no more than a bound set. Every property a shipped set
//!   states (`sets/<name>/properties/*.cedar`) is such a bound, written as permits:
//!   "anything outside the premise, and inside it only what the conclusion says", e.g. a
//!   principal with only patient-level SMART scopes is allowed no resource outside its
//!   compartment. `fhirgate policy prove --implies A B` asks the same of two sets.
//!
//! A property that fails comes with a counterexample: a concrete request and entities that
//! the set allows (or errors on) and the bound does not, replayed through Cedar's authorizer
//! to name the policies that allowed it. The solver is cvc5 ([`solver`]).

pub mod properties;
pub mod solver;

use cedar_policy::{Authorizer, PolicySet, RequestEnv, Schema};
use cedar_policy_symcc::{CedarSymCompiler, CompiledPolicy, CompiledPolicySet, Env, solver::LocalSolver};

use crate::attributes::wanted::Wanted;
use crate::engine::PolicyEngine;
use crate::error::Error;
use crate::sources::PolicySource;

/// A property of a policy set.
#[derive(Debug, Clone)]
pub enum Property {
    /// No policy of the set errors on any request the schema allows.
    NeverErrors,
    /// The set allows no more than `bound` does.
    BoundedBy { name: String, description: String, bound: Vec<PolicySource> },
}

impl Property {
    /// The property's name: `never-errors`, or the bound's (a property file's stem, a set).
    pub fn name(&self) -> &str {
        match self {
            Self::NeverErrors => "never-errors",
            Self::BoundedBy { name, .. } => name,
        }
    }

    /// What it says, in a sentence.
    pub fn description(&self) -> &str {
        match self {
            Self::NeverErrors => "no policy errors on any request the schema allows",
            Self::BoundedBy { description, .. } => description,
        }
    }
}

/// The outcome of one property.
#[derive(Debug, Clone)]
pub struct Finding {
    pub property: String,
    pub description: String,
    /// Request environments (principal type × action × resource type) checked.
    pub environments: usize,
    /// The first counterexample found, rendered: `None` when the property holds.
    pub counterexample: Option<String>,
}

impl Finding {
    pub fn holds(&self) -> bool {
        self.counterexample.is_none()
    }
}

/// Proves each property of the policy set `sources`, with one solver process for all.
pub fn prove(sources: &[PolicySource], properties: &[Property], solver: &solver::Cvc5) -> Result<Vec<Finding>, Error> {
    let engine = PolicyEngine::load(sources)?;
    let bounds = properties.iter().filter_map(|p| match p {
        Property::BoundedBy { bound, .. } => Some(bound.as_slice()),
        Property::NeverErrors => None,
    });
    let schema = proof_schema(std::iter::once(sources).chain(bounds))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Proof(format!("cannot start the solver's runtime: {e}")))?;
    runtime.block_on(async {
        let mut compiler = CedarSymCompiler::new(solver.spawn()?).map_err(proof)?;
        let mut findings = Vec::new();
        for property in properties {
            let finding = match property {
                Property::NeverErrors => never_errors(&mut compiler, engine.policy_set(), &schema).await?,
                Property::BoundedBy { bound, .. } => {
                    let bound = PolicyEngine::load(bound)?;
                    bounded(&mut compiler, engine.policy_set(), bound.policy_set(), &schema).await?
                }
            };
            findings.push(Finding {
                property: property.name().to_string(),
                description: property.description().to_string(),
                environments: finding.0,
                counterexample: finding.1,
            });
        }
        Ok(findings)
    })
}

fn proof(e: impl std::fmt::Display) -> Error {
    Error::Proof(e.to_string())
}

/// The schema the proofs run over: the generated entity types the policies can tell apart from
/// the rest — those they name (`resource is Fhir::Observation`, `Fhir::Patient::"p1"`) and
/// those with an attribute they read — and one more standing for all others. Sound: a policy
/// evaluates the same on every type it neither names nor reads an attribute of (their common
/// attributes are the same, `resource.type` is a free string either way), so one such type
/// covers them all. The whole schema has ~147 types, and each multiplies the solver's work.
fn proof_schema<'a>(sets: impl Iterator<Item = &'a [PolicySource]>) -> Result<Schema, Error> {
    let mut named = std::collections::BTreeSet::new();
    let mut policies = Vec::new();
    for sources in sets {
        for source in sources {
            let mut rest = source.text.as_str();
            while let Some(at) = rest.find("Fhir::") {
                rest = &rest[at + "Fhir::".len()..];
                let end = rest.find(|c: char| !(c == '_' || c.is_ascii_alphanumeric())).unwrap_or(rest.len());
                named.insert(rest[..end].to_string());
            }
        }
        policies.push(PolicyEngine::load(sources)?);
    }
    let wanted = Wanted::of(policies.iter().flat_map(|engine| engine.policy_set().policies()));
    let mut other = None;
    crate::schema::schema_with(|resource_type, name| {
        if named.contains(name) || !wanted.params(resource_type).is_empty() {
            return true;
        }
        other.get_or_insert_with(|| name.to_string()) == name
    })
}

/// Every request environment of the schema.
fn environments(schema: &Schema) -> Vec<RequestEnv> {
    schema.request_envs().collect()
}

/// Never errors: each policy, in each environment.
async fn never_errors(
    compiler: &mut CedarSymCompiler<LocalSolver>,
    set: &PolicySet,
    schema: &Schema,
) -> Result<(usize, Option<String>), Error> {
    let envs = environments(schema);
    for env in &envs {
        for policy in set.policies() {
            let compiled = CompiledPolicy::compile(policy, env, schema).map_err(proof)?;
            if let Some(cex) = compiler.check_never_errors_with_counterexample_opt(&compiled).await.map_err(proof)? {
                return Ok((envs.len(), Some(format!("policy `{}` errors on:\n{}", policy.id(), render(&cex, set)))));
            }
        }
    }
    Ok((envs.len(), None))
}

/// Bounded by: in each environment, every request `set` allows, `bound` allows.
async fn bounded(
    compiler: &mut CedarSymCompiler<LocalSolver>,
    set: &PolicySet,
    bound: &PolicySet,
    schema: &Schema,
) -> Result<(usize, Option<String>), Error> {
    let envs = environments(schema);
    for env in &envs {
        let compiled = CompiledPolicySet::compile(set, env, schema).map_err(proof)?;
        let limit = CompiledPolicySet::compile(bound, env, schema).map_err(proof)?;
        if let Some(cex) = compiler.check_implies_with_counterexample_opt(&compiled, &limit).await.map_err(proof)? {
            return Ok((envs.len(), Some(format!("allowed, beyond the bound:\n{}", render(&cex, set)))));
        }
    }
    Ok((envs.len(), None))
}

/// A counterexample: the request and entities, and what the set decides on them.
fn render(cex: &Env, set: &PolicySet) -> String {
    let response = Authorizer::new().is_authorized(&cex.request, set, &cex.entities);
    let mut reasons: Vec<String> = response.diagnostics().reason().map(ToString::to_string).collect();
    reasons.sort();
    let errors: Vec<String> = response.diagnostics().errors().map(ToString::to_string).collect();
    // Action entities (the schema's) and bare role or group entities say nothing: left out.
    let telling = |e: &&cedar_policy::Entity| {
        let (uid, attrs, parents) = (*e).clone().into_inner();
        uid.type_name().to_string() != "Fhir::Action" && !(attrs.is_empty() && parents.is_empty())
    };
    let shown = cedar_policy::Entities::from_entities(cex.entities.iter().filter(telling).cloned(), None)
        .map_or_else(|_| cex.to_string(), |entities| Env { request: cex.request.clone(), entities }.to_string());
    let mut text = format!("{shown}\ndecision: {:?} by {reasons:?}", response.decision());
    if !errors.is_empty() {
        text.push_str(&format!("\nerrors: {errors:?}"));
    }
    text
}

#[cfg(test)]
mod tests;
