//! Bulk data operations (<https://hl7.org/fhir/uv/bulkdata/>) that run as jobs after the request
//! that started them: `$import` ([`import`]).

pub mod import;
