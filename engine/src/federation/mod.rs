//! Several FHIR servers behind one base URL: how a route's targets' ids and URLs are shown to
//! clients ([`Rewrite`]), and how the searchsets of several targets become one.
//!
//! A target may give its ids a prefix (`LAB-123` is `Patient/123` on the lab target), so ids of
//! different targets never collide; every URL a target writes (its own base) is replaced by the
//! route's base, so no target's address reaches a client. [`merge`] turns the targets' pages of
//! one search into one page and says where each target continues ([`Cursor`]).

mod body;
mod ids;
mod merge;
mod params;
mod rewrite;
mod sort;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::error::Result;

pub use self::merge::{Order, merge};

/// How one target's ids and URLs differ from what the clients of a route see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// Prepended to every id of the target's resources (`LAB-`); `""` for none.
    pub id_prefix: String,
    /// The target's FHIR base as it writes it in URLs (`https://lab.example/fhir`); for a local
    /// store, the route's base (a local engine already writes the base of its request).
    pub target_base: String,
    /// The FHIR base clients use for the route (`https://gateway.example/cardiology`).
    pub client_base: String,
}

/// Where one target's results continue in a federated search: a page of the target (`None`:
/// the first page, the original query; else its `next` link on the client base) and how many
/// of that page's matches (`search.mode = match`) were already served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub target: String,
    pub page: Option<String>,
    pub skip: usize,
    /// The target has nothing more.
    pub done: bool,
}

/// One target's page of a federated search.
#[derive(Debug)]
pub struct Part {
    /// Where this page started.
    pub cursor: Cursor,
    /// The page as the client sees it (a searchset Bundle after [`Rewrite::to_client`] and the
    /// target's data-level decisions), its `next` link (a URL on the client base, or `None` on
    /// the last page) — or why the target gave none.
    pub page: Result<(serde_json::Value, Option<String>)>,
}

/// A federated search's page, and where each target continues.
#[derive(Debug)]
pub struct Merged {
    /// A searchset Bundle (without `link`s: the gateway adds its own).
    pub bundle: serde_json::Value,
    /// Where each target continues; all `done` when there is no next page.
    pub cursors: Vec<Cursor>,
}
