//! Content negotiation and response rendering: `Accept`, `_format`, `_pretty`, `_summary`,
//! `_elements`.
