//! The bodies of FHIR's PATCH interaction (<https://hl7.org/fhir/R4/http.html#patch>) applied to
//! a resource: JSON Patch ([`json_patch`]) and FHIRPath Patch ([`fhirpath_patch`]). Pure: no
//! HTTP, no store; the interaction reads the resource, calls [`Patch::apply`] and writes back.
//!
//! Errors: a body that is not a patch is a 400 ([`Error::BadRequest`]), an unknown content type
//! a 415, a patch that cannot apply to this resource a 422 ([`Error::Unprocessable`]). The input
//! is never changed: a patch applies to a copy, returned only when every operation succeeded.
//!
//! ```
//! use fhirgate_engine::Patch;
//! let patient = serde_json::json!({"resourceType": "Patient", "active": false});
//! let body = br#"[{"op": "replace", "path": "/active", "value": true}]"#;
//! let patched = Patch::from_body("application/json-patch+json", body)?.apply(&patient)?;
//! assert_eq!(patched["active"], true);
//! # Ok::<(), fhirgate_engine::Error>(())
//! ```

mod bounds;
mod fhirpath_patch;
mod json_patch;
mod location;
#[cfg(test)]
mod tests;
mod value;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fhirpath::Budget;

/// The PATCH content types [`Patch::from_body`] reads, as a CapabilityStatement's
/// `patchFormat` lists them.
pub(crate) const CONTENT_TYPES: &[&str] = &["application/json-patch+json", "application/fhir+json"];

/// A parsed PATCH body.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch {
    /// A JSON Patch document (RFC 6902): an array of operations.
    Json(Value),
    /// A FHIRPath Patch: a `Parameters` resource of `operation` parameters.
    FhirPath(Value),
}

impl Patch {
    /// Reads a PATCH body by its content type: `application/json-patch+json` is JSON Patch,
    /// `application/fhir+json` (or `application/json`) holding a `Parameters` resource is
    /// FHIRPath Patch. Media type parameters (`; charset=utf-8`) are ignored.
    pub fn from_body(content_type: &str, body: &[u8]) -> Result<Self> {
        let media_type = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        let parse = || {
            serde_json::from_slice::<Value>(body)
                .map_err(|e| Error::bad_request(format!("the patch body is not valid JSON: {e}")))
        };
        match media_type.as_str() {
            "application/json-patch+json" => Ok(Self::Json(parse()?)),
            "application/fhir+json" | "application/json" => {
                let value = parse()?;
                match value.get("resourceType").and_then(Value::as_str) {
                    Some("Parameters") => Ok(Self::FhirPath(value)),
                    _ => Err(Error::bad_request(
                        "a FHIR JSON patch body must be a `Parameters` resource (FHIRPath Patch)",
                    )),
                }
            }
            other => Err(Error::UnsupportedMediaType(format!(
                "patch content type `{other}` is not supported: use `application/json-patch+json` \
                 (JSON Patch) or `application/fhir+json` (FHIRPath Patch)"
            ))),
        }
    }

    /// Applies the patch to `resource`, returning the patched copy. The resource type and id may
    /// not change: a patch that alters them is a 422. FHIRPath paths run within the default
    /// [`Budget`].
    pub fn apply(&self, resource: &Value) -> Result<Value> {
        self.apply_within(resource, Budget::DEFAULT)
    }

    /// [`Patch::apply`], the FHIRPath paths of a FHIRPath Patch evaluated within `budget`
    /// (exceeded: a 422).
    pub(crate) fn apply_within(&self, resource: &Value, budget: Budget) -> Result<Value> {
        let patched = match self {
            Self::Json(ops) => json_patch::apply_within(resource, ops, budget.max_steps)?,
            Self::FhirPath(parameters) => fhirpath_patch::apply_within(resource, parameters, budget)?,
        };
        for key in ["resourceType", "id"] {
            if patched.get(key) != resource.get(key) {
                return Err(Error::unprocessable(format!("a patch may not change the resource's `{key}`")));
            }
        }
        Ok(patched)
    }
}
