//! The FHIR interaction a request performs, as a Cedar action: one per interaction of
//! <https://hl7.org/fhir/R4/http.html>, plus the bulk operations and a generic `operation`.

use std::fmt;

/// A FHIR interaction (the Cedar `Fhir::Action` id is [`Action::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    Vread,
    SearchType,
    SearchSystem,
    SearchCompartment,
    Create,
    Update,
    Patch,
    Delete,
    HistoryInstance,
    HistoryType,
    HistorySystem,
    Capabilities,
    Batch,
    Transaction,
    Export,
    Import,
    ConvertData,
    Operation,
}

/// The resource(s) a request names: `Type`, `Type/id`, both empty at system level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Target {
    pub resource_type: String,
    pub id: String,
    /// For `$operation` requests, the operation name without `$`.
    pub operation: String,
}

impl Action {
    /// Every action, for listing and tests.
    pub const ALL: [Action; 19] = [
        Self::Read,
        Self::Vread,
        Self::SearchType,
        Self::SearchSystem,
        Self::SearchCompartment,
        Self::Create,
        Self::Update,
        Self::Patch,
        Self::Delete,
        Self::HistoryInstance,
        Self::HistoryType,
        Self::HistorySystem,
        Self::Capabilities,
        Self::Batch,
        Self::Transaction,
        Self::Export,
        Self::Import,
        Self::ConvertData,
        Self::Operation,
    ];

    /// The Cedar action id.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Vread => "vread",
            Self::SearchType => "search-type",
            Self::SearchSystem => "search-system",
            Self::SearchCompartment => "search-compartment",
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::HistoryInstance => "history-instance",
            Self::HistoryType => "history-type",
            Self::HistorySystem => "history-system",
            Self::Capabilities => "capabilities",
            Self::Batch => "batch",
            Self::Transaction => "transaction",
            Self::Export => "export",
            Self::Import => "import",
            Self::ConvertData => "convert-data",
            Self::Operation => "operation",
        }
    }

    /// The action named `name` (its Cedar id).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The SMART permission letter this action needs (`c r u d s`), if SMART scopes can grant it.
    pub fn smart_letter(self) -> Option<char> {
        match self {
            Self::Read | Self::Vread | Self::HistoryInstance => Some('r'),
            Self::SearchType
            | Self::SearchSystem
            | Self::SearchCompartment
            | Self::HistoryType
            | Self::HistorySystem
            // A bulk export searches each type it exports (see `smart::needed_with`).
            | Self::Export => Some('s'),
            Self::Create => Some('c'),
            Self::Update | Self::Patch => Some('u'),
            Self::Delete => Some('d'),
            _ => None,
        }
    }

    /// A terminology operation on a ValueSet or CodeSystem needs what reading it needs: a read of
    /// the one named by id, a search of the type for one named by `url`; elsewhere it is an
    /// operation like any other.
    fn terminology(asked: &fhirgate_engine::access::Target) -> Self {
        match (asked.resource_type.as_str(), asked.id.is_empty()) {
            ("ValueSet" | "CodeSystem", true) => Self::SearchType,
            ("ValueSet" | "CodeSystem", false) => Self::Read,
            _ => Self::Operation,
        }
    }

    /// The action of an interaction the engine parsed, and what it names: the one parse both
    /// the dispatch and the policies use.
    pub fn of(asked: &fhirgate_engine::access::Target) -> (Self, Target) {
        use fhirgate_engine::access::Interaction as I;
        let action = match asked.interaction {
            I::Read => Self::Read,
            I::Vread => Self::Vread,
            I::SearchType => Self::SearchType,
            I::SearchSystem => Self::SearchSystem,
            I::SearchCompartment => Self::SearchCompartment,
            I::Create => Self::Create,
            I::Update => Self::Update,
            I::Patch => Self::Patch,
            I::Delete => Self::Delete,
            I::HistoryInstance => Self::HistoryInstance,
            I::HistoryType => Self::HistoryType,
            I::HistorySystem => Self::HistorySystem,
            I::Capabilities => Self::Capabilities,
            I::Batch => Self::Batch,
            I::Transaction => Self::Transaction,
            I::Operation => match asked.operation.as_str() {
                // `Patient/[id]/$everything` is a search of the compartment of `Patient/[id]`,
                // decided as one (`context.operation` still names it).
                "everything" if !asked.id.is_empty() => Self::SearchCompartment,
                // The kick-off, and polling, cancelling and downloading the job it started.
                "export" | "export-status" | "export-file" => Self::Export,
                // Polling, downloading the errors of and cancelling an import are decided as the
                // import itself (the engine serves a job only to the client that started it).
                "import" | "import-status" => Self::Import,
                "convert-data" => Self::ConvertData,
                // `[type]/$validate` reads no data but the instance it may name, which the
                // engine decides as a read of it; the operation is decided as a read of the type.
                "validate" if !asked.resource_type.is_empty() => Self::Read,
                "expand" | "lookup" | "validate-code" | "subsumes" => Self::terminology(asked),
                _ => Self::Operation,
            },
        };
        let target = Target {
            resource_type: asked.resource_type.clone(),
            id: asked.id.clone(),
            operation: asked.operation.clone(),
        };
        (action, target)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhirgate_engine::interaction::{Method, Request};

    #[test]
    fn engine_interactions_map_to_actions() {
        let a = |m, p: &str| {
            let asked = fhirgate_engine::access::Target::of(&Request::new(m, p, "http://x")).ok()?;
            let (action, target) = Action::of(&asked);
            Some((action, target.resource_type, target.id))
        };
        assert_eq!(a(Method::Get, "Patient/1"), Some((Action::Read, "Patient".into(), "1".into())));
        assert_eq!(a(Method::Get, "Patient/1/_history/2"), Some((Action::Vread, "Patient".into(), "1".into())));
        assert_eq!(a(Method::Get, "Patient"), Some((Action::SearchType, "Patient".into(), String::new())));
        assert_eq!(a(Method::Post, "Patient"), Some((Action::Create, "Patient".into(), String::new())));
        assert_eq!(a(Method::Delete, "Patient/1"), Some((Action::Delete, "Patient".into(), "1".into())));
        assert_eq!(a(Method::Get, "metadata"), Some((Action::Capabilities, String::new(), String::new())));
        assert_eq!(a(Method::Get, "_history"), Some((Action::HistorySystem, String::new(), String::new())));
        assert_eq!(a(Method::Get, "$export").map(|x| x.0), Some(Action::Export));
        assert_eq!(a(Method::Get, "Group/1/$export").map(|x| x.0), Some(Action::Export));
        assert_eq!(a(Method::Delete, "$export-status").map(|x| x.0), Some(Action::Export));
        assert_eq!(a(Method::Get, "$export-file").map(|x| x.0), Some(Action::Export));
        assert_eq!(a(Method::Get, "$import-status").map(|x| x.0), Some(Action::Import));
        assert_eq!(a(Method::Get, "Patient/$everything").map(|x| x.0), Some(Action::Operation));
        assert_eq!(
            a(Method::Get, "Patient/1/$everything"),
            Some((Action::SearchCompartment, "Patient".into(), "1".into()))
        );
        assert_eq!(a(Method::Get, "Patient/1/Observation").map(|x| x.0), Some(Action::SearchCompartment));
        assert_eq!(a(Method::Get, "ValueSet/$expand").map(|x| x.0), Some(Action::SearchType));
        assert_eq!(a(Method::Post, "ValueSet/vs1/$validate-code").map(|x| x.0), Some(Action::Read));
        assert_eq!(a(Method::Get, "CodeSystem/$lookup").map(|x| x.0), Some(Action::SearchType));
        assert_eq!(a(Method::Get, "CodeSystem/cs1/$subsumes").map(|x| x.0), Some(Action::Read));
        assert_eq!(a(Method::Get, "Patient/$expand").map(|x| x.0), Some(Action::Operation));
        assert_eq!(a(Method::Put, "Patient"), None);
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
    }
}
