//! The media type of the answers the router composes itself (merged searchsets, split batches,
//! a route's CapabilityStatement), chosen from `_format` (which wins) or `Accept` like the
//! engine chooses it for its own answers; anything else is a 406 before any target is asked.
//! (Requests from the front come as JSON: XML is converted there, `crate::client_format`.)

use fhirgate_engine::interaction::Request;
use fhirgate_engine::{Error as FhirError, MediaType};

/// The media type of the answer to `request`, or 406: the engine's own negotiation.
pub fn negotiate(request: &Request) -> Result<MediaType, FhirError> {
    fhirgate_engine::negotiate(request.param("_format"), request.headers.accept.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhirgate_engine::interaction::Method;

    fn asked(format: Option<&str>, accept: Option<&str>) -> Result<MediaType, FhirError> {
        let mut request = Request::new(Method::Get, "metadata", "http://gw");
        if let Some(f) = format {
            request.query.push(("_format".into(), f.into()));
        }
        request.headers.accept = accept.map(str::to_owned);
        negotiate(&request)
    }

    #[test]
    fn as_the_engine_negotiates() {
        assert_eq!(asked(None, None).ok(), Some(MediaType::FhirJson));
        assert_eq!(asked(None, Some("application/json")).ok(), Some(MediaType::Json));
        assert_eq!(
            asked(None, Some("application/fhir+xml;q=1, application/json;q=0.5")).ok(),
            Some(MediaType::FhirXml)
        );
        assert_eq!(asked(None, Some("text/turtle")).map_err(|e| e.status()), Err(406));
        assert_eq!(asked(Some("xml"), Some("application/json")).ok(), Some(MediaType::FhirXml), "_format wins");
        assert_eq!(asked(Some("json"), None).ok(), Some(MediaType::FhirJson));
    }
}
