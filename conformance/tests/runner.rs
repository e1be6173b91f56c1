//! The runner end to end over real HTTP, against the small in-memory server of `support/`: a
//! script that passes, scripts that must fail (and how their TestReports say so), the binary's
//! exit status and report files, and the corpus of `conformance/testscripts/`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use fhirgate_conformance::report::testreport::test_report;
use fhirgate_conformance::run::result::{Outcome, ScriptResult, Status};
use fhirgate_conformance::run::{Options, Runner};
use fhirgate_conformance::script::Script;
use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::validate;
use serde_json::Value;
use support::MiniFhir;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

fn run(server: &MiniFhir, path: &Path) -> Result<ScriptResult, Box<dyn std::error::Error>> {
    let script = Script::load(path)?;
    Ok(Runner::new(Options::new(&server.base)).run(&script))
}

fn outcomes(result: &ScriptResult, test: usize) -> Vec<Outcome> {
    result.tests[test].actions.iter().map(|a| a.outcome).collect()
}

/// Every problem of the result, for assertion messages.
fn problems(result: &ScriptResult) -> String {
    let actions = result.setup.iter().chain(result.tests.iter().flat_map(|t| &t.actions)).chain(&result.teardown);
    let mut out: Vec<String> = actions
        .filter(|a| a.outcome != Outcome::Pass)
        .map(|a| format!("{:?} {}: {}", a.outcome, a.label, a.message))
        .collect();
    out.extend(result.error.clone());
    out.join("\n")
}

#[test]
fn an_xml_script_with_every_kind_of_check_passes() -> TestResult {
    let server = MiniFhir::start()?;
    let result = run(&server, &dir().join("tests/scripts/passing.xml"))?;
    assert!(result.passed(), "{}", problems(&result));
    assert_eq!(result.tests.len(), 4);
    assert!(outcomes(&result, 0).iter().all(|o| *o == Outcome::Pass), "{}", problems(&result));
    let search = outcomes(&result, 1);
    assert_eq!(search[5], Outcome::Warning, "warningOnly makes a warning");
    assert_eq!(search[6], Outcome::Skip, "eval is skipped");
    assert!(search[7..].iter().all(|o| *o == Outcome::Pass), "search by POST: {}", problems(&result));
    let requests = server.requests();
    // autocreate, setup create, …, teardown delete of the created one, autodelete of the fixture.
    assert_eq!(requests.first().map(String::as_str), Some("POST /Patient [application/fhir+json]"));
    assert_eq!(requests.iter().filter(|r| r.starts_with("DELETE /Patient/")).count(), 2, "{requests:?}");
    assert!(requests.contains(&"GET /Patient/id2/_history/1".to_owned()), "vread by targetId: {requests:?}");
    let as_xml =
        result.tests[2].actions.iter().find(|a| a.label == "a JSON fixture sent as XML").ok_or("no XML create")?;
    let body = as_xml.exchange.as_ref().and_then(|e| e.request.body.as_deref()).ok_or("no body")?;
    assert!(
        body.contains("<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"pat\"/><name><family value=\"Runner\"/>"),
        "{body}"
    );
    let update = result.tests[2].actions[0].exchange.as_ref().ok_or("no exchange")?;
    assert!(
        update.request.body.as_deref().is_some_and(|b| b.contains("<id value=\"id2\"/>")),
        "the XML fixture is sent as XML, substituted"
    );

    let report = test_report(&result);
    assert_eq!(report["result"], "pass");
    assert_eq!(report["setup"]["action"][0]["operation"]["result"], "pass", "autocreate is part of setup");
    assert!(validate(Definitions::r4(), &report).is_empty(), "{:#?}", validate(Definitions::r4(), &report));
    Ok(())
}

#[test]
fn a_failed_assertion_ends_its_test_only() -> TestResult {
    let server = MiniFhir::start()?;
    let result = run(&server, &dir().join("tests/scripts/failing.json"))?;
    assert!(!result.passed());
    assert_eq!(outcomes(&result, 0), [Outcome::Pass, Outcome::Fail, Outcome::Skip]);
    assert_eq!(outcomes(&result, 1), [Outcome::Pass, Outcome::Pass]);
    assert_eq!(outcomes(&result, 2), [Outcome::Pass, Outcome::Fail], "a bad expression fails its assertion");
    assert!(
        result.tests[0].actions[1].message == "expected status equal to `200`, got `404`",
        "{}",
        result.tests[0].actions[1].message
    );
    assert_eq!(outcomes(&result, 3), [Outcome::Error, Outcome::Skip], "an unresolved variable in a URL");
    let message = &result.tests[3].actions[0].message;
    assert!(message.contains("variable `nowhere` has no value"), "{message}");

    let report = test_report(&result);
    assert_eq!(report["result"], "fail");
    assert_eq!(report["test"][0]["action"][1]["assert"]["result"], "fail");
    assert_eq!(report["test"][0]["action"][2]["assert"]["result"], "skip");
    assert_eq!(report["test"][1]["action"][1]["assert"]["result"], "pass");
    assert!(validate(Definitions::r4(), &report).is_empty(), "{:#?}", validate(Definitions::r4(), &report));
    Ok(())
}

#[test]
fn a_failed_setup_skips_the_tests_but_not_the_teardown() -> TestResult {
    let server = MiniFhir::start()?;
    let result = run(&server, &dir().join("tests/scripts/setup-fails.json"))?;
    assert!(!result.passed());
    assert_eq!(result.setup.iter().map(|a| a.outcome).collect::<Vec<_>>(), [Outcome::Pass, Outcome::Fail]);
    assert_eq!(outcomes(&result, 0), [Outcome::Skip, Outcome::Skip]);
    assert_eq!(result.teardown.len(), 1);
    assert_eq!(server.requests(), ["GET /Patient/missing", "GET /metadata"], "tests never ran, teardown did");
    Ok(())
}

/// The file names of the results with `status`.
fn named(results: &[ScriptResult], status: Status) -> Vec<String> {
    let mut names: Vec<String> = results
        .iter()
        .filter(|r| r.status() == status)
        .filter_map(|r| r.path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
}

#[test]
fn the_corpus_passes_or_is_skipped_by_capability_against_a_small_server() -> TestResult {
    let server = MiniFhir::start_with_tokens("admin", "reader")?;
    let mut options = Options::new(&server.base);
    options.bearer = Some("admin".into());
    options.variables.insert("readerToken".into(), "reader".into());
    // The hand-written corpus, by level (the generated one needs far more than this server).
    let levels: Vec<PathBuf> = ["must", "should", "may"].iter().map(|l| dir().join("testscripts").join(l)).collect();
    let results = Runner::new(options.clone()).run_paths(&levels)?;
    assert!(results.len() >= 12, "found {} scripts", results.len());
    for result in &results {
        assert!(result.passed(), "{}:\n{}", result.path.display(), problems(result));
    }
    assert_eq!(
        named(&results, Status::Pass),
        [
            "authentication.json",
            "authorisation.json",
            "capabilities.json",
            "capabilities.xml",
            "crud.json",
            "errors.json"
        ]
    );
    let skipped = named(&results, Status::Skip);
    assert!(skipped.contains(&"bundles.json".to_owned()) && skipped.contains(&"search.json".to_owned()), "{skipped:?}");
    let xml = results.iter().find(|r| r.path.ends_with("must/xml.json")).ok_or("no xml.json")?;
    assert!(xml.skipped.as_deref().is_some_and(|s| s.contains("format `xml`")), "{:?}", xml.skipped);
    let bundles = results.iter().find(|r| r.path.ends_with("bundles.json")).ok_or("no bundles.json")?;
    assert_eq!(
        bundles.skipped.as_deref(),
        Some("the server's CapabilityStatement does not claim system `batch`, system `transaction`")
    );
    let report = test_report(bundles);
    assert_eq!(report["result"], "pending");
    let junit = fhirgate_conformance::report::junit::junit(std::slice::from_ref(bundles));
    assert!(
        junit.contains(r#"skipped="1""#) && junit.contains("<skipped message=\"the server&#39;s CapabilityStatement"),
        "{junit}"
    );
    assert!(validate(Definitions::r4(), &report).is_empty(), "{:#?}", validate(Definitions::r4(), &report));

    // Unchecked, the scripts run and fail against what the server does not do.
    options.capability_check = false;
    let unchecked = Runner::new(options).run(&Script::load(&dir().join("testscripts/must/bundles.json"))?);
    assert_eq!(unchecked.status(), Status::Fail, "{}", problems(&unchecked));
    Ok(())
}

#[test]
fn a_script_without_its_tester_variable_is_skipped_saying_which() -> TestResult {
    let server = MiniFhir::start_with_tokens("admin", "reader")?;
    let mut options = Options::new(&server.base);
    options.bearer = Some("admin".into());
    let result = Runner::new(options).run(&Script::load(&dir().join("testscripts/must/authorisation.json"))?);
    assert_eq!(result.status(), Status::Skip);
    let reason = result.skipped.as_deref().unwrap_or_default();
    assert!(reason.starts_with("variable `readerToken` needs a value (`--var readerToken=VALUE`"), "{reason}");
    assert!(server.requests().is_empty(), "nothing was sent: {:?}", server.requests());
    Ok(())
}

#[test]
fn a_script_can_drop_or_replace_the_bearer_token() -> TestResult {
    let server = MiniFhir::start_with_tokens("admin", "reader")?;
    let mut options = Options::new(&server.base);
    options.bearer = Some("admin".into());
    let result = Runner::new(options).run(&Script::load(&dir().join("testscripts/must/authentication.json"))?);
    assert_eq!(result.status(), Status::Pass, "{}", problems(&result));
    let headers: Vec<Option<&str>> = result
        .tests
        .iter()
        .filter_map(|t| t.actions[0].exchange.as_ref())
        .map(|e| e.request.header("Authorization"))
        .collect();
    assert_eq!(headers, [None, None, Some("Bearer not.a.jwt")]);
    Ok(())
}

#[test]
fn the_binary_reports_and_sets_its_exit_status() -> TestResult {
    let server = MiniFhir::start()?;
    let reports = std::env::temp_dir().join(format!("fhirgate-conformance-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&reports);
    let scripts = dir().join("tests/scripts");
    let output = Command::new(env!("CARGO_BIN_EXE_fhirgate-conformance"))
        .args(["run", "--base-url", &server.base, "--bearer", "secret-token", "--var", "family=Runner", "--report-dir"])
        .arg(&reports)
        .arg(&scripts)
        .output()?;
    let stdout = String::from_utf8(output.stdout)?;
    assert_eq!(output.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("FAIL")
            && stdout.contains("PASS")
            && stdout.contains("3 scripts: 1 passed, 2 failed, 0 skipped"),
        "{stdout}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    let (passed, failed) = last.split_once(" passed, ").ok_or(format!("last line: {last}"))?;
    assert!(passed.parse::<usize>()? > 10 && failed == "3 failed", "the total per assertion ends the output: {last}");
    let stderr = String::from_utf8(output.stderr)?;
    assert_eq!(stderr.lines().filter(|l| l.starts_with('[')).count(), 3, "a progress line per script: {stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("PASS") || l.starts_with("FAIL")).count(),
        3,
        "one line per script: {stdout}"
    );

    let report: Value = serde_json::from_str(&std::fs::read_to_string(reports.join("failing.testreport.json"))?)?;
    assert_eq!(report["resourceType"], "TestReport");
    assert_eq!(report["result"], "fail");
    let junit = std::fs::read_to_string(reports.join("junit.xml"))?;
    assert!(
        junit.contains(
            "<testsuites name=\"fhirgate-conformance\" tests=\"10\" failures=\"3\" errors=\"1\" skipped=\"1\">"
        ),
        "{junit}"
    );
    assert!(junit.contains("expects 200: expected status equal to `200`, got `404`"), "{junit}");
    let html = std::fs::read_to_string(reports.join("report.html"))?;
    assert!(
        html.contains("family by XPath") && html.contains("GET ") && !html.contains("secret-token"),
        "the token stays out of the page"
    );

    let passing = Command::new(env!("CARGO_BIN_EXE_fhirgate-conformance"))
        .args(["run", "--base-url", &server.base, "--token-command", "echo t0ken"])
        .arg(scripts.join("passing.xml"))
        .output()?;
    assert_eq!(passing.status.code(), Some(0), "{}", String::from_utf8_lossy(&passing.stdout));

    let bundles = dir().join("testscripts/must/bundles.json");
    let skipped = Command::new(env!("CARGO_BIN_EXE_fhirgate-conformance"))
        .args(["run", "--base-url", &server.base])
        .arg(&bundles)
        .output()?;
    let skipped_out = String::from_utf8(skipped.stdout)?;
    assert_eq!(skipped.status.code(), Some(0), "a skipped script does not fail the run: {skipped_out}");
    assert!(
        skipped_out.contains("SKIP") && skipped_out.contains("1 scripts: 0 passed, 0 failed, 1 skipped"),
        "{skipped_out}"
    );
    let unchecked = Command::new(env!("CARGO_BIN_EXE_fhirgate-conformance"))
        .args(["run", "--no-capability-check", "--base-url", &server.base])
        .arg(&bundles)
        .output()?;
    assert_eq!(unchecked.status.code(), Some(1), "{}", String::from_utf8_lossy(&unchecked.stdout));

    let nothing = Command::new(env!("CARGO_BIN_EXE_fhirgate-conformance"))
        .args(["run", "--base-url", &server.base])
        .arg(scripts.join("fixtures"))
        .output()?;
    assert_eq!(nothing.status.code(), Some(2), "no script found is an error");
    let _ = std::fs::remove_dir_all(&reports);
    Ok(())
}

#[test]
fn an_stu3_style_xml_script_runs() -> TestResult {
    let server = MiniFhir::start()?;
    let result = run(&server, &dir().join("tests/legacy/stu3-style.xml"))?;
    assert!(result.passed(), "{}", problems(&result));
    assert_eq!(outcomes(&result, 0), [Outcome::Pass; 4]);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0], "POST /Patient [application/fhir+xml]", "create guessed from the method, sent as XML");
    assert!(requests[1].starts_with("GET /Patient/id"), "read guessed from targetId: {requests:?}");
    Ok(())
}

#[test]
fn an_unreachable_server_is_an_error_not_a_crash() -> TestResult {
    // Bind and drop a listener: its port refuses connections now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut options = Options::new(&format!("http://127.0.0.1:{port}"));
    options.timeout = std::time::Duration::from_secs(5);
    let result = Runner::new(options).run(&Script::load(&dir().join("tests/scripts/failing.json"))?);
    assert!(!result.passed());
    assert_eq!(outcomes(&result, 0), [Outcome::Error, Outcome::Skip, Outcome::Skip]);
    assert!(
        result.tests[0].actions[0].message.contains(&format!("127.0.0.1:{port}")),
        "{}",
        result.tests[0].actions[0].message
    );
    Ok(())
}

#[test]
fn batch_transaction_patch_named_operations_and_conditional_delete() -> TestResult {
    let server = MiniFhir::start()?;
    let result = run(&server, &dir().join("tests/operations/operations.json"))?;
    assert!(result.passed(), "{}", problems(&result));
    assert_eq!(
        server.requests(),
        [
            "POST /Patient [application/fhir+json]",
            "POST / [application/fhir+json]",
            "POST / [application/fhir+json]",
            "PATCH /Patient/id1 [application/fhir+json]",
            "PATCH /Patient/id1 [application/json-patch+json]",
            "POST /Patient/$validate [application/fhir+json]",
            "GET /Patient/id1/$everything",
            "DELETE /Patient?identifier=urn:x%7C1",
        ]
    );
    Ok(())
}

/// A script from another suite: its required CapabilityStatement is named by a canonical that
/// is neither contained nor a file beside it, it has elements R4 does not define and an
/// assertion with no check the runner knows. Each is a warning naming it; the script runs and
/// passes. Given `--capabilities DIR` holding that statement, it is checked (and this server
/// does not claim its `batch`).
#[test]
fn a_foreign_script_runs_with_warnings_and_its_canonical_resolves_from_a_directory() -> TestResult {
    let server = MiniFhir::start()?;
    let result = run(&server, &dir().join("tests/foreign/foreign.json"))?;
    assert!(result.passed() && result.skipped.is_none() && result.error.is_none(), "{}", problems(&result));
    let warnings: Vec<&str> =
        result.setup.iter().filter(|a| a.outcome == Outcome::Warning).map(|a| a.message.as_str()).collect();
    assert_eq!(
        warnings,
        [
            "unknown element `TestScript.scope` is ignored",
            "unknown element `TestScript.test.action.assert.rule` is ignored",
            "unknown element `TestScript.test.action.assert.stopTestOnFail` is ignored",
            "the required CapabilityStatement `http://example.org/fhir/CapabilityStatement/elsewhere` was not found \
             (neither contained, nor a file beside the script, nor in the loaded packages or `--capabilities` \
             directories): not checked",
        ]
    );
    assert_eq!(outcomes(&result, 0), [Outcome::Pass, Outcome::Pass, Outcome::Warning]);
    assert!(result.tests[0].actions[2].message.contains("`rule`"), "{}", result.tests[0].actions[2].message);
    assert_eq!(result.counts().warning, 5);
    assert!(validate(Definitions::r4(), &test_report(&result)).is_empty());

    let mut options = Options::new(&server.base);
    options.capability_dirs = vec![dir().join("tests/capabilities")];
    let checked = Runner::new(options).run(&Script::load(&dir().join("tests/foreign/foreign.json"))?);
    assert_eq!(
        checked.skipped.as_deref(),
        Some("the server's CapabilityStatement does not claim system `batch`"),
        "{}",
        problems(&checked)
    );
    Ok(())
}

/// Capability-driven: scripts needing what the server does not claim are left out (not
/// skipped), and each claim the run exercised is honoured or not, with the failing tests.
#[test]
fn capability_driven_runs_leave_out_what_is_not_claimed_and_report_claims_not_honoured() -> TestResult {
    let server = MiniFhir::start()?;
    let mut options = Options::new(&server.base);
    options.from_capabilities = true;
    let runner = Runner::new(options);
    let paths = [dir().join("testscripts/must/bundles.json"), dir().join("tests/scripts/failing.json")];
    let results = runner.run_paths(&paths)?;
    let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["RunnerFailing"], "bundles.json needs batch and transaction, which the server does not claim");
    let claims = runner.honour(&results)?;
    let read = claims.iter().find(|c| c.claim == "`Patient` `read`").ok_or(format!("{claims:?}"))?;
    assert!(!read.honoured(), "{read:?}");
    assert!(
        read.failed.iter().any(|f| f.starts_with("RunnerFailing › wrong-status: expected status equal to `200`")),
        "{read:?}"
    );
    assert!(claims.iter().all(|c| c.claim.starts_with("`Patient`")), "only what the server claims: {claims:?}");

    let output = Command::new(env!("CARGO_BIN_EXE_fhirgate-conformance"))
        .args(["run", "--from-capabilities", "--base-url", &server.base])
        .args(&paths)
        .output()?;
    let stdout = String::from_utf8(output.stdout)?;
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("NOT HONOURED  `Patient` `read`") && stdout.contains("1 scripts: 0 passed, 1 failed"),
        "{stdout}"
    );
    Ok(())
}
