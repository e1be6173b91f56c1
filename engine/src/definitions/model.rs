//! The shapes of the definitions: types, their elements, and the per-object lookup nodes the
//! validator walks (one node per type and per backbone element, keyed by JSON property name).

use std::collections::HashMap;

/// `StructureDefinition.kind` of a base definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A resource type, e.g. `Patient` or the abstract `DomainResource`.
    Resource,
    /// A complex data type, e.g. `HumanName`, or the abstract `Element`/`BackboneElement`.
    ComplexType,
    /// A primitive data type, e.g. `date`.
    PrimitiveType,
}

/// A base StructureDefinition (no profiles).
#[derive(Debug)]
pub struct TypeDef {
    /// The type name, e.g. `Patient`, `HumanName`, `dateTime`.
    pub name: String,
    pub kind: Kind,
    /// Abstract types (`Resource`, `DomainResource`, `Element`, `BackboneElement`) have no
    /// instances of their own.
    pub is_abstract: bool,
    /// The type this one specialises, e.g. `DomainResource` for `Patient`.
    pub base: Option<String>,
    /// For primitive types, the regex of the R4 spec for the value (as documentation: the
    /// validator checks formats with hand-written code).
    pub regex: Option<String>,
    /// Indexes of this type's elements (snapshot order, root left out) in the element table.
    pub(crate) elements: std::ops::Range<usize>,
    /// The lookup node of this type's root.
    pub(crate) node: NodeId,
}

/// One element of a type's snapshot.
#[derive(Debug)]
pub struct ElementDef {
    /// The full path, e.g. `Patient.contact.name` or `Observation.value[x]`.
    pub path: String,
    /// The last path segment as defined, e.g. `name` or `value[x]`.
    pub name: String,
    pub min: u32,
    /// Maximum cardinality; `None` is `*`.
    pub max: Option<u32>,
    /// Type codes; several only for choice (`[x]`) elements. Empty when
    /// [`content_reference`](Self::content_reference) is set.
    pub types: Vec<String>,
    /// For elements defined elsewhere in the same type, e.g. `#Questionnaire.item`.
    pub content_reference: Option<String>,
    /// A FHIRPath system value (`Element.id`, `Extension.url`): a plain JSON value that cannot
    /// have a `_name` extension sibling.
    pub system: bool,
    /// Part of the resource's summary (`_summary=true`).
    pub summary: bool,
    /// For a `code` with a required binding to a value set of one code system: that system.
    pub code_system: Option<String>,
}

impl ElementDef {
    /// Whether this is a choice element (`value[x]`).
    pub(crate) fn is_choice(&self) -> bool {
        self.name.ends_with("[x]")
    }

    /// Whether the element repeats (is a JSON array): max is `*` or above 1.
    pub fn is_repeating(&self) -> bool {
        self.max.is_none_or(|m| m > 1)
    }
}

/// Index of a node in [`super::Definitions`].
pub(crate) type NodeId = usize;

/// What a JSON object (a type's root or a backbone element) may contain.
#[derive(Debug, Default)]
pub(crate) struct Node {
    /// JSON property name (`name`, `valueQuantity`) → the element it stands for.
    pub(crate) children: HashMap<Box<str>, Child>,
    /// The required (`min >= 1`) elements of this node.
    pub(crate) required: Vec<Required>,
}

/// A JSON property of a node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Child {
    /// Index in the element table.
    pub(crate) element: usize,
    /// Index in the type table of the type this property holds (for choices, the chosen type).
    /// `None` for contentReference elements.
    pub(crate) type_index: Option<usize>,
    /// The node a JSON object value is checked against: the backbone node, the referenced node,
    /// or the root node of the (complex or primitive) type.
    pub(crate) node: Option<NodeId>,
}

/// A required element of a node and the JSON properties any of which satisfies it.
#[derive(Debug)]
pub(crate) struct Required {
    pub(crate) element: usize,
    /// e.g. `["status", "_status"]` or `["valueString", "_valueString", "valueQuantity", ...]`.
    pub(crate) keys: Vec<Box<str>>,
}
