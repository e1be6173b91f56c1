//! Type-level-only routes (`type_level_only = true`): the request is decided at type level and,
//! when that decision covers every resource (`Grant::AnyData`: no loaded policy could decide
//! otherwise on any resource's data), proxied to the route's one remote target by pingora's own
//! phases, its answer streamed back unread. The trade-off, documented in the README: no
//! data-level decision, no id prefix, and the body is passed as the remote wrote it (its links
//! name the remote's base unless the remote is told the gateway's address as its own). A request
//! whose decision depends on data is refused (403), so a streamed route never shows what a
//! per-resource decision would hide; the start is refused when the loaded policies read resource
//! data at all (`server.rs`). Batches and transactions are refused (their entries would need the
//! body read and decided one by one).

use fhirgate_engine::Error as FhirError;
use fhirgate_engine::access::{Grant, Interaction, Target as Asked};
use fhirgate_engine::interaction::Request;

use super::dispatch::Caller;
use super::targets::Backend;
use super::{Route, Routing};
use crate::upstream::Streamed;

impl Routing {
    /// How to stream `request` (method, path below the route's base, query and headers; the
    /// body unread) on the type-level-only `route`, or why it may not be.
    pub async fn stream(&self, route: &Route, request: &Request, caller: &Caller<'_>) -> Result<Streamed, FhirError> {
        let [only] = route.targets.as_slice() else {
            return Err(FhirError::Internal(format!("route `{}` streams one target", route.config.id)));
        };
        let Backend::Remote(remote) = &only.target.backend else {
            return Err(FhirError::Internal(format!("route `{}` streams a remote target", route.config.id)));
        };
        let asked = Asked::of(request)?;
        if matches!(asked.interaction, Interaction::Batch | Interaction::Transaction) {
            return Err(FhirError::bad_request(format!(
                "route `{}` streams answers unread: send batches and transactions to a route that decides each entry",
                route.config.id
            )));
        }
        let access = caller.access(&route.config.id, &only.target.id);
        match access.decide(&asked) {
            Grant::AnyData => remote.stream(request, caller.token).await,
            Grant::PerResource => Err(FhirError::Forbidden(format!(
                "`{}` on `{}` is decided on each resource's data for this client, and this route streams answers \
                 unread",
                asked.interaction,
                asked.path()
            ))),
            Grant::Denied(_)
                if access.hides_denied_reads()
                    && matches!(
                        asked.interaction,
                        Interaction::Read | Interaction::Vread | Interaction::HistoryInstance
                    ) =>
            {
                Err(FhirError::NotFound(format!("resource `{}` not found", asked.path())))
            }
            Grant::Denied(reason) => Err(FhirError::Forbidden(format!(
                "`{}` on `{}` is not allowed: {reason}",
                asked.interaction,
                asked.path()
            ))),
        }
    }
}
