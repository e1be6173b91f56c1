//! A server's profiles: the conformance resources of the packages loaded at start, the profile
//! each resource type must conform to (if any), and the StructureDefinitions written through the
//! API, looked up in the store by canonical URL when the packages do not have them and kept for
//! [`STORED_TTL`] (a write of a StructureDefinition through this server forgets them at once;
//! other replicas see it after the TTL).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use serde_json::Value;

use super::Conformance;
use super::snapshot::{self, CORE_PREFIX};

/// How long a StructureDefinition read from the store (or its absence) is kept.
pub const STORED_TTL: Duration = Duration::from_secs(60);

/// How many StructureDefinitions from the store are kept.
const STORED_CAPACITY: u64 = 1_000;

/// See the module documentation.
#[derive(Debug)]
pub struct Registry {
    packages: Arc<Conformance>,
    /// Resource type → the profile every resource of it must conform to.
    required: BTreeMap<String, String>,
    /// Canonical URL → the StructureDefinition stored with it (`None`: none is).
    stored: Cache<String, Option<Arc<Value>>>,
    /// Profiles generated from stored StructureDefinitions, by URL (forgotten with them).
    generated: Cache<String, Arc<super::Profile>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new(Conformance::new(), BTreeMap::new())
    }
}

impl Registry {
    pub fn new(packages: Conformance, required: BTreeMap<String, String>) -> Self {
        Self {
            packages: Arc::new(packages),
            required,
            stored: Cache::builder().max_capacity(STORED_CAPACITY).time_to_live(STORED_TTL).build(),
            generated: Cache::builder().max_capacity(STORED_CAPACITY).time_to_live(STORED_TTL).build(),
        }
    }

    /// The conformance resources of the packages (for the terminology registry, and the rest).
    pub fn packages(&self) -> &Arc<Conformance> {
        &self.packages
    }

    /// The profile resources of `resource_type` must conform to.
    pub fn required(&self, resource_type: &str) -> Option<&str> {
        self.required.get(resource_type).map(String::as_str)
    }

    /// Whether validating a resource of `resource_type` may find anything the base validation
    /// does not: it `declares` profiles, its type requires one, or packages are loaded
    /// (extension definitions...).
    pub(crate) fn applies(&self, resource_type: &str, declares: bool) -> bool {
        let settings = &self.packages;
        declares
            || self.required.contains_key(resource_type)
            || self.packages.resources().next().is_some()
            || settings.security_checks
            || settings.no_html_in_markdown
            || (resource_type == "Bundle" && !settings.bundle_rules.is_empty())
    }

    /// A cached answer for a stored StructureDefinition: `Some(None)` when it is known absent.
    pub(crate) fn cached(&self, url: &str) -> Option<Option<Arc<Value>>> {
        self.stored.get(url)
    }

    pub(crate) fn remember(&self, url: &str, definition: Option<Value>) {
        self.stored.insert(url.to_owned(), definition.map(Arc::new));
    }

    /// Forgets the StructureDefinitions read from the store (one was written).
    pub(crate) fn forget_stored(&self) {
        self.stored.invalidate_all();
        self.generated.invalidate_all();
    }

    /// Whether `url` needs a look in the store: not a core type, not in the packages.
    pub(crate) fn needs_lookup(&self, url: &str) -> bool {
        let bare = url.split('|').next().unwrap_or(url);
        let core =
            bare.strip_prefix(CORE_PREFIX).is_some_and(|t| crate::definitions::Definitions::r4().type_def(t).is_some());
        !core && self.packages.structure_definition(url).is_none()
    }

    /// The set to validate with: the packages, with the stored definitions found added.
    pub(crate) fn with_stored(&self, stored: Vec<Value>) -> Conformance {
        let mut conformance = Conformance::over(Arc::clone(&self.packages));
        conformance.copy_settings(&self.packages);
        let urls: Vec<String> =
            stored.iter().filter_map(|d| d.get("url").and_then(Value::as_str)).map(str::to_owned).collect();
        for definition in stored {
            conformance.add(definition);
        }
        for url in urls {
            if let Some(profile) = self.generated.get(&url) {
                conformance.insert_generated(profile);
            }
        }
        conformance
    }

    /// Keeps the profiles `conformance` (from [`Self::with_stored`]) generated for the next
    /// validations.
    pub(crate) fn keep_generated(&self, conformance: &Conformance) {
        for profile in conformance.generated() {
            self.generated.insert(profile.url.clone(), profile);
        }
    }
}

/// The base profile a StructureDefinition derives from, when that is not a core type (its
/// chain must be found too).
pub(crate) fn base_of(definition: &Value) -> Option<String> {
    snapshot::base_profile(definition).map(str::to_owned)
}
