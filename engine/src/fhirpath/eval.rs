//! Evaluates an [`Expr`] over a resource: collections in, collections out.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::ast::{BinaryOp, Expr, Special, TypeSpec};
use super::budget::{Budget, Meter, pairs};
use super::error::{FhirPathError, Result};
use super::functions;
use super::navigate;
use super::operators;
use super::value::{Item, Node};
use crate::definitions::Definitions;

/// Recursion bound of evaluation (the depth of the expression tree); the parser keeps
/// expressions below it. A debug build spends up to about 8 KB of stack per level.
pub(crate) const MAX_DEPTH: usize = 100;

/// Bytes of produced strings counted as one step (so doubling a string in a loop is bounded).
const STRING_BYTES_PER_STEP: usize = 32;

/// The environment of an evaluation: user variables (`%name`). `%resource`, `%context`,
/// `%rootResource`, `%ucum`, `%sct`, `%loinc`, `%vs-*` and `%ext-*` are built in. Also the work
/// budget: each evaluation spends its own [`Budget::DEFAULT`] unless [`Env::with_budget`] gave
/// one that all evaluations with this environment (and its clones) share.
#[derive(Debug, Default, Clone)]
pub struct Env<'a> {
    variables: HashMap<String, Vec<Item<'a>>>,
    meter: Option<Arc<Meter>>,
    /// Where `memberOf(url)` finds value sets; without it `memberOf` is not supported.
    value_sets: Option<ValueSets<'a>>,
    /// Whether the `as` operator also takes a type name with its first letter in the other case
    /// (`as String` for a FHIR `string`), as R4 profiles' invariants are written and the
    /// reference validator evaluates them for R4.
    lenient_as: bool,
}

/// Expands a value set by canonical URL for `memberOf` (`None`: it cannot be expanded here).
pub(crate) trait ValueSetSource {
    fn expansion(&self, url: &str) -> Option<Arc<crate::terminology::Expansion>>;
}

/// A [`ValueSetSource`] held by an [`Env`].
#[derive(Clone, Copy)]
pub(crate) struct ValueSets<'a>(pub(crate) &'a dyn ValueSetSource);

impl std::fmt::Debug for ValueSets<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValueSets")
    }
}

impl<'a> Env<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the variable `%name`.
    pub(crate) fn with_variable(mut self, name: &str, items: Vec<Item<'a>>) -> Self {
        self.variables.insert(name.to_owned(), items);
        self
    }

    /// Lets `memberOf(url)` expand value sets from `source`.
    pub(crate) fn with_value_sets(mut self, source: &'a dyn ValueSetSource) -> Self {
        self.value_sets = Some(ValueSets(source));
        self
    }

    /// Makes the `as` operator lenient about the case of a type name's first letter (see
    /// [`Env::lenient_as`]): for invariants of R4 profiles, never for search or patches.
    pub(crate) fn with_lenient_as(mut self) -> Self {
        self.lenient_as = true;
        self
    }

    /// Starts `budget` now, shared by every evaluation with this environment and its clones.
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.meter = Some(Meter::start(budget));
        self
    }
}

/// Evaluates `expr` with `resource` as the context (`%resource`, `%context`, `$this`).
pub fn evaluate<'a>(expr: &Expr, resource: &'a Value, env: &Env<'a>) -> Result<Vec<Item<'a>>> {
    let root = Item::Node(Node::resource(resource));
    evaluate_on(expr, resource, std::slice::from_ref(&root), env)
}

/// Evaluates `expr` on `context`, items found in `resource` (`%resource`): how the components
/// of a composite search parameter are evaluated on each value of its main expression.
pub(crate) fn evaluate_on<'a>(
    expr: &Expr,
    resource: &'a Value,
    context: &[Item<'a>],
    env: &Env<'a>,
) -> Result<Vec<Item<'a>>> {
    let root = Item::Node(Node::resource(resource));
    let meter = env.meter.clone().unwrap_or_else(|| Meter::start(Budget::DEFAULT));
    let ctx = Ctx { env, root, context: context.to_vec(), depth: std::cell::Cell::new(0), meter };
    let frame = Frame { this: context.first().cloned(), index: None, total: None };
    ctx.eval(expr, context, &frame)
}

/// What an evaluation carries along.
pub(crate) struct Ctx<'a, 'e> {
    env: &'e Env<'a>,
    root: Item<'a>,
    context: Vec<Item<'a>>,
    depth: std::cell::Cell<usize>,
    meter: Arc<Meter>,
}

/// The iteration variables of the innermost `where`/`select`/... (`$this`, `$index`, `$total`).
#[derive(Clone)]
pub(crate) struct Frame<'a> {
    pub(crate) this: Option<Item<'a>>,
    pub(crate) index: Option<usize>,
    pub(crate) total: Option<Vec<Item<'a>>>,
}

impl<'a> Ctx<'a, '_> {
    /// The resource the evaluation started from.
    pub(crate) fn root(&self) -> &Item<'a> {
        &self.root
    }

    /// Where `memberOf` finds value sets, if anywhere.
    pub(crate) fn value_sets(&self) -> Option<&'a dyn ValueSetSource> {
        self.env.value_sets.map(|v| v.0)
    }

    /// Spends `steps` of the budget.
    pub(crate) fn spend(&self, steps: u64) -> Result<()> {
        self.meter.spend(steps)
    }

    /// Spends the steps of comparing each of `a` items with each of `b` items.
    pub(crate) fn spend_pairs(&self, a: usize, b: usize) -> Result<()> {
        self.meter.spend(pairs(a, b))
    }

    /// Evaluates `expr` on the focus `input`.
    pub(crate) fn eval(&self, expr: &Expr, input: &[Item<'a>], frame: &Frame<'a>) -> Result<Vec<Item<'a>>> {
        let depth = self.depth.get() + 1;
        if depth > MAX_DEPTH {
            return Err(FhirPathError::budget("expression nested too deeply"));
        }
        self.spend(1)?;
        self.depth.set(depth);
        let result = self.eval_inner(expr, input, frame);
        self.depth.set(depth - 1);
        let items = result?;
        let text: usize = items.iter().map(|i| if let Item::String(s) = i { s.len() } else { 0 }).sum();
        self.spend(u64::try_from(items.len() + text / STRING_BYTES_PER_STEP).unwrap_or(u64::MAX))?;
        Ok(items)
    }

    fn eval_inner(&self, expr: &Expr, input: &[Item<'a>], frame: &Frame<'a>) -> Result<Vec<Item<'a>>> {
        Ok(match expr {
            Expr::Literal(literal) => Item::from_literal(literal).into_iter().collect(),
            Expr::Special(Special::This) => frame.this.clone().into_iter().collect(),
            Expr::Special(Special::Index) => frame.index.map(|i| Item::Integer(i as i64)).into_iter().collect(),
            Expr::Special(Special::Total) => frame.total.clone().unwrap_or_default(),
            Expr::Variable(name) => self.variable(name)?,
            Expr::Member { target, name } => {
                let mut out = Vec::new();
                match target {
                    None => {
                        for item in input {
                            if name.starts_with(|c: char| c.is_ascii_uppercase()) && is_resource_named(item, name) {
                                out.push(item.clone());
                            } else {
                                navigate::member(item, name, &mut out);
                            }
                        }
                    }
                    Some(target) => {
                        for item in &self.eval(target, input, frame)? {
                            navigate::member(item, name, &mut out);
                        }
                    }
                }
                out
            }
            Expr::Call { target, name, args } => {
                let focus = match target {
                    Some(target) => self.eval(target, input, frame)?,
                    None => input.to_vec(),
                };
                functions::call(self, name, focus, args, input, frame, target.is_some())?
            }
            Expr::Index(target, index) => {
                let items = self.eval(target, input, frame)?;
                let index = self.eval(index, input, frame)?;
                // An integer node (a FHIR `integer` constant or element) indexes as its value.
                match index.as_slice() {
                    [] => Vec::new(),
                    [item] => match item.system().as_deref() {
                        Some(Item::Integer(i)) => {
                            usize::try_from(*i).ok().and_then(|i| items.get(i).cloned()).into_iter().collect()
                        }
                        _ => return Err(FhirPathError::eval("an index must be a single integer")),
                    },
                    _ => return Err(FhirPathError::eval("an index must be a single integer")),
                }
            }
            Expr::Negate(inner) => operators::negate(self.eval(inner, input, frame)?)?,
            Expr::Type { expr, spec, is_as } => {
                let items = self.eval(expr, input, frame)?;
                let lenient = *is_as && self.env.lenient_as && spec.namespace.is_none();
                match lenient.then(|| other_case(&spec.name)).flatten() {
                    Some(name) => {
                        let other = TypeSpec { namespace: None, name };
                        let (exact, rest): (Vec<_>, Vec<_>) = items.into_iter().partition(|i| is_type(i, spec));
                        let mut found = type_op(exact, spec, true)?;
                        found.extend(rest.into_iter().filter(|i| is_type(i, &other)));
                        found
                    }
                    None => type_op(items, spec, *is_as)?,
                }
            }
            Expr::Binary(op, left, right) => {
                let left = self.eval(left, input, frame)?;
                // Short-circuit the logical operators where the spec allows it.
                let logical = matches!(op, BinaryOp::And | BinaryOp::Or | BinaryOp::Implies);
                match (op, if logical { operators::to_bool(&left)? } else { None }) {
                    (BinaryOp::And, Some(false)) => return Ok(vec![Item::Boolean(false)]),
                    (BinaryOp::Or, Some(true)) => return Ok(vec![Item::Boolean(true)]),
                    (BinaryOp::Implies, Some(false)) => return Ok(vec![Item::Boolean(true)]),
                    _ => {}
                }
                let right = self.eval(right, input, frame)?;
                if *op == BinaryOp::Union {
                    let compared = operators::dedupe_cost(&left) + operators::dedupe_cost(&right);
                    self.spend_pairs(compared, compared)?;
                }
                operators::binary(*op, left, right)?
            }
        })
    }

    fn variable(&self, name: &str) -> Result<Vec<Item<'a>>> {
        if let Some(items) = self.env.variables.get(name) {
            return Ok(items.clone());
        }
        let text = |s: &str| Ok(vec![Item::String(s.to_owned())]);
        match name {
            "resource" | "rootResource" => Ok(vec![self.root.clone()]),
            "context" => Ok(self.context.clone()),
            "ucum" => text("http://unitsofmeasure.org"),
            "sct" => text("http://snomed.info/sct"),
            "loinc" => text("http://loinc.org"),
            _ => {
                if let Some(vs) = name.strip_prefix("vs-") {
                    return text(&format!("http://hl7.org/fhir/ValueSet/{vs}"));
                }
                if let Some(ext) = name.strip_prefix("ext-") {
                    return text(&format!("http://hl7.org/fhir/StructureDefinition/{ext}"));
                }
                Err(FhirPathError::eval(format!("unknown variable `%{name}`")))
            }
        }
    }
}

/// Whether a path's first name is the type of the context item (`Patient` in `Patient.name`,
/// `Resource` in `Resource.id`).
fn is_resource_named(item: &Item<'_>, name: &str) -> bool {
    item.node().is_some_and(|n| n.value.is_some_and(|v| v.get("resourceType").is_some()))
        && is_type(item, &TypeSpec { namespace: None, name: name.to_owned() })
}

/// Fails unless `spec` names a System or FHIR type.
pub(crate) fn check_type(spec: &TypeSpec) -> Result<()> {
    const SYSTEM: [&str; 9] =
        ["Boolean", "String", "Integer", "Decimal", "Date", "DateTime", "Time", "Quantity", "Any"];
    let known = match spec.namespace.as_deref() {
        Some("System") => SYSTEM.contains(&spec.name.as_str()),
        Some("FHIR") => Definitions::r4().type_def(&spec.name).is_some(),
        None => SYSTEM.contains(&spec.name.as_str()) || Definitions::r4().type_def(&spec.name).is_some(),
        Some(_) => false,
    };
    if known { Ok(()) } else { Err(FhirPathError::eval(format!("unknown type `{}`", spec.name))) }
}

/// `name` with its first letter in the other case (`String` → `string`), if that is a type
/// name too.
fn other_case(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let first = chars.next()?;
    let flipped = if first.is_ascii_uppercase() { first.to_ascii_lowercase() } else { first.to_ascii_uppercase() };
    let other = format!("{flipped}{}", chars.as_str());
    let known = Definitions::r4().type_def(&other).is_some()
        || ["Boolean", "String", "Integer", "Decimal", "Date", "DateTime", "Time", "Quantity"]
            .contains(&other.as_str());
    known.then_some(other)
}

/// `is` and `as`.
pub(crate) fn type_op<'a>(items: Vec<Item<'a>>, spec: &TypeSpec, is_as: bool) -> Result<Vec<Item<'a>>> {
    if is_as {
        check_type(spec)?;
        // R4 search parameters apply `as` to collections (`Observation.component.value as
        // Quantity`), so it filters rather than requiring a single item.
        return Ok(items.into_iter().filter(|i| is_type(i, spec)).collect());
    }
    match items.as_slice() {
        [] => Ok(Vec::new()),
        [item] => Ok(vec![Item::Boolean(is_type(item, spec))]),
        _ => Err(FhirPathError::eval("`is` needs a single item")),
    }
}

/// Whether `item` is of type `spec` or a type derived from it.
pub(crate) fn is_type(item: &Item<'_>, spec: &TypeSpec) -> bool {
    let namespace = spec.namespace.as_deref();
    match item {
        Item::Node(node) => {
            if namespace == Some("System") {
                return false;
            }
            let defs = Definitions::r4();
            let mut current = node.fhir_type;
            let mut guard = 0;
            while let Some(name) = current {
                if name == spec.name {
                    return true;
                }
                // Primitive types match exactly: a `code` is not a `string` for `is`/`as`.
                if super::value::is_primitive_type(name) {
                    break;
                }
                guard += 1;
                if guard > 16 {
                    break;
                }
                current =
                    defs.type_def(name).and_then(|t| t.base.as_deref()).map(|b| b.rsplit('/').next().unwrap_or(b));
            }
            false
        }
        _ => namespace != Some("FHIR") && item.type_name() == Some(spec.name.as_str()),
    }
}
