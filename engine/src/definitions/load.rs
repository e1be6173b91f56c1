//! Builds [`Definitions`] from the compact JSON written by `engine/definitions/generate.py`
//! (its docstring describes the format), and precomputes the lookup nodes.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use serde_json::{Map, Value};

use super::Definitions;
use super::compartment::Compartment;
use super::model::{Child, ElementDef, Kind, Node, NodeId, Required, TypeDef};
use super::search::{SearchParam, SearchParamComponent, SearchParamType};

/// The format version this code reads.
const FORMAT: u64 = 1;

/// Decompresses and loads a gzipped definitions file.
pub(crate) fn from_gzip(bytes: &[u8]) -> Result<Definitions, String> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut json)
        .map_err(|e| format!("cannot decompress definitions: {e}"))?;
    let root: Value = serde_json::from_slice(&json).map_err(|e| format!("definitions are not JSON: {e}"))?;
    from_json(&root)
}

/// Loads definitions from the parsed compact JSON.
pub(crate) fn from_json(root: &Value) -> Result<Definitions, String> {
    if root.get("format").and_then(Value::as_u64) != Some(FORMAT) {
        return Err(format!("definitions format is not {FORMAT}"));
    }
    let mut defs = Definitions::default();
    load_types(&mut defs, object(root, "types")?)?;
    build_nodes(&mut defs)?;
    load_search_params(&mut defs, array(root, "searchParams")?)?;
    load_compartments(&mut defs, object(root, "compartments")?)?;
    Ok(defs)
}

fn object<'a>(v: &'a Value, key: &str) -> Result<&'a Map<String, Value>, String> {
    v.get(key).and_then(Value::as_object).ok_or_else(|| format!("`{key}` is not an object"))
}

fn array<'a>(v: &'a Value, key: &str) -> Result<&'a [Value], String> {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).ok_or_else(|| format!("`{key}` is not an array"))
}

fn string(v: &Value, key: &str) -> Result<String, String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| format!("`{key}` is not a string"))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn load_types(defs: &mut Definitions, types: &Map<String, Value>) -> Result<(), String> {
    for (name, t) in types {
        let kind = match t.get("kind").and_then(Value::as_str) {
            Some("resource") => Kind::Resource,
            Some("complex-type") => Kind::ComplexType,
            Some("primitive-type") => Kind::PrimitiveType,
            other => return Err(format!("type `{name}` has kind {other:?}")),
        };
        let start = defs.elements.len();
        for row in array(t, "elements")? {
            let element = element(name, row).ok_or_else(|| format!("bad element in `{name}`: {row}"))?;
            defs.element_index.insert(element.path.clone(), defs.elements.len());
            defs.elements.push(element);
        }
        let type_def = TypeDef {
            name: name.clone(),
            kind,
            is_abstract: t.get("abstract").and_then(Value::as_bool).unwrap_or(false),
            base: t.get("base").and_then(Value::as_str).map(str::to_owned),
            regex: t.get("regex").and_then(Value::as_str).map(str::to_owned),
            elements: start..defs.elements.len(),
            node: 0,
        };
        if kind == Kind::Resource && !type_def.is_abstract {
            defs.resource_types.push(name.clone());
        }
        defs.type_index.insert(name.clone(), defs.types.len());
        defs.types.push(type_def);
    }
    defs.resource_types.sort();
    Ok(())
}

/// One `[path, min, max, [types], extra?]` row.
fn element(type_name: &str, row: &Value) -> Option<ElementDef> {
    let row = row.as_array()?;
    let rel = row.first()?.as_str()?;
    let min = u32::try_from(row.get(1)?.as_u64()?).ok()?;
    let max = match row.get(2)? {
        Value::String(s) if s == "*" => None,
        v => Some(u32::try_from(v.as_u64()?).ok()?),
    };
    let types = strings(row.get(3));
    let extra = row.get(4);
    let name = rel.rsplit('.').next().unwrap_or(rel).to_owned();
    Some(ElementDef {
        path: format!("{type_name}.{rel}"),
        name,
        min,
        max,
        types,
        content_reference: extra.and_then(|e| e.get("ref")).and_then(Value::as_str).map(str::to_owned),
        system: extra.and_then(|e| e.get("system")).and_then(Value::as_bool).unwrap_or(false),
        summary: extra.and_then(|e| e.get("summary")).and_then(Value::as_bool).unwrap_or(false),
        code_system: extra.and_then(|e| e.get("codeSystem")).and_then(Value::as_str).map(str::to_owned),
    })
}

/// Creates one node per type root and per backbone path, then fills each node's children.
fn build_nodes(defs: &mut Definitions) -> Result<(), String> {
    let mut node_index: HashMap<String, NodeId> = HashMap::new();
    for t in &mut defs.types {
        t.node = defs.nodes.len();
        node_index.insert(t.name.clone(), t.node);
        defs.nodes.push(Node::default());
    }
    for e in &defs.elements {
        let Some((parent, _)) = e.path.rsplit_once('.') else { continue };
        if !node_index.contains_key(parent) {
            node_index.insert(parent.to_owned(), defs.nodes.len());
            defs.nodes.push(Node::default());
        }
    }

    for (index, e) in defs.elements.iter().enumerate() {
        let parent = e.path.rsplit_once('.').map_or("", |(p, _)| p);
        let parent_node = *node_index.get(parent).ok_or_else(|| format!("no parent node for `{}`", e.path))?;
        let inline = match &e.content_reference {
            Some(r) => Some(
                *node_index
                    .get(r.trim_start_matches('#'))
                    .ok_or_else(|| format!("bad contentReference `{r}` of `{}`", e.path))?,
            ),
            None => node_index.get(e.path.as_str()).copied(),
        };
        let mut keys = Vec::new();
        let mut children = Vec::new();
        if let Some(base) = e.name.strip_suffix("[x]") {
            for code in &e.types {
                let ti = type_of(defs, code, &e.path)?;
                let key = format!("{base}{}{}", code[..1].to_uppercase(), &code[1..]);
                children.push((key, Child { element: index, type_index: Some(ti), node: Some(defs.types[ti].node) }));
            }
        } else {
            let type_index = match e.types.first() {
                Some(code) => Some(type_of(defs, code, &e.path)?),
                None => None,
            };
            let node = inline.or_else(|| type_index.map(|ti| defs.types[ti].node));
            children.push((e.name.clone(), Child { element: index, type_index, node }));
        }
        for (key, child) in children {
            if e.min >= 1 {
                if !e.system {
                    keys.push(format!("_{key}").into_boxed_str());
                }
                keys.push(key.clone().into_boxed_str());
            }
            defs.nodes[parent_node].children.insert(key.into_boxed_str(), child);
        }
        if e.min >= 1 {
            defs.nodes[parent_node].required.push(Required { element: index, keys });
        }
    }
    Ok(())
}

fn type_of(defs: &Definitions, code: &str, path: &str) -> Result<usize, String> {
    defs.type_index.get(code).copied().ok_or_else(|| format!("unknown type `{code}` of `{path}`"))
}

/// One `SearchParameter` (the compact form keeps the resource's own keys, so a SearchParameter
/// resource reads the same way).
pub(crate) fn search_param(p: &Value) -> Result<SearchParam, String> {
    let kind_code = string(p, "type")?;
    Ok(SearchParam {
        url: string(p, "url")?,
        code: string(p, "code")?,
        base: strings(p.get("base")),
        kind: SearchParamType::from_code(&kind_code)
            .ok_or_else(|| format!("unknown search parameter type `{kind_code}`"))?,
        expression: p.get("expression").and_then(Value::as_str).map(str::to_owned),
        target: strings(p.get("target")),
        multiple_or: p.get("multipleOr").and_then(Value::as_bool),
        multiple_and: p.get("multipleAnd").and_then(Value::as_bool),
        modifier: strings(p.get("modifier")),
        comparator: strings(p.get("comparator")),
        component: p
            .get("component")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|c| {
                Ok(SearchParamComponent { definition: string(c, "definition")?, expression: string(c, "expression")? })
            })
            .collect::<Result<_, String>>()?,
    })
}

fn load_search_params(defs: &mut Definitions, params: &[Value]) -> Result<(), String> {
    for p in params {
        let param = search_param(p)?;
        defs.search_by_url.insert(param.url.clone(), defs.search_params.len());
        defs.search_params.push(param);
    }
    // Index every parameter under each resource type it applies to, directly or through
    // `Resource`/`DomainResource`.
    for t in &defs.types {
        if t.kind != Kind::Resource {
            continue;
        }
        let ancestry = ancestry(defs, &t.name);
        let mut by_code = HashMap::new();
        for (i, p) in defs.search_params.iter().enumerate() {
            if p.base.iter().any(|b| ancestry.contains(&b.as_str())) {
                by_code.insert(p.code.clone(), i);
            }
        }
        let mut list: Vec<usize> = by_code.values().copied().collect();
        list.sort_by(|a, b| defs.search_params[*a].code.cmp(&defs.search_params[*b].code));
        defs.search_by_type.insert(t.name.clone(), (list, by_code));
    }
    Ok(())
}

/// `name` and the names of the types it derives from.
fn ancestry<'a>(defs: &'a Definitions, name: &'a str) -> Vec<&'a str> {
    let mut out = vec![name];
    let mut current = name;
    while let Some(base) = defs.type_def(current).and_then(|t| t.base.as_deref()) {
        if out.contains(&base) {
            break;
        }
        out.push(base);
        current = base;
    }
    out
}

fn load_compartments(defs: &mut Definitions, compartments: &Map<String, Value>) -> Result<(), String> {
    for (code, resources) in compartments {
        let resources = resources
            .as_object()
            .ok_or_else(|| format!("compartment `{code}` is not an object"))?
            .iter()
            .map(|(t, params)| (t.clone(), strings(Some(params))))
            .collect::<BTreeMap<_, _>>();
        defs.compartments.insert(code.clone(), Compartment { code: code.clone(), resources });
    }
    Ok(())
}
