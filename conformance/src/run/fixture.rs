//! Fixtures: the static resources a script names (`#contained` or files relative to it), and
//! the requests and responses operations save under `requestId`/`responseId`; `autocreate` and
//! `autodelete`; and which server resource a fixture stands for (`targetId`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::result::{ActionKind, ActionResult, Outcome};
use super::{State, text};
use crate::error::{Error, Result};
use crate::http::{Request, Response};
use crate::script::{self, Format};

/// One fixture.
#[derive(Debug, Clone, Default)]
pub(super) struct Fixture {
    /// The static resource.
    pub resource: Option<Value>,
    /// The file text of a static fixture and its format, sent as written (after `${}`
    /// substitution).
    pub raw: Option<(String, Format)>,
    pub request: Option<Request>,
    pub response: Option<Response>,
    /// The server resource made from this fixture by autocreate, create or update.
    pub created: Option<Target>,
}

/// A resource on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub resource_type: String,
    pub id: String,
    pub version: Option<String>,
}

impl Fixture {
    /// The resource assertions and expressions look at: the response's, the request's, or the
    /// static one.
    pub(super) fn body(&self) -> Option<Value> {
        self.response
            .as_ref()
            .and_then(|r| r.resource.clone())
            .or_else(|| self.request.as_ref().and_then(Request::resource))
            .or_else(|| self.resource.clone())
    }

    /// The server resource this fixture stands for.
    pub(super) fn target(&self) -> Option<Target> {
        if let Some(created) = &self.created {
            return Some(created.clone());
        }
        if let Some(response) = &self.response {
            return target_of_response(response);
        }
        self.resource.as_ref().and_then(target_of_resource)
    }
}

/// The resource a response is about: its body's type and id, else its `Location` or
/// `Content-Location`.
pub(super) fn target_of_response(response: &Response) -> Option<Target> {
    response
        .resource
        .as_ref()
        .filter(|r| text(r, "resourceType") != Some("OperationOutcome"))
        .and_then(target_of_resource)
        .or_else(|| {
            ["Location", "Content-Location"].iter().find_map(|h| response.header(h).and_then(target_of_location))
        })
}

fn target_of_resource(resource: &Value) -> Option<Target> {
    Some(Target {
        resource_type: text(resource, "resourceType")?.to_owned(),
        id: text(resource, "id")?.to_owned(),
        version: resource.get("meta").and_then(|m| text(m, "versionId")).map(str::to_owned),
    })
}

/// `…/Patient/123/_history/2` or `…/Patient/123`.
pub(super) fn target_of_location(location: &str) -> Option<Target> {
    let path = location.split(['?', '#']).next()?;
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let (rest, version) = match segments.as_slice() {
        [rest @ .., "_history", version] => (rest, Some((*version).to_owned())),
        rest => (rest, None),
    };
    match rest {
        [.., resource_type, id] if resource_type.starts_with(|c: char| c.is_ascii_uppercase()) => {
            Some(Target { resource_type: (*resource_type).to_owned(), id: (*id).to_owned(), version })
        }
        _ => None,
    }
}

/// The file of a fixture reference, relative to the script's directory: the reference as a
/// path, with `.json` or `.xml` added, or, for a `Type/id` reference as the R4 examples write
/// them, the package's `Type-id.json`/`.xml`.
pub(super) fn fixture_file(dir: &Path, reference: &str) -> Option<PathBuf> {
    let mut candidates = vec![reference.to_owned(), format!("{reference}.json"), format!("{reference}.xml")];
    if let Some((resource_type, id)) = reference.split_once('/').filter(|(_, id)| !id.contains('/')) {
        candidates.push(format!("{resource_type}-{id}.json"));
        candidates.push(format!("{resource_type}-{id}.xml"));
    }
    candidates.into_iter().map(|c| dir.join(c)).find(|p| p.is_file())
}

impl State<'_> {
    /// Loads every `TestScript.fixture`.
    pub(super) fn load_fixtures(&mut self) -> Result<()> {
        let script = &self.script.resource;
        for fixture in script.get("fixture").and_then(Value::as_array).into_iter().flatten() {
            let id = text(fixture, "id").ok_or_else(|| Error::Script("a fixture without an id".into()))?;
            let mut loaded = Fixture::default();
            if let Some(reference) = fixture.get("resource").and_then(|r| text(r, "reference")) {
                if let Some(local) = reference.strip_prefix('#') {
                    let contained = script
                        .get("contained")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .find(|c| text(c, "id") == Some(local))
                        .ok_or_else(|| Error::Script(format!("fixture `{id}`: no contained resource `#{local}`")))?;
                    loaded.resource = Some(contained.clone());
                } else if reference.contains("://") {
                    return Err(Error::Script(format!(
                        "fixture `{id}`: remote fixtures (`{reference}`) are not supported"
                    )));
                } else {
                    let path = fixture_file(self.script.dir(), reference)
                        .ok_or_else(|| Error::Script(format!("fixture `{id}`: no file for `{reference}`")))?;
                    let raw = script::read_text(&path)?;
                    let (resource, format) = match script::parse_resource(&raw) {
                        Ok((resource, format)) => (Some(resource), format),
                        // XML the reader refuses (a DTD, which a script sends to see it refused)
                        // is sent as it is written.
                        Err(Error::Xml(_)) => (None, Format::Xml),
                        Err(e) => return Err(Error::Script(format!("fixture `{id}` (`{}`): {e}", path.display()))),
                    };
                    loaded.resource = resource;
                    loaded.raw = Some((raw, format));
                }
            }
            self.fixtures.insert(id.to_owned(), loaded);
        }
        Ok(())
    }

    /// The ids of fixtures whose boolean `flag` is true, in script order.
    pub(super) fn fixture_ids(&self, flag: &str) -> Vec<String> {
        self.script
            .resource
            .get("fixture")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|f| f.get(flag).and_then(Value::as_bool) == Some(true))
            .filter_map(|f| text(f, "id").map(str::to_owned))
            .collect()
    }

    /// Creates an `autocreate` fixture (POST; the server assigns the id, which the fixture then
    /// stands for).
    pub(super) fn autocreate(&mut self, id: &str) -> ActionResult {
        let label = format!("autocreate fixture `{id}`");
        let Some(resource_type) =
            self.fixtures.get(id).and_then(|f| f.resource.as_ref()).and_then(|r| text(r, "resourceType"))
        else {
            return ActionResult::new(ActionKind::Operation, label, Outcome::Error, "the fixture has no resource");
        };
        let resource_type = resource_type.to_owned();
        let request = match self.body_of(id, None) {
            Ok((body, content_type)) => Request {
                method: "POST".into(),
                url: format!("{}/{resource_type}", self.options().base_url),
                headers: self.standard_headers(Some(&content_type), None),
                body: Some(body),
            },
            Err(e) => return ActionResult::new(ActionKind::Operation, label, Outcome::Error, e),
        };
        let mut result = self.send(label, request);
        let created = self.last.as_ref().and_then(|e| e.response.as_ref()).filter(|r| (200..300).contains(&r.status));
        match created.and_then(target_of_response) {
            Some(target) => {
                if let Some(fixture) = self.fixtures.get_mut(id) {
                    fixture.created = Some(target);
                }
            }
            None if result.outcome == Outcome::Pass => {
                result.outcome = Outcome::Fail;
                result.message = format!("{}: the server did not create it", result.message);
            }
            None => {}
        }
        result
    }

    /// Deletes an `autodelete` fixture that was created.
    pub(super) fn autodelete(&mut self, id: &str) -> Option<ActionResult> {
        let target = self.fixtures.get(id)?.created.clone()?;
        let request = Request {
            method: "DELETE".into(),
            url: format!("{}/{}/{}", self.options().base_url, target.resource_type, target.id),
            headers: self.standard_headers(None, None),
            body: None,
        };
        Some(self.send(format!("autodelete fixture `{id}`"), request))
    }
}

#[cfg(test)]
mod tests {
    use super::{Target, target_of_location};

    #[test]
    fn fixture_files_as_the_r4_examples_name_them() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("fixture-file-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("fixtures"))?;
        std::fs::write(dir.join("Patient-example.json"), "{}")?;
        std::fs::write(dir.join("fixtures/p.xml"), "<Patient/>")?;
        assert_eq!(super::fixture_file(&dir, "Patient/example"), Some(dir.join("Patient-example.json")));
        assert_eq!(super::fixture_file(&dir, "fixtures/p"), Some(dir.join("fixtures/p.xml")));
        assert_eq!(super::fixture_file(&dir, "fixtures/p.xml"), Some(dir.join("fixtures/p.xml")));
        assert_eq!(super::fixture_file(&dir, "Patient/other"), None);
        std::fs::remove_dir_all(&dir)
    }

    #[test]
    fn locations() {
        let t = |r: &str, i: &str, v: Option<&str>| Target {
            resource_type: r.into(),
            id: i.into(),
            version: v.map(Into::into),
        };
        assert_eq!(target_of_location("http://x/fhir/Patient/12/_history/3"), Some(t("Patient", "12", Some("3"))));
        assert_eq!(target_of_location("Patient/12"), Some(t("Patient", "12", None)));
        assert_eq!(target_of_location("http://x/fhir/"), None);
    }
}
