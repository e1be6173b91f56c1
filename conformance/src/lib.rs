//! fhirgate's Touchstone-style TestScript runner: loads R4 TestScripts (JSON or XML), runs them
//! against any FHIR R4 server over HTTP, and writes TestReports, JUnit XML and an HTML page.
//! It knows nothing of the gateway; the binary `fhirgate-conformance` is its command line.
//! The corpus of fhirgate's own scripts lives in `conformance/testscripts/`.

pub mod error;
pub mod xml;

pub use error::{Error, Result};
pub mod vars;
pub mod xpath;
pub mod http;
pub mod script;
pub mod run;
