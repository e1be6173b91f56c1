//! `CodeSystem/$subsumes` (<https://hl7.org/fhir/R4/codesystem-operation-subsumes.html>): how two
//! codes of one loaded (or stored) code system relate in its hierarchy: `equivalent`,
//! `subsumes` (A is above B), `subsumed-by` (A is below B) or `not-subsumed`.
//!
//! `GET|POST CodeSystem/$subsumes?system=...&codeA=...&codeB=...` (or `codingA`/`codingB`),
//! `CodeSystem/[id]/$subsumes?codeA=...&codeB=...`. A system not loaded here is a 404; a code it
//! does not define a 400.

use serde_json::{Value, json};

use super::super::{Request, Response};
use super::params::{Coded, Params};
use super::resolve::Resolver;
use crate::error::{Error, Result};

pub(super) const NAME: &str = "subsumes";

pub(super) async fn handle(resolver: &mut Resolver<'_, '_>, request: &Request, id: Option<&str>) -> Result<Response> {
    let params = Params::of(request)?;
    let one = |code: &str, coding: &str| -> Result<Coded> {
        if let Some(code) = params.text(code)? {
            return Ok(Coded { code: code.to_owned(), ..Coded::default() });
        }
        params
            .value(coding)
            .and_then(Coded::of_coding)
            .ok_or_else(|| Error::bad_request(format!("`$subsumes` needs `{code}` or `{coding}`")))
    };
    let (a, b) = (one("codeA", "codingA")?, one("codeB", "codingB")?);
    let named = params.text("system")?.map(str::to_owned).or_else(|| a.system.clone()).or_else(|| b.system.clone());
    for coded in [&a, &b] {
        if let (Some(system), Some(named)) = (&coded.system, &named) {
            if system != named {
                return Err(Error::bad_request(format!(
                    "`$subsumes` compares codes of one system: `{system}` is not `{named}`"
                )));
            }
        }
    }
    let system = super::code_system(resolver, id, named.as_deref(), params.text("version")?).await?;
    let find = |c: &Coded| {
        system.find(&c.code).ok_or_else(|| {
            Error::bad_request(format!("the code `{}` is not defined by the code system `{}`", c.code, system.url))
        })
    };
    let (ia, ib) = (find(&a)?, find(&b)?);
    let outcome = if ia == ib {
        "equivalent"
    } else if system.subsumed_by(ib, ia) {
        "subsumes"
    } else if system.subsumed_by(ia, ib) {
        "subsumed-by"
    } else {
        "not-subsumed"
    };
    let answer: Value = json!({"resourceType": "Parameters", "parameter": [{"name": "outcome", "valueCode": outcome}]});
    Ok(Response::json(200, answer))
}
