//! Compartments (Patient, Encounter, RelatedPerson, Practitioner, Device): which resources belong
//! to a compartment, through which search parameters.
//! See <https://hl7.org/fhir/R4/compartmentdefinition.html>.

use std::collections::BTreeMap;

/// One CompartmentDefinition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compartment {
    /// The compartment's resource type, e.g. `Patient`.
    pub code: String,
    /// Resource type → the search parameter codes linking it to the compartment.
    pub(crate) resources: BTreeMap<String, Vec<String>>,
}

impl Compartment {
    /// The search parameter codes through which a `resource_type` resource belongs to this
    /// compartment; empty when it cannot.
    pub fn params(&self, resource_type: &str) -> &[String] {
        self.resources.get(resource_type).map_or(&[], Vec::as_slice)
    }

    /// The resource types that can be in this compartment, sorted, with their parameter codes.
    pub fn resources(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.resources.iter().map(|(t, p)| (t.as_str(), p.as_slice()))
    }
}
