//! Touchstone-style TestScript runner. Placeholder: the runner lands with the conformance issue.
