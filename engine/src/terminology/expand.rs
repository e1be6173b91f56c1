//! Expansion of a value set's `compose` over the loaded code systems and value sets
//! (<https://hl7.org/fhir/R4/valueset.html#expansion>): each `include` selects the codes of its
//! system (all of them, those listed, or those its filters select) intersected with the value
//! sets it imports; the includes are joined and the excludes removed.
//!
//! Bounded: at most [`Limits::max_size`] codes (more is `too-costly`), imports at most
//! [`Limits::max_depth`] deep, and a value set that imports itself (directly or not) is refused.
//! What is not loaded is reported as [`Failure::Needs`], so a caller that can fetch it (from
//! the store, with the client's decisions) fetches it and tries again.

use serde_json::Value;
use std::collections::{HashMap, HashSet};

use super::code_system::{CodeSystem, Content};
use super::value_set::ValueSet;
use super::{Sources, filter};

/// How large and how deep an expansion may get.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most codes in one expansion (imports and excluded codes included).
    pub max_size: usize,
    /// Most levels of value set imports.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_size: 10_000, max_depth: 16 }
    }
}

/// One code of an expansion (`ValueSet.expansion.contains`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub system: String,
    pub version: Option<String>,
    pub code: String,
    pub display: Option<String>,
    pub is_abstract: bool,
}

/// The codes of a value set, in order, with a set for membership tests.
#[derive(Debug, Clone, Default)]
pub struct Expansion {
    pub entries: Vec<Entry>,
    /// System → its codes in the value set (looked up without allocating).
    members: HashMap<String, HashSet<String>>,
    codes: HashSet<String>,
}

impl Expansion {
    fn push(&mut self, entry: Entry, limits: &Limits) -> Result<(), Failure> {
        if self.members.entry(entry.system.clone()).or_default().insert(entry.code.clone()) {
            if self.entries.len() >= limits.max_size {
                return Err(Failure::TooCostly(format!(
                    "the expansion has more than {} codes, the most this server expands",
                    limits.max_size
                )));
            }
            self.codes.insert(entry.code.clone());
            self.entries.push(entry);
        }
        Ok(())
    }

    /// Whether `system|code` is in the value set.
    pub fn contains(&self, system: &str, code: &str) -> bool {
        self.members.get(system).is_some_and(|codes| codes.contains(code))
    }

    /// Whether `code` is in the value set, in any of its systems.
    pub fn contains_code(&self, code: &str) -> bool {
        self.codes.contains(code)
    }

    /// The codes `value_set` lists in its own `expansion.contains` (nested ones included), for
    /// a value set given with its expansion only (a contained one a profile binds, `#id`):
    /// `None` when it has none, or lists more than `limits` allow.
    pub(crate) fn stored(value_set: &Value, limits: &Limits) -> Option<Expansion> {
        fn add(contains: &Value, depth: usize, limits: &Limits, out: &mut Expansion) -> Result<(), Failure> {
            if depth >= limits.max_depth {
                return Err(Failure::TooCostly("the expansion nests too deep".to_owned()));
            }
            for item in contains.as_array().into_iter().flatten() {
                let text = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_owned);
                if let (Some(system), Some(code)) = (text("system"), text("code")) {
                    let is_abstract = item.get("abstract") == Some(&Value::Bool(true));
                    out.push(
                        Entry { system, version: text("version"), code, display: text("display"), is_abstract },
                        limits,
                    )?;
                }
                if let Some(nested) = item.get("contains") {
                    add(nested, depth + 1, limits, out)?;
                }
            }
            Ok(())
        }
        let contains = value_set.get("expansion")?.get("contains")?;
        let mut out = Expansion::default();
        add(contains, 0, limits, &mut out).ok()?;
        Some(out)
    }

    /// The entry of `code` in `system` (any system when `None`).
    pub fn find(&self, system: Option<&str>, code: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.code == code && system.is_none_or(|s| s == e.system))
    }

    fn retain(&mut self, keep: impl Fn(&Entry) -> bool) {
        self.entries.retain(|e| keep(e));
        self.members = HashMap::new();
        for e in &self.entries {
            self.members.entry(e.system.clone()).or_default().insert(e.code.clone());
        }
        self.codes = self.entries.iter().map(|e| e.code.clone()).collect();
    }
}

/// Why an expansion did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A code system (`CodeSystem`) or value set (`ValueSet`) it needs is not loaded here:
    /// `(resource type, canonical url)`.
    Needs(&'static str, String),
    /// More codes than allowed.
    TooCostly(String),
    /// A value set that imports itself.
    Cycle(String),
    /// Loaded, but not enough to answer (a partial code system, an unsupported filter...).
    NotSupported(String),
}

impl Failure {
    /// The failure as a message for a client.
    pub fn message(&self) -> String {
        match self {
            Self::Needs(kind, url) => {
                let what = if *kind == "CodeSystem" { "code system" } else { "value set" };
                format!("the {what} `{url}` is not loaded on this server")
            }
            Self::TooCostly(m) | Self::Cycle(m) | Self::NotSupported(m) => m.clone(),
        }
    }
}

/// Expands `value_set` from `sources`.
pub(crate) fn expand(sources: &Sources<'_>, value_set: &ValueSet, limits: &Limits) -> Result<Expansion, Failure> {
    let mut stack = Vec::new();
    Expander { sources, limits }.value_set(value_set, &mut stack)
}

struct Expander<'s, 'r> {
    sources: &'s Sources<'r>,
    limits: &'s Limits,
}

impl Expander<'_, '_> {
    /// `stack`: the urls of the value sets being expanded around this one.
    fn value_set(&self, value_set: &ValueSet, stack: &mut Vec<String>) -> Result<Expansion, Failure> {
        if stack.contains(&value_set.url) {
            return Err(Failure::Cycle(format!(
                "the value set `{}` includes itself (through {})",
                value_set.url,
                stack.join(" → ")
            )));
        }
        if stack.len() >= self.limits.max_depth {
            return Err(Failure::TooCostly(format!(
                "value set imports nest deeper than {} levels at `{}`",
                self.limits.max_depth, value_set.url
            )));
        }
        stack.push(value_set.url.clone());
        let result = self.compose(value_set, stack);
        stack.pop();
        result
    }

    fn compose(&self, value_set: &ValueSet, stack: &mut Vec<String>) -> Result<Expansion, Failure> {
        let includes = value_set.compose("include");
        if includes.is_empty() {
            return Err(Failure::NotSupported(format!(
                "the value set `{}` has no `compose.include` to expand (a stored expansion is not used)",
                value_set.url
            )));
        }
        let mut out = Expansion::default();
        for include in includes {
            for entry in self.part(include, stack)?.entries {
                out.push(entry, self.limits)?;
            }
        }
        for exclude in value_set.compose("exclude") {
            let removed = self.part(exclude, stack)?;
            out.retain(|e| !removed.contains(&e.system, &e.code));
        }
        Ok(out)
    }

    /// The codes one `include` (or `exclude`) selects.
    fn part(&self, part: &Value, stack: &mut Vec<String>) -> Result<Expansion, Failure> {
        let system = part.get("system").and_then(Value::as_str);
        let imports: Vec<&str> =
            part.get("valueSet").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let mut imported = Vec::new();
        for url in &imports {
            let (url, version) = split_canonical(url);
            let value_set =
                self.sources.value_set(url, version).ok_or_else(|| Failure::Needs("ValueSet", url.to_owned()))?;
            imported.push(self.value_set(&value_set, stack)?);
        }
        let mut selected = match system {
            Some(system) => self.system_part(part, system)?,
            None => match imported.pop() {
                Some(first) => first,
                None => return Ok(Expansion::default()),
            },
        };
        for other in &imported {
            selected.retain(|e| other.contains(&e.system, &e.code));
        }
        Ok(selected)
    }

    /// The codes of `system` an include selects: those listed, those its filters select, or all.
    fn system_part(&self, part: &Value, system_url: &str) -> Result<Expansion, Failure> {
        let version = part.get("version").and_then(Value::as_str);
        let system = self.sources.code_system(system_url, version);
        let listed = part.get("concept").and_then(Value::as_array).filter(|l| !l.is_empty());
        let filters = part.get("filter").and_then(Value::as_array).filter(|l| !l.is_empty());
        let mut out = Expansion::default();
        if let Some(listed) = listed {
            for item in listed {
                let Some(code) = item.get("code").and_then(Value::as_str) else { continue };
                let written = item.get("display").and_then(Value::as_str).map(str::to_owned);
                let entry = match &system {
                    // A code of a loaded system that it does not define is left out.
                    Some(cs) => match cs.concept(code) {
                        Some(c) => entry(cs, c, written),
                        None if cs.content == Content::Complete => continue,
                        None => Entry {
                            system: cs.url.clone(),
                            version: cs.version.clone(),
                            code: code.to_owned(),
                            display: written,
                            is_abstract: false,
                        },
                    },
                    // Codes of a system not loaded here are taken as the value set lists them.
                    None => Entry {
                        system: system_url.to_owned(),
                        version: version.map(str::to_owned),
                        code: code.to_owned(),
                        display: written,
                        is_abstract: false,
                    },
                };
                out.push(entry, self.limits)?;
            }
            return Ok(out);
        }
        let system = system.ok_or_else(|| Failure::Needs("CodeSystem", system_url.to_owned()))?;
        if system.content != Content::Complete {
            return Err(Failure::NotSupported(format!(
                "the code system `{system_url}` is loaded only in part (its `content` is not `complete`): its codes \
                 cannot all be listed"
            )));
        }
        let mut chosen: Option<Vec<usize>> = None;
        for f in filters.into_iter().flatten() {
            let text = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or_default();
            let selected =
                filter::select(&system, text("property"), text("op"), text("value")).map_err(Failure::NotSupported)?;
            chosen = Some(match chosen {
                None => selected,
                Some(before) => {
                    let keep: HashSet<usize> = selected.into_iter().collect();
                    before.into_iter().filter(|i| keep.contains(i)).collect()
                }
            });
        }
        let indexes: Vec<usize> = chosen.unwrap_or_else(|| (0..system.concepts.len()).collect());
        for i in indexes {
            out.push(entry(&system, &system.concepts[i], None), self.limits)?;
        }
        Ok(out)
    }
}

fn entry(system: &CodeSystem, concept: &super::code_system::Concept, display: Option<String>) -> Entry {
    Entry {
        system: system.url.clone(),
        version: system.version.clone(),
        code: concept.code.clone(),
        display: display.or_else(|| concept.display.clone()),
        is_abstract: concept.is_abstract,
    }
}

/// `url|version` → `(url, Some(version))`.
pub(crate) fn split_canonical(canonical: &str) -> (&str, Option<&str>) {
    match canonical.split_once('|') {
        Some((url, version)) => (url, Some(version)),
        None => (canonical, None),
    }
}
