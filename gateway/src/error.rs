//! The gateway's error enum: start-up failures (configuration, store, keys, policies) and the
//! request failures of the front end. Every one that reaches a client converts into the
//! engine's error ([`From<GatewayError> for FhirError`]), whose mapping to a status and an
//! OperationOutcome is the only one; [`GatewayError::response`] adds the `WWW-Authenticate`
//! challenge of a 401.

use fhirgate_engine::Error as FhirError;
use fhirgate_engine::MediaType;
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
    /// Keys or tokens of the local issuer.
    #[error("local issuer: {0}")]
    LocalIssuer(String),
    /// A `_getpages` link that cannot be opened: not issued with this server's paging key,
    /// altered, expired, or another client's (which of these is not said).
    #[error("this search page has expired or was never issued to this client: run the search again")]
    PageGone,
    /// Policies that cannot be loaded.
    #[error("policies: {0}")]
    Policy(#[from] fhirgate_policies::Error),
}

impl GatewayError {
    /// The response for this error: the single place errors become HTTP.
    pub fn response(self) -> Response {
        let challenge = match &self {
            Self::MissingToken => Some("Bearer realm=\"fhirgate\"".to_owned()),
            Self::InvalidToken(reason) => Some(format!(
                "Bearer realm=\"fhirgate\", error=\"invalid_token\", error_description=\"{}\"",
                reason.replace(['"', '\\'], "'")
            )),
            _ => None,
        };
        let response = Response::error(&FhirError::from(self), MediaType::FhirJson, false);
        match challenge {
            Some(challenge) => response.with_header("WWW-Authenticate", challenge),
            None => response,
        }
    }
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
            GatewayError::PageGone => Self::Gone(message),
            GatewayError::MissingToken | GatewayError::InvalidToken(_) => Self::Unauthorized(message),
            GatewayError::Config(_) | GatewayError::LocalIssuer(_) | GatewayError::Policy(_) => Self::Internal(message),
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
        let r = Response::error(&FhirError::Forbidden("no".into()), MediaType::FhirJson, false);
        assert_eq!((r.status, issue_code(&r).as_str()), (403, "forbidden"));
    }
}
