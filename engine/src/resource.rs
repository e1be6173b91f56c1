//! Small helpers on resources: id syntax, instants, `meta`.
