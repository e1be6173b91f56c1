//! Custom search parameters (SearchParameter resources from `fhir.packages` and from the API),
//! laid over the R4 ones of [`Definitions`]. They are process-wide, like the R4 definitions: every
//! local target of this process indexes and searches them.
//!
//! A parameter is *pending* until the resources it covers are indexed for it (see
//! `search::custom`): writes index it at once, searches treat it as unknown. A parameter is kept
//! for the life of the process ([`Definitions`] hands out plain references): each distinct
//! definition is stored once and at most [`MAX_DEFINITIONS`] of them are taken in all.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use super::{Definitions, SearchParam};

/// The most distinct custom definitions a process takes (changes included).
const MAX_DEFINITIONS: usize = 4096;

/// The custom parameters now in force.
#[derive(Debug, Default)]
pub(crate) struct Custom {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Resource type → code → parameter.
    by_type: HashMap<String, BTreeMap<String, Entry>>,
    by_url: HashMap<String, Entry>,
    /// Every definition ever taken, so that one registered again is not stored twice.
    interned: Vec<&'static SearchParam>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    param: &'static SearchParam,
    ready: bool,
}

impl Definitions {
    /// Puts `param` in force for each of its `base` types (replacing the one with its `url`), as
    /// ready for searches or pending. Refused when its code is an R4 parameter of a base type or
    /// another custom parameter's of that type.
    pub fn register_custom(&self, param: SearchParam, ready: bool) -> Result<(), String> {
        let mut state = self.custom.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.clash(&state, &param)?;
        let param = match state.interned.iter().find(|p| ***p == param) {
            Some(found) => *found,
            None if state.interned.len() >= MAX_DEFINITIONS => {
                return Err(format!("this server takes at most {MAX_DEFINITIONS} custom search parameter definitions"));
            }
            None => {
                let leaked: &'static SearchParam = Box::leak(Box::new(param));
                state.interned.push(leaked);
                leaked
            }
        };
        remove(&mut state, &param.url);
        let entry = Entry { param, ready };
        for base in &param.base {
            state.by_type.entry(base.clone()).or_default().insert(param.code.clone(), entry);
        }
        state.by_url.insert(param.url.clone(), entry);
        Ok(())
    }

    /// Whether `param` could be put in force: its base types are R4 resource types, and its code
    /// is neither an R4 parameter of theirs nor another custom parameter's.
    pub fn check_custom(&self, param: &SearchParam) -> Result<(), String> {
        self.clash(&self.custom.state.read().unwrap_or_else(std::sync::PoisonError::into_inner), param)
    }

    fn clash(&self, state: &State, param: &SearchParam) -> Result<(), String> {
        for base in &param.base {
            if !self.is_resource_type(base) {
                return Err(format!("`base` `{base}` is not an R4 resource type"));
            }
            if self.search_by_type.get(base).is_some_and(|(_, by_code)| by_code.contains_key(&param.code)) {
                return Err(format!("`{base}` already has the search parameter `{}`", param.code));
            }
        }
        for base in &param.base {
            if let Some(other) = state.by_type.get(base).and_then(|m| m.get(&param.code)) {
                if other.param.url != param.url {
                    return Err(format!(
                        "`{base}` already has the custom search parameter `{}` ({})",
                        param.code, other.param.url
                    ));
                }
            }
        }
        Ok(())
    }

    /// Takes the custom parameter `url` out of force.
    pub fn unregister_custom(&self, url: &str) {
        remove(&mut self.custom.state.write().unwrap_or_else(std::sync::PoisonError::into_inner), url);
    }

    /// Marks the custom parameter `url` ready for searches, if `param` is still its definition.
    pub fn mark_custom_ready(&self, param: &SearchParam) {
        let mut state = self.custom.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(entry) = state.by_url.get_mut(&param.url).filter(|e| e.param == param) else { return };
        entry.ready = true;
        for base in &param.base {
            if let Some(e) = state.by_type.get_mut(base).and_then(|m| m.get_mut(&param.code)) {
                e.ready = true;
            }
        }
    }

    /// The custom parameter `url` and whether it is ready.
    pub fn custom_by_url(&self, url: &str) -> Option<(&SearchParam, bool)> {
        let state = self.custom.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.by_url.get(url).map(|e| (e.param, e.ready))
    }

    /// Whether `code` is a custom parameter of `resource_type` still being indexed.
    pub fn is_custom_pending(&self, resource_type: &str, code: &str) -> bool {
        self.custom_entry(resource_type, code).is_some_and(|e| !e.ready)
    }

    /// The custom parameters of `resource_type`, pending ones included.
    pub(crate) fn custom_params(&self, resource_type: &str) -> Vec<&SearchParam> {
        let state = self.custom.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        state
            .by_type
            .get(resource_type)
            .map(|m| m.values().map(|e| e.param as &SearchParam).collect())
            .unwrap_or_default()
    }

    /// The ready custom parameter `code` of `resource_type`.
    pub(crate) fn custom_param(&self, resource_type: &str, code: &str) -> Option<&SearchParam> {
        self.custom_entry(resource_type, code).filter(|e| e.ready).map(|e| e.param as &SearchParam)
    }

    /// A custom parameter by URL, pending or not (composite components).
    pub(crate) fn custom_param_by_url(&self, url: &str) -> Option<&SearchParam> {
        self.custom_by_url(url).map(|(p, _)| p)
    }

    fn custom_entry(&self, resource_type: &str, code: &str) -> Option<Entry> {
        let state = self.custom.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.by_type.get(resource_type).and_then(|m| m.get(code)).copied()
    }
}

fn remove(state: &mut State, url: &str) {
    let Some(old) = state.by_url.remove(url) else { return };
    for base in &old.param.base {
        if let Some(m) = state.by_type.get_mut(base) {
            m.remove(&old.param.code);
        }
    }
}
