//! The FHIR RESTful interactions (http.html), one file each, dispatched by a plain `match`.

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {}

/// The FHIR engine.
pub struct Engine {}
