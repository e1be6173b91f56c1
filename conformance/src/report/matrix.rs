//! `fhirgate-conformance compare`: one self-contained HTML page with a matrix of scripts (rows)
//! by servers (columns), each cell the script's result on that server with its counts and, for
//! a failure, its first failed check (as a tooltip and a line). A hospital compares its stores,
//! or fhirgate's routes, side by side.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::escape;
use crate::run::result::{ScriptResult, Status};

/// The results of one suite on one server.
#[derive(Debug, Clone)]
pub struct Column {
    /// What the column is called: the base URL, or a label given with it.
    pub server: String,
    pub results: Vec<ScriptResult>,
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}h1{font-size:1.4em}\
table{border-collapse:collapse}th,td{border:1px solid #ddd;padding:.3em .6em;vertical-align:top;text-align:left}\
th{background:#f6f8fa}.pass{background:#dafbe1}.fail{background:#ffebe9}.skip{background:#f6f8fa;color:#6e7781}\
.none{color:#6e7781}small{display:block;color:#57606a;max-width:28em}";

/// The matrix page.
pub fn html(columns: &[Column]) -> String {
    // Rows in the order scripts were first met; a script missing on a server shows as such.
    let mut rows: Vec<(PathBuf, String)> = Vec::new();
    let mut cells: BTreeMap<(PathBuf, usize), &ScriptResult> = BTreeMap::new();
    for (index, column) in columns.iter().enumerate() {
        for result in &column.results {
            if !rows.iter().any(|(p, _)| *p == result.path) {
                rows.push((result.path.clone(), result.name.clone()));
            }
            cells.insert((result.path.clone(), index), result);
        }
    }
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>fhirgate-conformance compare</title>\
         <style>{STYLE}</style></head><body>\n<h1>fhirgate-conformance: {} scripts on {} servers</h1>\n<table>\n<tr><th>script</th>",
        rows.len(),
        columns.len()
    );
    for column in columns {
        let _ = write!(out, "<th>{}</th>", escape(&column.server));
    }
    out.push_str("</tr>\n<tr><th>total</th>");
    for column in columns {
        let _ = write!(
            out,
            "<th>{}<small>{}</small></th>",
            escape(&super::summary::scripts(&column.results)),
            escape(&super::summary::total(&column.results))
        );
    }
    out.push_str("</tr>\n");
    for (path, name) in &rows {
        let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let _ = write!(out, "<tr><td><b>{}</b><small>{}</small></td>", escape(name), escape(&file));
        for index in 0..columns.len() {
            match cells.get(&(path.clone(), index)) {
                None => out.push_str("<td class=\"none\">not run</td>"),
                Some(result) => cell(&mut out, result),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

fn cell(out: &mut String, result: &ScriptResult) {
    let status = result.status();
    let class = status.label().to_lowercase();
    let c = result.counts();
    let detail = match status {
        Status::Skip => result.skipped.clone().unwrap_or_default(),
        _ => result
            .error
            .clone()
            .or_else(|| {
                let actions = result.setup.iter().chain(result.tests.iter().flat_map(|t| &t.actions));
                actions.clone().find(|a| a.outcome.is_failure()).map(|a| format!("{}: {}", a.label, a.message))
            })
            .unwrap_or_default(),
    };
    let _ = write!(
        out,
        "<td class=\"{class}\" title=\"{}\">{} <span>{} passed, {} failed</span>",
        escape(&detail),
        status.label(),
        c.pass,
        c.fail + c.error
    );
    if !detail.is_empty() {
        let _ = write!(out, "<small>{}</small>", escape(&detail));
    }
    out.push_str("</td>");
}
