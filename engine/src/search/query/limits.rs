//! The bounds a search must keep before it is parsed: how many parameters, how many bytes, and
//! how deep a chain or reverse chain (`_has`) may go. The parser recurses once per chain or
//! `_has` link, and stores translate the tree the same way, so the depth is checked on the key
//! as written, before any recursion; a hostile `a.b.c....` of thousands of links is a 400.

use crate::error::Error;
use crate::interaction::EngineConfig;
use crate::outcome::{Issue, IssueType};

/// Highest chain depth any configuration may allow: parsing and translating a chain of this
/// many links stays far from the stack's end.
pub(crate) const CHAIN_DEPTH_CEILING: usize = 32;

/// How large a search may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Chain (`subject.name`) and reverse chain (`_has:...`) links in one parameter, at most
    /// [`CHAIN_DEPTH_CEILING`].
    pub max_chain_depth: usize,
    /// Parameters of one search (query string and `_search` form body together).
    pub max_params: usize,
    /// Bytes of all decoded parameter names and values together.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_chain_depth: 4, max_params: 100, max_bytes: 64 * 1024 }
    }
}

impl From<&EngineConfig> for Limits {
    fn from(config: &EngineConfig) -> Self {
        let size = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        Self {
            max_chain_depth: size(config.max_chain_depth),
            max_params: size(config.max_search_params),
            max_bytes: size(config.max_search_bytes),
        }
    }
}

impl Limits {
    /// The chain depth in force: the configured one, never above the ceiling.
    pub fn chain_depth(&self) -> usize {
        self.max_chain_depth.min(CHAIN_DEPTH_CEILING)
    }

    /// Fails when the search has too many parameters or too many bytes.
    pub(crate) fn check_size(&self, params: &[(String, String)]) -> Result<(), Error> {
        if params.len() > self.max_params {
            return Err(too_costly(format!(
                "the search has {} parameters; this server accepts at most {} (`max_search_params`)",
                params.len(),
                self.max_params
            )));
        }
        let bytes = params.iter().map(|(k, v)| k.len() + v.len()).fold(0usize, usize::saturating_add);
        if bytes > self.max_bytes {
            return Err(too_costly(format!(
                "the search parameters take {bytes} bytes; this server accepts at most {} (`max_search_bytes`)",
                self.max_bytes
            )));
        }
        Ok(())
    }

    /// Fails when the key `key` chains deeper than allowed; checked before the parser recurses.
    pub(super) fn check_key(&self, key: &str) -> Result<(), String> {
        let depth = chain_depth(key);
        let max = self.chain_depth();
        if depth > max {
            return Err(format!(
                "`{}` has {depth} chain or `_has` levels; this server allows at most {max} (`max_chain_depth`)",
                shorten(key)
            ));
        }
        Ok(())
    }
}

/// The chain and reverse chain links a key holds: every `.` starts a chained parameter, every
/// `_has:` a reverse chain (parameter codes and modifiers hold neither).
pub fn chain_depth(key: &str) -> usize {
    key.matches('.').count() + key.matches("_has:").count()
}

/// A key cut to a readable length for messages (a hostile key may be kilobytes long).
pub(super) fn shorten(key: &str) -> String {
    const KEEP: usize = 60;
    match key.char_indices().nth(KEEP) {
        Some((end, _)) => format!("{}…", &key[..end]),
        None => key.to_owned(),
    }
}

fn too_costly(message: String) -> Error {
    Error::BadRequest(vec![Issue::error(IssueType::TooCostly, message)])
}
