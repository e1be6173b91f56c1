//! Bulk data operations (<https://hl7.org/fhir/uv/bulkdata/>) that run as jobs after the request
//! that started them: `$import` ([`import`]) and, through the same job mechanism ([`worker`]),
//! `$export` ([`crate::export`]).

pub mod blob;
pub mod import;
pub mod worker;
