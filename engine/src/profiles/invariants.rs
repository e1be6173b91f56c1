//! Invariants: an element's `constraint.expression`, evaluated with the engine's FHIRPath on
//! each value (`%resource` is the resource validated) within [`INVARIANT_BUDGET`]. A constraint
//! holds when its result is `true`, or a non-empty collection that is not a single boolean; one
//! whose result is `false` or empty (FHIRPath's "unknown": `per-1` comparing a date with a
//! dateTime of the same day) fails, as in the reference validator: an error (a warning for
//! `severity: warning`). An expression this engine cannot parse or evaluate is reported as a
//! warning, never as the instance's fault.
//!
//! R4 published `ref-1` without a guard for a Reference that has no `reference` (only
//! `identifier` or `display`), where it is empty, and without the reference `#` by which a
//! contained resource refers to its container (which R4's `dom-3` allows); the reference
//! validator evaluates it as corrected later, and so does this ([`corrected`]). Type names after
//! `as` are taken in either case of their first letter (`as String` for a FHIR `string`), as
//! the reference validator does for R4.

use std::time::Duration;

use crate::definitions::Definitions;
use crate::fhirpath::{Budget, Env, Item, Node, evaluate_on, parse};
use crate::outcome::IssueType;

use super::snapshot::Elem;
use super::walk::{Found, Walker};

/// The work one invariant may do on one value.
pub(super) const INVARIANT_BUDGET: Budget = Budget { max_steps: 100_000, max_time: Duration::from_millis(250) };

impl<'r> Walker<'_, 'r> {
    pub(super) fn invariants(&mut self, elem: &Elem, item: &Found<'r>) {
        let node = match item.value {
            Some(value) if value.get("resourceType").is_some() => Node::resource(value),
            Some(value) => match item.type_name.as_deref() {
                Some(t) if !matches!(t, "BackboneElement" | "Element") => {
                    let mut node = Node::typed(value, t);
                    node.ext = item.ext;
                    node
                }
                // A profile's element that names no type (its differential leaves it to the
                // core definition): the core's type (`Reference` for
                // `Patient.generalPractitioner`). A backbone element: its children are looked up
                // from the type it is in, by its path there (`Parameters.parameter` →
                // `parameter`).
                _ => {
                    let defs = Definitions::r4();
                    let mut segments = elem.id.split('.').map(|s| s.split(':').next().unwrap_or(s));
                    let root = segments.next().unwrap_or_default();
                    let path = segments.collect::<Vec<_>>().join(".");
                    let core_type = defs
                        .element(root, &path)
                        .and_then(|m| m.type_code)
                        .filter(|t| !matches!(*t, "BackboneElement" | "Element"));
                    let mut node = Node::typed(value, core_type.unwrap_or("BackboneElement"));
                    node.ext = item.ext;
                    if core_type.is_none() {
                        node.root = defs.type_def(root).map(|t| t.name.as_str());
                        node.path = path;
                    }
                    node
                }
            },
            None => return,
        };
        let context = [Item::Node(node)];
        for constraint in &elem.constraints {
            let expr = self
                .expressions
                .entry(constraint.expression.clone())
                .or_insert_with(|| parse(&corrected(&constraint.expression)).ok())
                .clone();
            let Some(expr) = expr else {
                let message =
                    format!("invariant `{}` cannot be evaluated: its expression does not parse", constraint.key);
                self.warning(item.path.clone(), IssueType::Invariant, message);
                continue;
            };
            let env = Env::new()
                .with_budget(INVARIANT_BUDGET)
                .with_lenient_as()
                .with_value_sets(self.conformance)
                .with_variable("rootResource", vec![Item::Node(Node::resource(self.root))]);
            let passed = match evaluate_on(&expr, self.current, &context, &env) {
                Ok(items) => match items.as_slice() {
                    [] => false,
                    [Item::Boolean(b)] => *b,
                    [Item::Node(n)] => n.value().and_then(serde_json::Value::as_bool).unwrap_or(true),
                    _ => true,
                },
                Err(e) => {
                    let message = format!("invariant `{}` cannot be evaluated: {e}", constraint.key);
                    self.warning(item.path.clone(), IssueType::Invariant, message);
                    continue;
                }
            };
            if !passed {
                let message = format!("invariant `{}` failed: {}", constraint.key, constraint.human);
                if constraint.error {
                    self.issue(item.path.clone(), IssueType::Invariant, message);
                } else {
                    self.warning(item.path.clone(), IssueType::Invariant, message);
                }
            }
        }
    }
}

/// R4's `ref-1` as published (empty, hence failing, for a Reference without `reference`).
const REF_1_AS_PUBLISHED: &str = "reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))";

/// `expression` as evaluated: R4's `ref-1` as later corrected (and as the reference validator
/// evaluates it); any other as written.
fn corrected(expression: &str) -> std::borrow::Cow<'_, str> {
    if expression == REF_1_AS_PUBLISHED {
        std::borrow::Cow::Owned(format!(
            "reference.exists() implies ({REF_1_AS_PUBLISHED} or (reference = '#' and %rootResource != %resource))"
        ))
    } else {
        std::borrow::Cow::Borrowed(expression)
    }
}
