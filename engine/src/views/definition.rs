//! Reads a ViewDefinition (SQL on FHIR v2, <https://sql-on-fhir.org/ig/StructureDefinition-ViewDefinition.html>)
//! into a checked [`View`]: every FHIRPath parsed once, every constant typed, every column named
//! once, the branches of each `unionAll` with the same columns in the same order. What cannot be
//! run is refused here, before any resource is read: a 400 naming the element at fault.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::fhirpath::{self, Expr};

/// Most nested `select`/`unionAll` levels a view may have (the runner recurses once per level).
pub(crate) const MAX_NESTING: usize = 32;
/// Most columns a view may produce.
const MAX_COLUMNS: usize = 1_000;

/// A checked ViewDefinition.
#[derive(Debug)]
pub struct View {
    /// The view's `name`, when it has one (file names of a bulk export).
    pub name: Option<String>,
    /// The resource type the view reads (`Patient`).
    pub resource: String,
    pub(crate) constants: Vec<Constant>,
    pub(crate) select: Select,
    pub(crate) wheres: Vec<(String, Expr)>,
    columns: Vec<ColumnInfo>,
}

/// A constant (`%name` in the view's expressions) and its value as a typed FHIR node.
#[derive(Debug)]
pub(crate) struct Constant {
    pub(crate) name: String,
    pub(crate) value: Value,
    /// The FHIR type of the value (`date`, `string`, `integer`...).
    pub(crate) fhir_type: String,
}

/// How a select picks the nodes its columns are evaluated on.
#[derive(Debug)]
pub(crate) enum Iterate {
    /// The node it is given.
    Here,
    /// One row set per item (`forEach`); `or_null`: one row of nulls when there is none.
    Each { expr: Expr, or_null: bool },
    /// Every node reached by the paths, recursively, depth first (`repeat`).
    Repeat(Vec<Expr>),
}

/// One `select` (the view's root is one too).
#[derive(Debug)]
pub(crate) struct Select {
    pub(crate) iterate: Iterate,
    pub(crate) columns: Vec<Column>,
    pub(crate) selects: Vec<Select>,
    pub(crate) union_all: Vec<Select>,
}

/// One column.
#[derive(Debug)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) path: Expr,
    pub(crate) collection: bool,
    pub(crate) fhir_type: Option<String>,
}

/// A column of the view's rows, in order: its name, declared FHIR type and whether it holds a
/// collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    /// The declared `type` (`string`, `integer`, `dateTime`...); `None` when not given.
    pub fhir_type: Option<String>,
    pub collection: bool,
}

impl View {
    /// Checks `definition` and compiles its expressions.
    pub fn parse(definition: &Value) -> Result<Self> {
        let object = definition.as_object().ok_or_else(|| invalid("", "a ViewDefinition is a JSON object"))?;
        if let Some(t) = object.get("resourceType").and_then(Value::as_str).filter(|t| *t != "ViewDefinition") {
            return Err(invalid("resourceType", &format!("`{t}` is not `ViewDefinition`")));
        }
        let resource = string(object, "resource", "")?.ok_or_else(|| invalid("resource", "is required"))?;
        let defs = Definitions::r4();
        if !defs.is_resource_type(&resource) {
            return Err(invalid("resource", &format!("`{resource}` is not an R4 resource type")));
        }
        let constants = constants(object)?;
        let wheres = list(object, "where", "")?
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let at = format!("where[{i}]");
                let w = w.as_object().ok_or_else(|| invalid(&at, "is not an object"))?;
                let path = string(w, "path", &at)?.ok_or_else(|| invalid(&format!("{at}.path"), "is required"))?;
                let expr = expression(&path, &format!("{at}.path"))?;
                Ok((path, expr))
            })
            .collect::<Result<Vec<_>>>()?;
        let selects = list(object, "select", "")?;
        if selects.is_empty() {
            return Err(invalid("select", "a view needs at least one `select`"));
        }
        let root = Select {
            iterate: Iterate::Here,
            columns: Vec::new(),
            selects: selects
                .iter()
                .enumerate()
                .map(|(i, s)| select(s, &format!("select[{i}]"), 1))
                .collect::<Result<_>>()?,
            union_all: Vec::new(),
        };
        let mut columns = Vec::new();
        root.column_infos(&mut columns);
        let mut seen = HashSet::new();
        for c in &columns {
            if !seen.insert(c.name.as_str()) {
                return Err(invalid("select", &format!("the column name `{}` is used twice", c.name)));
            }
        }
        if columns.len() > MAX_COLUMNS {
            return Err(invalid("select", &format!("a view may have at most {MAX_COLUMNS} columns")));
        }
        let name = object.get("name").and_then(Value::as_str).map(str::to_owned);
        Ok(Self { name, resource, constants, select: root, wheres, columns })
    }

    /// The columns of every row, in order.
    pub fn columns(&self) -> &[ColumnInfo] {
        &self.columns
    }
}

impl Select {
    /// Appends this select's columns (its own, its selects', its first `unionAll` branch's).
    fn column_infos(&self, out: &mut Vec<ColumnInfo>) {
        for c in &self.columns {
            out.push(ColumnInfo { name: c.name.clone(), fhir_type: c.fhir_type.clone(), collection: c.collection });
        }
        for s in &self.selects {
            s.column_infos(out);
        }
        if let Some(first) = self.union_all.first() {
            first.column_infos(out);
        }
    }

    /// The names of this select's columns, in order.
    pub(crate) fn column_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        self.names_into(&mut names);
        names
    }

    fn names_into(&self, out: &mut Vec<String>) {
        out.extend(self.columns.iter().map(|c| c.name.clone()));
        for s in &self.selects {
            s.names_into(out);
        }
        if let Some(first) = self.union_all.first() {
            first.names_into(out);
        }
    }
}

fn select(value: &Value, at: &str, depth: usize) -> Result<Select> {
    if depth > MAX_NESTING {
        return Err(invalid(at, &format!("selects nest at most {MAX_NESTING} levels deep")));
    }
    let object = value.as_object().ok_or_else(|| invalid(at, "is not an object"))?;
    let for_each = string(object, "forEach", at)?;
    let for_each_or_null = string(object, "forEachOrNull", at)?;
    let repeat = match object.get("repeat") {
        None => None,
        Some(Value::Array(paths)) if !paths.is_empty() => Some(
            paths
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let here = format!("{at}.repeat[{i}]");
                    expression(p.as_str().ok_or_else(|| invalid(&here, "is not a string"))?, &here)
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        Some(_) => return Err(invalid(&format!("{at}.repeat"), "is a non-empty list of FHIRPath strings")),
    };
    let iterate = match (for_each, for_each_or_null, repeat) {
        (None, None, None) => Iterate::Here,
        (Some(p), None, None) => Iterate::Each { expr: expression(&p, &format!("{at}.forEach"))?, or_null: false },
        (None, Some(p), None) => Iterate::Each { expr: expression(&p, &format!("{at}.forEachOrNull"))?, or_null: true },
        (None, None, Some(paths)) => Iterate::Repeat(paths),
        _ => return Err(invalid(at, "takes at most one of `forEach`, `forEachOrNull` and `repeat`")),
    };
    let columns = list(object, "column", at)?
        .iter()
        .enumerate()
        .map(|(i, c)| column(c, &format!("{at}.column[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    let selects = list(object, "select", at)?
        .iter()
        .enumerate()
        .map(|(i, s)| select(s, &format!("{at}.select[{i}]"), depth + 1))
        .collect::<Result<Vec<_>>>()?;
    let union_all = list(object, "unionAll", at)?
        .iter()
        .enumerate()
        .map(|(i, s)| select(s, &format!("{at}.unionAll[{i}]"), depth + 1))
        .collect::<Result<Vec<_>>>()?;
    if let Some((first, rest)) = union_all.split_first() {
        let names = first.column_names();
        for (i, branch) in rest.iter().enumerate() {
            if branch.column_names() != names {
                return Err(invalid(
                    &format!("{at}.unionAll[{}]", i + 1),
                    &format!(
                        "the branches of a `unionAll` must have the same columns in the same order: ({}) vs ({})",
                        names.join(", "),
                        branch.column_names().join(", ")
                    ),
                ));
            }
        }
    }
    if columns.is_empty() && selects.is_empty() && union_all.is_empty() {
        return Err(invalid(at, "a select needs a `column`, a `select` or a `unionAll`"));
    }
    Ok(Select { iterate, columns, selects, union_all })
}

fn column(value: &Value, at: &str) -> Result<Column> {
    let object = value.as_object().ok_or_else(|| invalid(at, "is not an object"))?;
    let name = string(object, "name", at)?.ok_or_else(|| invalid(&format!("{at}.name"), "is required"))?;
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 255;
    if !valid {
        return Err(invalid(
            &format!("{at}.name"),
            &format!("`{name}` is not a column name (a letter, then letters, digits and `_`)"),
        ));
    }
    let path = string(object, "path", at)?.ok_or_else(|| invalid(&format!("{at}.path"), "is required"))?;
    let path = expression(&path, &format!("{at}.path"))?;
    let collection = match object.get("collection") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid(&format!("{at}.collection"), "is a boolean")),
    };
    let fhir_type = string(object, "type", at)?;
    if let Some(t) = fhir_type.as_deref().filter(|t| Definitions::r4().type_def(t).is_none()) {
        return Err(invalid(&format!("{at}.type"), &format!("`{t}` is not a FHIR type")));
    }
    Ok(Column { name, path, collection, fhir_type })
}

fn constants(object: &Map<String, Value>) -> Result<Vec<Constant>> {
    let mut out: Vec<Constant> = Vec::new();
    for (i, c) in list(object, "constant", "")?.iter().enumerate() {
        let at = format!("constant[{i}]");
        let c = c.as_object().ok_or_else(|| invalid(&at, "is not an object"))?;
        let name = string(c, "name", &at)?.ok_or_else(|| invalid(&format!("{at}.name"), "is required"))?;
        let values: Vec<(&String, &Value)> = c.iter().filter(|(k, _)| k.starts_with("value")).collect();
        let [(key, value)] = values.as_slice() else {
            return Err(invalid(&at, &format!("the constant `{name}` needs exactly one `value[x]`")));
        };
        let suffix = &key["value".len()..];
        let mut chars = suffix.chars();
        let fhir_type = match chars.next() {
            Some(first) => first.to_lowercase().chain(chars).collect::<String>(),
            None => String::new(),
        };
        let primitive =
            Definitions::r4().type_def(&fhir_type).is_some_and(|t| t.kind == crate::definitions::Kind::PrimitiveType);
        if !primitive || value.is_object() || value.is_array() || value.is_null() {
            return Err(invalid(&format!("{at}.{key}"), "is not a primitive FHIR value"));
        }
        if out.iter().any(|known| known.name == name) {
            return Err(invalid(&format!("{at}.name"), &format!("the constant `{name}` is defined twice")));
        }
        out.push(Constant { name, value: (*value).clone(), fhir_type });
    }
    Ok(out)
}

/// `key` of `object` as a list (absent: empty).
fn list<'v>(object: &'v Map<String, Value>, key: &str, at: &str) -> Result<&'v [Value]> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(invalid(&join(at, key), "is a list")),
    }
}

/// `key` of `object` as a string (absent: `None`).
fn string(object: &Map<String, Value>, key: &str, at: &str) -> Result<Option<String>> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(&join(at, key), "is a string")),
    }
}

fn expression(text: &str, at: &str) -> Result<Expr> {
    fhirpath::parse(text).map_err(|e| invalid(at, &format!("`{text}` is not valid FHIRPath: {}", e.message)))
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() { key.to_owned() } else { format!("{at}.{key}") }
}

/// A 400 about the element at `at` of the ViewDefinition.
pub(crate) fn invalid(at: &str, message: &str) -> Error {
    let at = if at.is_empty() { String::new() } else { format!(" `{at}`") };
    Error::bad_request(format!("invalid ViewDefinition:{at} {message}"))
}
