//! Unit tests of the patch module: error paths and the facade.
