//! A FHIRPath (N1, as used by FHIR R4) evaluator over `serde_json` values: the base of search
//! index extraction and of TestScript assertions. Not for: terminology (`memberOf`), profiles
//! (`conformsTo`), or resolving references against a store.
//!
//! Deliberate choices, each a trade-off a reader may question:
//! - lenient navigation: unknown element names and `valueQuantity`-style names yield what the
//!   JSON holds, no semantic error (the official suite's strict-mode cases fail);
//! - the `as` operator filters a collection, as R4 search parameters need
//!   (`Observation.component.value as Quantity`); the `as()` function keeps the single-item rule;
//! - `is`/`as` match primitive types exactly (`code` is not `string`), complex and resource
//!   types through their base types (`Age` is a `Quantity`, `Patient` a `Resource`);
//! - `resolve()` finds contained resources (`#id`) and otherwise returns an empty, typed
//!   placeholder (`Patient/1` → a `Patient`), so `resolve() is Patient` works without a store;
//! - quantities convert only definite durations, metric prefixes and a few customary units.
//!
//! Bounds: the parser refuses expressions nesting deeper than evaluation may recurse, and every
//! evaluation spends a [`Budget`] of steps and time (the default one unless the [`Env`] carries
//! another), so a client's expression can neither overflow the stack nor run for long.
//!
//! ```
//! use fhirgate_engine::fhirpath::{parse, evaluate, Env};
//! let patient = serde_json::json!({"resourceType": "Patient", "name": [{"given": ["Jim"]}]});
//! let expr = parse("Patient.name.given.first()").unwrap();
//! let items = evaluate(&expr, &patient, &Env::new()).unwrap();
//! assert_eq!(items[0].to_json().unwrap().as_str(), Some("Jim"));
//! ```

mod ast;
mod budget;
mod decimal;
mod error;
mod eval;
mod functions;
mod lexer;
mod navigate;
mod operators;
mod parser;
mod quantity;
mod temporal;
#[cfg(test)]
mod tests;
mod value;

pub use ast::{BinaryOp, Expr, Special, TypeSpec};
pub use budget::Budget;
pub use decimal::Decimal;
pub use error::{ErrorKind, FhirPathError, Result};
pub use eval::{Env, evaluate};
pub(crate) use eval::{ValueSetSource, evaluate_on};
pub use parser::parse;
pub use temporal::{Temporal, TemporalKind};
pub use value::{Item, Literal, Node};
