//! OperationOutcome: the resource every error (and some successes) is reported as.
//! See <https://hl7.org/fhir/R4/operationoutcome.html>.

use serde_json::{Value, json};

/// `OperationOutcome.issue.severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

impl Severity {
    fn code(self) -> &'static str {
        match self {
            Self::Fatal => "fatal",
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Information => "information",
        }
    }
}

/// `OperationOutcome.issue.code` (the subset of the IssueType value set we report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueType {
    Invalid,
    Structure,
    Required,
    Value,
    Invariant,
    Processing,
    NotSupported,
    NotFound,
    Deleted,
    Conflict,
    TooCostly,
    Timeout,
    Transient,
    Exception,
    Informational,
    Login,
    Forbidden,
}

impl IssueType {
    fn code(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Structure => "structure",
            Self::Required => "required",
            Self::Value => "value",
            Self::Invariant => "invariant",
            Self::Processing => "processing",
            Self::NotSupported => "not-supported",
            Self::NotFound => "not-found",
            Self::Deleted => "deleted",
            Self::Conflict => "conflict",
            Self::TooCostly => "too-costly",
            Self::Timeout => "timeout",
            Self::Transient => "transient",
            Self::Exception => "exception",
            Self::Informational => "informational",
            Self::Login => "login",
            Self::Forbidden => "forbidden",
        }
    }
}

/// One `OperationOutcome.issue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    pub code: IssueType,
    pub diagnostics: String,
    /// FHIRPath-like location of the problem, e.g. `Patient.name[0].given`.
    pub expression: Option<String>,
}

impl Issue {
    /// An error-severity issue.
    pub fn error(code: IssueType, diagnostics: impl Into<String>) -> Self {
        Self { severity: Severity::Error, code, diagnostics: diagnostics.into(), expression: None }
    }

    /// A warning-severity issue.
    pub fn warning(code: IssueType, diagnostics: impl Into<String>) -> Self {
        Self { severity: Severity::Warning, code, diagnostics: diagnostics.into(), expression: None }
    }

    /// An information-severity issue.
    pub(crate) fn information(diagnostics: impl Into<String>) -> Self {
        Self {
            severity: Severity::Information,
            code: IssueType::Informational,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }

    /// The same issue, located at `path`.
    pub fn at(mut self, path: impl Into<String>) -> Self {
        self.expression = Some(path.into());
        self
    }
}

/// An OperationOutcome resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationOutcome {
    pub issues: Vec<Issue>,
}

impl OperationOutcome {
    /// The resource as FHIR JSON.
    pub fn to_json(&self) -> Value {
        let issues: Vec<Value> = self
            .issues
            .iter()
            .map(|i| {
                let mut v = json!({
                    "severity": i.severity.code(),
                    "code": i.code.code(),
                    "diagnostics": i.diagnostics,
                });
                if let Some(path) = &i.expression {
                    v["expression"] = json!([path]);
                }
                v
            })
            .collect();
        json!({ "resourceType": "OperationOutcome", "issue": issues })
    }
}
