//! A profile's element list, generated from differentials: the profile's own differential laid
//! over its base profile's (and so on up to the core type, at most [`MAX_CHAIN`] profiles), by
//! element id. The core type's own elements are not copied in: what a profile does not constrain
//! is the base validator's business (`crate::validation`), so a "snapshot" here is the set of
//! constrained elements, which is all the profile checks need. A StructureDefinition with a
//! snapshot and no differential uses its snapshot.

use std::collections::HashMap;

use serde_json::Value;

/// How many profiles a derivation chain may hold before generation gives up.
pub(crate) const MAX_CHAIN: usize = 16;

/// R5's `ElementDefinition.mustHaveValue` as an R4 extension.
const MUST_HAVE_VALUE: &str = "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.mustHaveValue";

/// R5's `ElementDefinition.valueAlternatives` in R4: the extensions that may stand in for a
/// primitive's missing value.
const VALUE_ALTERNATIVES: &str =
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.valueAlternatives";

/// The canonical URL prefix of the core types' StructureDefinitions.
pub(crate) const CORE_PREFIX: &str = "http://hl7.org/fhir/StructureDefinition/";

/// A profile ready to validate with.
#[derive(Debug)]
pub struct Profile {
    pub url: String,
    /// The type constrained (`StructureDefinition.type`), e.g. `Patient` or `Extension`.
    pub type_name: String,
    /// A core type's own definition (a specialization): only its invariants are checked, the
    /// base validator checks the rest.
    pub(crate) core: bool,
    /// The constrained elements, the root first when the profile constrains it.
    pub(crate) elements: Vec<Elem>,
    /// Element id → index.
    index: HashMap<String, usize>,
    /// Element id → its direct children's indexes (slices are not children).
    children: HashMap<String, Vec<usize>>,
    /// Element id → its slices' indexes, in definition order.
    slices: HashMap<String, Vec<usize>>,
    /// `StructureDefinition.context` of an extension definition: (type, expression).
    pub(crate) contexts: Vec<(String, String)>,
    /// `StructureDefinition.contextInvariant`: FHIRPath that must be true of what holds the
    /// extension.
    pub(crate) context_invariants: Vec<String>,
}

/// One element definition, as far as validation uses it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Elem {
    pub(crate) id: String,
    /// The last path segment, e.g. `identifier` or `value[x]`.
    pub(crate) name: String,
    pub(crate) slice_name: Option<String>,
    pub(crate) min: Option<u32>,
    /// `None`: not constrained; `Some(None)`: `*`.
    pub(crate) max: Option<Option<u32>>,
    pub(crate) types: Vec<TypeRef>,
    pub(crate) fixed: Option<Value>,
    pub(crate) pattern: Option<Value>,
    /// `minValue[x]` and `maxValue[x]`.
    pub(crate) min_value: Option<Value>,
    pub(crate) max_value: Option<Value>,
    /// `maxLength`, and the `minLength` extension, of strings.
    pub(crate) max_length: Option<u64>,
    pub(crate) min_length: Option<u64>,
    /// `mustHaveValue` (R5, in R4 as its cross-version extension): a primitive here must have
    /// a value, not only extensions.
    pub(crate) must_have_value: bool,
    /// Extensions that may stand in for the value of a primitive that has none (R5
    /// `valueAlternatives`); empty: any.
    pub(crate) value_alternatives: Vec<String>,
    pub(crate) slicing: Option<Slicing>,
    pub(crate) constraints: Vec<Constraint>,
    /// `ElementDefinition.binding` (its required bindings are checked by the walk).
    pub(crate) binding: Option<Value>,
    /// What the element asks of the narrative it holds ([`super::narrative`]).
    pub(crate) narrative: Option<super::narrative::Controls>,
}

/// `ElementDefinition.type`.
#[derive(Debug, Clone)]
pub(crate) struct TypeRef {
    pub(crate) code: String,
    pub(crate) profiles: Vec<String>,
    /// For each of `profiles`, the element of that profile the value conforms to instead of
    /// the whole profile (the `elementdefinition-profile-element` extension: a section
    /// definition from a library profile).
    pub(crate) profile_elements: Vec<Option<String>>,
    pub(crate) target_profiles: Vec<String>,
}

/// `ElementDefinition.slicing`.
#[derive(Debug, Clone)]
pub(crate) struct Slicing {
    pub(crate) discriminators: Vec<(String, String)>,
    /// `closed`, `open` or `openAtEnd`.
    pub(crate) rules: String,
}

/// `ElementDefinition.constraint`.
#[derive(Debug, Clone)]
pub(crate) struct Constraint {
    pub(crate) key: String,
    pub(crate) error: bool,
    pub(crate) human: String,
    pub(crate) expression: String,
}

impl Profile {
    pub(crate) fn element(&self, id: &str) -> Option<&Elem> {
        self.index.get(id).map(|&i| &self.elements[i])
    }

    pub(crate) fn children(&self, id: &str) -> &[usize] {
        self.children.get(id).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn slices(&self, id: &str) -> &[usize] {
        self.slices.get(id).map_or(&[], Vec::as_slice)
    }
}

/// The base of `sd` (`baseDefinition`) when it is a profile rather than a core type.
pub(crate) fn base_profile(sd: &Value) -> Option<&str> {
    let base = sd.get("baseDefinition")?.as_str()?;
    let core = base.strip_prefix(CORE_PREFIX).is_some_and(|t| !t.contains('/'))
        && crate::definitions::Definitions::r4().type_def(&base[CORE_PREFIX.len()..]).is_some();
    (!core).then_some(base)
}

/// Generates the profile of `chain`: the StructureDefinitions from the most basic profile to the
/// one wanted (the last), each the base of the next.
pub(crate) fn generate(chain: &[&Value]) -> Result<Profile, String> {
    let wanted = chain.last().ok_or("empty derivation chain")?;
    let url = wanted.get("url").and_then(Value::as_str).unwrap_or_default().to_owned();
    let type_name = wanted.get("type").and_then(Value::as_str).ok_or("the StructureDefinition has no `type`")?;
    // Only a core type's own definition is one; a profile that calls itself a specialization
    // constrains its base like any other (the reference validator reads it so).
    let core = is_specialization(wanted) && super::walk::is_core(&url);
    let mut elements: Vec<Elem> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for sd in chain {
        for e in definition_elements(sd)? {
            match index.get(&e.id) {
                Some(&i) => overlay(&mut elements[i], e),
                None => {
                    index.insert(e.id.clone(), elements.len());
                    elements.push(e);
                }
            }
        }
    }
    let contexts = wanted
        .get("context")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| {
                    let t = c.get("type").and_then(Value::as_str).unwrap_or("element");
                    Some((t.to_owned(), c.get("expression")?.as_str()?.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    let contexts = super::context_errata::corrected(&url, contexts);
    add_missing_ancestors(&mut elements, &mut index);
    let mut children: HashMap<String, Vec<usize>> = HashMap::new();
    let mut slices: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, e) in elements.iter().enumerate() {
        let (parent, last) = e.id.rsplit_once('.').unwrap_or(("", &e.id));
        match last.rsplit_once(':') {
            Some((base, _)) => slices.entry(format!("{}{base}", dotted(parent))).or_default().push(i),
            None if !parent.is_empty() => children.entry(parent.to_owned()).or_default().push(i),
            None => {}
        }
    }
    let context_invariants = wanted
        .get("contextInvariant")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(Profile {
        url,
        type_name: type_name.to_owned(),
        core,
        elements,
        index,
        children,
        slices,
        contexts,
        context_invariants,
    })
}

/// Adds an unconstrained element for every ancestor (and every sliced element) that the
/// differentials name only through a descendant or a slice (`Extension.extension:species`
/// without `Extension.extension`), so that the walk reaches what is constrained below it.
fn add_missing_ancestors(elements: &mut Vec<Elem>, index: &mut HashMap<String, usize>) {
    let mut missing: Vec<String> = Vec::new();
    for e in elements.iter() {
        let mut id = e.id.as_str();
        loop {
            // The element an id's last segment belongs to: the sliced one, else the parent.
            let (parent, last) = id.rsplit_once('.').unwrap_or(("", id));
            let up = match last.rsplit_once(':') {
                Some((base, _)) if parent.is_empty() => base.to_owned(),
                Some((base, _)) => format!("{parent}.{base}"),
                None if parent.is_empty() => break,
                None => parent.to_owned(),
            };
            if !index.contains_key(&up) && !missing.contains(&up) {
                missing.push(up.clone());
            }
            // `up` is a prefix of the id (`A.b:s.c` → `A.b:s` → `A.b` → `A`).
            match e.id.get(..up.len()) {
                Some(prefix) if prefix == up => id = prefix,
                _ => break,
            }
        }
    }
    for id in missing {
        let last = id.rsplit_once('.').map_or(id.as_str(), |(_, l)| l);
        let (name, slice_name) = match last.split_once(':') {
            Some((n, s)) => (n.to_owned(), Some(s.to_owned())),
            None => (last.to_owned(), None),
        };
        index.insert(id.clone(), elements.len());
        elements.push(Elem { id, name, slice_name, ..Elem::default() });
    }
}

/// Whether `sd` defines a type of its own (the core types) rather than constraining one.
fn is_specialization(sd: &Value) -> bool {
    sd.get("derivation").and_then(Value::as_str) == Some("specialization")
}

fn dotted(parent: &str) -> String {
    if parent.is_empty() { String::new() } else { format!("{parent}.") }
}

/// The elements of one StructureDefinition's differential (or snapshot, without one), with ids
/// (computed from paths and slice names where the definition has none).
fn definition_elements(sd: &Value) -> Result<Vec<Elem>, String> {
    // A specialization's differential leaves out what it inherits (`dom-*` of DomainResource).
    let (first, second) =
        if is_specialization(sd) { ("snapshot", "differential") } else { ("differential", "snapshot") };
    let list = sd
        .get(first)
        .or_else(|| sd.get(second))
        .and_then(|d| d.get("element"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    // Path → the id it had at its latest occurrence, for the ids of children of slices.
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut out = Vec::with_capacity(list.len());
    let defs = crate::definitions::Definitions::r4();
    let type_name = sd.get("type").and_then(Value::as_str).filter(|t| defs.root_node(t).is_some());
    for element in list {
        let path = element.get("path").and_then(Value::as_str).ok_or("an element has no `path`")?;
        // An element the type does not have constrains nothing (the authoring checks report it
        // when the definition itself is validated).
        if type_name.is_some_and(|t| super::authoring::unknown_path(defs, t, path).is_some()) {
            continue;
        }
        let slice_name = element.get("sliceName").and_then(Value::as_str).map(str::to_owned);
        let (parent_path, name) = path.rsplit_once('.').unwrap_or(("", path));
        let id = match element.get("id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => {
                let parent = if parent_path.is_empty() {
                    String::new()
                } else {
                    format!("{}.", ids.get(parent_path).map_or(parent_path, String::as_str))
                };
                match &slice_name {
                    Some(s) => format!("{parent}{name}:{s}"),
                    None => format!("{parent}{name}"),
                }
            }
        };
        ids.retain(|p, _| !p.starts_with(&format!("{path}.")));
        ids.insert(path.to_owned(), id.clone());
        out.push(elem(element, id, name, slice_name));
    }
    Ok(out)
}

fn elem(e: &Value, id: String, name: &str, slice_name: Option<String>) -> Elem {
    let max = e.get("max").and_then(Value::as_str).map(|m| if m == "*" { None } else { m.parse().ok() });
    let types = e
        .get("type")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .filter_map(|t| {
                    Some(TypeRef {
                        code: t.get("code")?.as_str()?.to_owned(),
                        profiles: strings(t.get("profile")),
                        profile_elements: profile_elements(t),
                        target_profiles: strings(t.get("targetProfile")),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let slicing = e.get("slicing").map(|s| Slicing {
        discriminators: s
            .get("discriminator")
            .and_then(Value::as_array)
            .map(|ds| {
                ds.iter()
                    .filter_map(|d| Some((d.get("type")?.as_str()?.to_owned(), d.get("path")?.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
        rules: s.get("rules").and_then(Value::as_str).unwrap_or("open").to_owned(),
    });
    let constraints = e
        .get("constraint")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                // `ele-1` (every element has a value or children) is on every element: the base
                // validator checks it for all of them at once.
                .filter(|c| c.get("key").and_then(Value::as_str) != Some("ele-1"))
                .filter_map(|c| {
                    Some(Constraint {
                        key: c.get("key").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        error: c.get("severity").and_then(Value::as_str) != Some("warning"),
                        human: c.get("human").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        expression: c.get("expression")?.as_str()?.to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Elem {
        id,
        name: name.to_owned(),
        slice_name,
        min: e.get("min").and_then(Value::as_u64).and_then(|m| u32::try_from(m).ok()),
        max,
        types,
        fixed: prefixed(e, "fixed"),
        pattern: prefixed(e, "pattern"),
        min_value: prefixed(e, "minValue"),
        max_value: prefixed(e, "maxValue"),
        max_length: e.get("maxLength").and_then(Value::as_u64),
        min_length: e
            .get("extension")
            .and_then(Value::as_array)
            .and_then(|x| x.iter().find(|x| x["url"] == "http://hl7.org/fhir/StructureDefinition/minLength"))
            .and_then(|x| x.get("valueInteger"))
            .and_then(Value::as_u64),
        value_alternatives: strings(e.get("valueAlternatives"))
            .into_iter()
            .chain(
                e.get("extension")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|x| x["url"] == VALUE_ALTERNATIVES)
                    .filter_map(|x| x.get("valueCanonical").and_then(Value::as_str).map(str::to_owned)),
            )
            .collect(),
        must_have_value: e.get("mustHaveValue").and_then(Value::as_bool).unwrap_or(false)
            || e.get("extension").and_then(Value::as_array).is_some_and(|x| {
                x.iter().any(|x| x["url"] == MUST_HAVE_VALUE && x.get("valueBoolean") == Some(&Value::Bool(true)))
            }),
        slicing,
        constraints,
        binding: e.get("binding").cloned(),
        narrative: super::narrative::Controls::of(e),
    }
}

/// The value of `fixed[x]` or `pattern[x]`.
fn prefixed(e: &Value, prefix: &str) -> Option<Value> {
    e.as_object()?.iter().find_map(|(k, v)| {
        let rest = k.strip_prefix(prefix)?;
        rest.starts_with(|c: char| c.is_ascii_uppercase()).then(|| v.clone())
    })
}

/// The extension naming the element of a type profile the value conforms to.
const PROFILE_ELEMENT: &str = "http://hl7.org/fhir/StructureDefinition/elementdefinition-profile-element";

/// `type._profile[i]`'s profile-element extension for each `type.profile[i]`.
fn profile_elements(t: &Value) -> Vec<Option<String>> {
    let count = t.get("profile").and_then(Value::as_array).map_or(0, Vec::len);
    let extensions = t.get("_profile").and_then(Value::as_array);
    (0..count)
        .map(|i| {
            extensions?.get(i)?.get("extension")?.as_array()?.iter().find_map(|x| {
                (x.get("url").and_then(Value::as_str) == Some(PROFILE_ELEMENT))
                    .then(|| x.get("valueString").and_then(Value::as_str).map(str::to_owned))
                    .flatten()
            })
        })
        .collect()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A derived profile's element over its base's: what it states replaces, constraints add up.
fn overlay(base: &mut Elem, derived: Elem) {
    base.must_have_value |= derived.must_have_value;
    if !derived.value_alternatives.is_empty() {
        base.value_alternatives = derived.value_alternatives;
    }
    if derived.min.is_some() {
        base.min = derived.min;
    }
    if derived.max.is_some() {
        base.max = derived.max;
    }
    if !derived.types.is_empty() {
        base.types = derived.types;
    }
    if derived.fixed.is_some() {
        base.fixed = derived.fixed;
    }
    if derived.pattern.is_some() {
        base.pattern = derived.pattern;
    }
    for (b, d) in [(&mut base.min_value, derived.min_value), (&mut base.max_value, derived.max_value)] {
        if d.is_some() {
            *b = d;
        }
    }
    for (b, d) in [(&mut base.min_length, derived.min_length), (&mut base.max_length, derived.max_length)] {
        if d.is_some() {
            *b = d;
        }
    }
    if derived.slicing.is_some() {
        base.slicing = derived.slicing;
    }
    if derived.binding.is_some() {
        base.binding = derived.binding;
    }
    if derived.narrative.is_some() {
        base.narrative = derived.narrative;
    }
    for c in derived.constraints {
        if !base.constraints.iter().any(|b| b.key == c.key && b.expression == c.expression) {
            base.constraints.push(c);
        }
    }
}
