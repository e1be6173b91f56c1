//! A FHIRPath (N1, as used by FHIR R4) evaluator over `serde_json` values: the base of search
//! index extraction and of TestScript assertions. Not for: terminology (`memberOf`), profiles
//! (`conformsTo`), or resolving references against a store.

mod ast;
mod decimal;
mod error;
mod lexer;
mod parser;
mod temporal;
mod value;

pub use ast::{BinaryOp, Expr, Special, TypeSpec};
pub use decimal::Decimal;
pub use error::{ErrorKind, FhirPathError, Result};
pub use parser::parse;
pub use temporal::{Temporal, TemporalKind};
pub use value::{Item, Literal, Node};
