//! CapabilityStatements found by canonical URL in directories: the loaded FHIR packages (the R4
//! package holds `CapabilityStatement/example`, which the official TestScript examples require)
//! and `--capabilities DIR`. Read once per run, on first use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::script::parse_resource;

/// Files larger than this are not looked into (statements are small; packages hold large
/// bundles).
const MAX_FILE: u64 = 4 * 1024 * 1024;

/// CapabilityStatements by `url` and by `url|version`.
#[derive(Debug, Clone, Default)]
pub(super) struct Library {
    by_canonical: HashMap<String, Value>,
}

impl Library {
    /// Reads the CapabilityStatements of `dirs` (not recursive). In an npm FHIR package (a
    /// directory with `package.json`) only `CapabilityStatement-*` files are read, as packages
    /// name their files `Type-id`; elsewhere every `.json` and `.xml` file. Unreadable files
    /// and directories are passed over: the library only helps scripts run.
    pub(super) fn load(dirs: &[PathBuf]) -> Self {
        let mut library = Self::default();
        for dir in dirs {
            let package = dir.join("package.json").is_file();
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for file in files.iter().filter(|f| candidate(f, package)) {
                if let Some(statement) = read_statement(file) {
                    library.add(statement);
                }
            }
        }
        library
    }

    fn add(&mut self, statement: Value) {
        let Some(url) = statement.get("url").and_then(Value::as_str).map(str::to_owned) else { return };
        if let Some(version) = statement.get("version").and_then(Value::as_str) {
            self.by_canonical.entry(format!("{url}|{version}")).or_insert_with(|| statement.clone());
        }
        self.by_canonical.entry(url).or_insert(statement);
    }

    /// The statement a canonical names (`url` or `url|version`).
    pub(super) fn get(&self, canonical: &str) -> Option<&Value> {
        self.by_canonical
            .get(canonical)
            .or_else(|| self.by_canonical.get(canonical.split('|').next().unwrap_or(canonical)))
    }
}

fn candidate(file: &Path, package: bool) -> bool {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let extension = matches!(file.extension().and_then(|e| e.to_str()), Some("json" | "xml"));
    extension
        && (!package || name.starts_with("CapabilityStatement-"))
        && file.metadata().is_ok_and(|m| m.is_file() && m.len() <= MAX_FILE)
}

fn read_statement(file: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(file).ok()?;
    if !text.contains("CapabilityStatement") {
        return None;
    }
    let (resource, _) = parse_resource(&text).ok()?;
    (resource.get("resourceType").and_then(Value::as_str) == Some("CapabilityStatement")).then_some(resource)
}

#[cfg(test)]
mod tests {
    use super::Library;

    #[test]
    fn statements_by_canonical_from_a_directory() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("canonical-library-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("server.json"),
            r#"{"resourceType": "CapabilityStatement", "url": "http://example.org/cs", "version": "2"}"#,
        )?;
        std::fs::write(dir.join("patient.json"), r#"{"resourceType": "Patient", "url": "http://example.org/p"}"#)?;
        std::fs::write(dir.join("broken.json"), "{ CapabilityStatement")?;
        let library = Library::load(&[dir.clone(), dir.join("missing")]);
        assert!(library.get("http://example.org/cs").is_some());
        assert!(library.get("http://example.org/cs|2").is_some());
        assert!(library.get("http://example.org/cs|3").is_some(), "another version falls back to the url");
        assert!(library.get("http://example.org/p").is_none(), "only CapabilityStatements");
        // In a package only `CapabilityStatement-*` files are read.
        std::fs::write(dir.join("package.json"), "{}")?;
        assert!(Library::load(std::slice::from_ref(&dir)).get("http://example.org/cs").is_none());
        std::fs::remove_dir_all(&dir)
    }
}
