//! The official R4 package's examples as the end-to-end tests load them (`r4_examples.rs` stores
//! them as JSON, `xml.rs` as XML; the package is [`crate::r4_package`]): every resource in it with an id, the
//! ones known to be invalid, and a resource as read back with the server's own `meta` left out.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::TestResult;

/// Every resource of the package with a `resourceType` and an `id`, as (file name, resource),
/// sorted by file name.
pub fn with_ids() -> TestResult<Vec<(String, Map<String, Value>)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(crate::r4_package()?)? {
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
    if files.len() <= 5000 {
        return Err(format!("expected the whole package, found {} resources", files.len()).into());
    }
    Ok(files)
}

/// `file → defect` of the examples the server rightly refuses
/// (`engine/tests/data/r4-examples-known-invalid.txt`).
pub fn known_invalid() -> TestResult<BTreeMap<String, String>> {
    let path = crate::manifest_dir().join("../engine/tests/data/r4-examples-known-invalid.txt");
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t').map(|(f, r)| (f.to_string(), r.to_string())))
        .collect())
}

/// A resource as stored, without the `meta.versionId` and `meta.lastUpdated` the server sets
/// (and without `meta` when nothing else was in it).
pub fn strip_server_meta(mut v: Value) -> Value {
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

/// A server for the whole package: 64 MB bodies, two minutes a request, warnings only.
pub fn server(name: &str) -> TestResult<crate::Server> {
    crate::Server::start_with(
        &crate::temp_dir(name)?,
        &[
            ("FHIRGATE_MAX_BODY_BYTES", "67108864"),
            ("FHIRGATE_REQUEST_TIMEOUT_SECONDS", "120"),
            ("FHIRGATE_LOG_LEVEL", "warn"),
        ],
    )
}

/// What storing the examples came to.
#[derive(Debug, Default)]
pub struct Stored {
    /// Examples not stored and read back unchanged, each with what went wrong.
    pub failures: Vec<String>,
    /// Examples refused with a 400: file → the start of the OperationOutcome.
    pub rejected: BTreeMap<String, String>,
}

/// PUTs every example (`body` gives its bytes and `Content-Type`), four at a time, and reads
/// each stored one back as JSON: it must be the example but for the server's `meta`.
pub fn store_all(
    server: &crate::Server,
    files: &[(String, Map<String, Value>)],
    body: impl Fn(&Value) -> TestResult<(Vec<u8>, &'static str)> + Sync,
) -> TestResult<Stored> {
    let stored = std::sync::Mutex::new(Stored::default());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                while let Some((name, resource)) = files.get(next.fetch_add(1, std::sync::atomic::Ordering::SeqCst)) {
                    let path = format!(
                        "{}/{}",
                        resource["resourceType"].as_str().unwrap_or(""),
                        resource["id"].as_str().unwrap_or("")
                    );
                    let original = Value::Object(resource.clone());
                    let sent = body(&original).and_then(|(bytes, content_type)| {
                        server.send(
                            "PUT",
                            &path,
                            Some(&bytes),
                            &[("Content-Type", content_type), ("Prefer", "return=minimal")],
                        )
                    });
                    let Ok(mut stored) = stored.lock() else { return };
                    let problem = match sent {
                        Err(e) => Some(format!("{name}: request failed: {e}")),
                        Ok(r) if r.status == 400 => {
                            stored.rejected.insert(name.clone(), r.body.chars().take(400).collect());
                            None
                        }
                        Ok(r) if r.status != 200 && r.status != 201 => {
                            Some(format!("{name}: PUT {path} gave {}: {}", r.status, r.body))
                        }
                        Ok(_) => match server.get(&path) {
                            Err(e) => Some(format!("{name}: read back failed: {e}")),
                            Ok(r) if r.status != 200 => {
                                Some(format!("{name}: read back gave {}: {}", r.status, r.body))
                            }
                            Ok(r) => match r.json().map(strip_server_meta) {
                                Ok(back) if back == strip_server_meta(original) => None,
                                _ => Some(format!("{name}: read back differs")),
                            },
                        },
                    };
                    stored.failures.extend(problem);
                }
            });
        }
    });
    stored.into_inner().map_err(|e| e.to_string().into())
}
