//! The Cosmos DB store of fhirgate. Placeholder: the store lands with its own issue.
