//! Which slice a value belongs to: each discriminator of the slicing (`value`, `pattern`,
//! `type`, `profile`, `exists`) at its path (`$this`, element names, `extension('url')`,
//! `ofType(T)`; `resolve()` cannot be followed without a store and makes the discriminator
//! match) against what the slice's elements state there.

use serde_json::Value;

use super::snapshot::{Elem, Profile};
use super::values;
use super::walk::{Found, Walker, type_of_suffix};

/// A step of a discriminator path.
#[derive(Debug, PartialEq)]
enum Step {
    Name(String),
    Extension(String),
    OfType(String),
    Resolve,
}

fn steps(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in path.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            '.' if depth == 0 => {
                parts.push(&path[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&path[start..]);
    for part in parts {
        let part = part.trim();
        if part == "$this" || part.is_empty() {
            continue;
        }
        if part == "resolve()" {
            out.push(Step::Resolve);
        } else if let Some(arg) = part.strip_prefix("extension(").and_then(|a| a.strip_suffix(')')) {
            out.push(Step::Extension(arg.trim_matches(['\'', '"']).to_owned()));
        } else if let Some(arg) = part.strip_prefix("ofType(").and_then(|a| a.strip_suffix(')')) {
            out.push(Step::OfType(arg.to_owned()));
        } else {
            out.push(Step::Name(part.to_owned()));
        }
    }
    out
}

/// The values at `steps` from `value`; `None` when the path cannot be followed (`resolve()`).
fn navigate<'r>(value: &'r Value, steps: &[Step]) -> Option<Vec<(&'r Value, Option<String>)>> {
    let mut current: Vec<(&'r Value, Option<String>)> = vec![(value, None)];
    let mut i = 0;
    while i < steps.len() {
        let mut next = Vec::new();
        match &steps[i] {
            Step::Resolve => return None,
            Step::Extension(url) => {
                for (v, _) in &current {
                    for e in v.get("extension").and_then(Value::as_array).into_iter().flatten() {
                        if e.get("url").and_then(Value::as_str) == Some(url) {
                            next.push((e, Some("Extension".to_owned())));
                        }
                    }
                }
            }
            Step::OfType(t) => {
                next = current.into_iter().filter(|(_, ty)| ty.as_deref() == Some(t.as_str())).collect();
            }
            Step::Name(name) => {
                let wanted_type = match steps.get(i + 1) {
                    Some(Step::OfType(t)) => Some(t.as_str()),
                    _ => None,
                };
                for (v, _) in &current {
                    let Some(object) = v.as_object() else { continue };
                    let mut push = |found: &'r Value, ty: Option<String>| match found {
                        Value::Array(items) => next.extend(items.iter().map(|x| (x, ty.clone()))),
                        other => next.push((other, ty)),
                    };
                    if let Some(found) = object.get(name.as_str()) {
                        push(found, None);
                        continue;
                    }
                    for (key, found) in object {
                        let Some(suffix) = key.strip_prefix(name.as_str()) else { continue };
                        if !suffix.starts_with(|c: char| c.is_ascii_uppercase()) {
                            continue;
                        }
                        let ty = type_of_suffix(suffix);
                        if wanted_type.is_none_or(|w| ty.as_deref() == Some(w)) {
                            push(found, ty);
                        }
                    }
                }
                if wanted_type.is_some() {
                    i += 1;
                }
            }
        }
        current = next;
        i += 1;
    }
    Some(current)
}

/// What the slice states at a discriminator path: the deepest element defined on the way, and
/// a fixed or pattern value there (taken from an ancestor's pattern when the element itself has
/// none, e.g. `code.coding.system` under a `patternCodeableConcept` on `code`).
struct Expected<'p> {
    elem: Option<&'p Elem>,
    value: Option<(Value, bool)>,
}

fn expected<'p>(profile: &'p Profile, slice: &'p Elem, steps: &[Step]) -> Expected<'p> {
    let mut elem = slice;
    let mut id = slice.id.clone();
    let mut best: Option<(&Value, bool, usize)> = fixed_or_pattern(slice).map(|(v, p)| (v, p, 0));
    let mut reached = true;
    for (depth, step) in steps.iter().enumerate() {
        let next = match step {
            Step::Name(name) => profile.children(&id).iter().map(|&c| &profile.elements[c]).find(|e| {
                e.name == *name
                    || e.name
                        .strip_prefix(name.as_str())
                        .is_some_and(|rest| rest == "[x]" || rest.starts_with(|c: char| c.is_ascii_uppercase()))
            }),
            Step::Extension(url) => {
                profile.slices(&format!("{id}.extension")).iter().map(|&s| &profile.elements[s]).find(|s| {
                    s.types.iter().any(|t| t.profiles.iter().any(|p| p == url))
                        || s.fixed.as_ref().is_some_and(|f| f.as_str() == Some(url))
                })
            }
            Step::OfType(_) => Some(elem),
            Step::Resolve => None,
        };
        let Some(next) = next else {
            reached = false;
            break;
        };
        elem = next;
        id = next.id.clone();
        if let Some((v, p)) = fixed_or_pattern(next) {
            best = Some((v, p, depth + 1));
        }
    }
    let value = best.and_then(|(v, is_pattern, at)| {
        let rest: Vec<&Step> = steps[at..].iter().collect();
        if rest.is_empty() {
            return Some((v.clone(), is_pattern));
        }
        let mut current = vec![v];
        for step in rest {
            let Step::Name(name) = step else { return None };
            current = current
                .into_iter()
                .filter_map(|c| c.get(name.as_str()))
                .flat_map(|x| match x {
                    Value::Array(a) => a.iter().collect::<Vec<_>>(),
                    other => vec![other],
                })
                .collect();
        }
        (current.len() == 1).then(|| (current[0].clone(), true))
    });
    Expected { elem: reached.then_some(elem), value }
}

fn fixed_or_pattern(elem: &Elem) -> Option<(&Value, bool)> {
    elem.fixed.as_ref().map(|f| (f, false)).or_else(|| elem.pattern.as_ref().map(|p| (p, true)))
}

impl<'r> Walker<'_, 'r> {
    /// Whether `item` belongs to slice `index` by every discriminator.
    pub(super) fn in_slice(
        &mut self,
        profile: &Profile,
        index: usize,
        discriminators: &[(String, String)],
        item: &Found<'r>,
    ) -> bool {
        let slice = &profile.elements[index];
        if discriminators.is_empty() {
            return false;
        }
        let Some(value) = item.value.or(item.ext) else { return false };
        // A slice that constrains nothing below itself but names an element of a library
        // profile as its type (profile-element): what that element constrains tells the slice.
        let library = profile
            .children(&slice.id)
            .is_empty()
            .then(|| {
                slice.types.iter().find_map(|t| {
                    t.profiles.iter().zip(&t.profile_elements).find_map(|(u, e)| Some((u.as_str(), e.as_deref()?)))
                })
            })
            .flatten()
            .and_then(|(url, element)| Some((self.conformance.profile(url).ok()?, element)));
        discriminators.iter().all(|(kind, path)| {
            let steps = steps(path);
            if let (Some((Step::Resolve, before)), "type") = (steps.split_last(), kind.as_str()) {
                return self.resolved_type_in_slice(profile, slice, before, value);
            }
            let Some(found) = navigate(value, &steps) else { return true };
            let expected = match library.as_ref().and_then(|(p, e)| Some((p, p.element(e)?))) {
                Some((library, element)) => expected(library, element, &steps),
                None => expected(profile, slice, &steps),
            };
            match kind.as_str() {
                "value" | "pattern" => {
                    let wanted = expected.value.or_else(|| {
                        // Extensions are sliced by `url`, which a slice states through its
                        // type's profile.
                        (matches!(steps.last(), Some(Step::Name(n)) if n == "url"))
                            .then(|| expected_url(slice))
                            .flatten()
                            .map(|u| (Value::String(u), false))
                    });
                    // A slice that says nothing at the path does not restrict it; one that
                    // prohibits it (`max` 0) takes the values without it; one that constrains it
                    // otherwise (a binding: terminology) cannot be told here.
                    let Some((wanted, is_pattern)) = wanted else {
                        return match expected.elem {
                            None => true,
                            Some(elem) if elem.max == Some(Some(0)) => found.is_empty(),
                            Some(_) => false,
                        };
                    };
                    found.iter().any(|(v, _)| {
                        if is_pattern { values::matches_pattern(&wanted, v) } else { values::equal(&wanted, v) }
                    })
                }
                "exists" => {
                    let Some(elem) = expected.elem else { return found.is_empty() };
                    if elem.min.is_some_and(|m| m >= 1) {
                        !found.is_empty()
                    } else if elem.max == Some(Some(0)) {
                        found.is_empty()
                    } else {
                        true
                    }
                }
                "type" => {
                    // A slice that states nothing at the path does not restrict it.
                    let Some(elem) = expected.elem else { return true };
                    if elem.types.is_empty() {
                        return true;
                    }
                    let at_this = steps.is_empty();
                    found.iter().any(|(v, ty)| {
                        let actual = if at_this { item.type_name.clone() } else { ty.clone() }
                            .or_else(|| v.get("resourceType").and_then(Value::as_str).map(str::to_owned));
                        let actual = v.get("resourceType").and_then(Value::as_str).map(str::to_owned).or(actual);
                        actual.is_some_and(|a| elem.types.iter().any(|t| t.code == a))
                    })
                }
                "profile" => {
                    let Some(elem) = expected.elem else { return true };
                    let urls: Vec<String> = elem
                        .types
                        .iter()
                        .flat_map(|t| if t.profiles.is_empty() { &t.target_profiles } else { &t.profiles })
                        .cloned()
                        .collect();
                    if urls.is_empty() {
                        return true;
                    }
                    found.iter().any(|(v, ty)| {
                        let f = Found { value: Some(v), ext: None, type_name: ty.clone(), path: item.path.clone() };
                        urls.iter().any(|u| self.conforms(u, &f).is_some_and(|errors| errors.is_empty()))
                    })
                }
                _ => false,
            }
        })
    }
}

impl Walker<'_, '_> {
    /// A `type` discriminator through `resolve()`: the resources the references at `before`
    /// point to (contained, or named by a literal reference) must be of a type the slice's
    /// `targetProfile`s allow. A slice that names no target does not restrict.
    fn resolved_type_in_slice(&self, profile: &Profile, slice: &Elem, before: &[Step], value: &Value) -> bool {
        let Some(references) = navigate(value, before) else { return true };
        let Some(elem) = expected(profile, slice, before).elem else { return true };
        let allowed: Vec<String> =
            elem.types.iter().flat_map(|t| &t.target_profiles).filter_map(|u| self.profile_type(u)).collect();
        if allowed.is_empty() {
            return true;
        }
        references.iter().any(|(r, _)| {
            let target = r.get("reference").and_then(Value::as_str).and_then(|r| self.reference_type(r));
            target.is_some_and(|t| allowed.iter().any(|a| *a == t || a == "Resource"))
        })
    }
}

/// The URL an extension slice stands for: its type's profile, or its `url` child's fixed value.
fn expected_url(slice: &Elem) -> Option<String> {
    slice.types.iter().find_map(|t| t.profiles.first()).map(|u| u.split('|').next().unwrap_or(u).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discriminator_paths_split_outside_parentheses() {
        assert_eq!(
            steps("extension('http://a.b/c.d').value.ofType(Coding)"),
            vec![Step::Extension("http://a.b/c.d".into()), Step::Name("value".into()), Step::OfType("Coding".into())]
        );
        assert_eq!(steps("$this"), vec![]);
        assert_eq!(steps("reference.resolve()"), vec![Step::Name("reference".into()), Step::Resolve]);
    }
}
