//! Touchstone-style TestScript runner. The runner lands with the conformance issue; the corpus it
//! will run lives in `conformance/testscripts/`, and `tests/testscripts.rs` keeps every script a
//! valid R4 TestScript until then.
