//! fhirgate's Touchstone-style TestScript runner: loads R4 TestScripts (JSON or FHIR XML), runs
//! them against any FHIR R4 server over HTTP, and writes TestReports, JUnit XML and an HTML page.
//! It knows nothing of the gateway; the binary `fhirgate-conformance` is its command line.
//! The corpus of fhirgate's own scripts lives in `conformance/testscripts/`.
//!
//! ```no_run
//! use fhirgate_conformance::run::{Options, Runner};
//! let results = Runner::new(Options::new("http://127.0.0.1:8080")).run_paths(&["conformance/testscripts".into()])?;
//! assert!(results.iter().all(|r| r.passed()));
//! # Ok::<(), fhirgate_conformance::Error>(())
//! ```
//!
//! Public: the runner (`run`), the reports (`report`, `progress`), the script model (`script`)
//! and the corpus generator (`generate`); the rest is crate-private. FHIR XML is read and
//! written with the engine's converter (`fhirgate_engine::xml_to_json_lenient`, `json_to_xml`).

#![warn(unreachable_pub)]

pub mod compare;
pub mod generate;
pub mod progress;
pub mod report;
pub mod run;
pub mod script;

mod error;
mod format;
mod http;
mod token;
mod vars;
mod xpath;

pub use error::{Error, Result};
pub use token::token_from_command;
