//! Where policies come from: the sets shipped in `policies/sets/<name>/` (compiled in) and
//! directories of `*.cedar` files, each file kept with its text so problems point at
//! `file:line:column`.

use std::path::Path;

use crate::error::{Error, Location, Problem};

/// One policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    /// The set it belongs to: prefix of its policy ids (`smart:patient-read`).
    pub set: String,
    /// Path shown in messages.
    pub file: String,
    pub text: String,
}

macro_rules! shipped_set {
    ($name:literal, [$($file:literal),* $(,)?]) => {
        ($name, &[$(($file, include_str!(concat!("../sets/", $name, "/", $file)))),*])
    };
}

/// The shipped sets: name → (file name, text).
const SHIPPED: &[(&str, &[(&str, &str)])] = &[
    shipped_set!("microsoft-roles", ["roles.cedar"]),
    shipped_set!("smart", ["scopes.cedar"]),
    shipped_set!(
        "examples",
        [
            "restricted.cedar",
            "tenant-isolation.cedar",
            "read-only-hours.cedar",
            "internal-exports.cedar",
            "hiv-clinic.cedar"
        ]
    ),
    shipped_set!("consent", ["consent.cedar"]),
];

/// Names of the shipped sets.
pub fn shipped_names() -> Vec<&'static str> {
    SHIPPED.iter().map(|(name, _)| *name).collect()
}

/// The files of a shipped set.
pub fn shipped(name: &str) -> Result<Vec<PolicySource>, Error> {
    let (_, files) = SHIPPED
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| Error::UnknownSet(name.to_string(), shipped_names().join(", ")))?;
    Ok(files
        .iter()
        .map(|(file, text)| PolicySource {
            set: name.to_string(),
            file: format!("policies/sets/{name}/{file}"),
            text: (*text).to_string(),
        })
        .collect())
}

/// Every `*.cedar` file directly in `dir`, sorted by name; the set is named after the directory.
pub fn directory(dir: &Path) -> Result<Vec<PolicySource>, Error> {
    let io = |e: std::io::Error| Error::Io { path: dir.display().to_string(), message: e.to_string() };
    let set = dir.file_name().map_or_else(|| "policies".to_string(), |n| n.to_string_lossy().into_owned());
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::Io { path: path.display().to_string(), message: e.to_string() })?;
            Ok(PolicySource { set: set.clone(), file: path.display().to_string(), text })
        })
        .collect()
}

/// A shipped set's name, or a directory path.
pub fn named_or_directory(name: &str) -> Result<Vec<PolicySource>, Error> {
    if shipped_names().contains(&name) { shipped(name) } else { directory(Path::new(name)) }
}

/// Problems of a miette diagnostic, located in `source` where the diagnostic has labels.
pub(crate) fn problems(diagnostic: &dyn miette::Diagnostic, source: &PolicySource) -> Vec<Problem> {
    let message = diagnostic.to_string();
    let help = diagnostic.help().map(|h| format!(" (help: {h})")).unwrap_or_default();
    let labels: Vec<_> = diagnostic.labels().map(Iterator::collect).unwrap_or_default();
    match labels.first() {
        Some(label) => {
            vec![Problem { location: Some(locate(source, label.offset())), message: format!("{message}{help}") }]
        }
        None => vec![Problem {
            location: Some(Location { file: source.file.clone(), line: 1, column: 1 }),
            message: format!("{message}{help}"),
        }],
    }
}

/// Line and column (1-based, in characters) of a byte offset.
pub(crate) fn locate(source: &PolicySource, offset: usize) -> Location {
    let before = source.text.get(..offset.min(source.text.len())).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Location { file: source.file.clone(), line, column }
}
