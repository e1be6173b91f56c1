//! fhirgate's FHIR R4 engine: every piece of FHIR logic, and nothing of HTTP servers or databases.
//!
//! The gateway turns an HTTP request into an [`interaction::Request`], calls [`Engine::handle`]
//! with the client's [`access::Access`] (the one enforcement point of authorization) and writes
//! the [`interaction::Response`] back. Stores implement [`storage::Store`]; the engine
//! builds the writes as data and the store checks their preconditions atomically.

pub mod access;
pub mod definitions;
pub mod error;
pub mod fhirpath;
pub mod format;
pub mod interaction;
pub mod outcome;
pub mod patch;
pub mod resource;
pub mod search;
pub mod storage;
pub mod validation;

pub use error::{Error, Result};
pub use interaction::{Engine, EngineConfig};
