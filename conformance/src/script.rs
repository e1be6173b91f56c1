//! Finding and loading TestScripts: files or directories (searched recursively for `.json` and
//! `.xml` files whose root is a TestScript), in JSON or FHIR XML, and the fixture files they
//! name relative to themselves.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

/// The encoding a script or fixture file was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// The FHIR MIME type of the format.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Json => "application/fhir+json",
            Self::Xml => "application/fhir+xml",
        }
    }
}

/// A loaded TestScript.
#[derive(Debug, Clone)]
pub struct Script {
    /// Where it was read from; fixture files are relative to its directory.
    pub path: PathBuf,
    /// The TestScript as FHIR JSON (converted when the file was XML).
    pub resource: Value,
    pub format: Format,
}

impl Script {
    /// Reads a TestScript file.
    pub fn load(path: &Path) -> Result<Self> {
        let (resource, format) = read_resource(path)?;
        if resource.get("resourceType").and_then(Value::as_str) != Some("TestScript") {
            return Err(Error::Script(format!("`{}` is not a TestScript", path.display())));
        }
        Ok(Self { path: path.to_owned(), resource, format })
    }

    /// The directory fixture references are relative to.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| Path::new("."))
    }

    /// The script's `name`, else its `id`, else its file name.
    pub fn name(&self) -> String {
        ["name", "id"]
            .iter()
            .find_map(|k| self.resource.get(*k).and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| self.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default())
    }
}

/// Parses JSON or FHIR XML text, choosing by its first character.
pub fn parse_resource(text: &str) -> Result<(Value, Format)> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('<') {
        Ok((crate::format::xml_to_json(trimmed)?, Format::Xml))
    } else {
        Ok((serde_json::from_str(trimmed)?, Format::Json))
    }
}

/// Reads a JSON or XML resource file.
pub fn read_resource(path: &Path) -> Result<(Value, Format)> {
    parse_resource(&read_text(path)?)
}

/// Reads a text file.
pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// Every TestScript file under `paths`: files as given, directories searched recursively for
/// `.json`/`.xml` files whose root is a TestScript (so fixture files beside them are skipped).
/// Sorted within each directory.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut found)?;
        } else if path.exists() {
            found.push(path.clone());
        } else {
            return Err(Error::io(path, std::io::Error::from(std::io::ErrorKind::NotFound)));
        }
    }
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::io(dir, e))?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, found)?;
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("json" | "xml")) && is_testscript(&path)? {
            found.push(path);
        }
    }
    Ok(())
}

/// Whether a file's root is a TestScript, judged from its text without a full parse.
fn is_testscript(path: &Path) -> Result<bool> {
    let text = read_text(path)?;
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('<') {
        let root = trimmed.split('<').map(str::trim_start).find(|s| !s.starts_with(['?', '!']) && !s.is_empty());
        return Ok(root.is_some_and(|r| r.starts_with("TestScript")));
    }
    Ok(serde_json::from_str::<Value>(trimmed)
        .is_ok_and(|v| v.get("resourceType").and_then(Value::as_str) == Some("TestScript")))
}
