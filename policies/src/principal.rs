//! Who is asking: the claims of a verified token turned into a Cedar principal
//! (`Fhir::User` or `Fhir::Application`, member of its `Fhir::Role`s and `Fhir::Group`s).

use serde_json::Value;

use crate::smart::SmartGrants;

/// Whether the token was issued to a person or to an application acting on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PrincipalKind {
    User,
    Application,
}

/// The principal of a request, built from token claims.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub issuer: String,
    /// `oid`, else `sub`.
    pub subject: String,
    /// `tid` ("" when absent).
    pub tenant: String,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    /// `scp` or `scope`, split on spaces.
    pub scopes: Vec<String>,
    pub fhir_user: String,
    /// `azp`, else `appid`.
    pub client_id: String,
    /// The patient in context ("" when none).
    pub patient: String,
    /// The encounter in context (SMART `encounter`, `Encounter/` prefix removed; "" when none).
    pub encounter: String,
}

impl Principal {
    /// The principal a token's claims describe. `patient_claim` names the claim carrying the
    /// patient context (SMART's `patient` by default). A token is an application's when
    /// `idtyp` is `app`, or when it has neither delegated scopes nor a user claim.
    pub fn from_claims(claims: &Value, patient_claim: &str) -> Self {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
        let list = |name: &str| -> Vec<String> {
            match claims.get(name) {
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
                _ => Vec::new(),
            }
        };
        let mut scopes = list("scp");
        scopes.extend(list("scope"));
        let subject = [text("oid"), text("sub")].into_iter().find(|s| !s.is_empty()).unwrap_or_default();
        let client_id = [text("azp"), text("appid")].into_iter().find(|s| !s.is_empty()).unwrap_or_default();
        let user_claim = ["fhirUser", "upn", "preferred_username", "name", "email"]
            .iter()
            .any(|c| claims.get(*c).is_some_and(|v| !v.is_null()));
        let kind = match claims.get("idtyp").and_then(Value::as_str) {
            Some("app") => PrincipalKind::Application,
            Some("user") => PrincipalKind::User,
            _ if scopes.is_empty() && !user_claim => PrincipalKind::Application,
            _ => PrincipalKind::User,
        };
        let patient = match claims.get(patient_claim) {
            Some(Value::String(s)) => s.strip_prefix("Patient/").unwrap_or(s).to_string(),
            _ => String::new(),
        };
        let encounter = text("encounter");
        let encounter = encounter.strip_prefix("Encounter/").unwrap_or(&encounter).to_string();
        Self {
            kind,
            issuer: text("iss"),
            subject,
            tenant: text("tid"),
            roles: list("roles"),
            groups: list("groups"),
            scopes,
            fhir_user: text("fhirUser"),
            client_id,
            patient,
            encounter,
        }
    }

    /// The SMART permissions this principal's scopes grant.
    pub fn smart(&self) -> SmartGrants {
        SmartGrants::from_scopes(&self.scopes)
    }

    /// The Cedar entity type name (`User` or `Application`, in namespace `Fhir`).
    pub fn entity_type(&self) -> &'static str {
        match self.kind {
            PrincipalKind::User => "Fhir::User",
            PrincipalKind::Application => "Fhir::Application",
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn entra_user_and_app_tokens() {
        let user = Principal::from_claims(
            &json!({"iss": "i", "oid": "o1", "sub": "s1", "tid": "t", "roles": ["globalReader"],
                    "scp": "user/*.read openid", "azp": "client", "fhirUser": "Practitioner/9",
                    "patient": "Patient/p1"}),
            "patient",
        );
        assert_eq!(user.kind, PrincipalKind::User);
        assert_eq!(user.subject, "o1");
        assert_eq!(user.scopes, ["user/*.read", "openid"]);
        assert_eq!(user.patient, "p1");
        assert_eq!(user.encounter, "", "no encounter claim");
        let launched =
            Principal::from_claims(&json!({"sub": "s", "scope": "launch", "encounter": "Encounter/e1"}), "patient");
        assert_eq!(launched.encounter, "e1");
        let app = Principal::from_claims(&json!({"sub": "s2", "roles": ["globalAdmin"], "appid": "a"}), "patient");
        assert_eq!(app.kind, PrincipalKind::Application);
        assert_eq!(app.client_id, "a");
        assert_eq!(app.entity_type(), "Fhir::Application");
    }
}
