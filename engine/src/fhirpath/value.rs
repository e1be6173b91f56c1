//! The items FHIRPath collections hold: FHIR JSON nodes typed by the R4 definitions where
//! known (with their `_name` extension siblings), and the System literals.

use std::borrow::Cow;

use serde_json::Value;

use super::decimal::Decimal;
use super::temporal::{Temporal, TemporalKind};
use crate::definitions::{Definitions, Kind};

/// A literal written in an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `{}`.
    Empty,
    Boolean(bool),
    String(String),
    Integer(i64),
    Decimal(Decimal),
    Temporal(Temporal),
    /// A value with a UCUM unit or a calendar duration keyword (`4 days`).
    Quantity(Decimal, String),
}

/// One item of a FHIRPath collection.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'a> {
    Boolean(bool),
    String(String),
    Integer(i64),
    Decimal(Decimal),
    /// A System.Date, System.DateTime or System.Time.
    Temporal(Temporal),
    /// A System.Quantity: value and unit (UCUM code or calendar keyword).
    Quantity(Decimal, String),
    /// A node of the FHIR resource.
    Node(Node<'a>),
    /// The result of `type()`: a `SimpleTypeInfo`/`ClassInfo` with `namespace` and `name`.
    TypeInfo {
        namespace: &'static str,
        name: String,
    },
}

/// A node of FHIR JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Node<'a> {
    /// The JSON value; `None` for a primitive that only has extensions, or for the typed
    /// placeholder `resolve()` returns.
    pub(crate) value: Option<&'a Value>,
    /// The `_name` sibling of a primitive (`{"extension": [...]}`).
    pub(crate) ext: Option<&'a Value>,
    /// The FHIR type (`Patient`, `HumanName`, `date`, `BackboneElement`), when known.
    pub(crate) fhir_type: Option<&'static str>,
    /// The type the element definitions of children are looked up from, and the JSON path from
    /// it (non-empty inside backbone elements).
    pub(crate) root: Option<&'static str>,
    pub(crate) path: String,
    /// For a `code` bound (required) to a value set of one code system: that system.
    pub(crate) code_system: Option<&'static str>,
}

impl<'a> Node<'a> {
    /// A resource or other typed JSON object as the root of navigation.
    pub fn resource(value: &'a Value) -> Self {
        let fhir_type = value
            .get("resourceType")
            .and_then(Value::as_str)
            .and_then(|t| Definitions::r4().type_def(t))
            .map(|t| t.name.as_str());
        Node { value: Some(value), ext: None, fhir_type, root: fhir_type, path: String::new(), code_system: None }
    }

    /// The JSON value; `None` for a primitive that only has extensions, or for the typed
    /// placeholder `resolve()` returns for references outside the resource.
    pub fn value(&self) -> Option<&'a Value> {
        self.value
    }

    /// The `_name` sibling of a primitive (`{"extension": [...]}`), if any.
    pub(crate) fn primitive_extension(&self) -> Option<&'a Value> {
        self.ext
    }

    /// A value with a known FHIR data type (`HumanName`, `string`).
    pub fn typed(value: &'a Value, type_name: &str) -> Self {
        let fhir_type = Definitions::r4().type_def(type_name).map(|t| t.name.as_str());
        Node { value: Some(value), ext: None, fhir_type, root: fhir_type, path: String::new(), code_system: None }
    }
}

impl<'a> Item<'a> {
    pub(crate) fn from_literal(literal: &Literal) -> Option<Self> {
        Some(match literal {
            Literal::Empty => return None,
            Literal::Boolean(b) => Item::Boolean(*b),
            Literal::String(s) => Item::String(s.clone()),
            Literal::Integer(i) => Item::Integer(*i),
            Literal::Decimal(d) => Item::Decimal(*d),
            Literal::Temporal(t) => Item::Temporal(t.clone()),
            Literal::Quantity(v, u) => Item::Quantity(*v, u.clone()),
        })
    }

    /// The JSON node, for FHIR nodes.
    pub(crate) fn node(&self) -> Option<&Node<'a>> {
        match self {
            Item::Node(n) => Some(n),
            _ => None,
        }
    }

    /// The item as JSON: the node itself, or the System value written as FHIR JSON would
    /// (`Quantity` as `{"value", "unit"}`).
    pub fn to_json(&self) -> Option<Cow<'a, Value>> {
        Some(match self {
            Item::Node(n) => Cow::Borrowed(n.value?),
            Item::Boolean(b) => Cow::Owned(Value::Bool(*b)),
            Item::String(s) => Cow::Owned(Value::String(s.clone())),
            Item::Integer(i) => Cow::Owned(Value::from(*i)),
            Item::Decimal(d) => Cow::Owned(number(&d.to_string())),
            Item::Temporal(t) => Cow::Owned(Value::String(t.to_string())),
            Item::Quantity(v, u) => {
                let mut map = serde_json::Map::new();
                map.insert("value".into(), number(&v.to_string()));
                map.insert("unit".into(), Value::String(u.clone()));
                Cow::Owned(Value::Object(map))
            }
            Item::TypeInfo { namespace, name } => {
                let mut map = serde_json::Map::new();
                map.insert("namespace".into(), Value::String((*namespace).to_owned()));
                map.insert("name".into(), Value::String(name.clone()));
                Cow::Owned(Value::Object(map))
            }
        })
    }

    /// The FHIR type name of a node (`Quantity`, `date`), or the System type name of a System
    /// value (`String`, `Decimal`); `None` for untyped JSON.
    pub fn type_name(&self) -> Option<&str> {
        Some(match self {
            Item::Node(n) => return n.fhir_type,
            Item::Boolean(_) => "Boolean",
            Item::String(_) => "String",
            Item::Integer(_) => "Integer",
            Item::Decimal(_) => "Decimal",
            Item::Temporal(t) => match t.kind {
                TemporalKind::Date => "Date",
                TemporalKind::DateTime => "DateTime",
                TemporalKind::Time => "Time",
            },
            Item::Quantity(..) => "Quantity",
            Item::TypeInfo { .. } => "TypeInfo",
        })
    }

    /// The namespace of [`Self::type_name`]: `FHIR` for nodes, `System` otherwise.
    pub fn namespace(&self) -> &'static str {
        match self {
            Item::Node(_) => "FHIR",
            _ => "System",
        }
    }

    /// For primitives, the System value (a FHIR `date` node becomes a `Temporal`, a `code` a
    /// `String`); other items unchanged. `None` for a primitive without a value.
    pub fn system(&self) -> Option<Cow<'_, Item<'a>>> {
        let Item::Node(node) = self else { return Some(Cow::Borrowed(self)) };
        let value = node.value?;
        let converted = match value {
            Value::Bool(b) => Item::Boolean(*b),
            Value::Number(n) => {
                let text = n.to_string();
                let integral = matches!(node.fhir_type, Some("integer" | "positiveInt" | "unsignedInt"))
                    || node.fhir_type.is_none() && !text.contains(['.', 'e', 'E']);
                match (integral, text.parse::<i64>()) {
                    (true, Ok(i)) => Item::Integer(i),
                    _ => Item::Decimal(Decimal::parse(&text)?),
                }
            }
            Value::String(s) => match node.fhir_type {
                Some("date") => temporal(s, TemporalKind::Date),
                Some("dateTime" | "instant") => temporal(s, TemporalKind::DateTime),
                Some("time") => temporal(s, TemporalKind::Time),
                _ => Item::String(s.clone()),
            },
            _ => return Some(Cow::Borrowed(self)),
        };
        Some(Cow::Owned(converted))
    }

    /// Whether the item is a FHIR primitive node or a System value (not a complex node).
    pub(crate) fn is_primitive(&self) -> bool {
        match self {
            Item::Node(n) => match n.value {
                Some(v) => !v.is_object() && !v.is_array(),
                None => n.fhir_type.is_some_and(is_primitive_type),
            },
            _ => true,
        }
    }
}

fn temporal<'a>(text: &str, kind: TemporalKind) -> Item<'a> {
    match Temporal::parse(text, kind) {
        Some(t) => Item::Temporal(t),
        None => Item::String(text.to_owned()),
    }
}

/// Whether `name` is an R4 primitive type (`string`, `dateTime`).
pub(crate) fn is_primitive_type(name: &str) -> bool {
    Definitions::r4().type_def(name).is_some_and(|t| t.kind == Kind::PrimitiveType)
}

fn number(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}
