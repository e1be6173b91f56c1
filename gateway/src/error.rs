//! The gateway's error enum: start-up failures (configuration, store, keys, policies) and the
//! request failures of the front end. [`GatewayError::response`] is the one mapping to an HTTP
//! status and OperationOutcome: authentication (401 with `WWW-Authenticate`) and authorization
//! (403) are answered here, everything else through the engine's error mapping.

use fhirgate_engine::Error as FhirError;
use fhirgate_engine::format::MediaType;
use fhirgate_engine::interaction::Response;

/// What can go wrong in the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("store: {0}")]
    Store(String),
    #[error("request body larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("the request body was not received in time ({seconds} s)")]
    BodyTimeout { seconds: u64 },
    #[error("the request body could not be read: {0}")]
    BodyRead(String),
    #[error("the request took longer than the limit of {seconds} s")]
    Timeout { seconds: u64 },
    /// No `Authorization` header.
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    MissingToken,
    /// A token was sent and rejected.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The policies deny the request.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The policies deny a read, answered as if the resource did not exist.
    #[error("{0}")]
    Hidden(String),
    /// Keys or tokens of the local issuer.
    #[error("local issuer: {0}")]
    LocalIssuer(String),
    /// Policies that cannot be loaded.
    #[error("policies: {0}")]
    Policy(#[from] fhirgate_policies::Error),
}

impl GatewayError {
    /// The response for this error: the single place errors become HTTP.
    pub fn response(self) -> Response {
        match self {
            Self::MissingToken => {
                outcome(401, "login", &self.to_string()).with_header("WWW-Authenticate", "Bearer realm=\"fhirgate\"")
            }
            Self::InvalidToken(ref reason) => {
                let challenge = format!(
                    "Bearer realm=\"fhirgate\", error=\"invalid_token\", error_description=\"{}\"",
                    reason.replace(['"', '\\'], "'")
                );
                outcome(401, "login", &self.to_string()).with_header("WWW-Authenticate", challenge)
            }
            Self::Forbidden(_) => outcome(403, "forbidden", &self.to_string()),
            other => Response::error(&FhirError::from(other), MediaType::FhirJson, false),
        }
    }
}

/// An OperationOutcome for the issue types the engine does not report (`login`, `forbidden`).
fn outcome(status: u16, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": message}],
    });
    Response::rendered(status, "application/fhir+json; charset=utf-8", body.to_string().into_bytes())
}

impl From<GatewayError> for FhirError {
    fn from(e: GatewayError) -> Self {
        let message = e.to_string();
        match e {
            GatewayError::BodyTooLarge { .. } => Self::PayloadTooLarge(message),
            GatewayError::BodyTimeout { .. } => Self::RequestTimeout(message),
            GatewayError::BodyRead(_) => Self::bad_request(message),
            GatewayError::Timeout { .. } => Self::Timeout(message),
            GatewayError::Store(_) => Self::StoreUnavailable(message),
            GatewayError::Hidden(_) => Self::NotFound(message),
            GatewayError::Config(_)
            | GatewayError::LocalIssuer(_)
            | GatewayError::Policy(_)
            | GatewayError::MissingToken
            | GatewayError::InvalidToken(_)
            | GatewayError::Forbidden(_) => Self::Internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue_code(response: &Response) -> String {
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
        body["issue"][0]["code"].as_str().unwrap_or_default().to_string()
    }

    #[test]
    fn authentication_and_authorization_map_to_401_and_403() {
        let r = GatewayError::MissingToken.response();
        assert_eq!((r.status, issue_code(&r).as_str()), (401, "login"));
        assert_eq!(r.header("WWW-Authenticate"), Some("Bearer realm=\"fhirgate\""));
        let r = GatewayError::InvalidToken("the \"token\" has expired".into()).response();
        assert_eq!(r.status, 401);
        let challenge = r.header("WWW-Authenticate").unwrap_or_default();
        assert!(challenge.contains("error=\"invalid_token\"") && challenge.contains("'token'"), "{challenge}");
        let r = GatewayError::Forbidden("no".into()).response();
        assert_eq!((r.status, issue_code(&r).as_str()), (403, "forbidden"));
        let r = GatewayError::Hidden("`Patient/1` not found".into()).response();
        assert_eq!((r.status, issue_code(&r).as_str()), (404, "not-found"));
    }
}
