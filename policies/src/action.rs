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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
            | Self::HistorySystem => Some('s'),
            Self::Create => Some('c'),
            Self::Update | Self::Patch => Some('u'),
            Self::Delete => Some('d'),
            _ => None,
        }
    }

    /// The interaction an HTTP method and a path below the FHIR base perform, and what they
    /// name. `None` for paths that are not FHIR interactions.
    pub fn from_http(method: &str, path: &str, has_query: bool) -> Option<(Self, Target)> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        let method = method.to_ascii_uppercase();
        let get = method == "GET" || method == "HEAD";
        let target =
            |t: &str, id: &str| Target { resource_type: t.to_string(), id: id.to_string(), operation: String::new() };
        if let Some(op) = segments.last().and_then(|s| s.strip_prefix('$')) {
            let action = match op {
                "export" => Self::Export,
                "import" => Self::Import,
                "convert-data" => Self::ConvertData,
                _ => Self::Operation,
            };
            let mut t = match segments.as_slice() {
                [_] => Target::default(),
                [ty, _] => target(ty, ""),
                [ty, id, _] => target(ty, id),
                _ => Target::default(),
            };
            t.operation = op.to_string();
            return Some((action, t));
        }
        let found = match (segments.as_slice(), method.as_str()) {
            ([], "POST") => (Self::Transaction, Target::default()),
            ([], _) if get => (Self::SearchSystem, Target::default()),
            (["metadata"], _) if get => (Self::Capabilities, Target::default()),
            (["_history"], _) if get => (Self::HistorySystem, Target::default()),
            (["_search"], "POST") => (Self::SearchSystem, Target::default()),
            ([t], "POST") => (Self::Create, target(t, "")),
            ([t], _) if get => (Self::SearchType, target(t, "")),
            ([t], "PUT") if has_query => (Self::Update, target(t, "")),
            ([t], "DELETE") if has_query => (Self::Delete, target(t, "")),
            ([t], "PATCH") if has_query => (Self::Patch, target(t, "")),
            ([t, "_search"], "POST") => (Self::SearchType, target(t, "")),
            ([t, "_history"], _) if get => (Self::HistoryType, target(t, "")),
            ([t, id], _) if get => (Self::Read, target(t, id)),
            ([t, id], "PUT") => (Self::Update, target(t, id)),
            ([t, id], "PATCH") => (Self::Patch, target(t, id)),
            ([t, id], "DELETE") => (Self::Delete, target(t, id)),
            ([t, id, "_history"], _) if get => (Self::HistoryInstance, target(t, id)),
            ([t, id, "_history", _], _) if get => (Self::Vread, target(t, id)),
            // `Patient/1/Observation`: a compartment search; the target is the compartment's owner.
            ([t, id, _], _) if get => (Self::SearchCompartment, target(t, id)),
            _ => return None,
        };
        Some(found)
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

    #[test]
    fn http_requests_map_to_interactions() {
        let a = |m, p| Action::from_http(m, p, false).map(|(a, t)| (a, t.resource_type, t.id));
        assert_eq!(a("GET", "Patient/1"), Some((Action::Read, "Patient".into(), "1".into())));
        assert_eq!(a("GET", "Patient/1/_history/2"), Some((Action::Vread, "Patient".into(), "1".into())));
        assert_eq!(a("GET", "Patient"), Some((Action::SearchType, "Patient".into(), String::new())));
        assert_eq!(a("POST", "Patient"), Some((Action::Create, "Patient".into(), String::new())));
        assert_eq!(a("DELETE", "Patient/1"), Some((Action::Delete, "Patient".into(), "1".into())));
        assert_eq!(a("GET", "metadata"), Some((Action::Capabilities, String::new(), String::new())));
        assert_eq!(a("GET", "_history"), Some((Action::HistorySystem, String::new(), String::new())));
        assert_eq!(a("GET", "$export").map(|x| x.0), Some(Action::Export));
        assert_eq!(a("GET", "Patient/$everything").map(|x| x.0), Some(Action::Operation));
        assert_eq!(a("GET", "Patient/1/Observation").map(|x| x.0), Some(Action::SearchCompartment));
        assert_eq!(a("PUT", "Patient"), None);
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
    }
}
