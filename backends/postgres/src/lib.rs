//! The PostgreSQL store of fhirgate. Placeholder: the store lands with its own issue.
