//! `ValueSet/$validate-code` (<https://hl7.org/fhir/R4/valueset-operation-validate-code.html>)
//! and `CodeSystem/$validate-code` (<https://hl7.org/fhir/R4/codesystem-operation-validate-code.html>):
//! whether a code (`code` + `system`, `coding`, or any coding of `codeableConcept`) is in a
//! value set's expansion, or defined by a code system. The answer is `Parameters` with `result`,
//! `display` (the code's display) and `message` (why not, or a display that differs).
//!
//! A value set or code system that is not loaded here is a 404; a value set that cannot be
//! expanded from what is loaded a 422, never a guess.

use serde_json::{Value, json};

use super::super::{Request, Response};
use super::params::{Coded, Params};
use super::resolve::Resolver;
use crate::error::Result;
use crate::terminology::Limits;

pub(super) const NAME: &str = "validate-code";

/// `ValueSet/$validate-code`.
pub(super) async fn value_set(
    resolver: &mut Resolver<'_, '_>,
    request: &Request,
    id: Option<&str>,
) -> Result<Response> {
    let params = Params::of(request)?;
    let value_set = resolver.value_set_asked(&params, id, "validate-code").await?;
    let given = Coded::given(&params, "system", "systemVersion")?;
    let expansion = resolver.expand(&value_set, &Limits::default()).await?;
    let found = given.iter().find_map(|c| expansion.find(c.system.as_deref(), &c.code).map(|e| (c, e)));
    let answer = match found {
        Some((coded, entry)) => verdict(true, entry.display.as_deref(), coded, None),
        None => {
            let shown: Vec<String> = given.iter().map(show).collect();
            let message = format!("{} is not in the value set `{}`", shown.join(", "), value_set.url);
            verdict(false, None, &given[0], Some(message))
        }
    };
    Ok(Response::json(200, answer))
}

/// `CodeSystem/$validate-code`.
pub(super) async fn code_system(
    resolver: &mut Resolver<'_, '_>,
    request: &Request,
    id: Option<&str>,
) -> Result<Response> {
    let params = Params::of(request)?;
    let url = params.text("url")?.map(str::to_owned);
    let mut given = Coded::given(&params, "url", "version")?;
    // `code` goes with `url` here; a coding's own system must be the code system's.
    for coded in &mut given {
        if coded.system.is_none() {
            coded.system.clone_from(&url);
        }
    }
    let system_url = url.or_else(|| given.iter().find_map(|c| c.system.clone()));
    let system = super::code_system(resolver, id, system_url.as_deref(), params.text("version")?).await?;
    let found = given
        .iter()
        .filter(|c| c.system.as_deref().is_none_or(|s| s == system.url))
        .find_map(|c| system.concept(&c.code).map(|concept| (c, concept)));
    let answer = match found {
        Some((coded, concept)) => verdict(true, concept.display.as_deref(), coded, None),
        None => {
            let shown: Vec<String> = given.iter().map(show).collect();
            let message = format!("{} is not defined by the code system `{}`", shown.join(", "), system.url);
            verdict(false, None, &given[0], Some(message))
        }
    };
    Ok(Response::json(200, answer))
}

/// `system|code`, for messages.
fn show(coded: &Coded) -> String {
    match &coded.system {
        Some(system) => format!("`{system}|{}`", coded.code),
        None => format!("`{}`", coded.code),
    }
}

/// The `Parameters` answer; a display given that differs from the code's is noted (the code is
/// still valid).
fn verdict(result: bool, display: Option<&str>, coded: &Coded, message: Option<String>) -> Value {
    let mut out = vec![json!({"name": "result", "valueBoolean": result})];
    let mut message = message;
    if let (Some(expected), Some(given)) = (display, coded.display.as_deref()) {
        if !expected.eq_ignore_ascii_case(given) {
            message = Some(format!("the display `{given}` is not the code's display `{expected}`"));
        }
    }
    if let Some(message) = message {
        out.push(json!({"name": "message", "valueString": message}));
    }
    if let Some(display) = display {
        out.push(json!({"name": "display", "valueString": display}));
    }
    json!({"resourceType": "Parameters", "parameter": out})
}
