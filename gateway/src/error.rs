//! The gateway's error enum: start-up failures (configuration, store, listener) and the request
//! failures of the front end. Request failures are turned into engine errors, whose single
//! mapping gives the HTTP status and OperationOutcome.

use fhirgate_engine::Error as FhirError;

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
            GatewayError::Config(_) => Self::Internal(message),
        }
    }
}
