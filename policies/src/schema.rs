//! The Cedar schema for FHIR: the hand-written part (`policies/schema/fhir.cedarschema`:
//! principals, context, actions) completed with what is generated from the compiled-in R4
//! definitions: the common resource attributes ([`crate::attributes::common`]) and one entity
//! type per resource type ([`crate::attributes::params`]), every action applying to
//! `Fhir::Resource` and to each of them. Made and parsed once per process.

use std::fmt::Write as _;
use std::sync::LazyLock;

use cedar_policy::Schema;

use crate::attributes::common::COMMON;
use crate::attributes::params::{entities, needs_quotes};
use crate::error::{Error, Problem};

/// The hand-written template.
const TEMPLATE: &str = include_str!("../schema/fhir.cedarschema");

static TEXT: LazyLock<String> = LazyLock::new(|| generate(|_, _| true));

static PARSED: LazyLock<Result<Schema, String>> = LazyLock::new(|| {
    Schema::from_cedarschema_str(&TEXT).map(|(schema, _warnings)| schema).map_err(|e| format!("schema: {e}"))
});

/// The whole schema text (`fhirgate policy schema` prints it).
pub fn schema_text() -> &'static str {
    &TEXT
}

/// The parsed schema.
pub fn schema() -> Result<Schema, Error> {
    PARSED.clone().map_err(|message| Error::Invalid(vec![Problem { location: None, message }]))
}

/// The schema with only the generated entity types `keep` accepts (by entity name, e.g.
/// resource type and entity name, e.g. `Group`, `GroupResource`), for the symbolic prover: each type multiplies its work.
pub(crate) fn schema_with(keep: impl FnMut(&str, &str) -> bool) -> Result<Schema, Error> {
    Schema::from_cedarschema_str(&generate(keep))
        .map(|(schema, _warnings)| schema)
        .map_err(|e| Error::Invalid(vec![Problem { location: None, message: format!("schema: {e}") }]))
}

/// An attribute name as the schema writes it.
fn quoted(name: &str) -> String {
    if needs_quotes(name) { format!("{name:?}") } else { name.to_owned() }
}

fn generate(mut keep: impl FnMut(&str, &str) -> bool) -> String {
    let mut common = String::new();
    for attr in COMMON {
        for line in attr.doc {
            let _ = writeln!(common, "    // {line}");
        }
        let _ = writeln!(common, "    {}: {},", attr.name, attr.cedar_type);
    }
    let mut resources = String::new();
    let mut names = vec!["Resource".to_owned()];
    for (resource_type, entity) in entities().filter(|(t, e)| keep(t, &e.name)) {
        names.push(entity.name.clone());
        let _ = writeln!(
            resources,
            "  // {resource_type}: https://hl7.org/fhir/R4/{}.html#search",
            resource_type.to_lowercase()
        );
        let _ = writeln!(resources, "  entity {} = {{", entity.name);
        resources.push_str(&common);
        for param in &entity.params {
            let (optional, cedar_type) = param.shape.cedar();
            let _ = writeln!(resources, "    {}{optional}: {cedar_type},", quoted(&param.name));
        }
        resources.push_str("  };\n");
    }
    TEMPLATE
        .replace("@COMMON@\n", &common)
        .replace("@RESOURCE_ENTITIES@\n", &resources)
        .replace("@RESOURCE_TYPES@", &format!("[{}]", names.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_schema_parses_and_has_every_resource_type() -> Result<(), Error> {
        let schema = schema()?;
        let types: Vec<String> = schema.entity_types().map(ToString::to_string).collect();
        for expected in ["Fhir::Resource", "Fhir::Observation", "Fhir::Patient", "Fhir::GroupResource", "Fhir::Group"] {
            assert!(types.iter().any(|t| t == expected), "{expected} missing");
        }
        assert!(!schema_text().contains('@'), "every placeholder is filled");
        assert!(schema_text().contains("\"value-quantity\"?: QuantityRange"), "quoted, optional");
        Ok(())
    }
}
