//! Cedar authorization for fhirgate: the Cedar schema for FHIR, the shipped policy sets, and
//! the mapping from a FHIR request and a token's principal to a Cedar request.
//!
//! The public surface is small, like cedar-policy's own: build a [`Principal`] from claims and
//! an [`AuthzRequest`] from the HTTP request (type level) or from a resource's JSON (data
//! level), then ask a [`PolicyEngine`] loaded from [`PolicySource`]s for a [`Decision`].
//! Policy test files run through [`testcase`]. This crate knows no HTTP server and no token
//! format: the gateway verifies tokens and calls it.

mod action;
mod attributes;
mod cache;
pub mod consent;
pub mod coverage;
mod data_blind;
mod decision;
mod engine;
mod error;
mod principal;
pub mod prove;
mod reads;
pub mod replay;
mod request;
mod resource;
mod schema;
mod smart;
mod sources;
pub mod testcase;

pub use action::{Action, Target};
pub use attributes::values::AttrValue;
pub use decision::Decision;
pub use engine::PolicyEngine;
pub use error::{Error, Location, Problem};
pub use principal::{Principal, PrincipalKind};
pub use request::{AuthzRequest, RequestContext};
pub use resource::{ResourceFacts, TENANT_TAG_SYSTEM};
pub use schema::schema_text;
pub use smart::SmartGrants;
pub use sources::{PolicySource, directory, named_or_directory, shipped, shipped_names};
