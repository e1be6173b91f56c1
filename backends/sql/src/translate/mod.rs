//! The neutral search expression as one SQL statement over the search tables.
//!
//! A search selects from `search_current r`; each clause becomes a condition on `r` (its
//! alternatives joined by `OR`, clauses by `AND`), each value a test on the rows of the table of
//! its type. The clause expected to match the fewest resources (the compartment, else the
//! engine's [`driving_clause`]) drives: its values are membership tests
//! `(r.resource_type, r.id) IN (SELECT resource_type, id FROM <table> WHERE ...)`, uncorrelated,
//! which both databases run once through the index on the value (`(param, code, system)`,
//! `(target_id, target_type, param)`...). Every other clause is tested per candidate with a
//! correlated `EXISTS` through the `(resource_type, id, param)` index, so a broad clause (a common
//! code) is never materialised in full. Chains and `_has` nest the same tests on the resource at
//! the other end of a `search_reference` row, so a chain of any depth is one statement and no
//! result set is ever capped between levels. On SQLite, a search driven by one value reads that
//! value's index in key order instead ([`walk`]).

mod condition;
mod sort;
mod walk;

pub use sort::SortKind;

#[cfg(test)]
mod tests;

use fhirgate_engine::definitions::{Definitions, SearchParamType};
use fhirgate_engine::search::query::{
    Clause, Compartment, Predicate, ReferenceTarget, SearchQuery, UriMatch, driving_clause,
};

use crate::bind::{Bind, Binder, Dialect, Sql};
use crate::rows::{OF_TYPE, REFERENCE_IDENTIFIER, TOKEN};

/// A search this translation cannot express; the store reports it as "not supported".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// A search statement, and the types of the sort key columns it selects after
/// `resource_type, id, version`.
pub struct Select {
    pub sql: Sql,
    pub sort: Vec<SortKind>,
    /// Whether it walks one value's index ([`walk`]), a plan that holds for any values.
    pub walks: bool,
}

/// What a statement is built for: its database, and whether the value indexes are there to be
/// walked ([`walk`]; not while an initial load has set them aside).
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub dialect: Dialect,
    pub value_indexes: bool,
}

impl Target {
    /// Whether a search that fits may walk a value index ([`walk`]).
    fn walks(self) -> bool {
        self.value_indexes
    }
}

impl From<Dialect> for Target {
    fn from(dialect: Dialect) -> Self {
        Self { dialect, value_indexes: true }
    }
}

/// `SELECT resource_type, id, version, s0, s1...` of the matches of `query`, sorted, at most
/// `limit`.
pub fn select(
    target: impl Into<Target>,
    defs: &Definitions,
    query: &SearchQuery,
    limit: u32,
) -> Result<Select, Unsupported> {
    let target = target.into();
    let mut t = Translator::new(target, defs, query);
    if target.walks() {
        if let Some(text) = walk::statement(&mut t, query, walk::Walk::Page(limit))? {
            return Ok(Select { sql: Sql { text, binds: t.binder.binds }, sort: Vec::new(), walks: true });
        }
    }
    let filter = t.filter(query)?;
    let keys = sort::keys(&mut t, query)?;
    let columns: String = (0..keys.kinds.len()).map(|n| format!(", s{n}")).collect();
    let after = match sort::after(&mut t, query, &keys.kinds)? {
        Some(condition) => format!(" WHERE {condition}"),
        None => String::new(),
    };
    let limit = t.binder.bind(Bind::Int(i64::from(limit)));
    let (select, order) = (keys.select, keys.order);
    let text = format!(
        "SELECT resource_type, id, version{columns} FROM (SELECT r.resource_type, r.id, r.version{select} \
         FROM search_current r WHERE {filter}) q{after} ORDER BY {order} LIMIT {limit}"
    );
    Ok(Select { sql: Sql { text, binds: t.binder.binds }, sort: keys.kinds, walks: false })
}

/// `SELECT COUNT(*)` of the matches of `query`.
pub fn count(target: impl Into<Target>, defs: &Definitions, query: &SearchQuery) -> Result<Sql, Unsupported> {
    let target = target.into();
    let mut t = Translator::new(target, defs, query);
    if target.walks() {
        if let Some(text) = walk::statement(&mut t, query, walk::Walk::Count)? {
            return Ok(Sql { text, binds: t.binder.binds });
        }
    }
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
    /// Whether a probe per candidate names the index it seeks ([`probe_index`]): on SQLite,
    /// while the indexes are there.
    names_probe_index: bool,
}

impl<'a> Translator<'a> {
    fn new(target: Target, defs: &'a Definitions, query: &SearchQuery) -> Self {
        let types = match &query.resource_type {
            Some(t) => vec![t.clone()],
            None => query.result.types.clone(),
        };
        let names_probe_index = target.dialect == Dialect::Sqlite && target.value_indexes;
        Self { binder: Binder::new(target.dialect), defs, types, aliases: 0, names_probe_index }
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
        let driver = match &query.compartment {
            Some(compartment) => {
                conditions.push(self.compartment(compartment));
                None
            }
            None => driving_clause(&query.clauses),
        };
        // A sorted search continues after its sort keys, outside (see `sort::after`).
        if let Some(after) = query.after.as_ref().filter(|_| query.result.sort.is_empty()) {
            conditions.push(self.after(after, "r"));
        }
        let types = self.types.clone();
        for (n, clause) in query.clauses.iter().enumerate() {
            let test = if Some(n) == driver { Test::Drives } else { Test::PerCandidate };
            conditions.push(self.clause(clause, On { rt: "r.resource_type", id: "r.id", test }, &types)?);
        }
        Ok(if conditions.is_empty() { "1 = 1".to_owned() } else { conditions.join(" AND ") })
    }

    /// The rows of alias `a` after the key `after` in the default order. Within one searched
    /// type it is a range of ids, which SQLite reads in index order; a row value comparison
    /// would make it sort.
    fn after(&mut self, (resource_type, id): &(String, String), a: &str) -> String {
        let one_type = self.types.len() == 1 && self.types.first() == Some(resource_type);
        let (resource_type, id) = (self.binder.text(resource_type), self.binder.text(id));
        if one_type {
            format!("{a}.resource_type = {resource_type} AND {a}.id > {id}")
        } else {
            format!("({a}.resource_type, {a}.id) > ({resource_type}, {id})")
        }
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

    /// One clause on the resource `on`, whose types are `types`.
    fn clause(&mut self, clause: &Clause, on: On<'_>, types: &[String]) -> Result<String, Unsupported> {
        let mut alternatives = Vec::with_capacity(clause.alternatives.len());
        for predicate in &clause.alternatives {
            alternatives.push(self.predicate(&clause.param, predicate, on, types)?);
        }
        Ok(format!("({})", alternatives.join(" OR ")))
    }

    /// How a predicate that tests one row of a value table tests it: the table, whether the test
    /// is negated (no such row), and the row's condition on alias `a` (its `param` included);
    /// `None` for chains, `_has` and composites, which span several rows.
    fn row_test(
        &mut self,
        param: &str,
        predicate: &Predicate,
        types: &[String],
        a: &str,
    ) -> Result<Option<(&'static str, bool, String)>, Unsupported> {
        if matches!(
            predicate,
            Predicate::Chain(_)
                | Predicate::Has(_)
                | Predicate::Composite { .. }
                | Predicate::Unsupported(_)
                | Predicate::Concepts { .. }
        ) {
            return Ok(None);
        }
        let p = format!("{a}.param = {}", self.binder.text(param));
        let kind = |b: &mut Binder, kind: &str| format!("{a}.kind = {}", b.text(kind));
        if let Predicate::Missing(missing) = predicate {
            return Ok(Some((table(self.kind(param, types)?)?, *missing, p)));
        }
        let b = &mut self.binder;
        let (table, negate, condition) = match predicate {
            Predicate::Token { not, token } => {
                ("search_token", *not, format!("{} AND {}", kind(b, TOKEN), condition::token(b, a, token)))
            }
            Predicate::TokenSet { not, tokens } => {
                let any: Vec<String> = tokens.iter().map(|t| format!("({})", condition::token(b, a, t))).collect();
                let any = if any.is_empty() { "1 = 0".to_owned() } else { any.join(" OR ") };
                ("search_token", *not, format!("{} AND ({any})", kind(b, TOKEN)))
            }
            Predicate::TokenText(text) => {
                let text = condition::starts_with(b, &format!("{a}.text"), text);
                ("search_token", false, format!("{} AND {text}", kind(b, TOKEN)))
            }
            Predicate::OfType { type_system, type_code, value } => {
                let condition = format!(
                    "{} AND {a}.system = {} AND {a}.code = {} AND {a}.value = {}",
                    kind(b, OF_TYPE),
                    b.text(type_system),
                    b.text(type_code),
                    b.text(value)
                );
                ("search_token", false, condition)
            }
            Predicate::ReferenceIdentifier(token) => {
                let condition = format!("{} AND {}", kind(b, REFERENCE_IDENTIFIER), condition::token(b, a, token));
                ("search_token", false, condition)
            }
            value => (value_table(value)?, false, condition::value(b, a, value)?),
        };
        Ok(Some((table, negate, format!("{p} AND {condition}"))))
    }

    fn predicate(
        &mut self,
        param: &str,
        predicate: &Predicate,
        on: On<'_>,
        types: &[String],
    ) -> Result<String, Unsupported> {
        let a = self.alias();
        if let Some((table, negate, condition)) = self.row_test(param, predicate, types, &a)? {
            let from = match probe_index(table, predicate) {
                Some(index) if on.test == Test::PerCandidate && self.names_probe_index => {
                    format!("{table} {a} INDEXED BY {index}")
                }
                _ => format!("{table} {a}"),
            };
            return Ok(on.render(self.binder.dialect(), negate, &a, RESOURCE, &from, &condition));
        }
        match predicate {
            Predicate::Chain(chain) => {
                let p = self.binder.text(param);
                let targets = self.binder.list(&chain.target_types);
                let (next_rt, next_id) = (format!("{a}.target_type"), format!("{a}.target_id"));
                let next = self.clause(
                    &chain.next,
                    On { rt: &next_rt, id: &next_id, test: Test::Drives },
                    &chain.target_types,
                )?;
                let condition = format!("{a}.param = {p} AND {a}.target_type IN {targets} AND {next}");
                Ok(on.render(self.binder.dialect(), false, &a, RESOURCE, &format!("search_reference {a}"), &condition))
            }
            Predicate::Has(has) => {
                let source = self.binder.text(&has.resource_type);
                let p = self.binder.text(&has.reference_param);
                let (next_rt, next_id) = (format!("{a}.resource_type"), format!("{a}.id"));
                let types = std::slice::from_ref(&has.resource_type);
                let next = self.clause(&has.next, On { rt: &next_rt, id: &next_id, test: Test::Drives }, types)?;
                let condition = format!("{a}.resource_type = {source} AND {a}.param = {p} AND {next}");
                Ok(on.render(self.binder.dialect(), false, &a, TARGET, &format!("search_reference {a}"), &condition))
            }
            Predicate::Composite { components, values } => self.composite(param, components, values, on),
            Predicate::Unsupported(message) => Err(Unsupported(message.clone())),
            Predicate::Concepts { modifier, .. } => Err(Unsupported(format!(
                "`:{}` must be resolved against the terminology before the store runs the search",
                modifier.as_str()
            ))),
            other => Err(Unsupported(format!("cannot search {other:?} here"))),
        }
    }

    /// Rows of one `grp` of `search_composite`, one per component, each meeting its value.
    fn composite(
        &mut self,
        param: &str,
        components: &[String],
        values: &[Predicate],
        on: On<'_>,
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
        let from = format!("search_composite {first}{joins}");
        Ok(on.render(self.binder.dialect(), false, first, RESOURCE, &from, &conditions.join(" AND ")))
    }
}

/// How a clause tests the resource it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    /// Membership in an uncorrelated sub-query, run once through the index on the value: the
    /// clause that finds the candidates.
    Drives,
    /// A correlated `EXISTS`, one index probe per candidate another clause found.
    PerCandidate,
}

/// The columns of a search table row that name the resource a test is on.
#[derive(Debug, Clone, Copy)]
struct Columns {
    rt: &'static str,
    id: &'static str,
}

/// The resource a row belongs to.
const RESOURCE: Columns = Columns { rt: "resource_type", id: "id" };
/// The resource a `search_reference` row points to.
const TARGET: Columns = Columns { rt: "target_type", id: "target_id" };

/// The resource a test is on (column expressions of the enclosing statement) and how it is tested.
#[derive(Debug, Clone, Copy)]
struct On<'s> {
    rt: &'s str,
    id: &'s str,
    test: Test,
}

impl On<'_> {
    /// Whether (or, negated, whether not) this resource has a row in `from` whose columns `cols`
    /// (of alias `a`) name it and which meets `condition`.
    fn render(self, dialect: Dialect, negate: bool, a: &str, cols: Columns, from: &str, condition: &str) -> String {
        let not = if negate { "NOT " } else { "" };
        let (On { rt, id, test }, Columns { rt: crt, id: cid }) = (self, cols);
        match test {
            Test::Drives => format!("({rt}, {id}) {not}IN (SELECT {a}.{crt}, {a}.{cid} FROM {from} WHERE {condition})"),
            Test::PerCandidate => {
                // PostgreSQL would turn the `EXISTS` into a join that reads every row meeting the
                // condition (all 66,922 Observations of a common code, for one patient's page);
                // `OFFSET 0` keeps it a probe per candidate, so a page stops at its limit. SQLite
                // would turn it into a join placed after every table of the statement, so that a
                // walk read each candidate's resource row before the probe that rejects most of
                // them; with `LIMIT 1` it stays a probe, run as soon as its candidate is known.
                let probe = match dialect {
                    Dialect::Postgres => " OFFSET 0",
                    Dialect::Sqlite => " LIMIT 1",
                };
                format!(
                    "{not}EXISTS (SELECT 1 FROM {from} WHERE {a}.{crt} = {rt} AND {a}.{cid} = {id} AND {condition}{probe})"
                )
            }
        }
    }
}

/// The index a probe of one candidate's rows for `predicate` in `table` has to be told to seek
/// on SQLite: its resource index, unless the test fixes every column of the value index ahead
/// of the resource's key (a token's code, a reference's target id, a uri), which makes that
/// index a seek as good. Without statistics SQLite prefers the covering value index whenever
/// the parameter is fixed, and would then scan every row of the parameter's value range (every
/// date after 2015, every Observation of a code without its system) for each candidate.
fn probe_index(table: &str, predicate: &Predicate) -> Option<&'static str> {
    let keyed = match predicate {
        Predicate::Token { not: _, token } | Predicate::ReferenceIdentifier(token) => token.code.is_some(),
        Predicate::OfType { .. } | Predicate::Reference(ReferenceTarget::Local { .. }) => true,
        Predicate::Uri { mode: UriMatch::Exact, .. } => true,
        _ => false,
    };
    if keyed {
        return None;
    }
    Some(match table {
        "search_string" => "search_string_resource",
        "search_token" => "search_token_resource",
        "search_reference" => "search_reference_resource",
        "search_date" => "search_date_resource",
        "search_number" => "search_number_resource",
        "search_quantity" => "search_quantity_resource",
        "search_uri" => "search_uri_resource",
        _ => return None,
    })
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
