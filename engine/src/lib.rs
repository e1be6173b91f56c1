//! fhirgate's FHIR R4 engine: every piece of FHIR logic, and nothing of HTTP servers or databases.
//!
//! The gateway turns an HTTP request into an [`interaction::Request`], calls [`Engine::handle`]
//! with the client's [`access::Access`] (the one enforcement point of authorization) and writes
//! the [`interaction::Response`] back. Stores implement [`storage::Store`]; the engine
//! builds the writes as data and the store checks their preconditions atomically.
//!
//! The public surface is what the other crates use: the modules below for the gateway
//! (`access`, `interaction`), the stores (`storage`, `search::query`), the policies and the
//! conformance runner (`definitions`, `fhirpath`), and a few re-exports at the root. Everything
//! else is crate-private; `unreachable_pub` keeps a `pub` item from hiding in a private module.

#![warn(unreachable_pub)]

pub mod access;
pub mod bulk;
pub mod definitions;
pub mod export;
pub mod federation;
pub mod fhirpath;
pub mod interaction;
pub mod profiles;
pub mod remote;
pub mod seal;
pub mod search;
pub mod storage;
pub mod terminology;
pub mod views;

mod error;
mod format;
mod outcome;
mod patch;
mod resource;
mod validation;

pub use error::{Error, Result};
pub use format::{
    MediaType, is_xml_content_type, json_to_xml, negotiate, xml_body_as_json, xml_to_json, xml_to_json_lenient,
};
pub use interaction::{Engine, EngineConfig};
pub use outcome::{Issue, IssueType, Severity};
pub use patch::Patch;
pub use validation::{check_displays, check_hyperlinks, validate};
