//! The official FHIR validator test cases (R4 subset of HL7's fhir-test-cases, `validator/`;
//! `FHIR_TEST_CASES`, or `shared/` beside the checkout on these machines) run through fhirgate's
//! validator: the base checks, then the profiles, with the R4 package's conformance resources
//! and the case's `profiles`, `supporting` and profile `source` loaded first. Each case is run
//! as the reference Java validator ran it: the resource alone (`java`), and against the case's
//! profile (`profile.java`) when it has one. A file a case needs that the subset on this machine
//! lacks is read from `tests/data/validator-supplement/` (the suite's own files, vendored).
//!
//! With the case's `validateReference: CHECK_EXISTS_AND_TYPE` or `CHECK_VALID`, reference targets
//! are resolved from the case folder (the reference's test fetcher's file names) and a relative
//! reference whose target is neither there nor in the resource itself is an error
//! ([`profiles::unresolved_references`]); with `CHECK_VALID`, those found are also checked
//! against their target profiles.
//!
//! A run agrees with the reference when both find errors or both find none. The test prints
//! `N passed, N failed` (a case passes when all its runs agree) and how many runs also match the
//! reference's error count. Every disagreement must be listed, with its reason, in
//! `tests/data/validator-disagreements.txt`; the test fails on a disagreement not listed and on
//! a listed one that now agrees, so the list stays true.

#![expect(clippy::expect_used, reason = "a test fails by panicking")]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::profiles::{self, Conformance, ReferenceResolver};
use fhirgate_engine::{Severity, xml_to_json};
use serde_json::Value;

/// The validator folder of fhir-test-cases, if it is on this machine.
fn cases_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("FHIR_TEST_CASES") {
        return Some(PathBuf::from(dir).join("validator"));
    }
    let root = common::manifest_dir().join("..");
    [root.join("../shared/fhir-test-cases/r4/validator"), root.join("../../shared/fhir-test-cases/r4/validator")]
        .into_iter()
        .find(|d| d.join("manifest.json").is_file())
}

/// Files of the official suite that cases name but the R4 subset on these machines lacks,
/// vendored verbatim (`tests/data/validator-supplement/README.md` says where each comes from).
fn supplement_dir() -> PathBuf {
    common::manifest_dir().join("tests/data/validator-supplement")
}

/// A file of the folder (or, when the folder lacks it, of the supplement) as JSON (XML read with
/// the engine's converter).
fn read(dir: &Path, name: &str) -> Result<Value, String> {
    let path = dir.join(name);
    let path = if path.is_file() { path } else { supplement_dir().join(name) };
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read: {e}"))?;
    if name.ends_with(".xml") {
        xml_to_json(&bytes).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))
    }
}

/// Reference targets as the reference's test fetcher finds them: `Patient/x` is the case
/// folder's `patient-x.json` or `patient-x.xml`, or else the file named by the id alone
/// (`x.json`, `x.xml`: the patient-circle targets are stored so).
struct CaseFolder<'a>(&'a Path);

impl ReferenceResolver for CaseFolder<'_> {
    fn resolve(&self, reference: &str) -> Option<Value> {
        let typed = reference.replace('/', "-").to_lowercase();
        let id = reference.split_once('/').map(|(_, id)| id.to_lowercase());
        [Some(typed), id]
            .into_iter()
            .flatten()
            .find_map(|stem| ["json", "xml"].iter().find_map(|ext| read(self.0, &format!("{stem}.{ext}")).ok()))
    }
}

/// The reference's error count: an outcome file under `outcomes/`, or `{"errorCount": n}`.
fn expected_errors(dir: &Path, java: &Value) -> Option<usize> {
    match java {
        Value::String(file) => {
            let outcome = read(&dir.join("outcomes"), file).ok()?;
            let issues = outcome.get("issue").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            Some(issues.iter().filter(|i| matches!(i["severity"].as_str(), Some("error" | "fatal"))).count())
        }
        other => other.get("errorCount").and_then(Value::as_u64).map(|n| n as usize),
    }
}

/// fhirgate's error count for `resource` (`Err`: could not be read), and the messages. With
/// `ignore_contained` (the case's `validateContains: IGNORE`, which runs the reference without
/// validating contained resources) what is found inside `contained` is not counted.
fn run(
    conformance: &Conformance,
    resource: &Result<Value, String>,
    profile: Option<&str>,
    resolver: Option<&dyn ReferenceResolver>,
    existence: Option<&dyn ReferenceResolver>,
    ignore_contained: bool,
) -> (usize, Vec<String>) {
    let resource = match resource {
        Ok(r) => r,
        Err(e) => return (1, vec![e.clone()]),
    };
    let mut issues = fhirgate_engine::validate(Definitions::r4(), resource);
    issues.extend(fhirgate_engine::check_hyperlinks(resource));
    let checked = profiles::validate_checked(conformance, resource, profile.as_slice(), resolver);
    issues.extend(checked.keep_displays(fhirgate_engine::check_displays(Definitions::r4(), resource)));
    issues.extend(checked.issues);
    if let Some(existence) = existence {
        issues.extend(profiles::unresolved_references(resource, existence));
    }
    let errors: Vec<String> = issues
        .into_iter()
        .filter(|i| matches!(i.severity, Severity::Error | Severity::Fatal))
        .filter(|i| !(ignore_contained && i.expression.as_deref().is_some_and(|e| e.contains(".contained["))))
        .map(|i| format!("{}: {}", i.expression.unwrap_or_default(), i.diagnostics))
        .collect();
    (errors.len(), errors)
}

/// The R4 package's conformance resources (its extension definitions, core profiles...).
fn r4_conformance() -> Conformance {
    let mut conformance = Conformance::new();
    let dir = common::package_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read the R4 package")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                profiles::CONFORMANCE_TYPES.iter().any(|t| n.starts_with(&format!("{t}-")) && n.ends_with(".json"))
            })
        })
        .collect();
    paths.sort();
    for path in paths {
        let value: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
        conformance.add(value);
    }
    conformance
}

/// `name` or `name:profile` → the reason it disagrees.
fn known_disagreements() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(common::manifest_dir().join("tests/data/validator-disagreements.txt"))
        .expect("read tests/data/validator-disagreements.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (key, reason) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (key.to_owned(), reason.trim().to_owned())
        })
        .collect()
}

#[test]
fn official_validator_cases_agree_with_the_reference() {
    let Some(dir) = cases_dir() else {
        eprintln!("fhir-test-cases not found (set FHIR_TEST_CASES to its r4/ directory): skipped");
        return;
    };
    let manifest = read(&dir, "manifest.json").expect("manifest.json");
    let cases = manifest["test-cases"].as_array().expect("test-cases");
    let base = Arc::new(r4_conformance());
    let known = known_disagreements();
    let (mut passed, mut failed, mut runs, mut agreeing_runs, mut same_count) = (0, 0, 0, 0, 0);
    let mut unexplained = Vec::new();
    let mut disagreeing = Vec::new();
    // `VALIDATOR_CASES_VERBOSE=1` prints each disagreement's errors; `=name` only that case's.
    let verbose = std::env::var("VALIDATOR_CASES_VERBOSE").ok();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let file = case["file"].as_str().expect("file");
        let mut conformance = Conformance::over(Arc::clone(&base));
        conformance.strict_extensions = true;
        conformance.refuse_example_extensions = case["examples"] == Value::Bool(false);
        conformance.security_checks = case["security-checks"] == Value::Bool(true);
        conformance.no_html_in_markdown = case["noHtmlInMarkdown"] == Value::Bool(true);
        if let (Some(rule), Some(url)) =
            (case["bundle-param"]["rule"].as_str(), case["bundle-param"]["profile"].as_str())
        {
            conformance.bundle_rules.push((rule.to_owned(), url.to_owned()));
        }
        let sources = ["profiles", "supporting"]
            .iter()
            .flat_map(|k| case[*k].as_array().into_iter().flatten().filter_map(Value::as_str))
            .chain(case["profile"]["supporting"].as_array().into_iter().flatten().filter_map(Value::as_str))
            .chain(case["profile"]["source"].as_str());
        for source in sources {
            if let Ok(value) = read(&dir, source) {
                conformance.add(value);
            }
        }
        let resource =
            if file.ends_with(".ndjson") { Err("NDJSON is not a resource".to_owned()) } else { read(&dir, file) };
        let profile_url = case["profile"]["source"]
            .as_str()
            .and_then(|s| read(&dir, s).ok())
            .and_then(|sd| sd["url"].as_str().map(str::to_owned));
        let mut plan: Vec<(String, Option<usize>, Option<String>)> = Vec::new();
        if let Some(expected) = expected_errors(&dir, &case["java"]) {
            plan.push((name.to_owned(), Some(expected), None));
        }
        if let (Some(expected), Some(url)) = (expected_errors(&dir, &case["profile"]["java"]), profile_url) {
            plan.push((format!("{name}:profile"), Some(expected), Some(url)));
        }
        let mut case_agrees = true;
        for (key, expected, profile) in plan {
            let Some(expected) = expected else { continue };
            let ignore_contained = case["validateContains"] == "IGNORE";
            // The reference resolves targets with `validateReference: CHECK_EXISTS_AND_TYPE` (and
            // requires that they exist) and with `CHECK_VALID` (and also checks them).
            let folder = CaseFolder(&dir);
            let policy = case["validateReference"].as_str();
            let existence = matches!(policy, Some("CHECK_EXISTS_AND_TYPE" | "CHECK_VALID"))
                .then_some(&folder as &dyn ReferenceResolver);
            let resolver = (policy == Some("CHECK_VALID")).then_some(&folder as &dyn ReferenceResolver);
            let (count, errors) =
                run(&conformance, &resource, profile.as_deref(), resolver, existence, ignore_contained);
            runs += 1;
            let agrees = (count == 0) == (expected == 0);
            agreeing_runs += usize::from(agrees);
            same_count += usize::from(count == expected);
            if verbose.as_deref().is_some_and(|v| v == "1" && !agrees || v == name) {
                eprintln!("{key}: reference {expected} errors, fhirgate {count}: {errors:#?}");
            }
            case_agrees &= agrees;
            match (agrees, known.get(&key)) {
                (false, None) => unexplained.push(format!(
                    "{key}: the reference finds {expected} errors, fhirgate {count}: {}",
                    errors.first().map_or("", String::as_str)
                )),
                (true, Some(_)) => unexplained.push(format!("{key}: now agrees; remove it from the list")),
                (false, Some(reason)) => disagreeing.push(format!("{key}: {reason}")),
                (true, None) => {}
            }
        }
        if case_agrees {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    eprintln!("known disagreements:\n  {}", disagreeing.join("\n  "));
    eprintln!(
        "{passed} passed, {failed} failed ({} cases); {agreeing_runs} of {runs} runs agree on valid/invalid, \
         {same_count} also on the error count",
        cases.len()
    );
    assert!(unexplained.is_empty(), "{} runs disagree unexplained:\n{}", unexplained.len(), unexplained.join("\n"));
}

/// The checks of a StructureDefinition itself find nothing wrong with the R4 package's own
/// profiles (vital signs, extensions, ...), which the reference validator accepts.
#[test]
fn the_r4_packages_own_profiles_pass_the_authoring_checks() {
    let conformance = r4_conformance();
    let mut checked = 0;
    for sd in conformance.resources().filter(|r| r["resourceType"] == "StructureDefinition") {
        if sd["derivation"] != "constraint" {
            continue;
        }
        checked += 1;
        let wrong: Vec<String> = profiles::check_structure_definition(&conformance, sd)
            .into_iter()
            .filter(|i| matches!(i.severity, Severity::Error | Severity::Fatal))
            .map(|i| format!("{}: {}", i.expression.unwrap_or_default(), i.diagnostics))
            .collect();
        assert!(wrong.is_empty(), "{}: {wrong:#?}", sd["url"]);
    }
    assert!(checked > 100, "only {checked} profiles checked");
}
