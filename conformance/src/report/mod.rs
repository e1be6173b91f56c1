//! Writing the results of a run: a FHIR TestReport per script (`testreport.rs`), one JUnit XML
//! file (`junit.rs`), one self-contained HTML page (`html.rs`), a line per script for the
//! terminal (`summary.rs`), and the script × server matrix of `compare` (`matrix.rs`).

mod html;
pub mod junit;
pub mod matrix;
pub mod summary;
pub mod testreport;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::run::result::ScriptResult;

/// Writes `<name>.testreport.json` per script, `junit.xml` and `report.html` into `dir`
/// (created when missing). Returns the files written.
pub fn write_all(dir: &Path, results: &[ScriptResult]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut written = Vec::new();
    let mut used = HashSet::new();
    for result in results {
        let stem = result.path.file_stem().map_or_else(|| "script".to_owned(), |s| s.to_string_lossy().into_owned());
        let mut name = format!("{stem}.testreport.json");
        let mut n = 2;
        while !used.insert(name.clone()) {
            name = format!("{stem}-{n}.testreport.json");
            n += 1;
        }
        let text = serde_json::to_string_pretty(&testreport::test_report(result))?;
        written.push(write(&dir.join(name), &text)?);
    }
    written.push(write(&dir.join("junit.xml"), &junit::junit(results))?);
    written.push(write(&dir.join("report.html"), &html::html(results))?);
    Ok(written)
}

fn write(path: &Path, text: &str) -> Result<PathBuf> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))?;
    Ok(path.to_owned())
}

/// Escapes text for XML and HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newlines are not allowed in XML 1.0.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}
