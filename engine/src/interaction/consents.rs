//! The Consents that data-level decisions read (see [`crate::access::Access::consents_wanted`]):
//! for the resources about to be decided, the current Consents of their patients, read from the
//! store in one search per [`PATIENTS_PER_SEARCH`] patients, unfiltered by the client's own
//! decisions (they are inputs of those decisions) and never put in a response.

use std::collections::BTreeSet;

use serde_json::Value;

use super::Engine;
use crate::access::Access;
use crate::error::Result;
use crate::search::query::{Clause, Predicate, ReferenceTarget, ResultParams, SearchQuery};

/// Patients named by one search for Consents (here and on remote targets).
pub(crate) const PATIENTS_PER_SEARCH: usize = 100;
/// Most Consents read for one search's patients; beyond it, those patients' Consents count as
/// unreadable (decisions on their data assume a deny).
const MAX_CONSENTS: u32 = 1_000;

/// Gives `access` the Consents of the patients it wants for deciding `resources`; nothing is
/// read when it wants none.
pub(crate) async fn load(engine: &Engine, access: &dyn Access, resources: &[&Value]) -> Result<()> {
    let wanted = wanted(access, resources);
    for patients in wanted.chunks(PATIENTS_PER_SEARCH) {
        let query = of_patients(patients);
        let matches = engine.store.search(&query, MAX_CONSENTS + 1).await?;
        if matches.len() > MAX_CONSENTS as usize {
            tracing::warn!(patients = patients.len(), "too many Consents to read; decisions on their data deny");
            access.give_consents(patients, None);
            continue;
        }
        let consents = engine
            .store
            .vread_many(&matches)
            .await?
            .iter()
            .filter_map(|v| v.json.as_deref())
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect();
        access.give_consents(patients, Some(consents));
    }
    Ok(())
}

/// The patients whose Consents `access` wants for deciding `resources`, each once, sorted.
pub(crate) fn wanted(access: &dyn Access, resources: &[&Value]) -> Vec<String> {
    let wanted: BTreeSet<String> = resources.iter().flat_map(|r| access.consents_wanted(r)).collect();
    wanted.into_iter().collect()
}

/// `Consent?patient=Patient/a,Patient/b,...`.
fn of_patients(patients: &[String]) -> SearchQuery {
    let alternatives = patients
        .iter()
        .map(|id| Predicate::Reference(ReferenceTarget::Local { types: vec!["Patient".to_owned()], id: id.clone() }))
        .collect();
    SearchQuery {
        resource_type: Some("Consent".to_owned()),
        clauses: vec![Clause {
            param: "patient".to_owned(),
            modifier: None,
            alternatives,
            written: ("patient".to_owned(), String::new()),
        }],
        result: ResultParams::default(),
        compartment: None,
        after: None,
        after_sort: Vec::new(),
    }
}
