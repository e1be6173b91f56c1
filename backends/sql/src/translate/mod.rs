//! The neutral search expression as one SQL statement over the search tables.
//!
//! A search selects from `search_current r`; each clause becomes a condition on `r` (its
//! alternatives joined by `OR`, clauses by `AND`), each value a membership test
//! `(r.resource_type, r.id) IN (SELECT resource_type, id FROM <table of its type> WHERE ...)`.
//! The sub-queries are uncorrelated, so both databases run them once, through the index on the
//! value (`(param, code, system)`, `(target_id, target_type, param)`...), instead of probing every
//! current resource. Chains and `_has` nest the same tests on the resource at the other end of a
//! `search_reference` row, so a chain of any depth is one statement and no result set is ever
//! capped between levels.

mod condition;
mod sort;

use fhirgate_engine::definitions::{Definitions, SearchParamType};
use fhirgate_engine::search::query::{Clause, Compartment, Predicate, SearchQuery};

use crate::bind::{Bind, Binder, Dialect, Sql};
use crate::rows::{OF_TYPE, REFERENCE_IDENTIFIER, TOKEN};

/// A search this translation cannot express; the store reports it as "not supported".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// `SELECT resource_type, id, version` of the matches of `query`, sorted, at most `limit`.
pub fn select(dialect: Dialect, defs: &Definitions, query: &SearchQuery, limit: u32) -> Result<Sql, Unsupported> {
    let mut t = Translator::new(dialect, defs, query);
    let filter = t.filter(query)?;
    let (keys, order) = sort::keys(&mut t, query)?;
    let limit = t.binder.bind(Bind::Int(i64::from(limit)));
    let text = format!(
        "SELECT resource_type, id, version FROM (SELECT r.resource_type, r.id, r.version{keys} \
         FROM search_current r WHERE {filter}) q ORDER BY {order} LIMIT {limit}"
    );
    Ok(Sql { text, binds: t.binder.binds })
}

/// `SELECT COUNT(*)` of the matches of `query`.
pub fn count(dialect: Dialect, defs: &Definitions, query: &SearchQuery) -> Result<Sql, Unsupported> {
    let mut t = Translator::new(dialect, defs, query);
    let filter = t.filter(query)?;
    Ok(Sql { text: format!("SELECT COUNT(*) FROM search_current r WHERE {filter}"), binds: t.binder.binds })
}

/// Builds one statement: its parameters and fresh table aliases.
struct Translator<'a> {
    binder: Binder,
    defs: &'a Definitions,
    /// The types searched, for looking up parameter types (empty for a search of all types).
    types: Vec<String>,
    aliases: u32,
}

impl<'a> Translator<'a> {
    fn new(dialect: Dialect, defs: &'a Definitions, query: &SearchQuery) -> Self {
        let types = match &query.resource_type {
            Some(t) => vec![t.clone()],
            None => query.result.types.clone(),
        };
        Self { binder: Binder::new(dialect), defs, types, aliases: 0 }
    }

    fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("x{}", self.aliases)
    }

    /// The type of parameter `code` on the first of `types` that has it (or on every resource).
    fn kind(&self, code: &str, types: &[String]) -> Result<SearchParamType, Unsupported> {
        self.defs
            .search_param_in(types, code)
            .map(|p| p.kind)
            .ok_or_else(|| Unsupported(format!("unknown search parameter `{code}`")))
    }

    /// The `WHERE` condition on `r`.
    fn filter(&mut self, query: &SearchQuery) -> Result<String, Unsupported> {
        let mut conditions = Vec::new();
        if !self.types.is_empty() {
            let types = self.types.clone();
            conditions.push(format!("r.resource_type IN {}", self.binder.list(&types)));
        }
        if let Some(compartment) = &query.compartment {
            conditions.push(self.compartment(compartment));
        }
        let types = self.types.clone();
        for clause in &query.clauses {
            conditions.push(self.clause(clause, "r.resource_type", "r.id", &types)?);
        }
        Ok(if conditions.is_empty() { "1 = 1".to_owned() } else { conditions.join(" AND ") })
    }

    /// Membership of `r` in a compartment: the owner itself, or a resource whose compartment
    /// parameters refer to the owner.
    fn compartment(&mut self, c: &Compartment) -> String {
        let mut alternatives = vec![format!(
            "(r.resource_type = {} AND r.id = {})",
            self.binder.text(&c.resource_type),
            self.binder.text(&c.id)
        )];
        for (resource_type, params) in &c.params {
            let a = self.alias();
            alternatives.push(format!(
                "(r.resource_type, r.id) IN (SELECT {a}.resource_type, {a}.id FROM search_reference {a} \
                 WHERE {a}.target_id = {} AND {a}.target_type = {} AND {a}.param IN {} AND {a}.resource_type = {})",
                self.binder.text(&c.id),
                self.binder.text(&c.resource_type),
                self.binder.list(params),
                self.binder.text(resource_type),
            ));
        }
        format!("({})", alternatives.join(" OR "))
    }

    /// One clause on the resource `rt`/`id` (column expressions), whose types are `types`.
    fn clause(&mut self, clause: &Clause, rt: &str, id: &str, types: &[String]) -> Result<String, Unsupported> {
        let mut alternatives = Vec::with_capacity(clause.alternatives.len());
        for predicate in &clause.alternatives {
            alternatives.push(self.predicate(&clause.param, predicate, rt, id, types)?);
        }
        Ok(format!("({})", alternatives.join(" OR ")))
    }

    /// Whether (or, negated, whether not) `rt`/`id` has a row of `table` for parameter `param`
    /// meeting the condition `build` writes for the row's alias.
    fn exists(
        &mut self,
        negate: bool,
        table: &str,
        param: &str,
        rt: &str,
        id: &str,
        build: impl FnOnce(&mut Binder, &str) -> Result<String, Unsupported>,
    ) -> Result<String, Unsupported> {
        let a = self.alias();
        let param = self.binder.text(param);
        let condition = build(&mut self.binder, &a)?;
        let not = if negate { "NOT " } else { "" };
        Ok(format!(
            "({rt}, {id}) {not}IN (SELECT {a}.resource_type, {a}.id FROM {table} {a} WHERE {a}.param = {param} AND {condition})"
        ))
    }

    fn predicate(
        &mut self,
        param: &str,
        predicate: &Predicate,
        rt: &str,
        id: &str,
        types: &[String],
    ) -> Result<String, Unsupported> {
        let kind = |b: &mut Binder, a: &str, kind: &str| format!("{a}.kind = {}", b.text(kind));
        match predicate {
            Predicate::Missing(missing) => {
                let table = table(self.kind(param, types)?)?;
                self.exists(*missing, table, param, rt, id, |_, _| Ok("1 = 1".to_owned()))
            }
            Predicate::Token { not, token } => self.exists(*not, "search_token", param, rt, id, |b, a| {
                Ok(format!("{} AND {}", kind(b, a, TOKEN), condition::token(b, a, token)))
            }),
            Predicate::TokenText(text) => self.exists(false, "search_token", param, rt, id, |b, a| {
                Ok(format!("{} AND {}", kind(b, a, TOKEN), condition::starts_with(b, &format!("{a}.text"), text)))
            }),
            Predicate::OfType { type_system, type_code, value } => {
                self.exists(false, "search_token", param, rt, id, |b, a| {
                    Ok(format!(
                        "{} AND {a}.system = {} AND {a}.code = {} AND {a}.value = {}",
                        kind(b, a, OF_TYPE),
                        b.text(type_system),
                        b.text(type_code),
                        b.text(value)
                    ))
                })
            }
            Predicate::ReferenceIdentifier(token) => self.exists(false, "search_token", param, rt, id, |b, a| {
                Ok(format!("{} AND {}", kind(b, a, REFERENCE_IDENTIFIER), condition::token(b, a, token)))
            }),
            Predicate::Chain(chain) => {
                let a = self.alias();
                let p = self.binder.text(param);
                let targets = self.binder.list(&chain.target_types);
                let (next_rt, next_id) = (format!("{a}.target_type"), format!("{a}.target_id"));
                let next = self.clause(&chain.next, &next_rt, &next_id, &chain.target_types)?;
                Ok(format!(
                    "({rt}, {id}) IN (SELECT {a}.resource_type, {a}.id FROM search_reference {a} \
                     WHERE {a}.param = {p} AND {a}.target_type IN {targets} AND {next})"
                ))
            }
            Predicate::Has(has) => {
                let a = self.alias();
                let source = self.binder.text(&has.resource_type);
                let p = self.binder.text(&has.reference_param);
                let (next_rt, next_id) = (format!("{a}.resource_type"), format!("{a}.id"));
                let next = self.clause(&has.next, &next_rt, &next_id, std::slice::from_ref(&has.resource_type))?;
                Ok(format!(
                    "({rt}, {id}) IN (SELECT {a}.target_type, {a}.target_id FROM search_reference {a} \
                     WHERE {a}.resource_type = {source} AND {a}.param = {p} AND {next})"
                ))
            }
            Predicate::Composite { components, values } => self.composite(param, components, values, rt, id),
            Predicate::Unsupported(message) => Err(Unsupported(message.clone())),
            value => {
                let table = value_table(value)?;
                self.exists(false, table, param, rt, id, |b, a| condition::value(b, a, value))
            }
        }
    }

    /// Rows of one `grp` of `search_composite`, one per component, each meeting its value.
    fn composite(
        &mut self,
        param: &str,
        components: &[String],
        values: &[Predicate],
        rt: &str,
        id: &str,
    ) -> Result<String, Unsupported> {
        if components.len() != values.len() || values.is_empty() {
            return Err(Unsupported(format!("composite `{param}` needs one value per component")));
        }
        let aliases: Vec<String> = values.iter().map(|_| self.alias()).collect();
        let first = &aliases[0];
        let mut joins = String::new();
        for (position, a) in aliases.iter().enumerate().skip(1) {
            joins.push_str(&format!(
                " JOIN search_composite {a} ON {a}.resource_type = {first}.resource_type AND {a}.id = {first}.id \
                 AND {a}.param = {first}.param AND {a}.grp = {first}.grp AND {a}.comp = {position}"
            ));
        }
        let p = self.binder.text(param);
        let mut conditions = vec![format!("{first}.param = {p}"), format!("{first}.comp = 0")];
        for (a, value) in aliases.iter().zip(values) {
            conditions.push(condition::value(&mut self.binder, a, value)?);
        }
        Ok(format!(
            "({rt}, {id}) IN (SELECT {first}.resource_type, {first}.id FROM search_composite {first}{joins} WHERE {})",
            conditions.join(" AND ")
        ))
    }
}

/// The table holding values of a parameter type.
fn table(kind: SearchParamType) -> Result<&'static str, Unsupported> {
    Ok(match kind {
        SearchParamType::String => "search_string",
        SearchParamType::Token => "search_token",
        SearchParamType::Reference => "search_reference",
        SearchParamType::Date => "search_date",
        SearchParamType::Number => "search_number",
        SearchParamType::Quantity => "search_quantity",
        SearchParamType::Uri => "search_uri",
        SearchParamType::Composite => "search_composite",
        SearchParamType::Special => return Err(Unsupported("special search parameters are not supported".into())),
    })
}

/// The table a plain value predicate searches.
fn value_table(predicate: &Predicate) -> Result<&'static str, Unsupported> {
    let kind = predicate.value_type().ok_or_else(|| Unsupported(format!("cannot search {predicate:?} here")))?;
    table(kind)
}
