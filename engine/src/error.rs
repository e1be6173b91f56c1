//! The engine's one error enum, and its mapping to an HTTP status and an OperationOutcome.
//!
//! Every failure the server reports goes through [`Error::status`] and [`Error::outcome`]: this is
//! the single place where error kinds meet HTTP.

use serde_json::Value;

use crate::outcome::{Issue, IssueType, OperationOutcome};

/// A specialised `Result` for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in the terms a FHIR client needs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed (bad JSON, bad parameter, id mismatch...). 400.
    #[error("{}", summary(.0))]
    BadRequest(Vec<Issue>),
    /// The resource failed validation. 400 (FHIR lets servers choose 400 or 422; MS FHIR and HAPI use 400).
    #[error("{}", summary(.0))]
    Invalid(Vec<Issue>),
    /// The request is well-formed but cannot be applied to the resource as it is: a patch whose
    /// path finds nothing or several elements, a JSON Patch `test` that fails. 422, as RFC 5789
    /// (PATCH) and FHIR's PATCH interaction describe; a malformed patch is a `BadRequest`.
    #[error("{}", summary(.0))]
    Unprocessable(Vec<Issue>),
    /// No valid credentials: a missing, expired or forged token. 401 (the front end adds the
    /// `WWW-Authenticate` challenge).
    #[error("{0}")]
    Unauthorized(String),
    /// The client may not do this (a policy denied it). 403.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Unknown resource type in the URL, or unknown resource. 404.
    #[error("{0}")]
    NotFound(String),
    /// The resource was deleted. 410.
    #[error("{0}")]
    Gone(String),
    /// The method is not allowed on this URL. 405.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A FHIR operation or interaction this server does not support. 400 with a `not-supported`
    /// issue, as HAPI and Microsoft's server answer (FHIR's http.html lets a server refuse what it
    /// does not support with 4xx; clients and test suites read any 5xx as a server fault). A
    /// method a URL does not take is [`Error::MethodNotAllowed`]; what is supported is listed in
    /// the CapabilityStatement.
    #[error("{0}")]
    NotSupported(String),
    /// The requested format cannot be produced. 406.
    #[error("{0}")]
    NotAcceptable(String),
    /// A version conflict the client can retry. 409.
    #[error("{0}")]
    Conflict(String),
    /// A precondition (If-Match, conditional criteria) failed. 412.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The request body is larger than allowed. 413.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body's content type is not supported. 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The client did not send its request in time. 408.
    #[error("{0}")]
    RequestTimeout(String),
    /// The server could not answer in time. 503, so clients may retry.
    #[error("{0}")]
    Timeout(String),
    /// The store could not be reached or failed; a remote target that is down. 503.
    #[error("store unavailable: {0}")]
    StoreUnavailable(String),
    /// A remote FHIR server answered with something that is not a usable answer (garbage, an
    /// early close, a 5xx without an OperationOutcome). 502.
    #[error("bad gateway: {0}")]
    BadGateway(String),
    /// A remote FHIR server did not answer in time. 504.
    #[error("gateway timeout: {0}")]
    GatewayTimeout(String),
    /// A bug on our side. 500.
    #[error("internal error: {0}")]
    Internal(String),
}

fn summary(issues: &[Issue]) -> String {
    issues.iter().map(|i| i.diagnostics.as_str()).collect::<Vec<_>>().join("; ")
}

impl Error {
    /// A 400 with one issue.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(vec![Issue::error(IssueType::Invalid, message)])
    }

    /// The same error, its messages prefixed with `context` (e.g. which bundle entry failed).
    pub fn context(self, context: &str) -> Self {
        let prefix = |m: String| format!("{context}: {m}");
        let issues = |list: Vec<Issue>| {
            list.into_iter().map(|i| Issue { diagnostics: prefix(i.diagnostics.clone()), ..i }).collect()
        };
        match self {
            Self::BadRequest(list) => Self::BadRequest(issues(list)),
            Self::Invalid(list) => Self::Invalid(issues(list)),
            Self::Unauthorized(m) => Self::Unauthorized(prefix(m)),
            Self::Forbidden(m) => Self::Forbidden(prefix(m)),
            Self::NotFound(m) => Self::NotFound(prefix(m)),
            Self::Gone(m) => Self::Gone(prefix(m)),
            Self::MethodNotAllowed(m) => Self::MethodNotAllowed(prefix(m)),
            Self::NotSupported(m) => Self::NotSupported(prefix(m)),
            Self::NotAcceptable(m) => Self::NotAcceptable(prefix(m)),
            Self::Conflict(m) => Self::Conflict(prefix(m)),
            Self::PreconditionFailed(m) => Self::PreconditionFailed(prefix(m)),
            Self::PayloadTooLarge(m) => Self::PayloadTooLarge(prefix(m)),
            Self::UnsupportedMediaType(m) => Self::UnsupportedMediaType(prefix(m)),
            Self::RequestTimeout(m) => Self::RequestTimeout(prefix(m)),
            Self::Timeout(m) => Self::Timeout(prefix(m)),
            Self::StoreUnavailable(m) => Self::StoreUnavailable(prefix(m)),
            Self::BadGateway(m) => Self::BadGateway(prefix(m)),
            Self::GatewayTimeout(m) => Self::GatewayTimeout(prefix(m)),
            Self::Internal(m) => Self::Internal(prefix(m)),
            Self::Unprocessable(list) => Self::Unprocessable(issues(list)),
        }
    }

    /// A 422 with one `processing` issue.
    pub(crate) fn unprocessable(message: impl Into<String>) -> Self {
        Self::Unprocessable(vec![Issue::error(IssueType::Processing, message)])
    }

    /// The HTTP status code for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) | Self::Invalid(_) | Self::NotSupported(_) => 400,
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::NotAcceptable(_) => 406,
            Self::RequestTimeout(_) => 408,
            Self::Conflict(_) => 409,
            Self::Gone(_) => 410,
            Self::PreconditionFailed(_) => 412,
            Self::PayloadTooLarge(_) => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::Unprocessable(_) => 422,
            Self::Internal(_) => 500,
            Self::BadGateway(_) => 502,
            Self::StoreUnavailable(_) | Self::Timeout(_) => 503,
            Self::GatewayTimeout(_) => 504,
        }
    }

    /// The OperationOutcome describing this error.
    pub fn outcome(&self) -> OperationOutcome {
        let issue = |code: IssueType, message: &str| vec![Issue::error(code, message)];
        let issues = match self {
            Self::BadRequest(issues) | Self::Invalid(issues) | Self::Unprocessable(issues) => issues.clone(),
            Self::Unauthorized(m) => issue(IssueType::Login, m),
            Self::Forbidden(_) => issue(IssueType::Forbidden, &self.to_string()),
            Self::NotFound(m) => issue(IssueType::NotFound, m),
            Self::Gone(m) => issue(IssueType::Deleted, m),
            Self::MethodNotAllowed(m)
            | Self::NotSupported(m)
            | Self::NotAcceptable(m)
            | Self::UnsupportedMediaType(m) => issue(IssueType::NotSupported, m),
            Self::Conflict(m) => issue(IssueType::Conflict, m),
            Self::PreconditionFailed(m) => issue(IssueType::Conflict, m),
            Self::PayloadTooLarge(m) => issue(IssueType::TooCostly, m),
            Self::Timeout(m) | Self::RequestTimeout(m) => issue(IssueType::Timeout, m),
            Self::StoreUnavailable(_) | Self::BadGateway(_) => issue(IssueType::Transient, &self.to_string()),
            Self::GatewayTimeout(_) => issue(IssueType::Timeout, &self.to_string()),
            Self::Internal(_) => issue(IssueType::Exception, &self.to_string()),
        };
        OperationOutcome { issues }
    }

    /// The OperationOutcome as JSON.
    pub(crate) fn outcome_json(&self) -> Value {
        self.outcome().to_json()
    }
}

impl From<crate::storage::StoreError> for Error {
    fn from(e: crate::storage::StoreError) -> Self {
        use crate::storage::StoreError;
        match e {
            StoreError::VersionConflict { .. } => Self::Conflict(e.to_string()),
            StoreError::Unavailable(m) => Self::StoreUnavailable(m),
            StoreError::Corrupt(m) => Self::Internal(format!("store returned corrupt data: {m}")),
            StoreError::Unsupported(m) => Self::BadRequest(vec![Issue::error(IssueType::NotSupported, m)]),
            StoreError::Timeout(m) => Self::Timeout(m),
            StoreError::GuardMatched(_) => Self::PreconditionFailed(e.to_string()),
        }
    }
}
