//! `fhirgate-conformance generate`: a TestScript per R4 resource type (all 146), from the R4
//! definitions compiled into the engine and the official examples of the R4 package as
//! fixtures (see `script.rs` for what each script does, `values.rs` for the search values).
//!
//! Per type, the examples the engine's validator accepts (smallest first, at most
//! [`CANDIDATES`] of them, none over [`MAX_EXAMPLE_BYTES`] or [`MAX_INDEX_ENTRIES`]) are indexed with the spec's own
//! SearchParameter expressions; the one with values for most parameters is the fixture CRUD runs
//! on, and up to [`MAX_FIXTURES`] more are added for parameters it has no value for. A type
//! with no usable example gets a minimal resource with a `meta.tag`. Each fixture is stored
//! under `gen-<example id>`, without `meta.versionId`/`lastUpdated`.
//!
//! The output is deterministic and in both formats: `generated/json/<Type>.json` with its
//! fixtures as `generated/fixtures/<Type>-<id>.json`, and the same scripts asking for FHIR XML
//! (requests, fixtures and answers) as `generated/xml/<Type>.xml` with the same fixtures as
//! `generated/fixtures/<Type>-<id>.xml` (indented, as the engine writes `_pretty=true`); and
//! `generated/COVERAGE.md`, which lists per type the parameters searched and those no example
//! gives a usable value for. `--check` compares instead of writing, so CI can fail when the
//! checked-in corpus is not current.

mod script;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use fhirgate_engine::Severity;
use fhirgate_engine::definitions::{Definitions, SearchParamType};
use fhirgate_engine::search::index::extract;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::script::Format;
use script::{Fixture, Search};
use values::Probe;

/// Examples larger than this are not used as fixtures: big documents make searches slow on the
/// Cosmos DB emulator (a 230 KiB ConceptMap took seconds per search); only ConceptMap's
/// `product` has values in larger examples only.
const MAX_EXAMPLE_BYTES: u64 = 64 * 1024;
/// Examples with more search index entries than this are not used: every store writes each
/// entry, and on the Cosmos DB emulator every search scans them all.
const MAX_INDEX_ENTRIES: usize = 600;
/// How many of a type's (smallest) examples are considered.
const CANDIDATES: usize = 2000;
/// How many fixtures a type's script stores at most.
const MAX_FIXTURES: usize = 8;

/// The formats of the corpus, with their directory and file extension.
const FORMATS: [(Format, &str); 2] = [(Format::Json, "json"), (Format::Xml, "xml")];

/// The files of the corpus, by path relative to the output directory.
pub fn files(package: &Path) -> Result<BTreeMap<PathBuf, String>> {
    let defs = Definitions::r4();
    let examples = examples_by_type(package)?;
    let mut out = BTreeMap::new();
    let mut coverage = String::from(
        "# Generated corpus: coverage\n\nWritten by `fhirgate-conformance generate`; do not edit. Per resource type: \
         the examples used as fixtures, the search parameters searched, and those that are not, with why.\n\n\
         | type | fixtures | searched | not searched |\n|---|---|---|---|\n",
    );
    for resource_type in defs.resource_types() {
        let candidates = examples.get(resource_type).map(Vec::as_slice).unwrap_or_default();
        let plan = plan(defs, resource_type, candidates);
        for (format, extension) in FORMATS {
            let fixtures: Vec<Fixture> = plan
                .fixtures
                .iter()
                .enumerate()
                .map(|(i, chosen)| Fixture {
                    key: format!("f{i}"),
                    id: chosen.id.clone(),
                    file: format!("../fixtures/{resource_type}-{}.{extension}", chosen.id),
                    example: chosen.example.clone(),
                })
                .collect();
            for chosen in &plan.fixtures {
                let file = PathBuf::from(format!("fixtures/{resource_type}-{}.{extension}", chosen.id));
                out.insert(file, text_of(&chosen.resource, format)?);
            }
            let script = script::script(resource_type, &fixtures, &plan.searches, format);
            let text = match format {
                Format::Json => compact_actions(&script)?,
                Format::Xml => text_of(&script, format)?,
            };
            out.insert(PathBuf::from(format!("{extension}/{resource_type}.{extension}")), text);
        }
        let searched: Vec<String> = plan.searches.iter().map(|s| format!("`{}`", s.code)).collect();
        let not: Vec<String> = plan.not_searched.iter().map(|(code, why)| format!("`{code}` ({why})")).collect();
        let _ = writeln!(
            coverage,
            "| {resource_type} | {} | {} | {} |",
            plan.fixtures.iter().map(|f| format!("`{}`", f.example)).collect::<Vec<_>>().join(", "),
            searched.join(", "),
            not.join(", ")
        );
    }
    out.insert(PathBuf::from("COVERAGE.md"), coverage);
    Ok(out)
}

/// Writes the corpus into `dir`, removing files of the same kind that are no longer generated.
pub fn write(dir: &Path, files: &BTreeMap<PathBuf, String>) -> Result<usize> {
    for stale in differences(dir, files)?.into_iter().filter(|(_, kind)| *kind == Difference::Extra) {
        let path = dir.join(stale.0);
        std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
    }
    for (relative, text) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    }
    Ok(files.len())
}

/// How a file on disk differs from the generated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    Missing,
    Changed,
    /// On disk, in a generated directory, but no longer generated.
    Extra,
}

/// The files of `dir` that differ from `files` (the directories `files` writes into only).
pub fn differences(dir: &Path, files: &BTreeMap<PathBuf, String>) -> Result<Vec<(PathBuf, Difference)>> {
    let mut found = Vec::new();
    for (relative, text) in files {
        match std::fs::read_to_string(dir.join(relative)) {
            Ok(on_disk) if on_disk == *text => {}
            Ok(_) => found.push((relative.clone(), Difference::Changed)),
            Err(_) => found.push((relative.clone(), Difference::Missing)),
        }
    }
    let dirs: BTreeSet<PathBuf> = files.keys().filter_map(|p| p.parent().map(Path::to_path_buf)).collect();
    for sub in dirs.iter().filter(|d| !d.as_os_str().is_empty()) {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else { continue };
        let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| sub.join(e.file_name()))).collect();
        names.sort();
        found.extend(names.into_iter().filter(|n| !files.contains_key(n)).map(|n| (n, Difference::Extra)));
    }
    Ok(found)
}

/// A resource as indented JSON or XML.
fn text_of(resource: &Value, format: Format) -> Result<String> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(resource)?,
        Format::Xml => crate::format::json_to_xml(resource, true)?,
    } + "\n")
}

/// A script as indented JSON with each action on one line: a third of the size, and a diff of a
/// regenerated corpus shows one line per changed action.
fn compact_actions(script: &Value) -> Result<String> {
    fn write(out: &mut String, value: &Value, indent: usize) -> Result<()> {
        // Actions, and objects of scalars only (`{"code": "read"}`), take one line.
        let is_action = value.get("operation").is_some()
            || value.get("assert").is_some()
            || value.as_object().is_some_and(|m| m.values().all(|v| !v.is_object() && !v.is_array()));
        let pad = "  ".repeat(indent + 1);
        match value {
            Value::Object(map) if !is_action && !map.is_empty() => {
                out.push_str("{\n");
                for (i, (key, item)) in map.iter().enumerate() {
                    out.push_str(&pad);
                    out.push_str(&serde_json::to_string(key)?);
                    out.push_str(": ");
                    write(out, item, indent + 1)?;
                    out.push_str(if i + 1 < map.len() { ",\n" } else { "\n" });
                }
                out.push_str(&"  ".repeat(indent));
                out.push('}');
            }
            Value::Array(items) if items.iter().any(|i| i.is_object()) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    out.push_str(&pad);
                    write(out, item, indent + 1)?;
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                out.push_str(&"  ".repeat(indent));
                out.push(']');
            }
            other => out.push_str(&serde_json::to_string(other)?),
        }
        Ok(())
    }
    let mut out = String::new();
    write(&mut out, script, 0)?;
    out.push('\n');
    Ok(out)
}

/// An official example usable as a fixture.
#[derive(Debug, Clone)]
struct Example {
    file: String,
    resource: Value,
}

/// The package's `Type-id.json` examples per type, smallest first, valid ones a server stores only.
fn examples_by_type(package: &Path) -> Result<BTreeMap<String, Vec<Example>>> {
    let defs = Definitions::r4();
    let mut sized: Vec<(u64, String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(package).map_err(|e| Error::io(package, e))? {
        let path = entry.map_err(|e| Error::io(package, e))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
        let Some((resource_type, _)) = name.split_once('-') else { continue };
        if !name.ends_with(".json") || defs.type_def(resource_type).is_none() {
            continue;
        }
        let size = path.metadata().map_err(|e| Error::io(&path, e))?.len();
        if size <= MAX_EXAMPLE_BYTES {
            sized.push((size, name, path));
        }
    }
    sized.sort();
    let mut by_type: BTreeMap<String, Vec<Example>> = BTreeMap::new();
    for (_, name, path) in sized {
        let resource_type = name.split('-').next().unwrap_or_default().to_owned();
        let list = by_type.entry(resource_type.clone()).or_default();
        if list.len() >= CANDIDATES {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let Ok(resource) = serde_json::from_str::<Value>(&text) else { continue };
        let valid = resource.get("resourceType").and_then(Value::as_str) == Some(resource_type.as_str())
            && extract(defs, &resource).len() <= MAX_INDEX_ENTRIES
            && fhirgate_engine::validate(defs, &resource)
                .iter()
                .all(|i| !matches!(i.severity, Severity::Error | Severity::Fatal))
            // A SearchParameter a server would refuse to put in force is no fixture.
            && fhirgate_engine::search::custom::refusal(&resource).is_none();
        if valid {
            list.push(Example { file: name, resource });
        }
    }
    Ok(by_type)
}

/// A fixture chosen for a type.
#[derive(Debug, Clone)]
struct Chosen {
    id: String,
    example: String,
    resource: Value,
}

/// What a type's script stores and searches.
#[derive(Debug, Default)]
struct Plan {
    fixtures: Vec<Chosen>,
    searches: Vec<Search>,
    /// Parameters not searched, with why.
    not_searched: Vec<(String, String)>,
}

/// Chooses the fixtures of a type and a search per parameter that one of them has a value for.
fn plan(defs: &Definitions, resource_type: &str, examples: &[Example]) -> Plan {
    let prepared: Vec<(Chosen, BTreeMap<String, Probe>)> = if examples.is_empty() {
        let chosen = minimal(resource_type);
        let probes = probes(defs, &chosen);
        vec![(chosen, probes)]
    } else {
        examples
            .iter()
            .map(|e| {
                let chosen = fixture_of(e);
                let probes = probes(defs, &chosen);
                (chosen, probes)
            })
            .collect()
    };
    // Greedy cover: the example with most parameters first, then those adding most.
    let mut plan = Plan::default();
    let mut covered: BTreeSet<String> = BTreeSet::new();
    let mut used = vec![false; prepared.len()];
    while plan.fixtures.len() < MAX_FIXTURES {
        let best = prepared
            .iter()
            .enumerate()
            .filter(|(i, _)| !used[*i])
            .map(|(i, (_, probes))| (probes.keys().filter(|k| !covered.contains(*k)).count(), i))
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let Some((gain, index)) = best else { break };
        if gain == 0 && !plan.fixtures.is_empty() {
            break;
        }
        used[index] = true;
        let (chosen, probes) = &prepared[index];
        let fixture = plan.fixtures.len();
        for (code, probe) in probes {
            if covered.insert(code.clone()) {
                plan.searches.push(Search { code: code.clone(), fixture, probe: probe.clone() });
            }
        }
        plan.fixtures.push(chosen.clone());
    }
    plan.searches.sort_by(|a, b| a.code.cmp(&b.code));
    // What is left, and why.
    let with_value: BTreeSet<String> = prepared.iter().flat_map(|(c, _)| indexed_codes(defs, &c.resource)).collect();
    let searchable: BTreeSet<&String> = prepared.iter().flat_map(|(_, probes)| probes.keys()).collect();
    for param in defs.search_params(resource_type) {
        if covered.contains(&param.code) {
            continue;
        }
        let why = if param.kind == SearchParamType::Special || param.expression.is_none() {
            "no expression: not a search by value".to_owned()
        } else if param.code == "_lastUpdated" {
            "set by the server".to_owned()
        } else if searchable.contains(&param.code) {
            format!("in an example beyond the {MAX_FIXTURES} fixtures")
        } else if with_value.contains(&param.code) {
            "no value a query can carry plainly".to_owned()
        } else {
            "no value in the examples considered".to_owned()
        };
        plan.not_searched.push((param.code.clone(), why));
    }
    plan
}

/// The example as a fixture: stored as `gen-<id>`, without server-managed metadata.
fn fixture_of(example: &Example) -> Chosen {
    let original = example.resource.get("id").and_then(Value::as_str).unwrap_or("example");
    let mut id = format!("gen-{original}");
    id.truncate(64);
    let mut resource = example.resource.clone();
    resource["id"] = json!(id);
    if let Some(Value::Object(meta)) = resource.get_mut("meta") {
        meta.remove("versionId");
        meta.remove("lastUpdated");
        if meta.is_empty() {
            if let Value::Object(object) = &mut resource {
                object.remove("meta");
            }
        }
    }
    Chosen { id, example: example.file.clone(), resource }
}

/// A resource of a type without a usable example: its id and a tag.
fn minimal(resource_type: &str) -> Chosen {
    let id = "gen-minimal".to_owned();
    let resource = json!({"resourceType": resource_type, "id": id,
        "meta": {"tag": [{"system": "https://fhirgate.dev/generated", "code": "generated"}]}});
    Chosen { id, example: "(none: a minimal resource)".to_owned(), resource }
}

/// The codes of the parameters the resource has index values for.
fn indexed_codes(defs: &Definitions, resource: &Value) -> BTreeSet<String> {
    extract(defs, resource).into_iter().map(|e| e.param).collect()
}

/// The first probe per parameter of a fixture; `_id` always, `_lastUpdated` left to the server.
fn probes(defs: &Definitions, chosen: &Chosen) -> BTreeMap<String, Probe> {
    let mut probes = BTreeMap::new();
    probes.insert(
        "_id".to_owned(),
        Probe { modifier: "", matching: vec![chosen.id.clone()], missing: "zzqx-no-such-id".into() },
    );
    for entry in extract(defs, &chosen.resource) {
        // The first value of each parameter; a `:text` one only until a plain one is found.
        let plain_found = probes.get(&entry.param).is_some_and(|p: &Probe| p.modifier.is_empty());
        if entry.param == "_lastUpdated" || plain_found {
            continue;
        }
        let targets =
            defs.search_param(resource_type_of(&chosen.resource), &entry.param).map_or(&[][..], |p| &p.target[..]);
        if let Some(probe) = values::probe(&entry.value, targets) {
            if probe.modifier.is_empty() || !probes.contains_key(&entry.param) {
                probes.insert(entry.param, probe);
            }
        }
    }
    probes
}

fn resource_type_of(resource: &Value) -> &str {
    resource.get("resourceType").and_then(Value::as_str).unwrap_or_default()
}
