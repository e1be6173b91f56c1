//! Search (<https://hl7.org/fhir/R4/search.html>) in Cosmos SQL over the current documents.
//!
//! Each clause is a condition on the current document `c` (alternatives joined by `OR`, clauses by
//! `AND`). A value first runs `SELECT VALUE c.key FROM c JOIN x IN c.x WHERE x.p = @p AND ...` over
//! the flattened index entries, then tests `ARRAY_CONTAINS(@keys, c.key)` (negated for `:not` and
//! `:missing=true`): the in-process emulator the store is tested on cannot evaluate `EXISTS`
//! sub-queries (`tests/emulator_sql.rs`). The keys one search carries are bounded
//! (`max_search_keys`): a broader search is refused with 400, never sent as a query the service
//! would refuse for its size. Cosmos SQL cannot join two documents, so a chain or a `_has` runs its
//! inner search (translated the same way, to any depth) and matches the keys it found: no level is
//! capped on its own, all levels together carry at most `max_search_keys`. Without `_sort` the
//! matches come ordered by `c.key` (`Type/id`) with `TOP limit`; with `_sort`, the store reads
//! every match's sort keys (`c.sk`, computed at write time) and sorts them itself, and a
//! continuation keeps the rows after its key values in that order.
//!
//! With `store.cosmos.search_queries = "exists"` ([`form`]) a clause value is instead an
//! `EXISTS` sub-query on the document's own entries, bound in the search's query: one query per
//! search without chains or `_has` (which stay key-set), for the real service only.

mod condition;
pub(crate) mod form;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;

use azure_data_cosmos::Query;
use fhirgate_engine::definitions::{Definitions, SearchParamType};
use fhirgate_engine::search::query::{Clause, Compartment, Predicate, SearchQuery, SortValue};
use fhirgate_engine::storage::{Keyed, SearchMatch};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::CosmosStore;
use crate::documents::compare;
use crate::error::Error;
use crate::read;

/// The matches of `query`, sorted, at most `limit`, with their sort key values.
pub(crate) async fn search(store: &CosmosStore, query: &SearchQuery, limit: u32) -> Result<Vec<Keyed>, Error> {
    let mut t = Translator::new(store, query);
    let filter = t.filter(query).await?;
    let text = page(&mut t.params, query, &filter, limit);
    if query.result.sort.is_empty() {
        let rows: Vec<Row> = read::query(store, "search", t.params.query(text)?).await?;
        return Ok(rows.into_iter().map(|r| Keyed { matched: r.into_match(), sort: Vec::new() }).collect());
    }
    let keys = sort_keys(&t, query)?;
    let order = |a: &Row, b: &Row| {
        keys.iter().map(|k| k.compare(a, b)).find(|o| o.is_ne()).unwrap_or_else(|| (&a.t, &a.rid).cmp(&(&b.t, &b.rid)))
    };
    let mut rows: Vec<Row> = read::query(store, "search", t.params.query(text)?).await?;
    if let Some(after) = continuation(query, &keys)? {
        rows.retain(|row| order(row, &after).is_gt());
    }
    rows.sort_by(order);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(rows
        .into_iter()
        .map(|row| {
            let sort = keys.iter().map(|k| k.value(&row).and_then(|v| sort_value(&v))).collect();
            Keyed { matched: row.into_match(), sort }
        })
        .collect())
}

/// The row a sorted search continues after: its key values as a row of their own.
fn continuation(query: &SearchQuery, keys: &[SortKey]) -> Result<Option<Row>, Error> {
    let Some((t, rid)) = &query.after else { return Ok(None) };
    if query.after_sort.len() != keys.len() {
        return Err(Error::Unsupported("the continuation does not fit the search's `_sort`".into()));
    }
    let mut row = Row { t: t.clone(), rid: rid.clone(), v: 0, lu: 0, sk: Map::new() };
    for (key, value) in keys.iter().zip(&query.after_sort) {
        let json = value.as_ref().map(|v| match v {
            SortValue::Text(s) => json!(s),
            SortValue::Integer(n) => json!(n),
            SortValue::Number(n) => json!(n),
        });
        match (key.param.as_str(), json) {
            // `_id` sorts by the id, which the type and id after it already say.
            ("_id", _) => {}
            ("_lastUpdated", Some(Value::Number(n))) => row.lu = n.as_i64().unwrap_or_default(),
            (param, Some(v)) => {
                row.sk.insert(param.to_owned(), json!([v, v]));
            }
            (_, None) => {}
        }
    }
    Ok(Some(row))
}

/// A sort key value as the engine carries it.
fn sort_value(value: &Value) -> Option<SortValue> {
    match value {
        Value::String(s) => Some(SortValue::Text(s.clone())),
        Value::Number(n) => match n.as_i64() {
            Some(i) if !n.is_f64() => Some(SortValue::Integer(i)),
            _ => n.as_f64().map(SortValue::Number),
        },
        _ => None,
    }
}

/// The statement reading the matches of `filter`: without `_sort`, the first `limit` by key;
/// with it, all of them with their sort keys (the store sorts and truncates).
fn page(params: &mut Params, query: &SearchQuery, filter: &str, limit: u32) -> String {
    if query.result.sort.is_empty() {
        let limit = params.bind(json!(limit));
        format!("SELECT TOP {limit} c.t, c.rid, c.v FROM c WHERE {filter} ORDER BY c.key")
    } else {
        format!("SELECT c.t, c.rid, c.v, c.lu, c.sk FROM c WHERE {filter}")
    }
}

/// How many resources match `query`.
pub(crate) async fn count(store: &CosmosStore, query: &SearchQuery) -> Result<u64, Error> {
    let mut t = Translator::new(store, query);
    let filter = t.filter(query).await?;
    read::count(store, "search count", &filter, |text| t.params.query(text)).await
}

/// A matched current document, with what sorting needs.
#[derive(Deserialize)]
struct Row {
    t: String,
    rid: String,
    v: u64,
    #[serde(default)]
    lu: i64,
    #[serde(default)]
    sk: Map<String, Value>,
}

impl Row {
    fn into_match(self) -> SearchMatch {
        SearchMatch { resource_type: self.t, id: self.rid, version: self.v }
    }
}

/// One `_sort` key.
struct SortKey {
    param: String,
    descending: bool,
}

impl SortKey {
    /// This key's value on a row.
    fn value(&self, r: &Row) -> Option<Value> {
        match self.param.as_str() {
            "_id" => Some(json!(r.rid)),
            "_lastUpdated" => Some(json!(r.lu)),
            p => r.sk.get(p).and_then(|k| k.get(usize::from(self.descending))).cloned(),
        }
    }

    /// Orders two rows by this key; rows without a value come last either way.
    fn compare(&self, a: &Row, b: &Row) -> Ordering {
        match (self.value(a), self.value(b)) {
            (Some(x), Some(y)) if self.descending => compare(&y, &x),
            (Some(x), Some(y)) => compare(&x, &y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
}

/// The sort keys of `query`, refusing those no store can sort by.
fn sort_keys(t: &Translator<'_>, query: &SearchQuery) -> Result<Vec<SortKey>, Error> {
    query
        .result
        .sort
        .iter()
        .map(|key| {
            if !matches!(key.param.as_str(), "_id" | "_lastUpdated") {
                let kind = t.kind(&key.param, &t.types)?;
                if matches!(kind, SearchParamType::Composite | SearchParamType::Special) {
                    return Err(Error::Unsupported(format!(
                        "cannot sort by `{}` ({} parameter)",
                        key.param,
                        kind.code()
                    )));
                }
            }
            Ok(SortKey { param: key.param.clone(), descending: key.descending })
        })
        .collect()
}

/// The parameters of one query (`@p1`, `@p2`...).
#[derive(Default)]
pub(crate) struct Params {
    /// Parameters bound before these, in the query these will join (`EXISTS` form): the first
    /// of these is `@p{start + 1}`.
    start: usize,
    /// Made by [`Self::following`]: these bind a part of the query they follow (an `EXISTS`).
    part: bool,
    values: Vec<(String, Value)>,
}

impl Params {
    fn bind(&mut self, value: Value) -> String {
        let name = format!("@p{}", self.start + self.values.len() + 1);
        self.values.push((name.clone(), value));
        name
    }

    /// Parameters to bind a part of this query with, numbered after this query's.
    fn following(&self) -> Params {
        Params { start: self.start + self.values.len(), part: true, values: Vec::new() }
    }

    /// Takes in the parameters of a part made with [`Self::following`] (nothing bound since).
    fn absorb(&mut self, part: Params) -> Result<(), Error> {
        if part.start != self.start + self.values.len() {
            return Err(Error::Unsupported("a search's parameters were bound out of order".into()));
        }
        self.values.extend(part.values);
        Ok(())
    }

    fn text(&mut self, value: &str) -> String {
        self.bind(Value::String(value.to_owned()))
    }

    fn list(&mut self, values: &[String]) -> String {
        self.bind(json!(values))
    }

    fn number(&mut self, value: f64) -> String {
        self.bind(json!(value))
    }

    fn query(&self, text: String) -> Result<Query, Error> {
        Ok(self.values.iter().try_fold(Query::from(text), |q, (name, value)| q.with_parameter(name.clone(), value))?)
    }
}

/// Builds one query; chains and `_has` run their inner searches through the store.
struct Translator<'a> {
    store: &'a CosmosStore,
    params: Params,
    defs: &'static Definitions,
    /// The types searched (empty for a search of all types).
    types: Vec<String>,
    /// How many more resource keys the search's sub-queries may find (`max_search_keys`, shared
    /// with the inner searches of chains and `_has`).
    keys_left: usize,
    /// How clauses are written (key-set queries or `EXISTS`).
    form: form::SearchQueries,
    /// The sub-queries run so far, text and parameters, inner searches first (the tests read them).
    #[cfg(test)]
    ran: Vec<(String, Vec<(String, Value)>)>,
}

impl<'a> Translator<'a> {
    fn new(store: &'a CosmosStore, query: &SearchQuery) -> Self {
        let types = match &query.resource_type {
            Some(t) => vec![t.clone()],
            None => query.result.types.clone(),
        };
        Self {
            store,
            params: Params::default(),
            defs: Definitions::r4(),
            types,
            keys_left: store.inner.max_search_keys,
            form: store.inner.search_queries,
            #[cfg(test)]
            ran: Vec::new(),
        }
    }

    /// The type of parameter `code` on the first of `types` that has it (or on every resource).
    fn kind(&self, code: &str, types: &[String]) -> Result<SearchParamType, Error> {
        self.defs
            .search_param_in(types, code)
            .map(|p| p.kind)
            .ok_or_else(|| Error::Unsupported(format!("unknown search parameter `{code}`")))
    }

    /// The `WHERE` condition on the current document `c`.
    async fn filter(&mut self, query: &SearchQuery) -> Result<String, Error> {
        let mut conditions = vec![format!("{}c.k = 'c'", self.store.in_store("c")), "c.del = false".to_owned()];
        if !self.types.is_empty() {
            let types = self.types.clone();
            conditions.push(format!("ARRAY_CONTAINS({}, c.t)", self.params.list(&types)));
        }
        if let Some(compartment) = &query.compartment {
            conditions.push(self.compartment(compartment).await?);
        }
        // A sorted search continues after its key values once sorted (see `continuation`).
        if let Some((resource_type, id)) = query.after.as_ref().filter(|_| query.result.sort.is_empty()) {
            // `Type/id` orders as (type, id): types are letters, which all sort after `/`.
            conditions.push(format!("c.key > {}", self.params.text(&format!("{resource_type}/{id}"))));
        }
        let types = self.types.clone();
        for clause in &query.clauses {
            conditions.push(self.clause(clause, &types).await?);
        }
        Ok(conditions.join(" AND "))
    }

    /// Membership of `c` in a compartment: the owner itself, or a resource whose compartment
    /// parameters refer to the owner (key-set: the keys of those found first; `EXISTS` form: a
    /// sub-query on `c`'s own reference entries).
    async fn compartment(&mut self, c: &Compartment) -> Result<String, Error> {
        let mut alternatives =
            vec![format!("(c.t = {} AND c.rid = {})", self.params.text(&c.resource_type), self.params.text(&c.id))];
        if c.params.is_empty() {
            return Ok(format!("({})", alternatives.join(" OR ")));
        }
        let exists = self.form == form::SearchQueries::Exists;
        let mut sub = if exists { self.params.following() } else { Params::default() };
        let (owner_type, owner_id) = (sub.text(&c.resource_type), sub.text(&c.id));
        let mut members = Vec::new();
        for (resource_type, params) in &c.params {
            members.push(format!("(c.t = {} AND ARRAY_CONTAINS({}, x.p))", sub.text(resource_type), sub.list(params)));
        }
        let condition =
            format!("x.k = 'r' AND x.rt = {owner_type} AND x.ri = {owner_id} AND ({})", members.join(" OR "));
        if exists {
            self.params.absorb(sub)?;
            alternatives.push(format!("EXISTS(SELECT VALUE x FROM x IN c.x WHERE {condition})"));
        } else {
            let keys = self.keys(sub, "c.key", " JOIN x IN c.x", &condition, &[]).await?;
            alternatives.push(format!("ARRAY_CONTAINS({}, c.key)", self.params.bind(json!(keys))));
        }
        Ok(format!("({})", alternatives.join(" OR ")))
    }

    /// One clause on `c`, whose types are `types`.
    async fn clause(&mut self, clause: &Clause, types: &[String]) -> Result<String, Error> {
        let mut alternatives = Vec::with_capacity(clause.alternatives.len());
        for predicate in &clause.alternatives {
            alternatives.push(self.predicate(&clause.param, predicate, types).await?);
        }
        Ok(format!("({})", alternatives.join(" OR ")))
    }

    /// Whether (or, negated, whether not) `c` has an entry of parameter `param` of one of
    /// `kinds` meeting `condition` (on the entry `x`, with its parameters in `sub`). Key-set
    /// form: the keys of the resources of `types` that have one, found first, then tested on
    /// `c`. `EXISTS` form (`sub` made by [`Translator::sub`]): a sub-query on `c`'s own entries,
    /// its parameters joining the search's.
    async fn exists(
        &mut self,
        negate: bool,
        param: &str,
        kinds: &[&str],
        mut sub: Params,
        condition: &str,
        types: &[String],
    ) -> Result<String, Error> {
        let p = sub.text(param);
        let kinds = kinds.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
        let condition = format!("x.p = {p} AND x.k IN ({kinds}) AND {condition}");
        let not = if negate { "NOT " } else { "" };
        if sub.part {
            self.params.absorb(sub)?;
            return Ok(format!("{not}EXISTS(SELECT VALUE x FROM x IN c.x WHERE {condition})"));
        }
        let keys = self.keys(sub, "c.key", " JOIN x IN c.x", &condition, types).await?;
        Ok(format!("{not}ARRAY_CONTAINS({}, c.key)", self.params.bind(json!(keys))))
    }

    /// Runs `SELECT VALUE {select} FROM c{join} WHERE` (current, not deleted, of `types`, and
    /// `condition`): the distinct values found, sorted. Refused once the search's sub-queries
    /// found more than `max_search_keys` in all: the pages after that are not read, and no
    /// query carries more keys than that.
    async fn keys(
        &mut self,
        mut sub: Params,
        select: &str,
        join: &str,
        condition: &str,
        types: &[String],
    ) -> Result<Vec<String>, Error> {
        let scope = self.store.in_store("c");
        let mut text = format!("SELECT VALUE {select} FROM c{join} WHERE {scope}c.k = 'c' AND c.del = false");
        if !types.is_empty() {
            text.push_str(&format!(" AND ARRAY_CONTAINS({}, c.t)", sub.list(types)));
        }
        text.push_str(&format!(" AND {condition}"));
        #[cfg(test)]
        self.ran.push((text.clone(), sub.values.clone()));
        let mut found = std::collections::BTreeSet::new();
        let left = self.keys_left;
        read::query_until(self.store, "search clause", sub.query(text)?, |key: String| {
            found.insert(key);
            found.len() <= left
        })
        .await?;
        if found.len() > left {
            let max = self.store.inner.max_search_keys;
            return Err(Error::Unsupported(format!(
                "this search is too broad for the Cosmos DB store: its clauses match more than {max} resources in \
                 all (`store.cosmos.max_search_keys`); add criteria that narrow it"
            )));
        }
        self.keys_left = left - found.len();
        Ok(found.into_iter().collect())
    }

    fn predicate<'s>(
        &'s mut self,
        param: &'s str,
        predicate: &'s Predicate,
        types: &'s [String],
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<String, Error>> + Send + 's>> {
        Box::pin(async move {
            let mut sub = self.sub(predicate);
            match predicate {
                Predicate::Missing(missing) => {
                    let kinds = kinds(self.kind(param, types)?)?;
                    self.exists(*missing, param, kinds, sub, "true", types).await
                }
                Predicate::Token { not, token } => {
                    let c = condition::token(&mut sub, "x", token);
                    self.exists(*not, param, &["t"], sub, &c, types).await
                }
                Predicate::TokenSet { not, tokens } => {
                    let any: Vec<String> =
                        tokens.iter().map(|t| format!("({})", condition::token(&mut sub, "x", t))).collect();
                    let c = if any.is_empty() { "false".to_owned() } else { any.join(" OR ") };
                    self.exists(*not, param, &["t"], sub, &c, types).await
                }
                Predicate::TokenText(text) => {
                    let c = format!("STARTSWITH(x.tx, {})", sub.text(text));
                    self.exists(false, param, &["t"], sub, &c, types).await
                }
                Predicate::OfType { type_system, type_code, value } => {
                    let c = format!(
                        "x.sy = {} AND x.co = {} AND x.v = {}",
                        sub.text(type_system),
                        sub.text(type_code),
                        sub.text(value)
                    );
                    self.exists(false, param, &["o"], sub, &c, types).await
                }
                Predicate::ReferenceIdentifier(token) => {
                    let c = condition::token(&mut sub, "x", token);
                    self.exists(false, param, &["i"], sub, &c, types).await
                }
                Predicate::Chain(chain) => {
                    // The resources at the other end that match, then the references to them.
                    let (condition, p) = self.inner(&chain.target_types, &chain.next).await?;
                    let targets = self.keys(p, "c.key", "", &condition, &chain.target_types).await?;
                    let c = format!("ARRAY_CONTAINS({}, CONCAT(x.rt, '/', x.ri))", sub.bind(json!(targets)));
                    self.exists(false, param, &["r"], sub, &c, types).await
                }
                Predicate::Has(has) => {
                    // The referring resources that match, then what their reference points to.
                    let source = std::slice::from_ref(&has.resource_type);
                    let (condition, mut p) = self.inner(source, &has.next).await?;
                    let reference = p.text(&has.reference_param);
                    let condition = format!("y.p = {reference} AND y.k = 'r' AND IS_DEFINED(y.ri) AND {condition}");
                    let targets = self.keys(p, "CONCAT(y.rt, '/', y.ri)", " JOIN y IN c.x", &condition, source).await?;
                    Ok(format!("ARRAY_CONTAINS({}, c.key)", self.params.bind(json!(targets))))
                }
                Predicate::Composite { components, values } => {
                    if components.len() != values.len() || values.is_empty() {
                        return Err(Error::Unsupported(format!("composite `{param}` needs one value per component")));
                    }
                    let mut conditions = Vec::new();
                    for (n, value) in values.iter().enumerate() {
                        conditions.push(condition::value(&mut sub, &format!("x.cs[{n}]"), value)?);
                    }
                    self.exists(false, param, &["c"], sub, &conditions.join(" AND "), types).await
                }
                Predicate::Unsupported(message) => Err(Error::Unsupported(message.clone())),
                value => {
                    let kind = value
                        .value_type()
                        .ok_or_else(|| Error::Unsupported(format!("cannot search {value:?} here")))?;
                    let kinds = kinds(kind)?;
                    let c = condition::value(&mut sub, "x", value)?;
                    self.exists(false, param, kinds, sub, &c, types).await
                }
            }
        })
    }

    /// The parameters a predicate's entry condition is bound in: a part of the search's query
    /// in the `EXISTS` form, else those of its own key-set query. Chains and `_has` are
    /// key-set in both forms (see [`form`]).
    fn sub(&self, predicate: &Predicate) -> Params {
        let joins = matches!(predicate, Predicate::Chain(_) | Predicate::Has(_));
        if self.form == form::SearchQueries::Exists && !joins { self.params.following() } else { Params::default() }
    }

    /// The condition on `c` (and its parameters) of the inner clause of a chain or `_has`, on
    /// resources of `types`.
    async fn inner(&mut self, types: &[String], clause: &Clause) -> Result<(String, Params), Error> {
        let mut inner = Translator {
            store: self.store,
            params: Params::default(),
            defs: self.defs,
            types: types.to_vec(),
            keys_left: self.keys_left,
            form: self.form,
            #[cfg(test)]
            ran: Vec::new(),
        };
        let condition = inner.clause(clause, types).await?;
        self.keys_left = inner.keys_left;
        #[cfg(test)]
        self.ran.append(&mut inner.ran);
        Ok((condition, inner.params))
    }
}

/// The entry kinds (see `documents::flatten`) a parameter type's values are stored as, the same
/// sets the relational stores keep in one table per type.
fn kinds(kind: SearchParamType) -> Result<&'static [&'static str], Error> {
    Ok(match kind {
        SearchParamType::String => &["s"],
        SearchParamType::Token => &["t", "o", "i"],
        SearchParamType::Reference => &["r"],
        SearchParamType::Date => &["d"],
        SearchParamType::Number => &["n"],
        SearchParamType::Quantity => &["q"],
        SearchParamType::Uri => &["u"],
        SearchParamType::Composite => &["c"],
        SearchParamType::Special => {
            return Err(Error::Unsupported("special search parameters are not supported".into()));
        }
    })
}
