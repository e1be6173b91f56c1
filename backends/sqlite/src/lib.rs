//! The embedded SQLite store: fhirgate's default, one file under `./data/`.
