//! Runs a [`View`] on one resource: its rows, each a cell per column in the view's order
//! (SQL on FHIR v2, "Processing Algorithm"). A select's rows are the product of its own columns'
//! row and the rows of each nested select and of its `unionAll` (the branches' rows one after
//! the other); `forEach` runs the select once per item, `forEachOrNull` gives one row of nulls
//! when there is none, `repeat` walks its paths depth first. `%rowIndex` is the index of the item
//! in the innermost iteration (0 outside any).
//!
//! Bounds: every expression of one resource spends one FHIRPath [`Budget`]; `repeat` descends at
//! most [`MAX_REPEAT_DEPTH`] levels, and one resource yields at most [`MAX_ROWS`] rows.

use serde_json::Value;

use super::definition::{Column, Iterate, Select, View};
use crate::error::{Error, Result};
use crate::fhirpath::{self, Budget, Env, ErrorKind, Expr, FhirPathError, Item, Node};
use crate::outcome::{Issue, IssueType};

/// A row: one cell per column of the view, in order (`null` for no value, an array for a
/// collection column).
pub type Row = Vec<Value>;

/// Deepest `repeat` descent.
pub(crate) const MAX_REPEAT_DEPTH: usize = 64;
/// Most rows one resource may produce (a product of nested iterations grows fast).
pub const MAX_ROWS: usize = 100_000;

/// What the evaluations of one resource share.
struct Run<'a> {
    resource: &'a Value,
    env: Env<'a>,
}

impl View {
    /// The rows `resource` gives (none when it is of another type or a `where` excludes it),
    /// every expression spending `budget`.
    pub fn rows(&self, resource: &Value, budget: Budget) -> Result<Vec<Row>> {
        if resource.get("resourceType").and_then(Value::as_str) != Some(self.resource.as_str()) {
            return Ok(Vec::new());
        }
        let mut env = Env::new().with_budget(budget);
        for c in &self.constants {
            env = env.with_variable(&c.name, vec![Item::Node(Node::typed(&c.value, &c.fhir_type))]);
        }
        let run = Run { resource, env };
        let root = Item::Node(Node::resource(resource));
        for (text, expr) in &self.wheres {
            if !run.holds(expr, &root, text)? {
                return Ok(Vec::new());
            }
        }
        run.select(&self.select, Some(&root), 0)
    }
}

impl<'a> Run<'a> {
    fn eval(&self, expr: &Expr, focus: Option<&Item<'a>>, index: usize) -> Result<Vec<Item<'a>>> {
        let env = self.env.clone().with_variable("rowIndex", vec![Item::Integer(index as i64)]);
        let input = focus.map(std::slice::from_ref).unwrap_or_default();
        fhirpath::evaluate_on(expr, self.resource, input, &env).map_err(evaluation)
    }

    /// Whether a `where` path holds: `true`, or `false`/empty; anything else is an error.
    fn holds(&self, expr: &Expr, root: &Item<'a>, text: &str) -> Result<bool> {
        let items = self.eval(expr, Some(root), 0)?;
        let value = match items.as_slice() {
            [] => return Ok(false),
            [item] => item.system().map(std::borrow::Cow::into_owned),
            _ => None,
        };
        match value {
            Some(Item::Boolean(b)) => Ok(b),
            _ => Err(Error::unprocessable(format!(
                "the `where` path `{text}` must give a boolean; it gave {} value(s) of another type",
                items.len()
            ))),
        }
    }

    /// The rows of `select` on `focus` (`None`: the one row of nulls of an empty `forEachOrNull`).
    fn select(&self, select: &Select, focus: Option<&Item<'a>>, index: usize) -> Result<Vec<Row>> {
        let Some(focus) = focus else { return Ok(vec![self.null_row(select, index)?]) };
        match &select.iterate {
            Iterate::Here => self.expand(select, focus, index),
            Iterate::Each { expr, or_null } => {
                let items = self.eval(expr, Some(focus), index)?;
                if items.is_empty() && *or_null {
                    return Ok(vec![self.null_row(select, 0)?]);
                }
                let mut rows = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    extend(&mut rows, self.expand(select, item, i)?)?;
                }
                Ok(rows)
            }
            Iterate::Repeat(paths) => {
                let mut nodes = Vec::new();
                self.descend(paths, focus, 0, &mut nodes)?;
                let mut rows = Vec::new();
                for (i, item) in nodes.iter().enumerate() {
                    extend(&mut rows, self.expand(select, item, i)?)?;
                }
                Ok(rows)
            }
        }
    }

    /// The nodes `paths` reach from `node`, recursively, each followed by its own descendants.
    fn descend(&self, paths: &[Expr], node: &Item<'a>, depth: usize, out: &mut Vec<Item<'a>>) -> Result<()> {
        if depth >= MAX_REPEAT_DEPTH {
            return Err(Error::unprocessable(format!("`repeat` descends more than {MAX_REPEAT_DEPTH} levels")));
        }
        for path in paths {
            for child in self.eval(path, Some(node), 0)? {
                if out.len() >= MAX_ROWS {
                    return Err(too_many_rows());
                }
                out.push(child.clone());
                self.descend(paths, &child, depth + 1, out)?;
            }
        }
        Ok(())
    }

    /// The rows of `select` on one node: its columns' row times each nested select's rows times
    /// its `unionAll` rows.
    fn expand(&self, select: &Select, focus: &Item<'a>, index: usize) -> Result<Vec<Row>> {
        let own = select.columns.iter().map(|c| self.cell(c, Some(focus), index)).collect::<Result<Row>>()?;
        let mut rows = vec![own];
        for nested in &select.selects {
            rows = product(rows, self.select(nested, Some(focus), index)?)?;
        }
        if !select.union_all.is_empty() {
            let mut union = Vec::new();
            for branch in &select.union_all {
                extend(&mut union, self.select(branch, Some(focus), index)?)?;
            }
            rows = product(rows, union)?;
        }
        Ok(rows)
    }

    /// One row for `select` with nothing to iterate on: its columns evaluated on no node (so
    /// `%rowIndex` and literals keep their value, paths give null), nested selects likewise.
    fn null_row(&self, select: &Select, index: usize) -> Result<Row> {
        let mut row = select.columns.iter().map(|c| self.cell(c, None, index)).collect::<Result<Row>>()?;
        for nested in &select.selects {
            row.extend(self.null_row(nested, index)?);
        }
        if let Some(first) = select.union_all.first() {
            row.extend(self.null_row(first, index)?);
        }
        Ok(row)
    }

    /// A column's cell on `focus`.
    fn cell(&self, column: &Column, focus: Option<&Item<'a>>, index: usize) -> Result<Value> {
        let items = self.eval(&column.path, focus, index)?;
        let json = |item: &Item<'_>| item.to_json().map_or(Value::Null, std::borrow::Cow::into_owned);
        if column.collection {
            return Ok(Value::Array(items.iter().map(json).collect()));
        }
        match items.as_slice() {
            [] => Ok(Value::Null),
            [item] => Ok(json(item)),
            many => Err(Error::unprocessable(format!(
                "the column `{}` has {} values for one row: declare it `\"collection\": true` or pick one \
                 (`first()`)",
                column.name,
                many.len()
            ))),
        }
    }
}

/// Every row of `left` joined with every row of `right`.
fn product(left: Vec<Row>, right: Vec<Row>) -> Result<Vec<Row>> {
    if left.len().saturating_mul(right.len()) > MAX_ROWS {
        return Err(too_many_rows());
    }
    let mut rows = Vec::with_capacity(left.len() * right.len());
    for l in &left {
        for r in &right {
            let mut row = l.clone();
            row.extend(r.iter().cloned());
            rows.push(row);
        }
    }
    Ok(rows)
}

fn extend(rows: &mut Vec<Row>, more: Vec<Row>) -> Result<()> {
    if rows.len() + more.len() > MAX_ROWS {
        return Err(too_many_rows());
    }
    rows.extend(more);
    Ok(())
}

fn too_many_rows() -> Error {
    Error::Unprocessable(vec![Issue::error(
        IssueType::TooCostly,
        format!("the view gives more than {MAX_ROWS} rows for one resource"),
    )])
}

/// A FHIRPath failure while running a view: 422, `too-costly` when the budget ran out.
fn evaluation(e: FhirPathError) -> Error {
    let code = if e.kind == ErrorKind::Budget { IssueType::TooCostly } else { IssueType::Processing };
    Error::Unprocessable(vec![Issue::error(code, format!("the view's FHIRPath failed: {}", e.message))])
}
