//! The media type of the answers the router composes itself (merged searchsets, split batches,
//! a route's CapabilityStatement): JSON only, chosen from `_format` (which wins) or `Accept`
//! like the engine chooses it for its own answers; anything else is a 406 before any target
//! is asked.

use fhirgate_engine::interaction::Request;
use fhirgate_engine::{Error as FhirError, MediaType};

/// What a `_format` value or an `Accept` range names.
fn classify(value: &str) -> Option<MediaType> {
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.as_str() {
        "json" | "application/fhir+json" | "application/json+fhir" | "*/*" | "application/*" | "" => {
            Some(MediaType::FhirJson)
        }
        "application/json" | "text/json" => Some(MediaType::Json),
        _ => None,
    }
}

/// The media type of the answer to `request`, or 406.
pub fn negotiate(request: &Request) -> Result<MediaType, FhirError> {
    if let Some(format) = request.param("_format") {
        return classify(format).ok_or_else(|| {
            FhirError::NotAcceptable(format!(
                "`_format={format}` is not supported: this server speaks JSON only (`application/fhir+json`)"
            ))
        });
    }
    let Some(accept) = request.headers.accept.as_deref().filter(|a| !a.trim().is_empty()) else {
        return Ok(MediaType::FhirJson);
    };
    let mut best: Option<(f32, MediaType)> = None;
    for range in accept.split(',') {
        let q = range
            .split(';')
            .skip(1)
            .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()))
            .unwrap_or(1.0);
        let Some(media) = classify(range).filter(|_| q > 0.0) else { continue };
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, media));
        }
    }
    best.map(|(_, m)| m).ok_or_else(|| {
        FhirError::NotAcceptable(format!(
            "cannot produce any of `{accept}`: this server speaks JSON only (`application/fhir+json`)"
        ))
    })
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
    fn json_only_as_the_engine_negotiates() {
        assert_eq!(asked(None, None).ok(), Some(MediaType::FhirJson));
        assert_eq!(asked(None, Some("application/json")).ok(), Some(MediaType::Json));
        assert_eq!(asked(None, Some("application/fhir+xml;q=1, application/json;q=0.5")).ok(), Some(MediaType::Json));
        assert_eq!(asked(None, Some("application/fhir+xml")).map_err(|e| e.status()), Err(406));
        assert_eq!(asked(Some("xml"), Some("application/json")).map_err(|e| e.status()), Err(406), "_format wins");
        assert_eq!(asked(Some("json"), None).ok(), Some(MediaType::FhirJson));
    }
}
