//! A FHIRPath (N1, as used by FHIR R4) evaluator over `serde_json` values: the base of search
//! index extraction and of TestScript assertions. Not for: terminology (`memberOf`), profiles
//! (`conformsTo`), or resolving references against a store.
//!
//! ```
//! use fhirgate_engine::fhirpath::{parse, evaluate, Env};
//! let patient = serde_json::json!({"resourceType": "Patient", "name": [{"given": ["Jim"]}]});
//! let expr = parse("Patient.name.given.first()").unwrap();
//! let items = evaluate(&expr, &patient, &Env::new()).unwrap();
//! assert_eq!(items[0].to_json().unwrap().as_str(), Some("Jim"));
//! ```

mod ast;
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
pub use decimal::Decimal;
pub use error::{ErrorKind, FhirPathError, Result};
pub use eval::{Env, evaluate, evaluate_on};
pub use parser::parse;
pub use temporal::{Temporal, TemporalKind};
pub use value::{Item, Literal, Node};
