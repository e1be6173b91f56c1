//! Invariants: an element's `constraint.expression`, evaluated with the engine's FHIRPath on
//! each value (`%resource` is the resource validated) within [`INVARIANT_BUDGET`]. A constraint
//! whose result is `false` is an error (a warning for `severity: warning`); an empty result
//! passes; an expression this engine cannot parse or evaluate is reported as a warning, never
//! as the instance's fault.

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
                .or_insert_with(|| parse(&constraint.expression).ok())
                .clone();
            let Some(expr) = expr else {
                let message =
                    format!("invariant `{}` cannot be evaluated: its expression does not parse", constraint.key);
                self.warning(item.path.clone(), IssueType::Invariant, message);
                continue;
            };
            let env = Env::new()
                .with_budget(INVARIANT_BUDGET)
                .with_value_sets(self.conformance)
                .with_variable("rootResource", vec![Item::Node(Node::resource(self.root))]);
            let passed = match evaluate_on(&expr, self.current, &context, &env) {
                Ok(items) => match items.as_slice() {
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
