//! `fhirgate-conformance compare`: the same scripts against several servers, one after the
//! other, each with its own token, into the columns of [`crate::report::matrix`].

use std::path::PathBuf;

use crate::report::matrix::Column;
use crate::run::{Options, Progress, Runner};

/// A server to compare: its base URL and the bearer token it takes.
#[derive(Debug, Clone)]
pub struct Server {
    pub base_url: String,
    pub bearer: Option<String>,
}

/// Runs the scripts under `paths` against each server with the options of `template` (its
/// base URL and token replaced), telling `progress` as [`Runner::run_paths_with`] does.
pub fn compare(
    template: &Options,
    servers: &[Server],
    paths: &[PathBuf],
    progress: &mut dyn FnMut(&str, Progress<'_>),
) -> crate::Result<Vec<Column>> {
    let mut columns = Vec::with_capacity(servers.len());
    for server in servers {
        let mut options = template.clone();
        options.base_url = Options::new(&server.base_url).base_url;
        options.bearer = server.bearer.clone();
        let results = Runner::new(options).run_paths_with(paths, &mut |event| progress(&server.base_url, event))?;
        columns.push(Column { server: server.base_url.clone(), results });
    }
    Ok(columns)
}
