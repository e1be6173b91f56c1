//! The Cedar schema for FHIR (`policies/schema/fhir.cedarschema`, compiled in).

use cedar_policy::Schema;

use crate::error::{Error, Problem};

/// The schema text.
pub const SCHEMA_TEXT: &str = include_str!("../schema/fhir.cedarschema");

/// The parsed schema.
pub fn schema() -> Result<Schema, Error> {
    Schema::from_cedarschema_str(SCHEMA_TEXT)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| Error::Invalid(vec![Problem { location: None, message: format!("schema: {e}") }]))
}
