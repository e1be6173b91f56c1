//! Utility functions: `trace`, `now`, `today`, `timeOfDay`, and reflection's `type()`.

use super::{Call, Output};
use crate::fhirpath::temporal::{Temporal, TemporalKind};
use crate::fhirpath::value::Item;

pub(super) fn call<'a>(c: &Call<'_, 'a, '_>) -> Option<Output<'a>> {
    Some(match c.name {
        "trace" => {
            let label = c.string_arg(0).ok().flatten().unwrap_or_default();
            tracing::trace!(label, items = c.focus.len(), "fhirpath trace");
            Ok(c.focus.clone())
        }
        "type" => Ok(c
            .focus
            .iter()
            .filter_map(|item| {
                let name = item.type_name()?.to_owned();
                Some(Item::TypeInfo { namespace: item.namespace(), name })
            })
            .collect()),
        "now" => Ok(vec![Item::Temporal(Temporal::now(TemporalKind::DateTime))]),
        "today" => Ok(vec![Item::Temporal(Temporal::now(TemporalKind::Date))]),
        "timeOfDay" => {
            let now = Temporal::now(TemporalKind::DateTime).to_string();
            let time = now.split_once('T').map_or("00:00:00", |(_, t)| t.trim_end_matches('Z'));
            Ok(Temporal::parse(time, TemporalKind::Time).map(Item::Temporal).into_iter().collect())
        }
        _ => return None,
    })
}
