//! Ids and URLs inside JSON bodies: a resource's `id`, every `reference`, Bundle entries'
//! `fullUrl`, `request.url`, `request.ifNoneExist` and `response.location`, Bundle links, and
//! every URL on the base in any other string (narratives, canonicals, diagnostics). Contained
//! resources keep their (local) ids; OperationOutcomes get their URLs rewritten only; the ids of
//! Bundles that are no stored resource (searchset, history, batch and transaction ones) are kept.
//!
//! The walk goes at most [`MAX_DEPTH`] levels deep, as validation does.

use serde_json::{Map, Value};

use super::ids::{Adjusted, Ids, Way};
use super::params::types_of;
use crate::definitions::Definitions;
use crate::validation::MAX_DEPTH;

/// Why a body cannot be rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stop {
    /// A Bundle entry names another target's resource: the request is not this target's.
    NotOurs,
    /// The body cannot be sent to this target as it is (a 400 with this message).
    Invalid(String),
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

type Walked = Result<(), Stop>;

/// Bundle types whose id names no stored resource.
const TRANSIENT_BUNDLES: &[&str] =
    &["searchset", "history", "batch", "transaction", "batch-response", "transaction-response"];

/// A walk over one body in one direction.
pub(super) struct Walk<'a> {
    pub(super) ids: Ids<'a>,
}

impl Walk<'_> {
    /// A top-level resource (or any JSON value: a JSON Patch array, a non-resource object).
    /// `put`: the body of an update, whose id must carry the prefix.
    pub(super) fn body(&self, value: &mut Value, put: bool) -> Walked {
        match value {
            Value::Object(map) if map.contains_key("resourceType") => self.resource(map, put, 0),
            other => self.value(other, 0, false),
        }
    }

    /// A resource that is not contained: its id, then its elements.
    fn resource(&self, map: &mut Map<String, Value>, put: bool, depth: usize) -> Walked {
        if depth > MAX_DEPTH {
            return Err(Stop::TooDeep);
        }
        let resource_type = map.get("resourceType").and_then(Value::as_str).unwrap_or_default().to_owned();
        if resource_type == "OperationOutcome" {
            return self.fields(map, depth, true);
        }
        let transient = resource_type == "Bundle"
            && map.get("type").and_then(Value::as_str).is_some_and(|t| TRANSIENT_BUNDLES.contains(&t));
        if !transient {
            self.resource_id(map, &resource_type, put)?;
        }
        if resource_type == "Bundle" {
            if let Some(Value::Array(entries)) = map.get_mut("entry") {
                for entry in entries.iter_mut() {
                    if let Value::Object(entry) = entry {
                        self.entry(entry, depth + 1)?;
                    }
                }
            }
            if let Some(Value::Array(links)) = map.get_mut("link") {
                for link in links.iter_mut() {
                    if let Some(Value::String(url)) = link.get_mut("url") {
                        *url = self.link(url);
                    }
                }
            }
        }
        let skip_bundle_parts = resource_type == "Bundle";
        for (key, value) in map.iter_mut() {
            if key == "id" || key == "resourceType" || (skip_bundle_parts && (key == "entry" || key == "link")) {
                continue;
            }
            self.field(key, value, depth + 1, false)?;
        }
        Ok(())
    }

    fn resource_id(&self, map: &mut Map<String, Value>, resource_type: &str, put: bool) -> Walked {
        let Some(Value::String(id)) = map.get_mut("id") else { return Ok(()) };
        match self.ids.adjust_id(id) {
            Adjusted::Changed(new) => *id = new,
            Adjusted::Same => {}
            Adjusted::Foreign if put => {
                return Err(Stop::Invalid(format!(
                    "`{resource_type}` id `{id}` does not carry the prefix `{}` of the resource it updates",
                    self.ids.prefix
                )));
            }
            Adjusted::Foreign => {} // a create: the server chooses the id anyway
        }
        Ok(())
    }

    /// A Bundle entry.
    fn entry(&self, entry: &mut Map<String, Value>, depth: usize) -> Walked {
        if depth > MAX_DEPTH {
            return Err(Stop::TooDeep);
        }
        let put = entry.get("request").and_then(|r| r.get("method")).and_then(Value::as_str) == Some("PUT");
        for (key, value) in entry.iter_mut() {
            match (key.as_str(), value) {
                ("fullUrl", Value::String(url)) => self.string_in_place(url)?,
                ("resource", Value::Object(resource)) if resource.contains_key("resourceType") => {
                    self.resource(resource, put, depth + 1)?;
                }
                ("request", Value::Object(request)) => {
                    for (key, value) in request.iter_mut() {
                        match (key.as_str(), value) {
                            ("url", Value::String(url)) => *url = self.entry_url(url)?,
                            ("ifNoneExist", Value::String(criteria)) => {
                                *criteria = self.criteria(&[], criteria)?;
                            }
                            (key, other) => self.field(key, other, depth + 2, false)?,
                        }
                    }
                }
                ("response", Value::Object(response)) => {
                    for (key, value) in response.iter_mut() {
                        match (key.as_str(), value) {
                            ("location", Value::String(url)) => *url = self.entry_url(url)?,
                            ("outcome", Value::Object(outcome)) => self.fields(outcome, depth + 2, true)?,
                            (key, other) => self.field(key, other, depth + 2, false)?,
                        }
                    }
                }
                (key, other) => self.field(key, other, depth + 1, false)?,
            }
        }
        Ok(())
    }

    /// `request.url` or `response.location`: `Type/id...`, `Type?criteria`, or absolute.
    fn entry_url(&self, url: &str) -> Result<String, Stop> {
        if self.ids.on_base(url) {
            return match self.ids.urls(url) {
                (_, true) => Err(Stop::NotOurs),
                (new, false) => Ok(new.into_owned()),
            };
        }
        if let Some((path, criteria)) = url.split_once('?') {
            let resource_type = path.split('/').next().filter(|t| Definitions::r4().is_resource_type(t));
            if let Some(resource_type) = resource_type.filter(|_| !path.contains('/')) {
                return Ok(format!("{path}?{}", self.criteria(&[resource_type.to_owned()], criteria)?));
            }
        }
        match self.ids.relative(url) {
            Adjusted::Changed(new) => Ok(new),
            Adjusted::Same => Ok(url.to_owned()),
            Adjusted::Foreign => Err(Stop::NotOurs),
        }
    }

    /// Search criteria (conditional interactions); criteria that can match nothing here make
    /// the request not this target's.
    fn criteria(&self, types: &[String], criteria: &str) -> Result<String, Stop> {
        self.ids.query_string(types, criteria).ok_or(Stop::NotOurs)
    }

    /// A Bundle link: the base and the ids of its query.
    fn link(&self, url: &str) -> String {
        let (swapped, _) = self.ids.urls(url);
        let Some(rest) = swapped.strip_prefix(self.ids.to_base).filter(|_| !self.ids.to_base.is_empty()) else {
            return swapped.into_owned();
        };
        let Some((path, query)) = rest.split_once('?') else { return swapped.into_owned() };
        let path_type =
            path.trim_start_matches('/').split('/').next().filter(|t| Definitions::r4().is_resource_type(t));
        let types = types_of(path_type, &crate::interaction::parse_query(query));
        match self.ids.query_string(&types, query) {
            Some(query) => format!("{}{path}?{query}", self.ids.to_base),
            None => swapped.into_owned(),
        }
    }

    /// The elements of an object. `urls_only`: an OperationOutcome, whose references are none.
    fn fields(&self, map: &mut Map<String, Value>, depth: usize, urls_only: bool) -> Walked {
        if depth > MAX_DEPTH {
            return Err(Stop::TooDeep);
        }
        for (key, value) in map.iter_mut() {
            self.field(key, value, depth, urls_only)?;
        }
        Ok(())
    }

    /// One element `key` of an object at `depth`.
    fn field(&self, key: &str, value: &mut Value, depth: usize, urls_only: bool) -> Walked {
        match (key, value) {
            ("reference", Value::String(reference)) if !urls_only => *reference = self.reference(reference)?,
            ("contained", Value::Array(items)) if !urls_only => {
                for item in items.iter_mut() {
                    match item {
                        // Contained resources keep their local ids.
                        Value::Object(contained) => self.fields(contained, depth + 1, false)?,
                        other => self.value(other, depth + 1, false)?,
                    }
                }
            }
            (_, other) => self.value(other, depth, urls_only)?,
        }
        Ok(())
    }

    /// Any value at `depth`.
    fn value(&self, value: &mut Value, depth: usize, urls_only: bool) -> Walked {
        if depth > MAX_DEPTH {
            return Err(Stop::TooDeep);
        }
        match value {
            Value::String(text) => self.string_in_place(text)?,
            Value::Object(inner) if inner.contains_key("resourceType") && !urls_only => {
                self.resource(inner, false, depth + 1)?;
            }
            Value::Object(inner) => self.fields(inner, depth + 1, urls_only)?,
            Value::Array(items) => {
                for item in items.iter_mut() {
                    self.value(item, depth + 1, urls_only)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A `Reference.reference`.
    pub(super) fn reference(&self, reference: &str) -> Result<String, Stop> {
        if reference.starts_with('#') || reference.starts_with("urn:") {
            return Ok(reference.to_owned());
        }
        if self.ids.on_base(reference) {
            return self.string(reference).map(std::borrow::Cow::into_owned);
        }
        if reference.split_once('?').is_some_and(|(t, _)| Definitions::r4().is_resource_type(t)) {
            return Ok(reference.to_owned()); // conditional: resolved by the target
        }
        match self.ids.relative(reference) {
            Adjusted::Changed(new) => Ok(new),
            Adjusted::Same => Ok(reference.to_owned()),
            Adjusted::Foreign => Err(Stop::Invalid(format!(
                "the reference `{reference}` names a resource of another target; refer to it by its absolute URL \
                 (`{}/{reference}`)",
                self.ids.from_base
            ))),
        }
    }

    /// Any other string: the URLs on the base in it, rewritten in place.
    fn string_in_place(&self, text: &mut String) -> Walked {
        if let std::borrow::Cow::Owned(new) = self.string(text)? {
            *text = new;
        }
        Ok(())
    }

    /// [`Self::string_in_place`], borrowing the text when nothing in it changes.
    fn string<'t>(&self, text: &'t str) -> Result<std::borrow::Cow<'t, str>, Stop> {
        let (new, foreign) = self.ids.urls(text);
        if foreign && self.ids.way == Way::ToTarget && self.ids.from_base == self.ids.to_base {
            // The target writes the client's base: its URLs to other targets' resources could
            // not be told from its own when they come back.
            return Err(Stop::Invalid(format!(
                "`{}` names a resource of another target, which this target cannot store",
                text.chars().take(200).collect::<String>()
            )));
        }
        Ok(new)
    }
}
