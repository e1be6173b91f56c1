//! A CodeSystem (<https://hl7.org/fhir/R4/codesystem.html>) as the terminology engine reads it:
//! its concepts flattened in definition order, each with its parents and children, from nested
//! `concept` lists and from the `parent` / `subsumedBy` properties.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// Most concepts one code system may define (the largest R4 one has about 2,000).
pub(crate) const MAX_CONCEPTS: usize = 200_000;

/// Nesting depth of `concept` lists read before the rest is refused.
const MAX_NESTING: usize = 64;

/// `CodeSystem.content`: whether the resource lists every code of the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Complete,
    /// `fragment`, `example`, `not-present` or `supplement`: the codes listed are not all.
    Partial,
}

/// One concept of a code system.
#[derive(Debug, Clone)]
pub struct Concept {
    pub code: String,
    pub display: Option<String>,
    /// `concept.designation`, as written.
    pub designations: Vec<Value>,
    /// `concept.property`, as written.
    pub properties: Vec<Value>,
    /// Indexes (in [`CodeSystem::concepts`]) of the concepts this one is directly below.
    pub parents: Vec<usize>,
    pub children: Vec<usize>,
    /// `notSelectable` (or `abstract`) is true: a grouper, not a code to record.
    pub is_abstract: bool,
}

/// A loaded code system.
#[derive(Debug, Clone)]
pub struct CodeSystem {
    pub url: String,
    pub version: Option<String>,
    pub name: Option<String>,
    pub content: Content,
    pub case_sensitive: bool,
    pub concepts: Vec<Concept>,
    /// Code (lowercased when the system is case-insensitive) → index in `concepts`.
    index: HashMap<String, usize>,
}

impl CodeSystem {
    /// Reads a CodeSystem resource; `Err` says why it cannot be used.
    pub fn parse(resource: &Value) -> Result<Self, String> {
        let url = resource.get("url").and_then(Value::as_str).ok_or("a CodeSystem without `url`")?.to_owned();
        let text = |key: &str| resource.get(key).and_then(Value::as_str).map(str::to_owned);
        let content = match resource.get("content").and_then(Value::as_str) {
            Some("complete") => Content::Complete,
            _ => Content::Partial,
        };
        let mut system = Self {
            url,
            version: text("version"),
            name: text("name").or_else(|| text("title")),
            content,
            case_sensitive: resource.get("caseSensitive").and_then(Value::as_bool).unwrap_or(true),
            concepts: Vec::new(),
            index: HashMap::new(),
        };
        let mut links: Vec<(usize, String)> = Vec::new();
        if let Some(list) = resource.get("concept").and_then(Value::as_array) {
            system.read_concepts(list, None, 0, &mut links)?;
        }
        // `parent` / `subsumedBy` properties: links by code, resolved once every code is known.
        for (child, parent_code) in links {
            if let Some(parent) = system.find(&parent_code) {
                if parent != child && !system.concepts[child].parents.contains(&parent) {
                    system.concepts[child].parents.push(parent);
                    system.concepts[parent].children.push(child);
                }
            }
        }
        Ok(system)
    }

    fn read_concepts(
        &mut self,
        list: &[Value],
        parent: Option<usize>,
        depth: usize,
        links: &mut Vec<(usize, String)>,
    ) -> Result<(), String> {
        if depth > MAX_NESTING {
            return Err(format!("concepts of `{}` nest deeper than {MAX_NESTING} levels", self.url));
        }
        for item in list {
            let Some(code) = item.get("code").and_then(Value::as_str) else { continue };
            if self.concepts.len() >= MAX_CONCEPTS {
                return Err(format!("`{}` defines more than {MAX_CONCEPTS} concepts", self.url));
            }
            let properties: Vec<Value> = item.get("property").and_then(Value::as_array).cloned().unwrap_or_default();
            let is_abstract = properties.iter().any(|p| {
                matches!(p.get("code").and_then(Value::as_str), Some("notSelectable" | "abstract"))
                    && p.get("valueBoolean").and_then(Value::as_bool) == Some(true)
            });
            let at = self.concepts.len();
            for p in &properties {
                if matches!(p.get("code").and_then(Value::as_str), Some("parent" | "subsumedBy")) {
                    if let Some(code) = p.get("valueCode").and_then(Value::as_str) {
                        links.push((at, code.to_owned()));
                    }
                }
            }
            self.concepts.push(Concept {
                code: code.to_owned(),
                display: item.get("display").and_then(Value::as_str).map(str::to_owned),
                designations: item.get("designation").and_then(Value::as_array).cloned().unwrap_or_default(),
                properties,
                parents: parent.into_iter().collect(),
                children: Vec::new(),
                is_abstract,
            });
            if let Some(parent) = parent {
                self.concepts[parent].children.push(at);
            }
            let key = self.key(code);
            self.index.entry(key).or_insert(at);
            if let Some(nested) = item.get("concept").and_then(Value::as_array) {
                self.read_concepts(nested, Some(at), depth + 1, links)?;
            }
        }
        Ok(())
    }

    fn key(&self, code: &str) -> String {
        if self.case_sensitive { code.to_owned() } else { code.to_lowercase() }
    }

    /// The index of `code` (compared as the system's case sensitivity says).
    pub fn find(&self, code: &str) -> Option<usize> {
        if self.case_sensitive { self.index.get(code).copied() } else { self.index.get(&code.to_lowercase()).copied() }
    }

    /// The concept `code`.
    pub fn concept(&self, code: &str) -> Option<&Concept> {
        self.find(code).map(|i| &self.concepts[i])
    }

    /// Whether the system has a hierarchy (some concept has a parent).
    pub fn is_hierarchical(&self) -> bool {
        self.concepts.iter().any(|c| !c.parents.is_empty())
    }

    /// `start` and every concept below it (each once, whatever the shape of the graph).
    pub fn descendants_and_self(&self, start: usize) -> Vec<usize> {
        self.walk(start, |c| &c.children)
    }

    /// `start` and every concept above it.
    pub fn ancestors_and_self(&self, start: usize) -> Vec<usize> {
        self.walk(start, |c| &c.parents)
    }

    fn walk(&self, start: usize, next: impl Fn(&Concept) -> &Vec<usize>) -> Vec<usize> {
        let mut seen = HashSet::from([start]);
        let mut out = vec![start];
        let mut i = 0;
        while let Some(&at) = out.get(i) {
            for &n in next(&self.concepts[at]) {
                if seen.insert(n) {
                    out.push(n);
                }
            }
            i += 1;
        }
        out
    }

    /// Whether `a` is `b` or below it (`b` subsumes `a`).
    pub fn subsumed_by(&self, a: usize, b: usize) -> bool {
        a == b || self.ancestors_and_self(a).contains(&b)
    }

    /// The value of property `code` of a concept, as text (`valueCode`, `valueString`,
    /// `valueBoolean`...).
    pub fn property_values<'a>(concept: &'a Concept, code: &'a str) -> impl Iterator<Item = String> + 'a {
        concept.properties.iter().filter(move |p| p.get("code").and_then(Value::as_str) == Some(code)).filter_map(|p| {
            p.as_object()?.iter().find(|(k, _)| k.starts_with("value")).map(|(_, v)| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        })
    }
}
