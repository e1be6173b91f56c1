//! The FHIR RESTful interactions (<https://hl7.org/fhir/R4/http.html>), one file each, dispatched
//! by a plain `match` on the interaction a request performs ([`crate::access::Target`]), after the
//! request's [`crate::access::Access`] allowed it; each interaction asks the same access about
//! every resource it touches ([`gate`]).
//!
//! The gateway builds a [`Request`] (method, path below the FHIR base, decoded query, the headers
//! FHIR cares about, body bytes) and renders the [`Response`] it gets back as HTTP.

mod bundle;
pub(crate) mod capabilities;
mod conditional;
pub(crate) mod consents;
mod create;
mod delete;
mod everything;
mod gate;
mod history;
mod history_link;
mod patch;
mod read;
mod request;
mod response;
mod route;
mod search;
mod target;
mod terminology;
mod update;
mod validate;
mod validate_targets;
mod viewrun;
mod vread;
mod write;

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

pub use request::percent_encode;
pub use request::{Method, Request, RequestHeaders, parse_query};
pub use response::{FileBody, Response};
pub(crate) use route::Route;

use crate::access::{Access, Interaction, Target};
use crate::error::{Error, Result};
use crate::storage::Store;
pub(crate) use bundle::{entry as bundle_entry, response_entry};
pub(crate) use gate::Gate;
pub(crate) use validate::{enforce as enforce_profiles, written as after_write};
pub(crate) use write::{parse_resource, prepare as prepare_write};

/// Whether the client may see a resource: the gate of a search whose data-level decision is
/// asked on each match and included resource.
pub(crate) type Visibility<'a> = &'a Gate<'a>;

/// A source of "now"; tests pass a fixed or stepping clock.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;
/// A source of new logical ids for created resources.
pub type IdGenerator = Arc<dyn Fn() -> String + Send + Sync>;

/// Engine settings (the gateway fills them from its configuration).
#[derive(Clone)]
pub struct EngineConfig {
    /// Whether `PUT [type]/[id]` may create a resource with a client-chosen id.
    pub update_create: bool,
    /// Whether an update whose content equals the current version still makes a new version.
    /// Off by default, as in Microsoft's server: the current version is returned unchanged.
    pub version_unchanged_updates: bool,
    /// Default page size of history bundles.
    pub default_page_size: u32,
    /// Largest page size a client may ask for with `_count`.
    pub max_page_size: u32,
    /// Most entries a batch or transaction bundle may have.
    pub max_bundle_entries: u32,
    /// Most resources one conditional delete may remove (`_count=N`, N up to this).
    pub max_conditional_delete: u32,
    /// The largest chunk of matches a search reads at once (it pages on after the last key
    /// read, with `_sort` after its sort values, without a cap).
    pub search_max_results: u32,
    /// How long a search may run before it ends with a timeout OperationOutcome.
    pub search_timeout: Duration,
    /// How long a search's page links stay valid after they were made (and its result set
    /// kept after its last use).
    pub search_page_ttl: Duration,
    /// The keys search page links are sealed with: shared by every replica (the gateway's
    /// paging key), or by default a random key of this process.
    pub page_keys: Arc<crate::seal::Keys>,
    /// Chain (`subject.name`) and reverse chain (`_has`) links one search parameter may have,
    /// wherever a search is parsed (searches, conditional criteria, bundle entries); at most
    /// [`crate::search::query::CHAIN_DEPTH_CEILING`]. Deeper is a 400.
    pub max_chain_depth: u32,
    /// Parameters one search may have (query string and `_search` form together); more is a 400.
    pub max_search_params: u32,
    /// Bytes of one search's decoded parameter names and values; more is a 400.
    pub max_search_bytes: u32,
    /// Work one FHIRPath evaluation of a request (the paths of a FHIRPath Patch) may do: nodes
    /// evaluated plus items produced, summed over the whole patch.
    pub fhirpath_max_steps: u64,
    /// Time one FHIRPath evaluation of a request may take.
    pub fhirpath_timeout: Duration,
    /// Bulk export (`$export`): where its files go; `None` answers 501.
    pub export: Option<crate::export::ExportSettings>,
    /// Where `$import` may read from (its jobs are kept as export jobs are, see `export`).
    pub import: crate::bulk::import::ImportSettings,
    /// Most rows one `$viewdefinition-run` may answer (a larger view is a 422 unless `_limit`
    /// asks for fewer; whole stores go through `fhirgate views export`).
    pub view_max_rows: u64,
    /// Code systems and value sets loaded besides the R4 package's (implementation guide
    /// packages), looked up after the R4 ones and before those stored through the API.
    pub terminology: Arc<crate::terminology::Registry>,
    /// The server's name and version for the CapabilityStatement.
    pub software_version: String,
    /// The CapabilityStatement's `rest.security` (how clients authenticate: the front end's
    /// SMART-on-FHIR service and OAuth endpoints); none when the server has no authentication.
    pub rest_security: Option<serde_json::Value>,
    /// Profiles: the packages loaded at start, the profile each type requires, the
    /// StructureDefinitions read from the store.
    pub profiles: Arc<crate::profiles::registry::Registry>,
    pub clock: Clock,
    /// The ids the server assigns: UUIDs of version 7, which begin with the time they were
    /// made, so a new resource's rows land at the end of every index keyed by its id (and
    /// next to the rows of other resources just made, under an index keyed by a shared value
    /// such as a gender or a city) instead of on a random page each: fewer pages written per
    /// create (bench/README.md). An id thus tells when it was made, as `meta.lastUpdated`
    /// of its first version does; its other 74 bits are random.
    pub ids: IdGenerator,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            update_create: true,
            version_unchanged_updates: false,
            default_page_size: 10,
            max_page_size: 1000,
            max_bundle_entries: 5_000,
            max_conditional_delete: 100,
            search_max_results: 10_000,
            search_timeout: Duration::from_secs(20),
            search_page_ttl: Duration::from_secs(600),
            page_keys: Arc::new(crate::seal::Keys::random()),
            max_chain_depth: 4,
            max_search_params: 100,
            max_search_bytes: 64 * 1024,
            fhirpath_max_steps: crate::fhirpath::Budget::DEFAULT.max_steps,
            fhirpath_timeout: crate::fhirpath::Budget::DEFAULT.max_time,
            view_max_rows: 100_000,
            terminology: Arc::default(),
            software_version: env!("CARGO_PKG_VERSION").to_string(),
            rest_security: None,
            export: None,
            import: crate::bulk::import::ImportSettings::default(),
            profiles: Arc::default(),
            clock: Arc::new(OffsetDateTime::now_utc),
            ids: Arc::new(|| uuid::Uuid::now_v7().to_string()),
        }
    }
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("update_create", &self.update_create)
            .field("version_unchanged_updates", &self.version_unchanged_updates)
            .field("default_page_size", &self.default_page_size)
            .field("max_page_size", &self.max_page_size)
            .field("max_bundle_entries", &self.max_bundle_entries)
            .field("max_conditional_delete", &self.max_conditional_delete)
            .field("search_max_results", &self.search_max_results)
            .field("search_timeout", &self.search_timeout)
            .field("search_page_ttl", &self.search_page_ttl)
            .finish_non_exhaustive()
    }
}

/// The FHIR engine: one per store.
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) store: Arc<dyn Store>,
    pages: search::Pages,
    /// Wakes the bulk worker when a job (`$export`, `$import`) is kicked off here.
    pub(crate) exports: crate::export::Signal,
    /// Set once the packages' and the store's SearchParameters are in force (`search::custom`).
    pub(crate) custom_loaded: tokio::sync::OnceCell<()>,
}

impl Engine {
    /// An engine over `store`.
    pub fn new(config: EngineConfig, store: Arc<dyn Store>) -> Self {
        // The R4 terminology (required bindings of every write) loads in the background, not on
        // the first write.
        std::thread::spawn(|| crate::terminology::Registry::r4().is_loaded());
        let pages = search::Pages::new(config.search_page_ttl, Arc::clone(&config.page_keys));
        Self {
            config,
            store,
            pages,
            exports: crate::export::Signal::default(),
            custom_loaded: tokio::sync::OnceCell::new(),
        }
    }

    /// The engine's settings.
    pub(crate) fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The store behind this engine.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Handles one request for a client whose decisions `access` makes. Errors become
    /// OperationOutcome responses here, so callers always get a response to send.
    pub async fn handle(&self, request: &Request, access: &dyn Access) -> Response {
        // `$viewdefinition-run` answers rows in its own formats; its errors are FHIR JSON.
        let negotiated = if viewrun::is_run(request) {
            Ok(crate::format::MediaType::FhirJson)
        } else {
            crate::format::negotiate(request.param("_format"), request.headers.accept.as_deref())
        };
        let media = match negotiated {
            Ok(m) => m,
            Err(e) => return Response::error(&e, crate::format::MediaType::FhirJson, false),
        };
        let pretty = request.pretty();
        let converted = match crate::format::xml_body_as_json(request) {
            Ok(converted) => converted,
            Err(e) => return Response::error(&e, media, pretty),
        };
        let request = converted.as_ref().unwrap_or(request);
        crate::search::custom::load(self).await;
        match self.dispatch(request, access).await {
            Ok(mut response) => {
                response.finish(media, pretty);
                response
            }
            Err(e) => {
                if e.status() >= 500 {
                    tracing::error!(error = %e, "request failed");
                }
                Response::error(&e, media, pretty)
            }
        }
    }

    /// Runs one request (or bundle entry): the interaction it performs, if `access` allows it.
    pub(crate) async fn dispatch(&self, request: &Request, access: &dyn Access) -> Result<Response> {
        use Interaction as I;
        let route = Route::parse(&request.path)?;
        let gate = Gate::open(access, Target::of_route(request, &route)?)?;
        match (gate.target().interaction, route) {
            (I::Capabilities, _) => capabilities::handle(self, request),
            (I::Read, Route::Instance { resource_type, id }) => {
                read::handle(self, &gate, request, &resource_type, &id).await
            }
            (I::Vread, Route::Version { resource_type, id, version }) => {
                vread::handle(self, &gate, request, &resource_type, &id, &version).await
            }
            (I::Create, Route::Type { resource_type }) => create::handle(self, &gate, request, &resource_type).await,
            (I::Update, Route::Instance { resource_type, id }) => {
                update::handle(self, &gate, request, &resource_type, &id).await
            }
            (I::Update, Route::Type { resource_type }) => {
                update::conditional(self, &gate, request, &resource_type).await
            }
            (I::Patch, Route::Instance { resource_type, id }) => {
                patch::handle(self, &gate, request, &resource_type, &id).await
            }
            (I::Patch, Route::Type { resource_type }) => patch::conditional(self, &gate, request, &resource_type).await,
            (I::Delete, Route::Instance { resource_type, id }) => {
                delete::handle(self, &gate, request, &resource_type, &id).await
            }
            (I::Delete, Route::Type { resource_type }) => {
                delete::conditional(self, &gate, request, &resource_type).await
            }
            (I::HistoryInstance | I::HistoryType | I::HistorySystem, Route::History { resource_type, id }) => {
                history::handle(self, &gate, request, resource_type.as_deref(), id.as_deref()).await
            }
            (I::SearchType, Route::Type { resource_type } | Route::Search { resource_type: Some(resource_type) }) => {
                search::handle(self, &gate, request, search::Scope::Type(&resource_type)).await
            }
            (I::SearchSystem, _) => search::handle(self, &gate, request, search::Scope::System).await,
            (I::SearchCompartment, Route::Compartment { owner_type, owner_id, resource_type }) => {
                let scope = search::Scope::Compartment {
                    owner_type: &owner_type,
                    owner_id: &owner_id,
                    resource_type: resource_type.as_deref(),
                };
                search::handle(self, &gate, request, scope).await
            }
            (I::Batch | I::Transaction, _) => bundle::handle(self, access, request).await,
            (I::Operation, Route::Operation { name, resource_type, id }) if name.starts_with("export") => {
                match name.as_str() {
                    "export" => {
                        crate::export::kickoff(self, &gate, request, resource_type.as_deref(), id.as_deref()).await
                    }
                    "export-status" if resource_type.is_none() => crate::export::status(self, &gate, request).await,
                    "export-file" if resource_type.is_none() => crate::export::file(self, &gate, request).await,
                    _ => Err(Error::NotFound(format!("no FHIR endpoint at `/{}`", request.path))),
                }
            }
            (I::Operation, Route::Operation { name, resource_type: None, id: None })
                if crate::bulk::import::is_import(&name) =>
            {
                crate::bulk::import::handle(self, &gate, request, &name).await
            }
            (I::Operation, Route::Operation { name, resource_type, id: Some(id) })
                if matches!(request.method, Method::Get | Method::Head)
                    && everything::is_everything(&name, resource_type.as_deref()) =>
            {
                let owner_type = resource_type.unwrap_or_default();
                everything::handle(self, &gate, request, &owner_type, &id).await
            }
            (I::Operation, Route::Operation { name, resource_type, id }) if name == validate::NAME => {
                validate::handle(self, &gate, request, resource_type.as_deref(), id.as_deref()).await
            }
            (I::Operation, Route::Operation { name, resource_type: Some(resource_type), id })
                if terminology::is_terminology(&name, Some(&resource_type)) =>
            {
                terminology::handle(self, &gate, request, &name, &resource_type, id.as_deref()).await
            }
            (I::Operation, Route::Operation { name, resource_type, id }) if name == viewrun::NAME => {
                viewrun::handle(self, &gate, request, resource_type.as_deref(), id.as_deref()).await
            }
            (_, route) => Err(route.unsupported(&request.method, &request.path)),
        }
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        crate::resource::to_millis((self.config.clock)())
    }
}
