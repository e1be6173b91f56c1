//! End-to-end: every resource of the official R4 package (`hl7.fhir.r4.examples`, examples and
//! definitions) is stored with PUT and read back unchanged apart from `meta.versionId` and
//! `meta.lastUpdated`. Rejections must be listed, with the example's real defect, in
//! `engine/tests/data/r4-examples-known-invalid.txt`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use fhirgate_e2e::{Server, TestResult, temp_dir};
use serde_json::{Map, Value};

fn package_dir() -> TestResult<PathBuf> {
    if let Ok(dir) = std::env::var("FHIR_R4_PACKAGE") {
        return Ok(PathBuf::from(dir));
    }
    let script = fhirgate_e2e::manifest_dir().join("../scripts/fetch-r4-package.sh");
    let out = Command::new("bash").arg(script).output()?;
    if !out.status.success() {
        return Err(format!("fetching the R4 package failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

fn known_invalid() -> TestResult<BTreeMap<String, String>> {
    let path = fhirgate_e2e::manifest_dir().join("../engine/tests/data/r4-examples-known-invalid.txt");
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t').map(|(f, r)| (f.to_string(), r.to_string())))
        .collect())
}

fn strip_server_meta(mut v: Value) -> Value {
    if let Some(Value::Object(meta)) = v.get_mut("meta") {
        meta.remove("versionId");
        meta.remove("lastUpdated");
        if meta.is_empty() {
            if let Some(o) = v.as_object_mut() {
                o.remove("meta");
            }
        }
    }
    v
}

#[test]
fn every_r4_example_round_trips() -> TestResult {
    let dir = package_dir()?;
    let known = known_invalid()?;
    let mut files: Vec<(String, Map<String, Value>)> = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        if !name.ends_with(".json") || name == "package.json" || name.starts_with('.') {
            continue;
        }
        if let Ok(Value::Object(resource)) = serde_json::from_slice::<Value>(&std::fs::read(&path)?) {
            if resource.get("resourceType").and_then(Value::as_str).is_some() && resource.get("id").is_some() {
                files.push((name, resource));
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(files.len() > 5000, "expected the whole package, found {}", files.len());

    let data = temp_dir("examples")?;
    let server = Server::start_with(
        &data,
        &[
            ("FHIRGATE_MAX_BODY_BYTES", "67108864"),
            ("FHIRGATE_REQUEST_TIMEOUT_SECONDS", "120"),
            ("FHIRGATE_LOG_LEVEL", "warn"),
        ],
    )?;
    let failures = Mutex::new(Vec::<String>::new());
    let rejected = Mutex::new(BTreeMap::<String, String>::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((name, resource)) = files.get(i) else { break };
                    let rt = resource["resourceType"].as_str().unwrap_or("");
                    let id = resource["id"].as_str().unwrap_or("");
                    let path = format!("{rt}/{id}");
                    let body = Value::Object(resource.clone()).to_string();
                    let outcome = server.send("PUT", &path, Some(body.as_bytes()), &[("Prefer", "return=minimal")]);
                    let problem = match outcome {
                        Err(e) => Some(format!("{name}: request failed: {e}")),
                        Ok(r) if r.status == 400 => {
                            if let Ok(mut rej) = rejected.lock() {
                                rej.insert(name.clone(), r.body.chars().take(400).collect());
                            }
                            None
                        }
                        Ok(r) if r.status != 200 && r.status != 201 => {
                            Some(format!("{name}: PUT {path} gave {}: {}", r.status, r.body))
                        }
                        Ok(_) => match server.get(&path).and_then(|r| r.json()) {
                            Err(e) => Some(format!("{name}: read back failed: {e}")),
                            Ok(back) => {
                                let expected = strip_server_meta(Value::Object(resource.clone()));
                                (strip_server_meta(back) != expected).then(|| format!("{name}: read back differs"))
                            }
                        },
                    };
                    if let (Some(p), Ok(mut f)) = (problem, failures.lock()) {
                        f.push(p);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().map_err(|e| e.to_string())?;
    let rejected = rejected.into_inner().map_err(|e| e.to_string())?;
    let accepted = files.len() - rejected.len() - failures.len();
    println!(
        "R4 examples: {accepted} of {} stored and read back unchanged; {} rejected as known-invalid",
        files.len(),
        rejected.len()
    );
    assert!(failures.is_empty(), "{} failures, first: {:#?}", failures.len(), &failures[..failures.len().min(10)]);
    let unexpected: Vec<_> = rejected.iter().filter(|(f, _)| !known.contains_key(*f)).collect();
    assert!(unexpected.is_empty(), "rejected but not known to be invalid: {unexpected:#?}");
    let now_accepted: Vec<_> =
        known.keys().filter(|f| !rejected.contains_key(*f) && files.iter().any(|(n, _)| n == *f)).collect();
    assert!(now_accepted.is_empty(), "listed as invalid but accepted (shrink the list): {now_accepted:?}");
    Ok(())
}
