//! Which resource(s) a request path names, below the FHIR base URL.

use super::Method;
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::resource::is_valid_id;

/// A parsed request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/`: batch/transaction, system search.
    System,
    /// `/metadata`.
    Metadata,
    /// `/[type]`.
    Type { resource_type: String },
    /// `/[type]/[id]`.
    Instance { resource_type: String, id: String },
    /// `/_search` and `/[type]/_search` (search by `POST`).
    Search { resource_type: Option<String> },
    /// `/[compartment]/[id]/[type]` or `/[compartment]/[id]/*`: a compartment search.
    Compartment { owner_type: String, owner_id: String, resource_type: Option<String> },
    /// `/_history`, `/[type]/_history`, `/[type]/[id]/_history`.
    History { resource_type: Option<String>, id: Option<String> },
    /// `/[type]/[id]/_history/[vid]`.
    Version { resource_type: String, id: String, version: String },
    /// `$operation` at any level: `[base]/$op`, `[type]/$op`, `[type]/[id]/$op`.
    Operation { name: String, resource_type: Option<String>, id: Option<String> },
}

impl Route {
    /// Parses a path like `Patient/123/_history/2` (leading and trailing slashes ignored).
    pub(crate) fn parse(path: &str) -> Result<Self> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        if let Some((op, at)) = segments.split_last().and_then(|(last, at)| Some((last.strip_prefix('$')?, at))) {
            let (resource_type, id) = match at {
                [] => (None, None),
                [t] => (Some(resource_type(t)?), None),
                [t, id] => (Some(resource_type(t)?), Some(logical_id(id)?)),
                _ => return Err(Error::NotFound(format!("no FHIR endpoint at `/{}`", segments.join("/")))),
            };
            return Ok(Self::Operation { name: op.to_string(), resource_type, id });
        }
        match segments.as_slice() {
            [] => Ok(Self::System),
            ["metadata"] => Ok(Self::Metadata),
            ["_history"] => Ok(Self::History { resource_type: None, id: None }),
            ["_search"] => Ok(Self::Search { resource_type: None }),
            [t, "_search"] => Ok(Self::Search { resource_type: Some(resource_type(t)?) }),
            [t] => Ok(Self::Type { resource_type: resource_type(t)? }),
            [t, "_history"] => Ok(Self::History { resource_type: Some(resource_type(t)?), id: None }),
            [t, id] => Ok(Self::Instance { resource_type: resource_type(t)?, id: logical_id(id)? }),
            [t, id, "_history"] => {
                Ok(Self::History { resource_type: Some(resource_type(t)?), id: Some(logical_id(id)?) })
            }
            [t, id, c] => Ok(Self::Compartment {
                owner_type: resource_type(t)?,
                owner_id: logical_id(id)?,
                resource_type: if *c == "*" { None } else { Some(resource_type(c)?) },
            }),
            [t, id, "_history", v] => {
                Ok(Self::Version { resource_type: resource_type(t)?, id: logical_id(id)?, version: (*v).to_string() })
            }
            _ => Err(Error::NotFound(format!("no FHIR endpoint at `/{}`", segments.join("/")))),
        }
    }

    /// The error for a method this route does not support: 400 `not-supported` for operations
    /// the server does not offer, 405 for a method the URL does not take.
    pub(crate) fn unsupported(&self, method: &Method, path: &str) -> Error {
        let path = path.trim_matches('/');
        if let Self::Operation { name, .. } = self {
            return Error::NotSupported(format!(
                "operation `${name}` (`{} /{path}`) is not supported by this server (its CapabilityStatement lists \
                 the operations it offers)",
                method.as_str()
            ));
        }
        Error::MethodNotAllowed(format!("`{}` is not supported on `/{path}`", method.as_str()))
    }
}

/// `segment` as a known resource type (404 otherwise).
pub(crate) fn resource_type(segment: &str) -> Result<String> {
    if Definitions::r4().is_resource_type(segment) {
        Ok(segment.to_string())
    } else {
        Err(Error::NotFound(format!("unknown resource type `{segment}`")))
    }
}

/// `segment` as a valid logical id (400 otherwise).
pub(crate) fn logical_id(segment: &str) -> Result<String> {
    if is_valid_id(segment) {
        Ok(segment.to_string())
    } else {
        Err(Error::bad_request(format!(
            "invalid resource id `{segment}`: ids are 1-64 characters of A-Z, a-z, 0-9, `-` and `.`"
        )))
    }
}
