//! The FHIR R4 definitions the engine works from: resource and data types with their elements,
//! search parameters and compartments, loaded from a compact file generated from the official
//! R4 package and compiled into the binary (see `engine/definitions/README.md`).

mod compartment;
mod custom;
mod load;
mod model;
mod search;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

pub use compartment::Compartment;
pub(crate) use load::search_param as search_param_of;
pub(crate) use model::{Child, Node, NodeId};
pub use model::{ElementDef, Kind, TypeDef};
pub use search::{SearchParam, SearchParamComponent, SearchParamType};

/// The generated R4 definitions (`engine/definitions/r4.json.gz`).
static R4_GZ: &[u8] = include_bytes!("../../definitions/r4.json.gz");

/// All R4 definitions.
#[derive(Debug, Default)]
pub struct Definitions {
    types: Vec<TypeDef>,
    type_index: HashMap<String, usize>,
    elements: Vec<ElementDef>,
    /// Full definition path (`Observation.value[x]`) → element.
    element_index: HashMap<String, usize>,
    nodes: Vec<Node>,
    /// Concrete resource types, sorted.
    resource_types: Vec<String>,
    search_params: Vec<SearchParam>,
    search_by_url: HashMap<String, usize>,
    /// Resource type → (its parameters sorted by code, code → parameter).
    search_by_type: HashMap<String, (Vec<usize>, HashMap<String, usize>)>,
    compartments: BTreeMap<String, Compartment>,
    /// SearchParameters from packages and the API (`custom.rs`).
    custom: custom::Custom,
}

/// An element found by [`Definitions::element`], with the type chosen by the JSON name.
#[derive(Debug, Clone, Copy)]
pub struct ElementMatch<'a> {
    pub element: &'a ElementDef,
    /// The type: for `valueQuantity`, `Quantity`; for `value[x]` itself, `None`. `None` also for
    /// contentReference elements.
    pub type_code: Option<&'a str>,
}

impl Definitions {
    /// The R4 definitions, loaded once.
    pub fn r4() -> &'static Definitions {
        static DEFS: OnceLock<Definitions> = OnceLock::new();
        DEFS.get_or_init(|| {
            #[expect(
                clippy::expect_used,
                reason = "the file is generated and compiled in; a corrupt one is a build defect \
                          caught by every test"
            )]
            load::from_gzip(R4_GZ).expect("embedded R4 definitions are corrupt")
        })
    }

    /// Whether `name` is an R4 resource type (concrete, not abstract).
    pub(crate) fn is_resource_type(&self, name: &str) -> bool {
        self.resource_types.binary_search_by(|t| t.as_str().cmp(name)).is_ok()
    }

    /// Every concrete R4 resource type, sorted.
    pub fn resource_types(&self) -> impl Iterator<Item = &str> {
        self.resource_types.iter().map(String::as_str)
    }

    /// A resource, complex or primitive type by name (`Patient`, `HumanName`, `date`).
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.type_index.get(name).map(|&i| &self.types[i])
    }

    /// The elements of a type (its snapshot, inherited ones included), in definition order.
    pub fn elements_of(&self, type_name: &str) -> &[ElementDef] {
        self.type_def(type_name).map_or(&[], |t| &self.elements[t.elements.clone()])
    }

    /// An element by its full definition path, e.g. `Observation.value[x]` or
    /// `Patient.contact.name`. Does not cross into data types; see [`Self::element`].
    #[cfg(test)]
    pub(crate) fn element_by_path(&self, path: &str) -> Option<&ElementDef> {
        self.element_index.get(path).map(|&i| &self.elements[i])
    }

    /// An element reached from `type_name` by a dotted path of JSON names, crossing into data
    /// types and contentReferences: `("Patient", "name.given")` is `HumanName.given`,
    /// `("Observation", "valueQuantity.unit")` is `Quantity.unit`,
    /// `("Questionnaire", "item.item.linkId")` is `Questionnaire.item.linkId`. A choice may be
    /// named by its definition name too (`value[x]`).
    pub fn element(&self, type_name: &str, path: &str) -> Option<ElementMatch<'_>> {
        let mut node = Some(self.type_def(type_name)?.node);
        let mut found = None;
        for segment in path.split('.') {
            let children = &self.nodes[node?].children;
            let (m, next) = match children.get(segment) {
                Some(child) => (self.element_match(child), child.node),
                None => {
                    let child = children.values().find(|c| self.elements[c.element].name == segment)?;
                    (ElementMatch { element: &self.elements[child.element], type_code: None }, None)
                }
            };
            found = Some(m);
            node = next;
        }
        found
    }

    fn element_match(&self, child: &Child) -> ElementMatch<'_> {
        let element = &self.elements[child.element];
        let type_code = if element.is_choice() {
            child.type_index.map(|i| self.types[i].name.as_str())
        } else {
            element.types.first().map(String::as_str)
        };
        ElementMatch { element, type_code }
    }

    /// The search parameters of a resource type, those defined on `Resource` and
    /// `DomainResource` included, and custom ones (still being indexed or not), sorted by code.
    /// Empty for unknown types.
    pub fn search_params(&self, resource_type: &str) -> impl Iterator<Item = &SearchParam> {
        let base = self
            .search_by_type
            .get(resource_type)
            .map_or(&[][..], |(list, _)| list.as_slice())
            .iter()
            .map(|&i| &self.search_params[i]);
        let custom = self.custom_params(resource_type);
        let mut all: Vec<&SearchParam> = base.collect();
        if !custom.is_empty() {
            all.extend(custom);
            all.sort_by(|a, b| a.code.cmp(&b.code));
        }
        all.into_iter()
    }

    /// The search parameter `code` of a resource type (`_id`, `_lastUpdated` included); a custom
    /// one only once it is ready for searches.
    pub fn search_param(&self, resource_type: &str, code: &str) -> Option<&SearchParam> {
        let (_, by_code) = self.search_by_type.get(resource_type)?;
        by_code.get(code).map(|&i| &self.search_params[i]).or_else(|| self.custom_param(resource_type, code))
    }

    /// The search parameter `code` of the first of `types` that has it, or the one every resource
    /// has (`_id`, `_tag`...): what a store looks up to translate a clause of a search on `types`.
    pub fn search_param_in(&self, types: &[String], code: &str) -> Option<&SearchParam> {
        types.iter().map(String::as_str).chain(["Resource", "Parameters"]).find_map(|t| self.search_param(t, code))
    }

    /// A search parameter by canonical URL (how composite components name their parts).
    pub(crate) fn search_param_by_url(&self, url: &str) -> Option<&SearchParam> {
        self.search_by_url.get(url).map(|&i| &self.search_params[i]).or_else(|| self.custom_param_by_url(url))
    }

    /// Whether `param` is one of the R4 definitions (not a custom one).
    pub fn is_r4_param(&self, param: &SearchParam) -> bool {
        self.search_params.as_ptr_range().contains(&std::ptr::from_ref(param))
    }

    /// A compartment by code (`Patient`, `Encounter`, `RelatedPerson`, `Practitioner`, `Device`).
    pub fn compartment(&self, code: &str) -> Option<&Compartment> {
        self.compartments.get(code)
    }

    /// Every compartment, sorted by code.
    pub fn compartments(&self) -> impl Iterator<Item = &Compartment> {
        self.compartments.values()
    }

    /// The lookup node of a type's root.
    pub(crate) fn root_node(&self, type_name: &str) -> Option<NodeId> {
        self.type_def(type_name).map(|t| t.node)
    }

    pub(crate) fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    pub(crate) fn element_at(&self, index: usize) -> &ElementDef {
        &self.elements[index]
    }

    pub(crate) fn type_at(&self, index: usize) -> &TypeDef {
        &self.types[index]
    }
}

/// Top-level elements of resources, for `_summary` and `_elements`.
impl Definitions {
    /// Whether the top-level element `element` (a JSON name such as `name` or `deceasedBoolean`)
    /// of `resource_type` is part of its summary.
    pub(crate) fn is_summary_element(&self, resource_type: &str, element: &str) -> bool {
        self.element(resource_type, element).is_some_and(|m| m.element.summary)
    }

    /// Whether the top-level element `element` of `resource_type` is required (min >= 1).
    pub(crate) fn is_mandatory_element(&self, resource_type: &str, element: &str) -> bool {
        self.element(resource_type, element).is_some_and(|m| m.element.min >= 1)
    }
}
