//! The properties a set states about itself: `properties/*.cedar` beside its policies, each a
//! bound (permits the set must stay within, [`super::Property::BoundedBy`]) named by its file
//! stem and described by its leading `//` comment. The shipped sets' are compiled in.

use std::path::Path;

use super::Property;
use crate::error::Error;
use crate::sources::{PolicySource, shipped_names};

macro_rules! properties {
    ($set:literal, [$($file:literal),* $(,)?]) => {
        ($set, &[$(($file, include_str!(concat!("../../sets/", $set, "/properties/", $file)))),*])
    };
}

/// The shipped sets' properties: set → (file name, text).
const SHIPPED: &[(&str, &[(&str, &str)])] = &[
    properties!("microsoft-roles", ["patient-compartment.cedar", "reader-reads-only.cedar"]),
    properties!("smart", ["patient-compartment.cedar", "scope-needed.cedar"]),
    properties!("examples", ["restricted.cedar", "tenant-isolation.cedar"]),
    properties!("consent", ["consent-deny-needs-break-glass.cedar", "managers-write-consents.cedar"]),
];

/// `never-errors` and the properties the set (a shipped name or a directory) states.
pub fn of(set: &str) -> Result<Vec<Property>, Error> {
    let mut properties = vec![Property::NeverErrors];
    if shipped_names().contains(&set) {
        let files = SHIPPED.iter().find(|(name, _)| *name == set).map_or(&[][..], |(_, files)| files);
        for (file, text) in files {
            properties.push(bound(set, &format!("policies/sets/{set}/properties/{file}"), text));
        }
        return Ok(properties);
    }
    let dir = Path::new(set).join("properties");
    if !dir.is_dir() {
        return Ok(properties);
    }
    let io = |e: std::io::Error| Error::Io { path: dir.display().to_string(), message: e.to_string() };
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::Io { path: path.display().to_string(), message: e.to_string() })?;
        properties.push(bound(set, &path.display().to_string(), &text));
    }
    Ok(properties)
}

/// A bound set as a property: "the set allows no more than `sources`".
pub fn bounded_by(name: &str, sources: Vec<PolicySource>) -> Property {
    Property::BoundedBy { name: name.to_string(), description: format!("allows no more than `{name}`"), bound: sources }
}

fn bound(set: &str, file: &str, text: &str) -> Property {
    let name = Path::new(file).file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let description = text
        .lines()
        .map_while(|l| l.trim_start().strip_prefix("//"))
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let set_name = Path::new(set).file_name().map_or_else(|| set.to_string(), |n| n.to_string_lossy().into_owned());
    Property::BoundedBy {
        name: format!("{set_name}/{name}"),
        description,
        bound: vec![PolicySource { set: format!("{set_name}/{name}"), file: file.to_string(), text: text.to_string() }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_property_file_of_a_shipped_set_is_compiled_in() -> Result<(), Error> {
        for set in shipped_names() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sets").join(set);
            let on_disk = of(dir.to_str().unwrap_or_default())?;
            let compiled = of(set)?;
            let names = |p: &[Property]| p.iter().map(|p| p.name().to_string()).collect::<Vec<_>>();
            assert_eq!(names(&on_disk), names(&compiled), "{set}");
            assert!(compiled.len() > 1, "{set} states properties");
            assert!(compiled.iter().all(|p| !p.description().is_empty()), "{set}: described");
        }
        Ok(())
    }
}
