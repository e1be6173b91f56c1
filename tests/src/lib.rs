//! Helpers for end-to-end tests: start the real `fhirgate` binary and talk HTTP to it.
