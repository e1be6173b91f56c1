//! Every shipped policy set validates, and its JSON test cases (`sets/<name>/tests/*.json`)
//! pass through the same harness as `fhirgate policy test`.

use std::path::PathBuf;

use fhirgate_policies::{PolicyEngine, shipped, shipped_names, testcase};

fn sets_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("sets")
}

#[test]
fn every_shipped_set_validates_and_passes_its_tests() -> Result<(), Box<dyn std::error::Error>> {
    let mut failures = Vec::new();
    let mut count = 0;
    for name in shipped_names() {
        PolicyEngine::load(&shipped(name)?)?;
        let tests = sets_dir().join(name).join("tests");
        assert!(tests.is_dir(), "set `{name}` has no tests/ directory");
        for result in testcase::run_dir(&tests, name)? {
            count += 1;
            if !result.passed {
                failures.push(format!("{} / {}: {}", result.file, result.name, result.detail));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {count} cases failed:\n{}", failures.len(), failures.join("\n"));
    println!("{count} policy test cases passed");
    Ok(())
}

#[test]
fn every_set_directory_is_shipped() -> Result<(), Box<dyn std::error::Error>> {
    for entry in std::fs::read_dir(sets_dir())? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        assert!(shipped_names().contains(&name.as_str()), "`sets/{name}` is not in sources.rs SHIPPED");
    }
    Ok(())
}
