//! Cedar authorization for fhirgate. Placeholder: the policy engine lands with the identity and policy issue.
