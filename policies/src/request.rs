//! A FHIR request as a Cedar request: the principal entity (with its roles and groups as
//! parents), the `Fhir::Action`, the resource entity (of its type) and the context record.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::sync::LazyLock;

use cedar_policy::{Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};

use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::search::index::extract_only;

use crate::action::{Action, Target};
use crate::attributes::common::{COMMON, CommonInput};
use crate::attributes::params::entity;
use crate::attributes::values;
use crate::attributes::wanted::Wanted;
use crate::consent::Verdict;
use crate::error::Error;
use crate::principal::Principal;
use crate::resource::ResourceFacts;
use crate::smart;

/// The circumstances of a request, from the HTTP exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RequestContext {
    /// Unix seconds of the request.
    pub epoch_seconds: i64,
    /// Client address ("" when unknown).
    pub client_ip: String,
    /// `X-Purpose-Of-Use` ("" when absent).
    pub purpose_of_use: String,
    /// `X-Break-Glass` present.
    pub break_glass: bool,
    /// HTTP method.
    pub method: String,
    /// The store serving the request (`resource.store`): the target's id.
    pub store: String,
    /// The gateway target serving the request (`context.target`): `default` without
    /// `[[targets]]`.
    pub target: String,
    /// The gateway route the request took (`context.route`): `default` without `[[routes]]`.
    pub route: String,
}

/// One authorization question: may the principal perform `action` on `target`, knowing
/// `data` about the resource (data-level) or not (type-level)?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzRequest {
    pub action: Action,
    pub target: Target,
    pub data: Option<ResourceFacts>,
    /// What the Consents of the resource's patients say (`resource.consent`); [`Verdict::None`]
    /// at the type level and when the policies read no Consent.
    pub consent: Verdict,
    pub context: RequestContext,
}

impl AuthzRequest {
    /// A type-level request (before the interaction runs).
    pub fn type_level(action: Action, target: Target, context: RequestContext) -> Self {
        Self { action, target, data: None, consent: Verdict::None, context }
    }

    /// The same request, asked about one resource's data. A resource's own type and id win over
    /// the request's (history and search bundles hold other resources).
    pub fn with_data(&self, resource: &serde_json::Value) -> Self {
        Self { data: Some(ResourceFacts::of(resource)), ..self.on_resource(resource) }
    }

    /// The same request with the resource's own type and id as its target, its data not read
    /// (what an audit record of a decision on the resource names).
    pub fn on_resource(&self, resource: &serde_json::Value) -> Self {
        let mut target = self.target.clone();
        if let Some(t) = resource.get("resourceType").and_then(serde_json::Value::as_str) {
            t.clone_into(&mut target.resource_type);
        }
        if let Some(id) = resource.get("id").and_then(serde_json::Value::as_str) {
            id.clone_into(&mut target.id);
        }
        Self { target, ..self.clone() }
    }

    /// [`Self::with_data`] with the search-parameter attributes `wanted` extracted, by the
    /// engine's own index extraction (nothing is extracted when none is wanted).
    pub(crate) fn with_data_reading(&self, resource: &serde_json::Value, wanted: &Wanted) -> Self {
        let mut request = self.with_data(resource);
        let params = wanted.params(&request.target.resource_type);
        if let Some(facts) = &mut request.data {
            let codes: Vec<&str> = params.iter().map(|p| p.code.as_str()).collect();
            let entries = if codes.is_empty() { Vec::new() } else { extract_only(Definitions::r4(), resource, &codes) };
            facts.params = Some(values::from_entries(&params, &entries));
        }
        request
    }
}

/// The entity types requests use, parsed once: Cedar's parser is a real cost per decision.
static TYPES: LazyLock<HashMap<&'static str, EntityTypeName>> = LazyLock::new(|| {
    ["Fhir::User", "Fhir::Application", "Fhir::Role", "Fhir::Group", "Fhir::Resource", "Fhir::Action"]
        .into_iter()
        .filter_map(|name| EntityTypeName::from_str(name).ok().map(|t| (name, t)))
        .collect()
});

fn uid(type_name: &str, id: &str) -> Result<EntityUid, Error> {
    let t = match TYPES.get(type_name) {
        Some(t) => t.clone(),
        None => EntityTypeName::from_str(type_name).map_err(|e| Error::Request(e.to_string()))?,
    };
    Ok(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
}

fn strings<'a>(values: impl IntoIterator<Item = &'a String>) -> RestrictedExpression {
    RestrictedExpression::new_set(values.into_iter().map(|v| RestrictedExpression::new_string(v.clone())))
}

fn string(value: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(value.to_string())
}

fn record(pairs: Vec<(&str, RestrictedExpression)>) -> Result<RestrictedExpression, Error> {
    RestrictedExpression::new_record(pairs.into_iter().map(|(k, v)| (k.to_string(), v)))
        .map_err(|e| Error::Request(e.to_string()))
}

/// The Cedar pieces of a request.
pub(crate) struct CedarParts {
    pub principal: EntityUid,
    pub action: EntityUid,
    pub resource: EntityUid,
    pub context: Context,
    pub entities: Entities,
}

/// The Cedar parts of `request`; `actions` are the schema's action entities. Nothing is checked
/// against the schema at decision time: this module builds the entities and the context, always
/// in the schema's shape (the test below checks every action, both phases and both principal
/// kinds against it), and those checks were a large part of a decision's cost.
pub(crate) fn to_cedar(
    principal: &Principal,
    request: &AuthzRequest,
    actions: &Entities,
    wanted: &Wanted,
) -> Result<CedarParts, Error> {
    let grants = principal.smart();
    let principal_uid = uid(principal.entity_type(), &principal.subject)?;
    let mut parents = HashSet::new();
    for role in &principal.roles {
        parents.insert(uid("Fhir::Role", role)?);
    }
    for group in &principal.groups {
        parents.insert(uid("Fhir::Group", group)?);
    }
    let claims: HashMap<String, RestrictedExpression> = [
        ("issuer", string(&principal.issuer)),
        ("subject", string(&principal.subject)),
        ("tenant", string(&principal.tenant)),
        ("roles", strings(&principal.roles)),
        ("groups", strings(&principal.groups)),
        ("scopes", strings(&principal.scopes)),
        ("smartPatient", strings(&grants.patient)),
        ("smartUser", strings(&grants.user)),
        ("smartSystem", strings(&grants.system)),
        ("fhirUser", string(&principal.fhir_user)),
        ("clientId", string(&principal.client_id)),
        ("patient", string(&principal.patient)),
        ("encounter", string(&principal.encounter)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let principal_entity =
        Entity::new(principal_uid.clone(), claims, parents).map_err(|e| Error::Request(e.to_string()))?;

    let (resource_uid, resource_entity) = resource_entity(request, wanted)?;

    let target = &request.target;
    let c = &request.context;
    let seconds = c.epoch_seconds;
    let needed: BTreeSet<String> = smart::needed_with(
        request.action,
        &target.resource_type,
        request
            .data
            .as_ref()
            .map(|d| [("category", &d.categories), ("status", &d.statuses)])
            .as_ref()
            .map(<[_; 2]>::as_slice),
    );
    let time = record(vec![
        ("epochSeconds", RestrictedExpression::new_long(seconds)),
        ("hour", RestrictedExpression::new_long(seconds.rem_euclid(86_400) / 3600)),
        // 1970-01-01 was a Thursday (4).
        ("weekday", RestrictedExpression::new_long((seconds.div_euclid(86_400) + 4).rem_euclid(7))),
    ])?;
    let mut pairs = vec![
        ("time".to_string(), time),
        ("purposeOfUse".to_string(), string(&c.purpose_of_use)),
        ("breakGlass".to_string(), RestrictedExpression::new_bool(c.break_glass)),
        ("smartNeeded".to_string(), strings(&needed)),
        ("phase".to_string(), string(if request.data.is_some() { "data" } else { "type" })),
        ("method".to_string(), string(&c.method)),
        ("operation".to_string(), string(&target.operation)),
        ("target".to_string(), string(&c.target)),
        ("route".to_string(), string(&c.route)),
    ];
    if c.client_ip.parse::<std::net::IpAddr>().is_ok() {
        pairs.push(("clientIp".to_string(), RestrictedExpression::new_ip(&c.client_ip)));
    }
    let context = Context::from_pairs(pairs).map_err(|e| Error::Request(e.to_string()))?;
    let entities = actions
        .clone()
        .add_entities([principal_entity, resource_entity], None)
        .map_err(|e| Error::Request(e.to_string()))?;
    Ok(CedarParts {
        principal: principal_uid,
        action: uid("Fhir::Action", request.action.as_str())?,
        resource: resource_uid,
        context,
        entities,
    })
}

/// The resource entity: of the target's type (`Fhir::Observation::"o1"`, `Fhir::Observation::""`
/// at type level), or `Fhir::Resource::"/"` (`"Type"`, `"Type/id"` for names that are no R4
/// type). Its attributes: the common ones, and the wanted parameters of its type.
fn resource_entity(request: &AuthzRequest, wanted: &Wanted) -> Result<(EntityUid, Entity), Error> {
    let target = &request.target;
    let input =
        CommonInput { target, facts: request.data.as_ref(), context: &request.context, consent: request.consent };
    let mut attrs: HashMap<String, RestrictedExpression> =
        COMMON.iter().map(|c| (c.name.to_owned(), (c.value)(&input))).collect();
    let uid = match entity(&target.resource_type) {
        Some(entity) => {
            let wanted = wanted.params(&target.resource_type);
            let values = match &request.data {
                Some(facts) if !wanted.is_empty() => Some(facts.params.as_ref().ok_or_else(|| {
                    Error::Request("the resource's attributes were not extracted for this policy set".into())
                })?),
                _ => None,
            };
            for param in wanted {
                let value = values.and_then(|v| v.get(&param.name)).map(values::expression).transpose()?;
                if let Some(value) = value.or_else(|| values::empty(param.shape)) {
                    attrs.insert(param.name.clone(), value);
                }
            }
            EntityUid::from_type_name_and_id(entity.type_name.clone(), EntityId::new(&target.id))
        }
        None => {
            let id = match (target.resource_type.is_empty(), target.id.is_empty()) {
                (true, _) => "/".to_string(),
                (false, true) => target.resource_type.clone(),
                (false, false) => format!("{}/{}", target.resource_type, target.id),
            };
            uid("Fhir::Resource", &id)?
        }
    };
    let entity = Entity::new(uid.clone(), attrs, HashSet::new()).map_err(|e| Error::Request(e.to_string()))?;
    Ok((uid, entity))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Action;
    use cedar_policy::Request;
    use serde_json::json;

    #[test]
    fn every_request_this_module_builds_conforms_to_the_schema() -> Result<(), Error> {
        let schema = crate::schema::schema()?;
        let actions = schema.action_entities().map_err(|e| Error::Request(e.to_string()))?;
        let user = Principal::from_claims(
            &json!({"sub": "u", "roles": ["globalReader"], "groups": ["g"], "scp": "patient/*.rs", "patient": "p1"}),
            "patient",
        );
        let app = Principal::from_claims(&json!({"sub": "a", "idtyp": "app", "roles": ["globalAdmin"]}), "patient");
        let context = RequestContext {
            epoch_seconds: 1_700_000_000,
            client_ip: "10.0.0.1".into(),
            method: "GET".into(),
            ..RequestContext::default()
        };
        let resource = json!({"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"},
            "meta": {"security": [{"code": "R"}], "tag": [{"code": "t"}]}, "category": [{"coding": [{"code": "vital-signs"}]}]});
        for action in Action::ALL {
            let target = Target { resource_type: "Observation".into(), id: "o1".into(), operation: String::new() };
            let type_level = AuthzRequest::type_level(action, target, context.clone());
            let all = Wanted::all();
            for request in [type_level.with_data_reading(&resource, &all), type_level] {
                for principal in [&user, &app] {
                    let parts = to_cedar(principal, &request, &actions, &all)?;
                    let checked = Entities::from_entities(parts.entities.iter().cloned(), Some(&schema));
                    assert!(checked.is_ok(), "{action:?}: entities do not conform: {checked:?}");
                    let request =
                        Request::new(parts.principal, parts.action, parts.resource, parts.context, Some(&schema));
                    assert!(request.is_ok(), "{action:?}: request does not conform: {request:?}");
                }
            }
        }
        Ok(())
    }
}
